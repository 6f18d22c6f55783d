"""Data-parallel learning under torchrun: 2 CPU processes with gloo equal one process."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from direction_finder import LearnConfig, learn, load_directions
from direction_finder.generators.synthetic import parse_synthetic

MODEL = "synthetic:z_dim=8,factors=3,size=4,seed=0"
ARGS = ["learn", "--model", MODEL, "--batch-size", "4", "--eval-every", "3", "--eval-samples", "6",
        "--checkpoint-every", "4", "--seed", "3"]


def torchrun(*args, env=None, timeout=120):
    torchrun_bin = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    command = [torchrun_bin, "--standalone", "--nproc-per-node", "2", "-m", "hpdirs_cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "HPDIRS_DIST_TIMEOUT": "60", **(env or {})})


def test_two_gloo_ranks_equal_one_process_and_only_rank_0_writes(tmp_path):
    out = torchrun(*ARGS, "--steps", "10", "--out", str(tmp_path), "--name", "ddp")
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "synthetic" / "ddp"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        ["README.md", "checkpoint.pt", "config.json", "directions.safetensors", "directions_best.safetensors",
         "loss.csv", "loss.png"])
    assert out.stdout.count("hpdirs learn") == 1  # one rank prints
    single = learn(parse_synthetic(MODEL), LearnConfig(steps=10, batch_size=4, eval_every=3, eval_samples=6,
                                                       checkpoint_every=4, seed=3))
    ddp = load_directions(run)
    # The ranks sum the gradient in another order (an all-reduce of two halves): float32 rounding,
    # amplified by Adam's per-entry normalisation over 10 steps; the same bound as the float64
    # rank test would be meaningless here, so: 1e-4 = ~1000 ulps of a unit vector's entries.
    torch.testing.assert_close(ddp.matrix, single.matrix, atol=1e-4, rtol=0)
    print("max |ddp - single|:", float((ddp.matrix - single.matrix).abs().max()))


@pytest.mark.slow  # 17 s: two torchrun launches; the same-path and one-writer checks above stay in CI
def test_resume_under_torchrun(tmp_path):
    first = torchrun(*ARGS, "--steps", "6", "--out", str(tmp_path), "--name", "r")
    assert first.returncode == 0, first.stderr[-3000:]
    run = tmp_path / "synthetic" / "r"
    more = torchrun("learn", "--resume", str(run), "--steps", "10")
    assert more.returncode == 0, more.stderr[-3000:]
    whole = learn(parse_synthetic(MODEL), LearnConfig(steps=10, batch_size=4, eval_every=3, eval_samples=6,
                                                      checkpoint_every=4, seed=3))
    torch.testing.assert_close(load_directions(run).matrix, whole.matrix, atol=1e-4, rtol=0)
    assert load_directions(run).metadata["step"] == 10


@pytest.mark.slow  # 13 s: a torchrun launch that must fail on every rank
def test_a_bad_setting_ends_every_rank(tmp_path):
    # HPDIRS_DIST_TIMEOUT=60 and the subprocess timeout of 120 s: a rank left waiting for a
    # collective would fail this test by timing out, so no clock is read here.
    out = torchrun(*ARGS, "--steps", "4", "--batch-size", "3", "--out", str(tmp_path))
    assert out.returncode != 0
    assert "batch-size 3 does not split evenly over 2 ranks; use a multiple of 2" in out.stderr
    # torchrun prints its own ChildFailedError traceback; none comes from hpdirs' code
    assert not [line for line in out.stderr.splitlines()
                if line.strip().startswith("File ") and ("direction_finder" in line or "/cli/" in line)]
    name_taken = tmp_path / "synthetic" / "taken"
    name_taken.mkdir(parents=True)
    clash = torchrun(*ARGS, "--steps", "4", "--out", str(tmp_path), "--name", "taken")
    assert clash.returncode != 0 and "already exists" in clash.stderr

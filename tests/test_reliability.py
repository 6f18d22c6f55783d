"""Every bad input and fault: the real CLI exits non-zero with one line on stderr saying what is
wrong and what to do, prints no traceback, and leaves existing outputs unchanged."""

import errno
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from direction_finder import save_directions
from hpdirs_cli.main import app

runner = CliRunner()


class Exploit:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_weights):
    """Files every row may use; `precious` is an existing run that must never change."""
    root = tmp_path_factory.mktemp("world")
    out = root / "outputs"
    result = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=8,factors=3,size=4", "--steps", "4",
                                 "--batch-size", "2", "--eval-every", "2", "--checkpoint-every", "2",
                                 "--out", str(out), "--name", "precious"])
    assert result.exit_code == 0, result.stderr
    w = {"root": root, "out": out, "run": out / "synthetic" / "precious", "tiny": tiny_weights}
    damaged = {}
    for name in ("no-config", "bad-json", "renamed-key", "half-weights", "nan-weights"):
        damaged[name] = root / name
        shutil.copytree(tiny_weights, damaged[name])
    (damaged["no-config"] / "config.json").unlink()
    (damaged["bad-json"] / "config.json").write_text("{'not': json")
    state = torch.load(tiny_weights / "pytorch_model.bin", weights_only=True)
    renamed = dict(state)
    renamed["generator.gen_z.bias_renamed"] = renamed.pop("generator.gen_z.bias")
    torch.save(renamed, damaged["renamed-key"] / "pytorch_model.bin")
    data = (tiny_weights / "pytorch_model.bin").read_bytes()
    (damaged["half-weights"] / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    poisoned = dict(state)
    poisoned["generator.gen_z.bias"] = torch.full_like(state["generator.gen_z.bias"], float("nan"))
    torch.save(poisoned, damaged["nan-weights"] / "pytorch_model.bin")
    w.update(damaged)
    files = root / "files"
    files.mkdir()
    (files / "empty.safetensors").write_bytes(b"")
    good = (w["run"] / "directions.safetensors").read_bytes()
    (files / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    (files / "text.safetensors").write_text("just some text\n")
    save_file({"directions": torch.eye(4, 8)}, str(files / "other-format.safetensors"),
              metadata={"format": "hpdirs.directions/2", "model": "synthetic"})
    save_directions(files / "z8.safetensors", torch.eye(4, 8), {"model": "synthetic:z_dim=16"})
    save_directions(files / "no-model.safetensors", torch.eye(4, 8), {})
    with open(files / "pickle.safetensors", "wb") as f:
        pickle.dump({"directions": Exploit()}, f)
    (files / "a-file").write_text("x")
    exploit_run = root / "exploit-run"
    shutil.copytree(w["run"], exploit_run)
    torch.save({"format": "hpdirs.checkpoint/1", "A": Exploit()}, exploit_run / "checkpoint.pt")
    w.update(files=files, exploit_run=exploit_run)
    return w


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


T = "{tiny}"
LEARN = ["learn", "--weights", T, "--class", "207", "--steps", "1", "--batch-size", "1", "--eval-every", "0",
         "--out", "{out}"]
RENDER = ["render", "{run}", "--frames", "4", "--samples", "2", "--out", "{root}/render-out"]

ROWS = [
    # (case, argv, fragments of the one-line message)
    ("1 unknown class", ["learn", "--weights", T, "--class", "golden_retreiver", "--out", "{out}"],
     ["unknown class 'golden_retreiver'", "207 golden retriever (n02099601)", "hpdirs classes"]),
    ("2 ambiguous class", ["learn", "--weights", T, "--class", "crane", "--out", "{out}"],
     ["'crane' is ambiguous", "134 crane", "517 crane", "pass the index or WordNet id"]),
    ("3 truncation 0", [*LEARN, "--truncation", "0"], ["truncation must be in (0, 1], got 0.0"]),
    ("3 truncation 1.5", [*LEARN, "--truncation", "1.5"], ["truncation must be in (0, 1], got 1.5"]),
    ("3 truncation nan", [*LEARN, "--truncation", "nan"], ["truncation must be a number in (0, 1], got nan"]),
    ("4 steps 0", [*LEARN, "--steps", "0"], ["steps must be an integer >= 1, got 0"]),
    ("4 batch-size negative", [*LEARN, "--batch-size", "-2"], ["batch-size must be an integer >= 1, got -2"]),
    ("4 num-directions 0", [*LEARN, "--num-directions", "0"], ["num-directions must be an integer >= 1"]),
    ("4 num-directions > z_dim", [*LEARN, "--num-directions", "17"], ["num-directions 17 is more than z_dim 16"]),
    ("4 frames 0", [*RENDER, "--frames", "0"], ["frames must be an integer >= 2, got 0"]),
    ("4 samples 0", [*RENDER, "--samples", "0"], ["samples must be an integer >= 1, got 0"]),
    ("4 samples too many", [*RENDER, "--samples", "1000"], ["samples 1000 is too many", "at most 64"]),
    ("5 eta 0", [*LEARN, "--eta", "0"], ["eta must be a finite number > 0, got 0.0"]),
    ("5 epsilon negative", [*LEARN, "--epsilon", "-0.1"], ["epsilon must be a finite number > 0"]),
    ("5 k 1", [*LEARN, "--k", "1"], ["k must be an integer >= 2"]),
    ("5 unknown recipe", [*LEARN, "--recipe", "fast"], ["unknown recipe 'fast'", "paper, curvature"]),
    ("5 unknown init", [*LEARN, "--init", "zeros"], ["init must be random, axes, sefa or curvature"]),
    ("5 render eta 0", [*RENDER, "--eta", "0"], ["eta must be a finite number > 0"]),
    ("6 weights path missing", ["learn", "--weights", "{root}/nowhere", "--class", "207"],
     ["--weights", "nowhere does not exist", "config.json and pytorch_model.bin"]),
    ("6 folder without config.json", ["learn", "--weights", "{no-config}", "--class", "207"], ["has no config.json"]),
    ("6 config.json not JSON", ["learn", "--weights", "{bad-json}", "--class", "207"], ["is not valid JSON"]),
    ("7 renamed key", ["learn", "--weights", "{renamed-key}", "--class", "207"],
     ["missing keys: generator.gen_z.bias", "unexpected keys: generator.gen_z.bias_renamed"]),
    ("7 another resolution", ["learn", "--model", "biggan-deep-256", "--weights", T, "--class", "207"],
     ["are for 32 px but the model is biggan-deep-256", "omit --model"]),
    ("8 truncated weights", ["learn", "--weights", "{half-weights}", "--class", "207"],
     ["damaged, truncated or not a weights file", "download again"]),
    ("9 offline, empty cache", ["learn", "--class", "207", "--offline"],
     ["offline and biggan-deep-128 is not in the cache", "--weights FOLDER"]),
    ("10 directions missing", ["render", "{files}/nope.safetensors"], ["does not exist"]),
    ("10 directions empty", ["render", "{files}/empty.safetensors"], ["is empty"]),
    ("10 directions truncated", ["info", "{files}/truncated.safetensors"], ["not a readable safetensors file"]),
    ("10 not safetensors", ["compare", "{files}/text.safetensors"], ["not a readable safetensors file"]),
    ("10 other format version", ["info", "{files}/other-format.safetensors"],
     ["format 'hpdirs.directions/2', not 'hpdirs.directions/1'"]),
    ("10 z_dim mismatch", ["render", "{files}/z8.safetensors"],
     ["the directions have z_dim 8 but the generator has 16"]),
    ("11 pickle as directions", ["render", "{files}/pickle.safetensors"], ["not a readable safetensors file"]),
    ("11 pickle as checkpoint", ["learn", "--resume", "{exploit_run}"], ["cannot be read", "damaged or not ours"]),
    ("12 output not writable", [*LEARN[:-1], "{files}/a-file/outputs"], ["cannot create", "choose another --out"]),
    ("12 render output not writable", [*RENDER[:-1], "{files}/a-file/render"], ["cannot create"]),
    ("16 NaN loss", ["learn", "--weights", "{nan-weights}", "--class", "207", "--steps", "3", "--batch-size", "1",
                     "--out", "{root}/nan-out"],
     ["the loss became nan at step 1; no checkpoint had been written yet", "check the generator's weights"]),
    ("17 cuda without CUDA", [*LEARN, "--device", "cuda"], ["CUDA is not available on this machine"]),
    ("19 metadata lacks model", ["render", "{files}/no-model.safetensors"],
     ["does not say which model it was learned with; pass --model (and --class)"]),
    ("19 compare: metadata lacks model", ["compare", "{files}/no-model.safetensors"], ["pass --model (and --class)"]),
    ("20 resume, another config", ["learn", "--resume", "{run}", "--lr", "0.5", "--k", "3"],
     ["cannot resume", "different config (lr: 0.01 -> 0.5; k: 2 -> 3)"]),
]


@pytest.mark.parametrize("case, argv, fragments", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input(world, case, argv, fragments, monkeypatch):
    if case.startswith("17") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(world["root"])
    before = snapshot(world["root"])
    args = [a.format(**{k: v for k, v in world.items()}) for a in argv]
    result = runner.invoke(app, args)
    assert result.exit_code != 0, f"{case}: exit 0\n{result.stdout}"
    message = result.stderr
    assert message.startswith("error: ") and message.count("\n") == 1, f"{case}: {message!r}"
    assert "Traceback" not in message + result.stdout
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"
    after = snapshot(world["root"])
    changed = [name for name in before if before[name] != after.get(name)]
    assert not changed, f"{case} changed {changed}"
    assert not [n for n in after if Path(n).name.startswith(".") and ".tmp" in n]
    assert not (world["root"] / "PWNED").exists()


def test_off_grid_truncation_is_snapped_with_a_one_line_warning(world, tmp_path):
    result = runner.invoke(app, [a.format(**world) for a in LEARN] + ["--truncation", "0.413", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert "warning: truncation 0.413 is off the 0.02 grid of BigGAN's BatchNorm statistics; using 0.42" in result.stderr
    run = next((tmp_path / "golden_retriever").iterdir())
    assert json.loads((run / "config.json").read_text())["generator"]["truncation"] == 0.42


def test_13_disk_full_while_saving_keeps_the_previous_files(world, tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def full_disk(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # the second checkpoint: write part of it, then run out of space
            Path(path).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    args = ["learn", "--model", "synthetic:z_dim=8,factors=3,size=4", "--steps", "6", "--batch-size", "2",
            "--checkpoint-every", "2", "--eval-every", "2", "--out", str(tmp_path), "--name", "full"]
    result = runner.invoke(app, args)
    run = tmp_path / "synthetic" / "full"
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "could not write to" in result.stderr and "No space left on device" in result.stderr
    assert f"hpdirs learn --resume {run}" in result.stderr and "Traceback" not in result.stderr
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2  # the previous one, intact
    from direction_finder import load_directions

    assert load_directions(run).metadata["step"] == 2
    assert not [p for p in run.iterdir() if p.name.startswith(".")]
    monkeypatch.setattr(torch, "save", real_save)
    resumed = runner.invoke(app, ["learn", "--resume", str(run)])
    assert resumed.exit_code == 0, resumed.stderr
    assert load_directions(run).metadata["step"] == 6


def _cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "hpdirs_cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"}, **kwargs)


def test_15_ctrl_c_during_render_leaves_no_partial_file(world, tmp_path):
    out = tmp_path / "render"
    process = _cli("render", str(world["run"]), "--frames", "400", "--samples", "16", "--directions", "0-7",
                   "--format", "gif,png", "--out", str(out))
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and any(out.glob("direction_*.gif"))):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.startswith("error: interrupted") and "Traceback" not in err
    import imageio.v3 as iio

    names = [p.name for p in out.iterdir()]
    assert not [n for n in names if n.startswith(".")]  # no temp files, no scratch folder
    assert "index.html" not in names  # the render did not finish
    for gif in out.glob("*.gif"):
        assert iio.imread(gif, index=None).shape[0] == 2 * 400 - 2  # every file there is whole


def test_18_two_runs_with_the_same_name_at_once_are_separated(tmp_path):
    args = ["learn", "--model", "synthetic:z_dim=8,factors=3,size=4", "--steps", "200", "--batch-size", "2",
            "--out", str(tmp_path), "--name", "same"]
    first, second = _cli(*args), _cli(*args)
    results = [(p.wait(timeout=120), p.stderr.read()) for p in (first, second)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert "already exists; choose another --name" in loser and loser.count("\n") == 1
    run = tmp_path / "synthetic" / "same"
    from direction_finder import load_directions

    assert load_directions(run).metadata["step"] == 200
    assert len((run / "loss.csv").read_text().splitlines()) == 201  # one writer: no interleaved rows


def test_every_option_of_every_command_shows_its_default():
    for command in ["learn", "render", "compare", "bench", "classes", "download", "info"]:
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "250"})
        assert result.exit_code == 0
        groups: list[list[str]] = []
        for line in result.stdout.splitlines():
            text = line.strip("│ ╰╭─")
            if text.startswith("--"):
                groups.append([text])
            elif groups and text:
                groups[-1].append(text)
        options = [" ".join(g) for g in groups if not g[0].startswith("--help")]
        assert options or command in ("classes", "info")
        for option in options:
            assert "[default:" in option or "[required]" in option, f"{command}: {option}"

"""Shared fixtures: random BigGAN-deep weights in the published folder format, and a guard
that keeps every test offline (a real download attempt fails the test); and the one in-process
runner of the command line the test files share (`from conftest import invoke, runner`)."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from direction_finder import SyntheticGenerator
from direction_finder.generators import weights as weights_module
from direction_finder.generators.biggan import load_biggan
from direction_finder.generators.random_weights import full_config, save_random_biggan, tiny_config
from hpdirs_cli.main import app

runner = CliRunner()  # typer's in-process runner: stdout and stderr apart, exit codes as the shell sees them


def invoke(args, **env):
    """`hpdirs ARGS` in this process, with wide columns (a one-line message stays one line)."""
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **env})

# A runner started in the background (`cmd &` without job control) ignores SIGINT, and ignored
# signals pass to every child: the Ctrl-C tests' processes would then never see their SIGINT.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def offline_and_isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HPDIRS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HPDIRS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HPDIRS_WEIGHTS_URL", raising=False)
    # the caches of pytorch-pretrained-biggan and the Hugging Face hub a developer may have: not seen
    monkeypatch.setenv("PYTORCH_PRETRAINED_BIGGAN_CACHE", str(tmp_path / "biggan-package-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))

    def no_network(url, dest, progress=None):
        pytest.fail(f"a test tried to download {url}")

    monkeypatch.setattr(weights_module, "http_fetch", no_network)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A random 32-px BigGAN-deep (z_dim 16) saved as config.json + pytorch_model.bin."""
    return save_random_biggan(tmp_path_factory.mktemp("tiny-biggan"), tiny_config(), seed=0)


@pytest.fixture(scope="session")
def full_weights(tmp_path_factory):
    """A random full-size biggan-deep-128 in the published format (~200 MB, ~3 s)."""
    return save_random_biggan(tmp_path_factory.mktemp("biggan-deep-128"), full_config(128), seed=1)


@pytest.fixture(scope="session")
def tiny_biggan(tiny_weights):
    return load_biggan(class_="golden_retriever", truncation=0.4, weights=tiny_weights, device="cpu")


def learn_synthetic(tmp_path, name, extra=()):
    """A run of 300 steps on the synthetic model, learned through the CLI: OUT/synthetic/NAME."""
    result = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=8,factors=4,size=8", "--steps", "300",
                                 "--batch-size", "8", "--eval-every", "0", "--out", str(tmp_path), "--name", name,
                                 *extra])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return next(tmp_path.glob(f"*/{name}"))


@pytest.fixture
def synthetic():
    return SyntheticGenerator(z_dim=8, factors=4, size=16, seed=0)


@pytest.fixture
def small_disk(tmp_path):
    """A real filesystem of 512 KiB (tmpfs), where the machine lets this test mount one."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}); the ulimit -f test still runs")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` but for about `leave` bytes, with a file that can be removed to free space."""
    free = shutil.disk_usage(disk).free
    filler = disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def cli_process(*args, **kwargs):
    """`hpdirs ARGS` in a process of its own (signals, limits, exit codes as a shell sees them)."""
    return subprocess.Popen([sys.executable, "-m", "hpdirs_cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"}, **kwargs)


def one_error_line(err: str) -> None:
    """stderr is one `error:` line and no traceback."""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err

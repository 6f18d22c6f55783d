"""Shared fixtures: random BigGAN-deep weights in the published folder format, a guard that keeps
every test offline (a real download attempt fails the test), a small real disk. The helpers the
test files share (the one CLI runner, a small run, counting generators) are in helpers.py."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from direction_finder import SyntheticGenerator
from direction_finder.generators import weights as weights_module
from direction_finder.generators.biggan import load_biggan
from direction_finder.generators.random_weights import full_config, save_random_biggan, tiny_config

# A runner started in the background (`cmd &` without job control) ignores SIGINT, and ignored
# signals pass to every child: the Ctrl-C tests' processes would then never see their SIGINT.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def compiled_cache(tmp_path_factory):
    """One inductor cache for the session: compiled code is found again, as by a second run."""
    return tmp_path_factory.mktemp("compiled")


@pytest.fixture(autouse=True)
def offline_and_isolated(tmp_path, monkeypatch, compiled_cache):
    monkeypatch.setenv("HPDIRS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(compiled_cache))
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


def _has_mps() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _devices() -> list:
    import torch

    cuda = torch.cuda.is_available()
    return [
        pytest.param("cpu", id="cpu"),
        pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not cuda, reason="no CUDA device on this machine")),
        pytest.param("mps", id="mps", marks=pytest.mark.skipif(not _has_mps(), reason="no MPS device on this machine")),
    ]


@pytest.fixture(params=_devices())
def device(request):
    """Each device this machine has: the CPU always; CUDA and MPS where present (else skipped,
    saying so). `make test-gpu` runs the CUDA cases."""
    return request.param


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

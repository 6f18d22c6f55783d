"""The Generator protocol: what every part of hpdirs needs from a GAN."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Generator(Protocol):
    """A frozen, deterministic map from latents z (n, z_dim) to images (n, C, H, W) in [-1, 1].

    Deterministic: the same z gives bitwise the same image. Frozen: no parameter requires grad,
    so backward computes input gradients only.
    """

    z_dim: int
    device: torch.device

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n latents (n, z_dim) on self.device, drawn from the generator's prior."""
        ...

    def __call__(self, z: Tensor) -> Tensor:
        """Images (n, C, H, W), float32 in [-1, 1]."""
        ...


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" picks cuda > mps > cpu; an explicit device that is not present is a UsageError."""
    from direction_finder.errors import UsageError

    name = str(device)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError(f"--device {name}: MPS is not available on this machine; use --device cpu or auto")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev

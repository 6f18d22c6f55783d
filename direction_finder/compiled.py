"""A generator's forward through torch.compile (`--compile auto|on|off`), with the same results to
rounding, caches that outlive the process, and eager execution where compiling fails.

- **Where it pays (`auto`).** Compiling costs a one-time trace and code generation, then each
  forward and backward runs faster. `auto` compiles where the job is long enough to win the
  compile time back (`pays`); `on` always compiles, `off` never.
- **Paid once.** Inductor's caches live under hpdirs' cache folder (`compile_cache`), so a second
  process with the same model and shapes finds the generated code instead of making it again.
- **Shapes that change.** The batch dimension is left to dynamo's automatic dynamic shapes: the
  first new size recompiles once with a symbolic batch, every later size reuses it.
- **Never a traceback.** A machine without a working compiler, or a generator dynamo cannot
  trace, runs eagerly with one warning line.

Light at import (no torch): the settings that name a mode are checked by the command line's help.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from direction_finder.errors import HpdirsWarning
from direction_finder.validation import one_of

if TYPE_CHECKING:
    from torch import Tensor

    from direction_finder.generators.base import Generator

COMPILE_MODES = ("auto", "on", "off")
# `auto`: compile where the time a job saves at the measured speed-up exceeds the compile time
# (benchmarks/compiled.py measures both; docs/performance.md). A full-size biggan-deep-128
# learning step at batch 1 on a 2-core CPU: 1.41 s compiled, 1.80 s eager; a cold compile 66 s.
CPU_SPEEDUP = 1.25
CUDA_SPEEDUP = 1.25  # not measured here (no GPU): the CPU's, until a GPU measures its own
COMPILE_SECONDS = 70.0  # a cold compile of a learning step (forward and backward)
CPU_SECONDS_PER_IMAGE = 0.45  # eager learning-step seconds per generated image (1.80 s / 4 images)
CUDA_SECONDS_PER_IMAGE = 0.01
CPU_FORWARD_SECONDS = 0.2  # a forward's seconds per image without gradients (render, compare, explore)
MIN_PIXELS = 64 * 64  # smaller images (the synthetic and known-truth models, tiny tests) never pay


def compile_cache_folder() -> Path:
    """Where inductor's on-disk caches go: TORCHINDUCTOR_CACHE_DIR where the user set it, else
    `compiled` in hpdirs' cache folder."""
    from direction_finder.generators.weights import cache_root

    return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or cache_root() / "compiled")


def compile_cache() -> Path:
    """Point inductor's caches at compile_cache_folder() before the first compile; returns it."""
    folder = Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_folder())))
    os.environ.setdefault("TRITON_CACHE_DIR", str(folder / "triton"))
    return folder


def pays(mode: str, generator: Generator, images: int, seconds_per_image: float | None = None) -> bool:
    """Whether to compile a job of `images` generator images: `on`, `off`, or for `auto` whether
    the time saved at the measured speed-up exceeds the compile time."""
    one_of("compile", mode, COMPILE_MODES)
    if mode != "auto":
        return mode == "on"
    from direction_finder.generators.base import describe

    size = describe(generator).get("resolution")
    if not isinstance(size, int) or size * size < MIN_PIXELS:
        return False
    cuda = _device_type(generator) == "cuda"
    speedup = CUDA_SPEEDUP if cuda else CPU_SPEEDUP
    per_image = seconds_per_image or (CUDA_SECONDS_PER_IMAGE if cuda else CPU_SECONDS_PER_IMAGE)
    saved = images * per_image * (1 - 1 / speedup)
    return saved > COMPILE_SECONDS


def _device_type(generator: Generator) -> str:
    import torch

    return torch.device(generator.device).type


class CompiledGenerator:
    """The generator, its forward compiled: `__call__` runs the compiled graph; every other
    attribute (and so every capability) is the generator's own."""

    def __init__(self, inner: Generator, mode: str = "default") -> None:
        import torch

        self.inner, self.mode = inner, mode
        self.compiled = True  # False once compiling failed: eager from then on
        self._forward = torch.compile(inner.__call__, mode=mode)

    def __call__(self, z: Tensor) -> Tensor:
        if not self.compiled:
            return self.inner(z)
        try:
            return self._forward(z)
        except Exception as exc:
            if not type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
                raise
            self.compiled = False
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            warnings.warn(f"cannot compile the generator ({first[:200]}); running it eagerly", HpdirsWarning,
                          stacklevel=2)  # fmt: skip
            return self.inner(z)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def maybe_compiled(generator: Generator, mode: str, images: int, seconds_per_image: float | None = None) -> Generator:
    """The generator to run a job of `images` images with: compiled where `mode` says so (its
    caches in hpdirs' cache folder)."""
    if isinstance(generator, CompiledGenerator) or not pays(mode, generator, images, seconds_per_image):
        return generator
    compile_cache()
    return CompiledGenerator(generator, "reduce-overhead" if _device_type(generator) == "cuda" else "default")

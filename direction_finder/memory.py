"""Memory: what a block of work takes at its peak (PeakMeter), and how many images one generator
call may take so that they fit a budget (render's and compare's batches: `render_batch`). Below
learning, outputs and evaluation, which all size their calls by it.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import resource
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from direction_finder.validation import parse_memory

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

# the step's modelled memory times this must fit: allocator rounding and fragmentation. At 512 px
# a batch of 4 in passes of 1 took 1.2x the one-pass step it was modelled from (docs/commands/learn.md, Memory).
SAFETY = 1.5
CALIBRATION_SEED = 7  # the calibration's own draws: the run's random stream is not touched


def _status_mb(field: str) -> float | None:
    """A size from /proc/self/status (VmRSS: now, VmHWM: the peak), in MiB; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _release_freed() -> None:
    """Hand the C heap's freed pages back to the kernel (glibc's malloc_trim), so that the resident
    set counts only what is live: a step that reuses memory an earlier one freed then shows it."""
    with contextlib.suppress(AttributeError, OSError):  # not glibc: freed memory may then stay counted
        ctypes.CDLL(None).malloc_trim(0)


def in_use_mb(device: torch.device) -> float:
    """What is in use now: torch's allocations on CUDA, else the resident set (freed heap handed
    back first; 0 off Linux)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.memory_allocated(device) / 2**20
    _release_freed()
    return _status_mb("VmRSS") or 0.0


class PeakMeter:
    """The peak memory of what runs inside `with`, above what was in use when it began: the
    allocator's count on CUDA, the resident set on Linux (its peak restarted through
    /proc/self/clear_refs). `ok` is False where neither can be read."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.base_mb = self.peak_mb = 0.0
        self.ok = self.device.type == "cuda" or _status_mb("VmHWM") is not None

    def __enter__(self) -> PeakMeter:
        self.base_mb = in_use_mb(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:  # loading weights peaks above what stays: the peak is counted from here
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                self.ok, self.base_mb = False, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak_mb = _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    @property
    def used_mb(self) -> float:
        return max(self.peak_mb - self.base_mb, 0.0)


def inference_batch(generator: Generator, default: int, budget_mb: float | None) -> int:
    """Images per generator call under no_grad that fit budget_mb (None: on CUDA, the device's
    free memory; elsewhere `default`), at most `default`: one call of one and one of two images
    measure the per-image memory."""
    cuda = torch.device(generator.device).type == "cuda"
    if budget_mb is None and not cuda:
        return default
    if not PeakMeter(generator.device).ok:
        return default
    if budget_mb is None:
        free, _ = torch.cuda.mem_get_info(generator.device)
        budget_mb = in_use_mb(torch.device(generator.device)) + free / 2**20
    z = generator.sample_z(2, torch.Generator().manual_seed(CALIBRATION_SEED)).to(generator.device)
    used = []
    for count in (1, 2):
        meter = PeakMeter(generator.device)
        with torch.no_grad(), meter:
            generator(z[:count])
        used.append(meter.used_mb)
    per_image = max(used[1] - used[0], used[0] / 2, 1e-3)
    fixed = max(used[0] - per_image, 0.0)
    room = (budget_mb - meter.base_mb) / SAFETY - fixed
    return max(1, min(default, math.floor(room / per_image)))


CPU_RENDER_BATCH = 4  # images per generator call on a CPU: small calls are fastest there (docs/performance.md)


ACCELERATOR_RENDER_BATCH = 32


def default_render_batch(device: torch.device | str) -> int:
    """Images per generator call: small on a CPU, large on an accelerator."""
    return ACCELERATOR_RENDER_BATCH if torch.device(device).type in ("cuda", "mps") else CPU_RENDER_BATCH


def render_batch(generator: Generator, asked: int | None, max_memory: str | None = None) -> int:
    """Images per generator call: as asked; else the device's default, made smaller where its
    images would not fit max_memory (on CUDA, without one, the device's free memory): a 512 px
    BigGAN-deep's images take far more than a 128 px one's."""
    if asked is not None:
        return asked
    budget = parse_memory(max_memory) if max_memory is not None else None
    return inference_batch(generator, default_render_batch(generator.device), budget)

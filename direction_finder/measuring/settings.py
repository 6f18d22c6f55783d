"""What `hpdirs bench` is asked to measure (BenchSettings). Light on purpose (no torch at import):
the command line's help shows these defaults."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from direction_finder.config import LIMITS
from direction_finder.errors import UsageError
from direction_finder.validation import integer


@dataclass(frozen=True)
class BenchSettings:
    batch_sizes: Sequence[int] = (1, 4)
    steps: int = 3  # timed repetitions per measurement (after one warm-up)
    layer: str | None = "auto"  # "auto": the generator's mid-resolution layer; None: skip
    render: bool = True
    render_batch: int | None = None  # None: render's default for the device
    k: int = 2
    explore: bool = True  # the explorer's latency from a slider change to the new image
    memory: Sequence[int] = ()  # BigGAN-deep resolutions whose step memory to measure (random weights)
    compiled: bool = True  # also the learning step with the forward through torch.compile, alternated with eager

    def __post_init__(self) -> None:
        if not self.batch_sizes or any(
            isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in self.batch_sizes
        ):
            raise UsageError(f"`batch_sizes` {list(self.batch_sizes)}: every batch size must be >= 1")
        for b in self.batch_sizes:
            integer("batch_sizes", b, *LIMITS["batch_size"])
        integer("steps", self.steps, 1, 10_000)
        integer("k", self.k, *LIMITS["k"])
        for resolution in self.memory:
            if resolution not in (128, 256, 512):
                raise UsageError(f"`memory` {resolution!r}: BigGAN-deep comes in 128, 256 and 512 px")

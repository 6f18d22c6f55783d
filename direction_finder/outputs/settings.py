"""What render is asked to make (RenderSettings) and how its numbers are checked. Light on purpose
(no torch at import): the command line's help shows these defaults."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from direction_finder.artifacts.labels import parse_layer_range
from direction_finder.compiled import COMPILE_MODES
from direction_finder.config import FLOAT_LIMITS, LIMITS
from direction_finder.errors import UsageError
from direction_finder.outputs.formats import DEFAULT_FORMATS, parse_formats
from direction_finder.validation import check_fields, integer, one_of, parse_memory, positive, within

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

MAX_FRAMES = 1000  # a sweep of more distinct frames than this is no longer watched, only stored
MAX_SAMPLES = 64  # samples in one grid
# GIF stores each frame's duration in centiseconds (1..65535), so 100 fps is the fastest it
# shows; 0.01 fps (100 s a frame) is slower than anyone watches.
FPS_RANGE = (0.01, 100.0)
SIZE_RANGE = (8, 1024)  # pixels per image in the outputs
DEFAULT_DIRECTIONS = 8  # rendered when none are chosen: the first eight

Indices = str | Sequence[int]  # `0-7,12` or a list of indices


def parse_indices(text: str, limit: int, what: str = "directions") -> list[int]:
    """`0-7,12` -> [0, 1, ..., 7, 12]; every index must be in 0..limit-1."""
    indices: list[int] = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        start, dash, end = part.partition("-")
        try:
            lo, hi = (int(start), int(end)) if dash else (int(part), int(part))
        except ValueError:
            raise UsageError(f"`{what}` {text!r}: {part!r} is not an index or a range like 0-7") from None
        if lo > hi:
            raise UsageError(f"`{what}` {text!r}: range {part} runs backwards")
        if lo < 0 or hi >= limit:
            raise UsageError(f"`{what}` {text!r}: {part} is outside 0-{limit - 1}")
        indices.extend(i for i in range(lo, hi + 1) if i not in indices)
    if not indices:
        raise UsageError(f"`{what}` {text!r} selects nothing; use e.g. 0-7,12")
    return indices


def check_sweep(eta: float, frames: int) -> None:
    """A sweep's range and frame count: eta within what learning accepts, 2..MAX_FRAMES frames."""
    positive("eta", eta, FLOAT_LIMITS["eta"])
    integer("frames", frames, 2, MAX_FRAMES)


@dataclass
class RenderSettings:
    """What to render: which directions (and axes), how many samples, which etas and formats."""

    directions: Indices | None = None  # None: the first DEFAULT_DIRECTIONS
    axes: Indices = field(default_factory=list)  # axis-aligned z components to render as well
    samples: int = 6
    seed: int = 0
    eta: float = 5.0
    frames: int = 32
    fps: float = 12.0
    align: bool = True
    formats: str | Sequence[str] = field(default_factory=lambda: list(DEFAULT_FORMATS))  # rows of formats.FORMATS
    size: int | None = None  # pixels per image in the outputs; None = the generator's
    label: bool = True
    batch_size: int | None = None  # images per generator call; None: render_batch(generator, None, max_memory)
    latents: str | os.PathLike | None = None  # a .npy (n, z_dim): the user's samples instead of seeded ones
    max_memory: str | None = None  # "8GiB": the default batch_size is made to fit it
    layers: str | None = None  # `0-3`: only these latent layers see the edit (LayerwiseLatent); None: all
    compile: str = "auto"  # the forward through torch.compile: on, off, or auto (where the render is long)

    def __post_init__(self) -> None:
        if self.max_memory is not None:
            parse_memory(self.max_memory)
        check_fields(
            self,
            {
                "samples": (1, MAX_SAMPLES),
                "batch_size": LIMITS["batch_size"],
                "seed": LIMITS["seed"],
                "size": SIZE_RANGE,
            },
            optional=("batch_size", "size"),
        )
        check_sweep(self.eta, self.frames)
        within("fps", self.fps, *FPS_RANGE)
        self.formats = parse_formats(self.formats)
        one_of("compile", self.compile, COMPILE_MODES)

    def layer_range(self, generator: Generator) -> range | None:
        """The latent layers `layers` names, checked against the generator (None: all of them)."""
        from direction_finder.generators.base import LayerwiseLatent

        if self.layers is None:
            return None
        if not isinstance(generator, LayerwiseLatent):
            raise UsageError("`layers`: this generator has no layer-wise latents (BigGAN-deep has); leave it out")
        first, last = parse_layer_range(self.layers, generator.latent_layers)
        return range(first, last + 1)

    def rows(self, num_directions: int, z_dim: int) -> tuple[list[int], list[int]]:
        """The directions and axes to render, checked against the file's N and z_dim."""
        directions = (
            self.directions if self.directions is not None else f"0-{min(DEFAULT_DIRECTIONS, num_directions) - 1}"
        )
        return _indices(directions, num_directions, "directions"), _indices(self.axes, z_dim, "axes")


def _indices(chosen: Indices, limit: int, what: str) -> list[int]:
    if isinstance(chosen, str):
        return parse_indices(chosen, limit, what)
    return parse_indices(",".join(str(int(i)) for i in chosen), limit, what) if len(chosen) else []

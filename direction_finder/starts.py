"""The ways to start directions (`learn --init`) and to compare them (`compare --baselines`): one
table. `--init`, compare's baselines, the dry run's cost, the start's announcement and the help
text all read it, so a new way is one function and one row here (and its test).

Light on purpose: importing this module imports no torch (the command line's help reads the
table); each function imports what it computes with when it is called.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from direction_finder.errors import UsageError

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from direction_finder.generators.base import Generator

# Every start with a stream of its own draws from seed + its offset, never from the run's samples,
# the held-out set's (config.HELDOUT_SEED_OFFSET) or another start's.
WARMSTART_SEED_OFFSET = 2_000_003  # the curvature warm start
GANSPACE_SEED_OFFSET = 3_000_017  # the latents GANSpace's PCA reads
RANDOM_BASELINE_SEED_OFFSET = 7919  # compare's random directions: its own draws, not the held-out data's


@dataclass(frozen=True)
class Cost:
    """What a start computes before the first step: full images, and forwards to one layer only."""

    images: int = 0
    layer_forwards: int = 0
    layer: str = ""  # the layer those forwards stop at

    def text(self) -> str:
        """`20,480 images`, `20,480 forwards to gen_z`, or `free` (a closed form)."""
        parts = [f"{self.images:,} images"] if self.images else []
        parts += [f"{self.layer_forwards:,} forwards to {self.layer}"] if self.layer_forwards else []
        return " + ".join(parts) or "free"


@dataclass(frozen=True)
class Start:
    """One way to start or compare directions."""

    name: str
    help: str  # one line for --help: what it is, and what it costs where it costs images
    # (generator, n, draws) -> (n, z_dim) float32 on the CPU; the rows are orthonormal when
    # `orthonormal`, else learning orthonormalises them in its forward and compare before measuring
    make: Callable[[Generator, int, torch.Generator], Tensor]
    seed_offset: int | None = None  # draws from seed + this; None: from the caller's own stream
    needs: tuple[str, ...] = ()  # capabilities of generators.base, any one of which suffices
    lacks: str = ""  # what a generator without them lacks, in the error's words
    cost: Callable[[Generator], Cost] = lambda generator: Cost()
    # what is said before it runs: (generator, its cost) -> one line; None: nothing (it takes no time)
    announce: Callable[[Generator, Cost], str] | None = None
    orthonormal: bool = True


def _kaiming(generator: Generator, n: int, draws: torch.Generator) -> Tensor:
    """Kaiming-normal A (std sqrt(2 / z_dim)), as the reference implementation starts."""
    import torch

    A = torch.empty(n, int(generator.z_dim))  # (n, z_dim)
    torch.nn.init.kaiming_normal_(A, generator=draws)
    return A


def _axes(generator: Generator, n: int, draws: torch.Generator) -> Tensor:
    import torch

    return torch.eye(n, int(generator.z_dim))  # (n, z_dim): the first n axis-aligned components


def _sefa(variant: str) -> Callable[[Generator, int, torch.Generator], Tensor]:
    def make(generator: Generator, n: int, draws: torch.Generator) -> Tensor:
        from direction_finder.generators.base import sefa_of

        found = sefa_of(generator, n, variant)
        assert found is not None  # checked by `supported` before
        return found.float().cpu()

    return make


def _curvature(generator: Generator, n: int, draws: torch.Generator) -> Tensor:
    from direction_finder.method.warmstart import curvature_directions

    return curvature_directions(generator, n, seed=draws.initial_seed()).cpu()


def _curvature_cost(generator: Generator) -> Cost:
    from direction_finder.method.warmstart import SAMPLES

    return Cost(images=2 * SAMPLES * int(generator.z_dim))


def _ganspace(generator: Generator, n: int, draws: torch.Generator) -> Tensor:
    from direction_finder.generators.ganspace import ganspace_directions

    return ganspace_directions(generator, n, seed=draws.initial_seed()).cpu()


def _ganspace_cost(generator: Generator) -> Cost:
    from direction_finder.generators.ganspace import IMAGES, default_samples, pca_features
    from direction_finder.method.pca import passes

    layer, _ = pca_features(generator)
    count = passes() * default_samples(generator.device)
    return Cost(images=count) if layer == IMAGES else Cost(layer_forwards=count, layer=layer)


FACTORISABLE = ("Factorisable", "ZLayered")
NO_LAYER = "no first linear layer to factorise"
STARTS: dict[str, Start] = {
    start.name: start
    for start in (
        Start("random", "Kaiming-normal, as the reference", _kaiming, orthonormal=False),
        Start("axes", "the axis-aligned z components", _axes),
        Start(
            "sefa",
            "SeFa's closed form of every layer z enters (BigGAN-deep: its first linear layer and conditional "
            "BatchNorms)",
            _sefa("sefa"),
            needs=FACTORISABLE,
            lacks=NO_LAYER,
        ),
        Start("sefa-first", "SeFa of the first layer only", _sefa("sefa-first"), needs=FACTORISABLE, lacks=NO_LAYER),
        Start(
            "curvature",
            "the rotation that diagonalises the tanh curvature of 8 samples' Jacobians: 16*z_dim images",
            _curvature,
            seed_offset=WARMSTART_SEED_OFFSET,
            cost=_curvature_cost,
            announce=lambda g, cost: (
                f"curvature warm start: Jacobians of {cost.images // (2 * int(g.z_dim))} "
                f"samples ({cost.images} images) …"
            ),
        ),
        Start(
            "ganspace",
            "GANSpace's PCA of the first layer's activations, mapped back to z",
            _ganspace,
            seed_offset=GANSPACE_SEED_OFFSET,
            cost=_ganspace_cost,
            announce=lambda g, cost: f"GANSpace start: PCA over {cost.text()} …",
        ),
    )
}
# what compare measures when no baseline is named: the free ones (the curvature warm start and
# GANSpace cost images, so they are asked for by name)
DEFAULT_BASELINES = ("axes", "random", "sefa")


def start_named(name: str, setting: str = "init") -> Start:
    """The table's row for `name`; an unknown name is an error naming the known ones."""
    if name not in STARTS:
        raise UsageError(f"`{setting}` {name!r} is not a way to start; choose from {', '.join(STARTS)}")
    return STARTS[name]


def supported(start: Start, generator: Generator) -> bool:
    """Whether the generator has a capability the start needs (any of them)."""
    if not start.needs:
        return True
    from direction_finder.generators.base import has_capability

    return any(has_capability(generator, need) for need in start.needs)


def unsupported(start: Start, setting: str = "init") -> str:
    """The one line that says a generator cannot take this start."""
    return f"`{setting}` {start.name}: this generator has {start.lacks}; use `{setting}` random"


def parse_starts(text: str | Sequence[str], setting: str = "baselines") -> list[str]:
    """`axes,random,sefa` (or a list of names) -> the names, each a row of the table."""
    names = [b.strip().lower() for b in (text.split(",") if isinstance(text, str) else text) if b.strip()]
    unknown = [b for b in names if b not in STARTS]
    if unknown:
        shown = text if isinstance(text, str) else ",".join(text)
        raise UsageError(f"`{setting}` {shown!r}: unknown {', '.join(unknown)}; choose from {', '.join(STARTS)}")
    return names


def starting_directions(
    start: Start, generator: Generator, n: int, seed: int, stream: torch.Generator | None = None
) -> Tensor:
    """The start's n directions (n, z_dim) on the CPU: from its own stream (seed + its offset), or
    from `stream` (the caller's: a run's sample stream, compare's baseline stream)."""
    import torch

    if start.seed_offset is not None or stream is None:
        stream = torch.Generator().manual_seed(seed + (start.seed_offset or 0))
    return start.make(generator, n, stream)

"""The settings of a learning run: LearnConfig, the named recipes, and the ranges of every field.

This is the one place the defaults live: the command line shows them, and a resumed run compares
its stored config with these fields. Importing it imports no torch (the command line's help
reads it): what checks a config against a generator imports the generator's side when called.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from direction_finder.compiled import COMPILE_MODES, pays
from direction_finder.errors import UsageError
from direction_finder.starts import STARTS, start_named, supported, unsupported
from direction_finder.validation import check_fields, one_of, parse_memory

if TYPE_CHECKING:
    import torch

    from direction_finder.generators.base import Generator

# what the optimiser and the reduction may be (method.manifold.make_optimizer and
# method.penalty.hessian_penalty take these names)
OPTIMIZERS = ("adam", "riemannian")
REDUCTIONS = ("mean", "max")
# Named presets of how A starts, how far each step moves it, and (sefa) the optimiser; every other
# field is shared.
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"init": "random", "lr": 0.01},  # Peebles et al.: Kaiming-normal A, Adam lr 0.01
    # the warm start of direction_finder.method.warmstart, refined with steps that keep its structure
    # (measured on a real DCGAN within 10 CPU-minutes: docs/quality.md)
    "curvature": {"init": "curvature", "lr": 0.001},
    # SeFa's closed form (free: no images), refined on the manifold of orthonormal Q; what the
    # demo runs, where the curvature warm start would take most of the budget (docs/quality.md)
    "sefa": {"init": "sefa", "lr": 0.001, "optimizer": "riemannian"},
}
DEFAULT_RECIPE = "paper"
HELDOUT_SEED_OFFSET = 1_000_003  # the held-out set never shares draws with training (nor do the starts: starts.py)
# Fields a resumed run may change: they do not alter the optimisation path.
# changes that leave the optimisation path as it is (activation checkpointing: the same numbers)
RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every", "checkpoint_activations"})

# Ranges of the settings. The upper ends are far beyond any useful run, and exist so that a typo
# (a batch size of 10**15) is one clear line instead of a failed allocation or an overflow.
LIMITS: dict[str, tuple[int, int]] = {
    "steps": (0, 10**9),  # 0: the start alone, written as a directions file (a closed form without learning)
    "batch_size": (1, 65_536),
    "checkpoint_every": (1, 10**9),
    "eval_every": (0, 10**9),
    "eval_samples": (1, 1_000_000),
    "k": (2, 1024),  # a variance needs two samples
    # torch's CPU generator (mt19937) keeps only a seed's low 32 bits: 2**32 would draw as 0 does
    "seed": (0, 2**32 - 1),
    "num_directions": (1, 1_000_000),  # and at most z_dim, checked against the generator
    "chunk_size": (1, 2048),
    "micro_batch": (1, 65_536),
}
FLOAT_LIMITS: dict[str, float] = {
    "lr": 10.0,  # A's rows have norm ~1: a step of 10 already throws them anywhere
    "eta": 1000.0,  # latents are ~N(0, 1): BigGAN sees nothing but saturation beyond a few hundred
    "epsilon": 100.0,
}
# Perturbed images per generator call on a CPU in pixel space: the fastest layout measured by
# `hpdirs bench` on a 2-core CPU for biggan-deep-128 (docs/performance.md).
CPU_ROWS_PER_CALL = 2


@dataclass(frozen=True)
class LearnConfig:
    """Everything that determines a learning run; serialised into every artifact."""

    num_directions: int | None = None  # N; None = the generator's z_dim
    steps: int = 1000
    batch_size: int = 4
    lr: float = RECIPES[DEFAULT_RECIPE]["lr"]  # Adam, default betas
    eta: float = 5.0  # base points w0 = eta_b e_i with eta_b ~ U[-eta, eta]
    epsilon: float = 0.1
    k: int = 2
    reduction: str = "mean"
    # a row of starts.STARTS: "random" (Kaiming-normal A, as the reference), "axes", SeFa's closed
    # forms, the curvature warm start, GANSpace's PCA; a start's cost counts as learning time
    init: str = RECIPES[DEFAULT_RECIPE]["init"]
    seed: int = 0
    checkpoint_every: int = 50
    eval_every: int = 50  # held-out penalty every this many steps (0: never)
    eval_samples: int = 16
    layer: str | None = None  # None: pixel space; else a named intermediate layer of G
    chunk_size: int | None = None  # perturbed batches per generator call; None: the device default
    # keep only each generator block's input for the backward, recompute the rest: the same loss
    # and gradient for less memory and about one more forward
    checkpoint_activations: bool = False
    # samples whose graph is kept at once: the batch's gradient is summed over passes of this
    # many samples (the mean penalty is a mean of per-sample means); None: the whole batch
    micro_batch: int | None = None
    # a memory budget ("8GiB"): chunk_size, micro_batch and checkpointing are chosen to fit it
    max_memory: str | None = None
    # "adam": Adam on A, as the paper; "riemannian": Adam on the manifold of orthonormal Q
    optimizer: str = "adam"
    # the generator's forward through torch.compile: "on", "off", or "auto" (where the run is long
    # enough to win the compile time back); a resolved config records "on" or "off"
    compile: str = "auto"

    def __post_init__(self) -> None:
        check_fields(self, LIMITS, FLOAT_LIMITS, optional=("num_directions", "chunk_size", "micro_batch"))
        one_of("reduction", self.reduction, REDUCTIONS)
        one_of("init", self.init, STARTS)
        one_of("optimizer", self.optimizer, OPTIMIZERS)
        one_of("compile", self.compile, COMPILE_MODES)
        if not isinstance(self.checkpoint_activations, bool):
            raise UsageError(f"`checkpoint_activations` must be true or false, got {self.checkpoint_activations!r}")
        if self.micro_batch is not None and self.micro_batch < self.batch_size and self.reduction == "max":
            raise UsageError("`micro_batch` needs `reduction` mean (a maximum does not split into passes)")
        if self.max_memory is not None:
            parse_memory(self.max_memory)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_recipe(cls, recipe: str, **fields: Any) -> LearnConfig:
        """The recipe's init and lr (see RECIPES), with any field given here taking precedence."""
        return cls(**{**recipe_fields(recipe), **fields})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearnConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        # a run recorded before `compile` existed ran eagerly: resumed, it still does
        return cls(**{"compile": "off", **{k: v for k, v in data.items() if k in known}})

    def resolved(self, generator: Generator) -> LearnConfig:
        """num_directions and chunk_size filled in for this generator and device."""
        z_dim = int(generator.z_dim)
        n = self.num_directions if self.num_directions is not None else z_dim
        if n > z_dim:
            raise UsageError(f"`num_directions` {n} is more than z_dim {z_dim}; use at most {z_dim}")
        if self.max_memory is not None and (self.chunk_size is not None or self.micro_batch is not None):
            raise UsageError("`max_memory` chooses `chunk_size` and `micro_batch` itself; give one or the other")
        chunk = (
            self.chunk_size
            if self.chunk_size is not None or self.max_memory is not None  # None: chosen for the budget
            else default_chunk_size(generator.device, self.k, self.batch_size, self.layer)
        )
        chunk = min(chunk, 2 * self.k) if chunk is not None else None
        if self.micro_batch is not None and self.micro_batch > self.batch_size:
            raise UsageError(
                f"`micro_batch` {self.micro_batch} is more than `batch_size` {self.batch_size}: it is the part of a "
                f"batch that one pass takes; give at most {self.batch_size}"
            )
        micro = self.micro_batch
        check_layer(generator, self.layer)
        from direction_finder.generators.base import Checkpointable

        if self.checkpoint_activations and not isinstance(generator, Checkpointable):
            raise UsageError("`checkpoint_activations`: this generator has no blocks to checkpoint; learn without it")
        start = start_named(self.init)
        if not supported(start, generator):
            raise UsageError(unsupported(start))
        # pixel space only: a layer's partial forward is not compiled
        images = self.steps * self.batch_size * 2 * self.k
        compiled = self.layer is None and pays(self.compile, generator, images)
        return dataclasses.replace(
            self, num_directions=n, chunk_size=chunk, micro_batch=micro, compile="on" if compiled else "off"
        )

    def differences(self, other: LearnConfig) -> list[str]:
        """Fields that differ from `other` and would change the optimisation path."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k] and k not in RESUMABLE_CHANGES]


def recipe_fields(recipe: str) -> dict[str, Any]:
    """The LearnConfig fields a named recipe sets."""
    if recipe not in RECIPES:
        raise UsageError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    return dict(RECIPES[recipe])


def default(field: str) -> Any:
    """The value a new run uses for `field` when it is not given (the default recipe's)."""
    values = {f.name: f.default for f in dataclasses.fields(LearnConfig)} | recipe_fields(DEFAULT_RECIPE)
    return values[field]  # read, not constructed: a field's default is what a new run takes


def check_layer(generator: Generator, layer: str | None) -> None:
    """A layer name the generator's `features` knows, or None (pixel space)."""
    from direction_finder.generators.base import Layered

    if layer is None:
        return
    if not isinstance(generator, Layered):
        raise UsageError(
            f"`layer` {layer!r}: this generator exposes no intermediate layers; "
            "the penalty can only be taken on its pixels (no `layer`)"
        )
    names = list(generator.layers())
    if layer not in names:
        raise UsageError(f"unknown layer {layer!r}; choose from {', '.join(names)}")


def default_chunk_size(device: torch.device | str, k: int, batch_size: int = 1, layer: str | None = None) -> int:
    """How many of the 2k perturbed batches go into one generator call, by device and batch.

    On a CPU in pixel space, calls of about CPU_ROWS_PER_CALL images are fastest; with a layer
    the partial forward's activations are small and one call of all 2k is fastest; accelerators
    gain from batching all 2k (`hpdirs bench` measures the layouts; docs/performance.md).
    """
    import torch

    if torch.device(device).type in ("cuda", "mps") or layer is not None:
        return 2 * k
    return max(1, min(2 * k, CPU_ROWS_PER_CALL // batch_size))

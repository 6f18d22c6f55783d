"""What compare measures with and what it finds: its settings, a direction set, one set's report,
and the results of a comparison. A module of its own, below compare, its probes and its report
writers, so that each of them can name these types without importing the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from direction_finder.config import FLOAT_LIMITS, LIMITS
from direction_finder.errors import UsageError
from direction_finder.evaluation.budget import DEFAULT_BUDGET, Budget, parse_budget
from direction_finder.evaluation.stats import Difference, Statistic
from direction_finder.validation import check_fields, parse_memory

PRECISE_SAMPLES = 8  # `precise` without `samples`


@dataclass(frozen=True)
class CompareSettings:
    samples: int | None = None  # every metric on these samples (precise); None: chosen by the budget
    seed: int = 0
    top: int = 8  # N': directions in the diagonal-dominance Hessians
    eta: float = 5.0
    epsilon: float = 0.1
    k: int = 2
    sweep_steps: int = 7  # coefficient values in the activeness sweep (precise)
    batch_size: int | None = None  # images per generator call; None: render_batch(generator, None, max_memory)
    layer: str | None = None
    latents: str | None = None  # a .npy (n, z_dim): the user's held-out samples (precise, samples = n)
    budget: str | None = None  # `10m`, `90s` or an image count; None: DEFAULT_BUDGET (unless precise)
    precise: bool = False
    max_memory: str | None = None  # "8GiB": the default batch_size is made to fit it

    def __post_init__(self) -> None:
        if self.max_memory is not None:
            parse_memory(self.max_memory)
        check_fields(
            self,
            {
                "samples": (1, LIMITS["eval_samples"][1]),
                "top": (1, LIMITS["num_directions"][1]),
                "batch_size": LIMITS["batch_size"],
                "k": LIMITS["k"],
                "sweep_steps": (2, 1000),
                "seed": LIMITS["seed"],
            },
            {"eta": FLOAT_LIMITS["eta"], "epsilon": FLOAT_LIMITS["epsilon"]},
            optional=("samples", "batch_size"),
        )
        if self.budget is not None:
            parse_budget(self.budget)
            if self.is_precise:
                raise UsageError(
                    "`budget` and `samples` (or `precise`, `latents`) exclude each other: "
                    "a budget chooses the samples; give one or the other"
                )

    @property
    def is_precise(self) -> bool:
        return self.precise or self.samples is not None or self.latents is not None

    @property
    def precise_samples(self) -> int:
        return self.samples if self.samples is not None else PRECISE_SAMPLES

    @property
    def parsed_budget(self) -> Budget:
        return parse_budget(self.budget if self.budget is not None else DEFAULT_BUDGET)


@dataclass
class Results:
    """What compare_sets() measured: a report per set, notes, paired differences, how it measured."""

    reports: list[SetReport]
    notes: list[str]
    differences: list[Difference]
    measured: dict[str, Any]  # mode, samples per metric, images, seconds
    spectrum: dict[str, Any] | None = None  # SeFa's eigenvalues and their near-degenerate groups


METRICS = ("heldout_penalty", "D_percent", "D_R", "top_activeness", "mean_activeness")


@dataclass
class DirectionSet:
    name: str
    matrix: Tensor  # (N, z_dim), orthonormal rows


@dataclass(kw_only=True)
class SetReport:
    name: str
    metrics: dict[str, Statistic]  # METRICS, each with its per-sample influence
    activeness: list[float]  # per direction: mean over the samples it was measured on
    top: list[int]  # indices of the most active directions, most active first
    match_axis: list[int]
    match_cosine: list[float]
    per_direction_penalty: list[float] | None = None  # precise only
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def heldout_penalty(self) -> float:
        return self.metrics["heldout_penalty"].value

    def summary(self) -> dict[str, Any]:
        """Every metric's value and 95% interval, flat (a CSV row)."""
        row: dict[str, Any] = {"set": self.name}
        for name in METRICS:
            row[name] = self.metrics[name].value
        row["mean_match_cosine"] = float(np.mean(self.match_cosine))
        for name in METRICS:
            row[f"{name}_ci95_low"], row[f"{name}_ci95_high"] = self.metrics[name].interval()
        return {**row, **self.extra}

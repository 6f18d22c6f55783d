"""What compare measures with and what it finds: its settings (from settings.py), a direction set,
one set's report, and the results of a comparison. A module of its own, below compare, its probes and its report
writers, so that each of them can name these types without importing the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import Tensor

from direction_finder.evaluation.stats import Difference, Statistic


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

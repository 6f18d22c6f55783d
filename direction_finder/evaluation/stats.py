"""How precise compare's numbers are: intervals over held-out samples, and paired differences.

The held-out samples are the independent units: each brings its own latent, base point,
Rademacher vectors and (under a budget) its own random directions, and every metric is a mean
or a ratio of means of per-sample values. A statistic is kept as its value plus its influence
on each sample (the linearisation, or delta method): for a mean, x_s - mean(x); for a ratio of
means X/Y, (x_s - R y_s) / mean(y). The standard error is sqrt(sum u_s^2 / (S (S - 1))) (for a
mean, exactly the sample standard deviation over sqrt(S)) and the 95% interval uses Student's t
with S - 1 degrees of freedom.

Every set is measured on the same samples (common random numbers), so the difference of two
sets' statistics has influence u_a - u_b: a paired comparison, whose interval is far narrower
than two separate intervals when the samples move both sets alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

LEVEL = 0.95


@dataclass(frozen=True)
class Statistic:
    """A value measured on S paired samples, with each sample's influence on it."""

    value: float
    influence: np.ndarray  # (S,) float64, sums to zero

    @classmethod
    def mean(cls, values: Any) -> Statistic:
        """The mean of per-sample values (S,)."""
        x = np.asarray(values, dtype=np.float64)
        return cls(float(x.mean()), x - x.mean())

    @classmethod
    def ratio(cls, numerator: Any, denominator: Any) -> Statistic:
        """mean(numerator) / mean(denominator) of per-sample values (S,) each."""
        x, y = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
        if y.mean() <= 0:
            return cls(math.inf, np.zeros_like(x))
        r = float(x.mean() / y.mean())
        return cls(r, (x - r * y) / y.mean())

    @property
    def samples(self) -> int:
        return int(self.influence.shape[0])

    @property
    def se(self) -> float:
        """Standard error; nan with fewer than two samples (nothing to tell the spread from)."""
        s = self.samples
        if s < 2 or not math.isfinite(self.value):
            return math.nan
        return float(math.sqrt(float(np.sum(self.influence**2)) / (s * (s - 1))))

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        """The two-sided t interval at `level` (nan, nan where the error is unknown)."""
        se = self.se
        if not math.isfinite(se):
            return math.nan, math.nan
        half = float(scipy_stats.t.ppf(0.5 + level / 2, self.samples - 1)) * se
        return self.value - half, self.value + half

    def p_value(self) -> float:
        """Two-sided p of the t test that the expectation is zero (for a paired difference)."""
        se = self.se
        if not math.isfinite(se):
            return math.nan
        if se == 0:
            return 1.0 if self.value == 0 else 0.0
        return float(2 * scipy_stats.t.sf(abs(self.value) / se, self.samples - 1))

    def __sub__(self, other: Statistic) -> Statistic:
        if other.samples != self.samples:
            raise ValueError(f"a paired difference needs the same samples, got {self.samples} and {other.samples}")
        return Statistic(self.value - other.value, self.influence - other.influence)

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval()
        return {"value": self.value, "se": self.se, "ci95": [low, high], "samples": self.samples}


# The quality metrics a paired comparison tests, and which way is better.
BETTER = {"heldout_penalty": "lower", "D_percent": "higher", "D_R": "higher"}


@dataclass(frozen=True)
class Difference:
    """reference - other for one metric, with its paired interval and a verdict."""

    reference: str
    other: str
    metric: str
    statistic: Statistic

    @property
    def significant(self) -> bool:
        low, high = self.statistic.interval()
        return bool(low > 0 or high < 0)

    @property
    def verdict(self) -> str:
        """'better', 'worse' (the reference against the other set) or 'not significant'."""
        if not self.significant:
            return "not significant"
        lower_is_better = BETTER[self.metric] == "lower"
        return "better" if (self.statistic.value < 0) == lower_is_better else "worse"

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "other": self.other,
            "metric": self.metric,
            "difference": self.statistic.value,
            "se": self.statistic.se,
            "ci95": list(self.statistic.interval()),
            "p": self.statistic.p_value(),
            "samples": self.statistic.samples,
            "significant": self.significant,
            "verdict": self.verdict,
        }

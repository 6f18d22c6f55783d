"""compare's budget: how many held-out samples each metric gets for a given number of images.

Images are the unit of cost: every generator call costs about the same per image, so a budget in
time becomes a budget in images through the rate measured on the first images of the run.

Under a budget, per sample and per set:
- held-out penalty: one random direction per sample (the same draw for every set), 2k images
  each: an unbiased estimate of the objective with i uniform. For a given number of images, one
  direction on each of many samples is more precise than several directions on fewer samples,
  since every sample brings an independent latent, base point and vectors;
- D% and D_R: finite-difference Hessians of the top directions, 2 N'(N'+1) images per sample;
- which directions are the top ones: every set's directions are ranked by their local
  activeness |J q|^2 (mean over pixels) at the first samples of the Hessians, where J is the
  output Jacobian w.r.t. z. One Jacobian (2 z_dim images by central differences) serves every
  set, where a sweep of each direction would cost sets x N x sweep-steps images.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from direction_finder.errors import UsageError
from direction_finder.validation import is_duration, parse_duration

DEFAULT_BUDGET = "10m"
HESSIAN_SHARE = 0.75  # of the images left after the side-by-side GIFs and the Jacobians
HESSIAN_FLOOR, PENALTY_FLOOR = 4, 16  # samples
JACOBIAN_SHARE = 0.1
# enough for intervals far narrower than any difference worth telling: a fast generator stops here
# instead of filling a long budget
MAX_PENALTY_SAMPLES = 10_000
MAX_HESSIAN_SAMPLES = 64


@dataclass(frozen=True)
class Budget:
    """Either images or seconds."""

    images: int | None = None
    seconds: float | None = None

    def __str__(self) -> str:
        if self.images is not None:
            return f"{self.images:,} images"
        assert self.seconds is not None
        return f"{self.seconds / 60:g} min" if self.seconds >= 60 else f"{self.seconds:g} s"


def parse_budget(text: str | int) -> Budget:
    """`10m`, `90s`, `1.5h` (time) or `3300` (images)."""
    raw = str(text).strip().lower()
    hint = "give a time (10m, 90s, 1h) or a number of images (3300)"
    if re.fullmatch(r"\d+", raw):
        images = int(raw)
        if not 1 <= images <= 10**9:
            raise UsageError(f"`budget` {text!r} must be from 1 to 1,000,000,000 images")
        return Budget(images=images)
    if not is_duration(raw):
        raise UsageError(f"`budget` {text!r} is not a budget; {hint}")
    return Budget(seconds=parse_duration("budget", raw, days=30))


@dataclass(frozen=True)
class Plan:
    """What a budget buys: samples per metric and the images each part costs."""

    penalty_samples: int  # each with one random direction of each set
    hessian_samples: int
    jacobian_samples: int  # the first ones of the Hessian samples
    images: dict[str, int]  # part -> planned images: penalty, hessians, jacobians, gifs

    @property
    def total(self) -> int:
        return sum(self.images.values())


def costs(sets: int, n: int, z_dim: int, k: int, top: int) -> dict[str, int]:
    """Images per unit: per (sample, direction) of the penalty; per Hessian sample (2 N'^2 for each
    set, and the image at the sample itself, shared); per Jacobian (z_dim forward differences from
    that shared image)."""
    m = min(top, n)
    return {"penalty": sets * 2 * k, "hessians": sets * 2 * m * m + 1, "jacobians": z_dim}


def minimum(*, sets: int, n: int, z_dim: int, k: int, top: int, gif_images: int = 0) -> int:
    """The fewest images a plan can have: 2 samples per metric, one Jacobian, and the GIFs."""
    unit = costs(sets, n, z_dim, k, top)
    return gif_images + 2 * unit["hessians"] + unit["jacobians"] + 2 * unit["penalty"]


def plan(images: int, *, sets: int, n: int, z_dim: int, k: int, top: int, gif_images: int = 0) -> Plan:
    """Split `images` between the metrics (see the module's docstring for what each part buys).

    At least 2 samples per metric (an interval needs two) and one Jacobian; about 75% of the rest
    goes to the Hessians, whose samples are few and costly, the remainder to the penalty. Up to
    HESSIAN_FLOOR Hessian samples are taken even past that share while the penalty keeps
    PENALTY_FLOOR samples: with 2 or 3 samples, t's 12.7 or 4.3 makes D%'s interval too wide to
    tell anything. Past MAX_HESSIAN_SAMPLES and MAX_PENALTY_SAMPLES the plan stops short of the
    budget.
    """
    unit = costs(sets, n, z_dim, k, top)
    smallest = minimum(sets=sets, n=n, z_dim=z_dim, k=k, top=top, gif_images=gif_images)
    if images < smallest:
        raise UsageError(
            f"`budget` of {images:,} images is too small for {sets} sets of {n} directions (top {min(top, n)}): "
            f"at least {smallest:,} are needed; raise it, lower `top`, or compare fewer sets"
        )
    left = images - gif_images

    def for_penalty(hessians: int, jacobians: int) -> int:
        return left - jacobians * unit["jacobians"] - hessians * unit["hessians"]

    jacobians = max(1, math.floor(JACOBIAN_SHARE * left / unit["jacobians"]))
    hessians = max(2, math.floor(HESSIAN_SHARE * (left - jacobians * unit["jacobians"]) / unit["hessians"]))
    hessians = min(hessians, MAX_HESSIAN_SAMPLES)
    jacobians = min(jacobians, hessians)
    while hessians < HESSIAN_FLOOR and for_penalty(hessians + 1, jacobians) >= PENALTY_FLOOR * unit["penalty"]:
        hessians += 1
    while hessians > 2 and for_penalty(hessians, jacobians) < 2 * unit["penalty"]:
        hessians -= 1
        jacobians = min(jacobians, hessians)
    while jacobians > 1 and for_penalty(hessians, jacobians) < 2 * unit["penalty"]:
        jacobians -= 1
    evaluations = for_penalty(hessians, jacobians) // unit["penalty"]
    samples = min(evaluations, MAX_PENALTY_SAMPLES)
    return Plan(
        penalty_samples=samples,
        hessian_samples=hessians,
        jacobian_samples=jacobians,
        images={
            "penalty": samples * unit["penalty"],
            "hessians": hessians * unit["hessians"],
            "jacobians": jacobians * unit["jacobians"],
            "gifs": gif_images,
        },
    )

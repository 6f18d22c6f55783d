"""The held-out data compare measures every set on, and the measuring of one set.

Precise: every metric on the same S samples; the penalty of every direction at every sample
(vectors independent per direction); activeness from an aligned sweep of every direction; the
top directions are the most active on average.

Under a budget (direction_finder.evaluation.budget): the penalty of `d` random directions per sample on
many samples; Hessians on a few other samples, each latent drawn from its own stream (so the
first does not depend on the plan); the top directions ranked by local activeness from the
Jacobians at the first Hessian samples, shared by every set.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from direction_finder.artifacts.latents import read_latents
from direction_finder.errors import HpdirsWarning
from direction_finder.evaluation import measures
from direction_finder.evaluation.budget import Budget, Plan, minimum, plan
from direction_finder.evaluation.measures import matching
from direction_finder.evaluation.records import DirectionSet, SetReport
from direction_finder.evaluation.settings import CompareSettings
from direction_finder.evaluation.stats import Statistic
from direction_finder.method.penalty import rademacher
from direction_finder.validation import format_duration

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

OnImages = Callable[[int, int], None]  # (done, total) images


PENALTY_STREAM, HESSIAN_STREAM = 1, 2  # the parts of a seed's streams: penalty samples; Hessian latents


def _stream(seed: int, part: int, index: int = 0) -> torch.Generator:
    """An independent random stream per (seed, part, index): a sample's draws do not depend on how
    many other samples the plan asks for."""
    state = np.random.SeedSequence([seed, part, index]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


@dataclass(frozen=True)
class Probe:
    """Precise mode's held-out data: samples, base-point magnitudes and Rademacher vectors."""

    z: Tensor  # (S, z_dim)
    eta: Tensor  # (S,)
    vectors: Tensor  # (N, k, S, N): independent for every direction, so the N per-direction
    # estimates average out the Rademacher noise instead of sharing it

    @classmethod
    def draw(cls, generator: Generator, n: int, settings: CompareSettings) -> Probe:
        rng = torch.Generator().manual_seed(settings.seed)
        samples = settings.precise_samples
        if settings.latents is not None:  # the user's samples; base points and vectors still seeded
            z = read_latents(settings.latents, int(generator.z_dim), samples).to(generator.device)
        else:
            z = generator.sample_z(samples, rng)
        eta = (torch.rand(samples, generator=rng) * 2 - 1) * settings.eta
        vectors = rademacher((n, settings.k, samples, n), generator=rng)
        return cls(z, eta, vectors)


@dataclass(frozen=True)
class BudgetProbe:
    """Budget mode's held-out data. Penalty sample s: latent z[s], base point eta[s], direction
    floor(position[s] * N) of each set (N its size), vectors[:, s, :N]."""

    z: Tensor  # (S, z_dim)
    eta: Tensor  # (S,)
    position: Tensor  # (S,) uniform in [0, 1)
    vectors: Tensor  # (k, S, N_max)

    @classmethod
    def draw(cls, generator: Generator, n_max: int, samples: int, settings: CompareSettings) -> BudgetProbe:
        rng = _stream(settings.seed, PENALTY_STREAM)
        z = generator.sample_z(samples, rng)
        eta = (torch.rand(samples, generator=rng) * 2 - 1) * settings.eta
        position = torch.rand(samples, generator=rng, dtype=torch.float64)
        vectors = rademacher((settings.k, samples, n_max), generator=rng)
        return cls(z, eta, position, vectors)

    def indices(self, n: int) -> Tensor:
        return (self.position * n).long().clamp_(max=n - 1)  # (S,)


def hessian_latent(generator: Generator, settings: CompareSettings, index: int) -> Tensor:
    """Budget mode: the latent (1, z_dim) of Hessian sample `index`."""
    return generator.sample_z(1, _stream(settings.seed, HESSIAN_STREAM, index))


def _dominance(
    generator: Generator,
    Q: Tensor,
    top: list[int],
    points: HessianPoints,
    settings: CompareSettings,
    progress: measures.Progress,
) -> dict[str, Statistic]:
    parts = []
    for s in range(points.z.shape[0]):  # one sample's Hessians at a time: (1, *output, N', N') float64
        h = measures.hessians(
            generator,
            Q,
            top,
            points.z[s : s + 1],
            settings.epsilon,
            centre=points.centre[s : s + 1],
            batch_size=int(settings.batch_size or 1),
            layer=settings.layer,
            progress=progress,
        )
        parts.append(measures.dominance_per_sample(h))
    share, diagonal, off = (torch.cat(column) for column in zip(*parts, strict=True))
    return {"D_percent": Statistic.mean(share), "D_R": Statistic.ratio(diagonal, off)}


def _activeness_metrics(per_sample: Tensor, top: int) -> tuple[dict[str, Statistic], list[float], list[int]]:
    """From (S, N) per-sample activeness: the metrics, the per-direction means, the top indices."""
    means = per_sample.mean(dim=0)
    order = [int(i) for i in torch.argsort(means, descending=True, stable=True)[:top]]
    metrics = {
        # the most active direction, as chosen on these samples (the interval holds that choice fixed)
        "top_activeness": Statistic.mean(per_sample[:, order[0]]),
        "mean_activeness": Statistic.mean(per_sample.mean(dim=1)),
    }
    return metrics, means.tolist(), order


@dataclass(frozen=True)
class HessianPoints:
    """Where the Hessians are taken: latents and f at each, computed once for every set."""

    z: Tensor  # (H, z_dim)
    centre: Tensor  # (H, ...)


def _penalties(
    generator: Generator,
    Q: Tensor,
    z: Tensor,
    index: Tensor,
    eta: Tensor,
    vectors: Tensor,
    settings: CompareSettings,
    progress: measures.Progress,
) -> Tensor:
    """measures.penalties with the settings' k, epsilon, batch and layer: (S,) float64."""
    batch = int(settings.batch_size or 1)
    return measures.penalties(
        generator, Q, z, index, eta, vectors,
        k=settings.k, epsilon=settings.epsilon, batch_size=batch, layer=settings.layer, progress=progress,
    )  # fmt: skip


def evaluate_precise(
    generator: Generator,
    s: DirectionSet,
    probe: Probe,
    points: HessianPoints,
    settings: CompareSettings,
    progress: measures.Progress,
) -> SetReport:
    Q = s.matrix.float()
    n, samples = Q.shape[0], probe.z.shape[0]
    every = torch.stack(
        [
            _penalties(
                generator,
                Q,
                probe.z,
                torch.full((samples,), i, dtype=torch.long),
                probe.eta,
                probe.vectors[i][..., :n],
                settings,
                progress,
            )
            for i in range(n)
        ]
    )  # fmt: skip  (N, S)
    sweep = measures.sweep_activeness(
        generator,
        Q,
        probe.z,
        settings.eta,
        settings.sweep_steps,
        batch_size=int(settings.batch_size or 1),
        layer=settings.layer,
        progress=progress,
    )  # fmt: skip  (S, N)
    metrics, active, top = _activeness_metrics(sweep, min(settings.top, n))
    metrics |= _dominance(generator, Q, top, points, settings, progress)
    metrics["heldout_penalty"] = Statistic.mean(every.mean(dim=0))
    axes, cosines = matching(Q)
    return SetReport(
        name=s.name, metrics=metrics, activeness=active, top=top, match_axis=axes, match_cosine=cosines,
        per_direction_penalty=every.mean(dim=1).tolist(),
    )  # fmt: skip


def evaluate_budgeted(
    generator: Generator,
    s: DirectionSet,
    probe: BudgetProbe,
    grams: list[Tensor],
    points: HessianPoints,
    settings: CompareSettings,
    progress: measures.Progress,
) -> SetReport:
    Q = s.matrix.float()
    n = Q.shape[0]
    metrics, active, top = _activeness_metrics(measures.local_activeness(grams, Q), min(settings.top, n))
    metrics |= _dominance(generator, Q, top, points, settings, progress)
    index = probe.indices(n)  # (S,)
    values = _penalties(generator, Q, probe.z, index, probe.eta, probe.vectors[..., :n], settings, progress)  # (S,)
    metrics["heldout_penalty"] = Statistic.mean(values)
    axes, cosines = matching(Q)
    return SetReport(name=s.name, metrics=metrics, activeness=active, top=top, match_axis=axes, match_cosine=cosines)


class Counter:
    """Counts generated images and reports them as (done, total)."""

    def __init__(self, total: int | None, on_images: OnImages | None) -> None:
        self.total, self.done, self.on_images = total, 0, on_images

    def __call__(self, count: int) -> None:
        self.done += count
        if self.on_images:
            total = self.total if self.total is not None else self.done
            self.on_images(min(self.done, total), total)


def images_needed(sizes: Sequence[int], settings: CompareSettings) -> int:
    """Images of a precise comparison of sets of these sizes N (the Hessians' centres shared)."""
    samples = settings.precise_samples
    per_set = [n * samples * (2 * settings.k + settings.sweep_steps) + samples * 2 * min(settings.top, n) ** 2
               for n in sizes]  # fmt: skip
    return sum(per_set) + samples


def hessian_points(
    generator: Generator, z: Tensor, settings: CompareSettings, progress: measures.Progress
) -> HessianPoints:
    batch = int(settings.batch_size or 1)
    return HessianPoints(z, measures.centres(generator, z, batch_size=batch, layer=settings.layer, progress=progress))


def measure_budgeted(
    generator: Generator, sets: list[DirectionSet], settings: CompareSettings, on_images: OnImages | None, reserved: int
) -> tuple[list[SetReport], dict[str, Any]]:
    """Every set under settings' budget, `reserved` images of it left for the caller."""
    budget = settings.parsed_budget
    sizes = [s.matrix.shape[0] for s in sets]
    n_max, batch = max(sizes), int(settings.batch_size or 1)  # resolved by compare_sets()
    shape = dict(sets=len(sets), n=min(sizes), z_dim=int(generator.z_dim), k=settings.k, top=settings.top)
    count = Counter(budget.images, on_images)
    grams: list[Tensor] = []
    rate = None

    def gram(z: Tensor, centre: Tensor, progress: measures.Progress = count) -> Tensor:
        return measures.jacobian_gram(
            generator, z, centre, settings.epsilon, batch_size=batch, layer=settings.layer, progress=progress
        )

    first = hessian_points(generator, hessian_latent(generator, settings, 0), settings, count)

    if budget.images is not None:
        chosen = plan(budget.images, gif_images=reserved, **shape)
    else:  # the first Jacobian tells how many images the time buys (the first call, a warm-up, left out)
        assert budget.seconds is not None
        marks: list[tuple[float, int]] = [(time.perf_counter(), 0)]

        def timed(images: int) -> None:
            count(images)
            marks.append((time.perf_counter(), count.done))

        grams.append(gram(first.z, first.centre, timed))
        (t0, n0), (t1, n1) = marks[1 if len(marks) > 2 else 0], marks[-1]
        rate = (n1 - n0) / max(t1 - t0, 1e-9)
        images = int(rate * budget.seconds)
        fewest = minimum(gif_images=reserved, **shape)
        if images < fewest:
            warnings.warn(
                f"`budget` {budget} buys about {images:,} images at the {rate:.3g} images/s measured; measuring the "
                f"fewest that give intervals, {fewest:,} images (about {format_duration(fewest / rate)})",
                HpdirsWarning,
                stacklevel=2,
            )
        chosen = plan(max(images, fewest), gif_images=reserved, **shape)
    count.total = chosen.total
    rest = [hessian_latent(generator, settings, i) for i in range(1, chosen.hessian_samples)]
    more = hessian_points(generator, torch.cat(rest), settings, count) if rest else None
    points = first if more is None else HessianPoints(
        torch.cat([first.z, more.z]), torch.cat([first.centre, more.centre])
    )  # fmt: skip
    grams += [gram(points.z[j : j + 1], points.centre[j : j + 1]) for j in range(len(grams), chosen.jacobian_samples)]
    probe = BudgetProbe.draw(generator, n_max, chosen.penalty_samples, settings)
    reports = [evaluate_budgeted(generator, s, probe, grams, points, settings, count) for s in sets]
    return reports, _described(chosen, budget, rate)


def _described(chosen: Plan, budget: Budget, rate: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mode": "budget",
        "budget": str(budget),
        "penalty_samples": chosen.penalty_samples,
        "directions_per_sample": 1,  # report.json's field, from when several were possible
        "hessian_samples": chosen.hessian_samples,
        "jacobian_samples": chosen.jacobian_samples,
        "activeness": "local",
        "images_by_part": chosen.images,
        "images": chosen.total,
    }
    if rate is not None:
        out["images_per_s"] = rate
    return out

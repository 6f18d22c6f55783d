"""Compare direction sets (learned, axes, random, SeFa, ground truth) on the same held-out data.

Every set is measured on the same seeded samples, base points and Rademacher vectors (common
random numbers), so differences between sets are differences between the directions.

Metrics per set Q (N, z_dim):
- held-out penalty: the training objective with i = n for every direction n (per direction),
  and its mean over n (overall, = the objective with i uniform);
- activeness of direction n: the variance of G over a sweep of the coordinate along q_n from
  -eta to eta with the rest of z fixed, averaged over pixels and samples (paper sec. 4.2);
- diagonal dominance over the `top` most active directions: finite-difference top x top
  Hessians w.r.t. w of every output element at each sample; D% = the share of elements whose
  largest |H_ij| lies on the diagonal, D_R = mean |diagonal| / mean |off-diagonal| (Table 2);
- matching: for each direction, the axis z_j with the largest |cosine| and that cosine.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from direction_finder.config import FLOAT_LIMITS, LIMITS, WARMSTART_SEED_OFFSET, check_layer, default_chunk_size
from direction_finder.directions import check_z_dim, gram_schmidt, writable_dir
from direction_finder.errors import UsageError
from direction_finder.generators import Factorisable, GeneratorChoice, KnownTruth, ProgressCallback, display_name
from direction_finder.latents import read_latents
from direction_finder.objective import direction_penalty, outputs, strict_fp32
from direction_finder.penalty import finite_difference_hessian, rademacher
from direction_finder.render import move, sweep
from direction_finder.report import side_by_side, write_compare_html, write_reports
from direction_finder.runs import open_directions
from direction_finder.validation import check_fields

BASELINES = ("axes", "random", "sefa", "curvature")
DEFAULT_BASELINES = ("axes", "random", "sefa")  # curvature costs 16 z_dim images more: asked for by name
Progress = Callable[[int], None]  # told how many more images were generated


@dataclass(frozen=True)
class CompareSettings:
    samples: int = 8
    seed: int = 0
    top: int = 8  # N': directions in the diagonal-dominance Hessians
    eta: float = 5.0
    epsilon: float = 0.1
    k: int = 2
    sweep_steps: int = 7  # coefficient values in the activeness sweep
    batch_size: int = 16  # images per generator call
    layer: str | None = None
    latents: str | None = None  # a .npy (n, z_dim): the user's held-out samples (samples = n)

    def __post_init__(self) -> None:
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
        )


@dataclass
class DirectionSet:
    name: str
    matrix: Tensor  # (N, z_dim), orthonormal rows


@dataclass
class SetReport:
    name: str
    heldout_penalty: float
    per_direction_penalty: list[float]
    activeness: list[float]
    top: list[int]  # indices of the most active directions, most active first
    d_percent: float
    d_ratio: float
    match_axis: list[int]
    match_cosine: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "set": self.name,
            "heldout_penalty": self.heldout_penalty,
            "D_percent": self.d_percent,
            "D_R": self.d_ratio,
            "top_activeness": max(self.activeness),
            "mean_activeness": float(np.mean(self.activeness)),
            "mean_match_cosine": float(np.mean(self.match_cosine)),
            **self.extra,
        }


def baseline_sets(generator: Any, n: int, names: Sequence[str], seed: int = 0) -> tuple[list[DirectionSet], list[str]]:
    """The requested baselines with n directions each, and a note for each one skipped."""
    z_dim = int(generator.z_dim)
    sets, notes = [], []
    for name in names:
        if name == "axes":
            sets.append(DirectionSet("axes", torch.eye(n, z_dim)))
        elif name == "random":
            a = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed + 7919))
            sets.append(DirectionSet("random", gram_schmidt(a)))
        elif name == "curvature":
            from direction_finder.warmstart import curvature_directions

            # the warm start learn's --init curvature begins from (at seed 0)
            sets.append(DirectionSet("curvature", curvature_directions(generator, n, seed=WARMSTART_SEED_OFFSET)))
        elif name == "sefa":
            if isinstance(generator, Factorisable):
                sets.append(DirectionSet("sefa", generator.sefa_directions(n)))
            else:
                notes.append(f"sefa skipped: {display_name(generator)} has no first linear layer to factorise")
        else:
            raise UsageError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    if isinstance(generator, KnownTruth):
        sets.append(DirectionSet("truth", generator.basis[:n].clone()))
    return sets, notes


@dataclass(frozen=True)
class Probe:
    """The shared held-out data: samples, base-point magnitudes and Rademacher vectors."""

    z: Tensor  # (S, z_dim)
    eta: Tensor  # (S,)
    vectors: Tensor  # (N, k, S, N): independent for every direction, so the N per-direction
    # estimates average out the Rademacher noise instead of sharing it

    @classmethod
    def draw(cls, generator: Any, n: int, settings: CompareSettings) -> Probe:
        rng = torch.Generator().manual_seed(settings.seed)
        if settings.latents is not None:  # the user's samples; base points and vectors still seeded
            z = read_latents(settings.latents, int(generator.z_dim), settings.samples).to(generator.device)
        else:
            z = generator.sample_z(settings.samples, rng)
        eta = (torch.rand(settings.samples, generator=rng) * 2 - 1) * settings.eta
        vectors = rademacher((n, settings.k, settings.samples, n), generator=rng)
        return cls(z, eta, vectors)


def per_direction_penalty(
    generator: Any, Q: Tensor, probe: Probe, settings: CompareSettings, progress: Progress | None = None
) -> list[float]:
    """The training objective with i = n for each n, on the probe's samples and vectors."""
    values = []
    samples = probe.z.shape[0]
    per_call = settings.batch_size
    with torch.no_grad():
        for n in range(Q.shape[0]):
            total = 0.0
            for s in range(0, samples, per_call):
                part = slice(s, s + per_call)
                count = probe.z[part].shape[0]
                value = direction_penalty(
                    generator,
                    Q.to(generator.device),
                    probe.z[part],
                    torch.full((count,), n, dtype=torch.long),
                    probe.eta[part],
                    k=settings.k,
                    epsilon=settings.epsilon,
                    vectors=probe.vectors[n][:, part],
                    chunk_size=default_chunk_size(generator.device, settings.k, count, settings.layer),
                    layer=settings.layer,
                )
                total += float(value) * count
            values.append(total / samples)
            if progress:
                progress(2 * settings.k * samples)
    return values


def activeness(
    generator: Any, Q: Tensor, probe: Probe, settings: CompareSettings, progress: Progress | None = None
) -> list[float]:
    """Per direction: variance over the aligned sweep, mean over output elements and samples."""
    etas = torch.linspace(-settings.eta, settings.eta, settings.sweep_steps)
    out = []
    with torch.no_grad():
        for n in range(Q.shape[0]):
            direction = Q[n].to(generator.device)
            frames = [f.double() for f in _sweep_outputs(generator, direction, probe.z, etas, settings)]
            stacked = torch.stack(frames)  # (T, S, ...)
            out.append(float(stacked.var(dim=0, unbiased=False).mean()))
            if progress:
                progress(len(etas) * probe.z.shape[0])
    return out


def _sweep_outputs(
    generator: Any, direction: Tensor, z: Tensor, etas: Tensor, settings: CompareSettings
) -> list[Tensor]:
    if settings.layer is None:
        return list(sweep(generator, direction, z, etas, align=True, batch_size=settings.batch_size))
    return [generator.features(move(z, direction, e, True), settings.layer) for e in etas]


def hessians(
    generator: Any,
    Q: Tensor,
    indices: Sequence[int],
    probe: Probe,
    settings: CompareSettings,
    progress: Progress | None = None,
) -> Tensor:
    """Finite-difference Hessians w.r.t. w of every output element at each sample, for the
    directions `indices`: (S, *output, len, len)."""
    sub = Q[list(indices)].to(generator.device)  # (N', z_dim)
    out = []
    for s in range(probe.z.shape[0]):
        z = probe.z[s : s + 1]

        def f(w: Tensor, z: Tensor = z) -> Tensor:  # (m, N') -> (m, ...)
            return outputs(generator, z + w @ sub, settings.layer)

        with strict_fp32():
            out.append(
                finite_difference_hessian(
                    f, torch.zeros(len(indices), device=sub.device), settings.epsilon, settings.batch_size
                )
                .double()
                .cpu()
            )
        if progress:
            m = len(indices)
            progress(4 * m * (m + 1) // 2)
    return torch.stack(out)


def diagonal_dominance(hessian: Tensor) -> tuple[float, float]:
    """(D%, D_R) of Hessians (..., M, M): the share of elements whose largest |entry| is on the
    diagonal (ties count as diagonal), and mean |diagonal| / mean |off-diagonal|."""
    m = hessian.shape[-1]
    flat = hessian.abs().reshape(-1, m, m)  # (E, M, M)
    eye = torch.eye(m, dtype=torch.bool)
    diag_max = flat[:, eye].max(dim=1).values
    off = flat[:, ~eye]
    off_max = off.max(dim=1).values if m > 1 else torch.zeros_like(diag_max)
    d_percent = 100.0 * float((diag_max >= off_max).double().mean())
    off_mean = float(off.mean()) if m > 1 else 0.0
    d_ratio = float(flat[:, eye].mean()) / off_mean if off_mean > 0 else math.inf
    return d_percent, d_ratio


def matching(Q: Tensor) -> tuple[list[int], list[float]]:
    """For each direction, the axis z_j with the largest |cosine| (= |Q[n, j]|) and that |cosine|."""
    values, axes = Q.abs().max(dim=1)
    return axes.tolist(), values.tolist()


def evaluate_set(
    generator: Any,
    direction_set: DirectionSet,
    probe: Probe,
    settings: CompareSettings,
    progress: Progress | None = None,
) -> SetReport:
    Q = direction_set.matrix.float()
    penalties = per_direction_penalty(generator, Q, probe, settings, progress)
    active = activeness(generator, Q, probe, settings, progress)
    top = [int(i) for i in np.argsort(active)[::-1][: min(settings.top, Q.shape[0])]]
    d_percent, d_ratio = diagonal_dominance(hessians(generator, Q, top, probe, settings, progress))
    axes, cosines = matching(Q)
    return SetReport(
        direction_set.name, float(np.mean(penalties)), penalties, active, top, d_percent, d_ratio, axes, cosines
    )


def images_needed(n: int, sets: int, settings: CompareSettings) -> int:
    m = min(settings.top, n)
    per_set = n * settings.samples * (2 * settings.k + settings.sweep_steps) + settings.samples * 2 * m * (m + 1)
    return sets * per_set


def compare(
    generator: Any,
    learned: Tensor,
    *,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    settings: CompareSettings = CompareSettings(),
    on_images: Callable[[int, int], None] | None = None,
) -> tuple[list[SetReport], list[str]]:
    """Evaluate the learned directions and the baselines on the same probe."""
    check_z_dim(learned, generator)
    check_layer(generator, settings.layer)
    n = learned.shape[0]
    extra, notes = baseline_sets(generator, n, baselines, settings.seed)
    sets = [DirectionSet("learned", learned.float()), *extra]
    probe = Probe.draw(generator, n, settings)
    total, done = images_needed(n, len(sets), settings), 0

    def progress(count: int) -> None:
        nonlocal done
        done += count
        if on_images:
            on_images(min(done, total), total)

    reports = [evaluate_set(generator, s, probe, settings, progress) for s in sets]
    truth = next((s for s in sets if s.name == "truth"), None)
    if truth is not None:
        from direction_finder.generators.synthetic import recovery_score

        for report, s in zip(reports, sets, strict=True):
            report.extra["recovery"] = recovery_score(s.matrix, generator.true_directions)
    return reports, notes


def with_user_latents(settings: CompareSettings, z_dim: int) -> CompareSettings:
    """The settings with as many held-out samples as the user's latents have rows (if any)."""
    if settings.latents is None:
        return settings
    rows = read_latents(settings.latents, z_dim, LIMITS["eval_samples"][1]).shape[0]
    return dataclasses.replace(settings, samples=int(rows))


def parse_baselines(chosen: str | Sequence[str]) -> list[str]:
    """`axes,random,sefa` (or a list of names) -> the baselines, each one of BASELINES."""
    names = [b.strip().lower() for b in (chosen.split(",") if isinstance(chosen, str) else chosen) if b.strip()]
    unknown = [b for b in names if b not in BASELINES]
    if unknown:
        shown = chosen if isinstance(chosen, str) else ",".join(chosen)
        raise UsageError(f"`baselines` {shown!r}: unknown {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
    return names


def run_compare(
    generator: Any,
    learned: Tensor,
    out_dir: str | os.PathLike,
    *,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    settings: CompareSettings = CompareSettings(),
    info: dict[str, Any] | None = None,
    gifs: bool = True,
    on_images: Callable[[int, int], None] | None = None,
) -> tuple[list[SetReport], list[str]]:
    """compare() plus every file: report.json, report.csv, pair_*.gif, compare.html."""
    baselines = parse_baselines(baselines)
    check_z_dim(learned, generator)  # before anything is created
    settings = with_user_latents(settings, int(generator.z_dim))
    out = writable_dir(out_dir)
    reports, notes = compare(generator, learned, baselines=baselines, settings=settings, on_images=on_images)
    info = dict(info or {})
    write_reports(out, reports, notes, info, settings)
    pairs = side_by_side(generator, learned, reports[0], out, seed=settings.seed, eta=settings.eta) if gifs else []
    write_compare_html(out, reports, notes, pairs, info, settings)
    return reports, notes


@dataclass(frozen=True)
class Comparison:
    """What `hpdirs compare` measured and where it wrote it."""

    reports: list[SetReport]
    notes: list[str]
    info: dict[str, Any]  # the generator and the directions file
    out_dir: Path
    settings: CompareSettings  # as measured (samples = the user's latents, if given)


def compare_file(
    run_or_file: str | os.PathLike,
    settings: CompareSettings = CompareSettings(),
    *,
    baselines: str | Sequence[str] = DEFAULT_BASELINES,
    generator: GeneratorChoice = GeneratorChoice(),
    out_dir: str | os.PathLike | None = None,
    gifs: bool = True,
    progress: ProgressCallback | None = None,
    on_images: Callable[[int, int], None] | None = None,
) -> Comparison:
    """`hpdirs compare`: open a directions file (or a run's last directions) with its generator
    and compare it with the baselines into out_dir (default RUN/compare, or compare-<file>)."""
    names = parse_baselines(baselines)
    opened = open_directions(run_or_file, generator, progress)
    target = Path(out_dir) if out_dir is not None else opened.output_dir("compare")
    info = opened.info
    if opened.directions.labels:
        info["labels"] = {str(i): name for i, name in sorted(opened.directions.labels.items())}
    reports, notes = run_compare(
        opened.generator,
        opened.directions.matrix,
        target,
        baselines=names,
        settings=settings,
        info=info,
        gifs=gifs,
        on_images=on_images,
    )
    opened.refresh_card()
    return Comparison(reports, notes, info, target, with_user_latents(settings, opened.directions.z_dim))

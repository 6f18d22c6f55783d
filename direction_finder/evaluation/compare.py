"""Compare direction sets (learned, axes, random, SeFa, ground truth, another run) on the same
held-out data, with intervals, and paired differences against the first set.

Every set is measured on the same seeded samples, base points and Rademacher vectors (common
random numbers), so differences between sets are differences between the directions, and each
difference gets a paired interval (direction_finder.evaluation.stats).

Metrics per set Q (N, z_dim):
- held-out penalty: the training objective, mean over samples and directions;
- activeness of each direction (the top one, and the mean over directions);
- D%, D_R over the `top` most active directions: finite-difference top x top Hessians w.r.t. w
  of every output element at each sample; D% = the share of elements whose largest |H_ij| lies
  on the diagonal, D_R = mean |diagonal| / mean |off-diagonal| (paper Table 2);
- matching: for each direction, the axis z_j with the largest |cosine| and that cosine.

Two ways to measure them:
- under a budget (the default, direction_finder.evaluation.budget): the penalty of one random direction
  per sample on many samples (unbiased for the mean over directions), the Hessians on a few
  samples, the top directions ranked by local activeness from one Jacobian shared by all sets;
- precise (`samples` given, `precise`, or the user's `latents`): every metric on the same
  samples, the penalty of every direction, activeness from a sweep of every direction.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from direction_finder.artifacts.directions import check_z_dim, load_directions, resolve_directions_file
from direction_finder.artifacts.latents import read_latents
from direction_finder.artifacts.runs import open_directions
from direction_finder.compiled import CPU_FORWARD_SECONDS, maybe_compiled
from direction_finder.config import LIMITS, check_layer
from direction_finder.errors import UsageError
from direction_finder.evaluation.measures import diagonal_dominance, matching
from direction_finder.evaluation.probes import (
    Counter,
    OnImages,
    Probe,
    evaluate_precise,
    hessian_points,
    images_needed,
    measure_budgeted,
)  # fmt: skip
from direction_finder.evaluation.records import METRICS, DirectionSet, Results, SetReport
from direction_finder.evaluation.report import (
    PAIR_FRAMES,
    PAIR_SAMPLES,
    PAIRS,
    side_by_side,
    write_compare_html,
    write_reports,
)
from direction_finder.evaluation.settings import CompareSettings
from direction_finder.evaluation.stats import BETTER, Difference
from direction_finder.files import staged_output
from direction_finder.generators.base import KnownTruth, display_name, sefa_spectrum
from direction_finder.generators.choice import GeneratorChoice
from direction_finder.generators.ganspace import default_samples
from direction_finder.generators.synthetic import recovery_score
from direction_finder.generators.weights import ProgressCallback
from direction_finder.memory import render_batch
from direction_finder.method.orthonormal import gram_schmidt
from direction_finder.method.pca import near_degenerate_groups
from direction_finder.starts import (
    DEFAULT_BASELINES,
    RANDOM_BASELINE_SEED_OFFSET,
    parse_starts,
    start_named,
    starting_directions,
    supported,
)

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

# Every name a comparison writes: a folder holds one comparison, whole (see staged_output).
COMPARE_FILES = re.compile(r"report\.(json|csv)|differences\.csv|compare\.html|pair_\d{3,}_[zd]\d{3,}\.gif")
# reached through here as well: the metrics' helpers and the per-set types
__all__ = ["METRICS", "DirectionSet", "SetReport", "diagonal_dominance", "matching"]


def baseline_sets(
    generator: Generator, n: int, names: Sequence[str], seed: int = 0
) -> tuple[list[DirectionSet], list[str]]:
    """The requested baselines with n directions each (the rows of starts.STARTS: what learn's
    `init` of the same name begins from at seed 0, orthonormal; the ones without a stream of their
    own draw from `seed`'s baseline stream), and a note for each one this generator cannot take."""
    sets, notes = [], []
    for name in names:
        start = start_named(name, "baselines")
        if not supported(start, generator):
            notes.append(f"{name} skipped: {display_name(generator)} has {start.lacks}")
            continue
        stream = torch.Generator().manual_seed(seed + RANDOM_BASELINE_SEED_OFFSET)
        found = starting_directions(start, generator, n, 0, stream=stream)  # (n, z_dim)
        sets.append(DirectionSet(name, found if start.orthonormal else gram_schmidt(found)))
    if isinstance(generator, KnownTruth):
        sets.append(DirectionSet("truth", generator.basis[:n].clone()))
    return sets, notes


def differences(reports: Sequence[SetReport]) -> list[Difference]:
    """The first set minus each other set, for each quality metric, paired over samples."""
    first = reports[0]
    return [
        Difference(first.name, other.name, metric, first.metrics[metric] - other.metrics[metric])
        for other in reports[1:]
        for metric in BETTER
    ]


def compare_sets(
    generator: Generator,
    learned: Tensor,
    *,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    settings: CompareSettings = CompareSettings(),
    on_images: OnImages | None = None,
    name: str = "learned",
    others: Sequence[DirectionSet] = (),
    reserved_images: int = 0,
) -> Results:
    """Evaluate `learned` (named `name`), the `others` and the baselines on the same held-out data;
    under a budget, `reserved_images` of it are left for what the caller generates afterwards."""
    for other in (learned, *[o.matrix for o in others]):
        check_z_dim(other, generator)
    check_layer(generator, settings.layer)
    settings = dataclasses.replace(
        settings, batch_size=render_batch(generator, settings.batch_size, settings.max_memory)
    )
    n = learned.shape[0]
    extra, notes = baseline_sets(generator, n, baselines, settings.seed)
    sets = [DirectionSet(name, learned.float()), *others, *extra]
    n_max = max(s.matrix.shape[0] for s in sets)
    started = time.perf_counter()
    if settings.is_precise:
        count = Counter(images_needed([s.matrix.shape[0] for s in sets], settings), on_images)
        probe = Probe.draw(generator, n_max, settings)
        points = hessian_points(generator, probe.z, settings, count)  # shared by every set
        reports = [evaluate_precise(generator, s, probe, points, settings, count) for s in sets]
        measured: dict[str, Any] = {
            "mode": "precise", "samples": int(probe.z.shape[0]), "activeness": "sweep", "images": count.total,
        }  # fmt: skip
    else:
        reports, measured = measure_budgeted(generator, sets, settings, on_images, reserved_images)
    measured["seconds"] = time.perf_counter() - started
    truth = next((s for s in sets if s.name == "truth"), None)
    if truth is not None:
        assert isinstance(generator, KnownTruth)  # baseline_sets adds "truth" for these only
        for report, s in zip(reports, sets, strict=True):
            report.extra["recovery"] = recovery_score(s.matrix, generator.true_directions)
    spectrum = spectrum_of(generator, n)
    if spectrum is not None and spectrum["groups"]:
        groups = ", ".join(f"{a}-{b}" for a, b in spectrum["groups"])
        notes.append(
            f"SeFa's directions {groups} have eigenvalues within the sampling spread of {spectrum['samples']:,} "
            "samples: inside each group SeFa and GANSpace return an arbitrary rotation, where learning can find more"
        )
    return Results(reports, notes, differences(reports), measured, spectrum)


def spectrum_of(generator: Generator, n: int) -> dict[str, Any] | None:
    """SeFa's eigenvalues (every layer z enters) and the groups among the first n that GANSpace's
    samples could not order (near_degenerate_groups): what predicts whether learning can add
    anything to the closed forms. None for a generator without declared z-layers."""
    values = sefa_spectrum(generator)
    if values is None:
        return None
    samples = default_samples(generator.device)
    return {"variant": "sefa", "samples": samples, "values": values.tolist(),
            "groups": [list(g) for g in near_degenerate_groups(values[:n], samples)]}  # fmt: skip


def with_user_latents(settings: CompareSettings, z_dim: int) -> CompareSettings:
    """The settings with as many held-out samples as the user's latents have rows (if any)."""
    if settings.latents is None:
        return settings
    rows = read_latents(settings.latents, z_dim, LIMITS["eval_samples"][1]).shape[0]
    return dataclasses.replace(settings, samples=int(rows))


def gif_images(n: int, gifs: bool) -> int:
    """Images the side-by-side GIFs generate (reserved from a budget)."""
    return min(PAIRS, n) * 2 * PAIR_FRAMES * PAIR_SAMPLES if gifs else 0


def compare_into(
    generator: Generator,
    learned: Tensor,
    out_dir: str | os.PathLike,
    *,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    settings: CompareSettings = CompareSettings(),
    info: dict[str, Any] | None = None,
    gifs: bool = True,
    on_images: OnImages | None = None,
    name: str = "learned",
    other: DirectionSet | None = None,
    owner: Path | None = None,
) -> Results:
    """compare_sets() plus every file: report.json, report.csv, differences.csv, pair_*.gif, compare.html.
    With `other`, the GIFs pair each top direction with the other set's closest direction. The
    folder holds the earlier comparison or this one, whole (staged_output); `owner`: the run
    folder out_dir belongs to, when hpdirs chose it."""
    baselines = parse_starts(baselines)
    check_z_dim(learned, generator)  # before anything is created
    settings = with_user_latents(settings, int(generator.z_dim))
    settings = dataclasses.replace(
        settings, batch_size=render_batch(generator, settings.batch_size, settings.max_memory)
    )
    with staged_output(Path(out_dir), COMPARE_FILES, owner=owner) as out:
        results = compare_sets(
            generator, learned, baselines=baselines, settings=settings, on_images=on_images, name=name,
            others=[other] if other is not None else [], reserved_images=gif_images(learned.shape[0], gifs),
        )  # fmt: skip
        info = dict(info or {})
        write_reports(out, results, info, settings)
        pairs = []
        if gifs:
            partner = (other.name, other.matrix) if other is not None else None
            pairs = side_by_side(generator, learned, results.reports[0], out, seed=settings.seed, eta=settings.eta,
                                 partner=partner, batch_size=int(settings.batch_size or 1))  # fmt: skip
        write_compare_html(out, results, pairs, info, settings)
    return results


@dataclass(frozen=True)
class Comparison:
    """What `hpdirs compare` measured and where it wrote it."""

    results: Results
    info: dict[str, Any]  # the generator and the directions file(s)
    out_dir: Path
    settings: CompareSettings  # as measured (samples = the user's latents, if given)

    @property
    def reports(self) -> list[SetReport]:
        return self.results.reports

    @property
    def notes(self) -> list[str]:
        return self.results.notes


def source_name(run_or_file: str | os.PathLike) -> str:
    """What a compared run or file is called in reports: the run folder's name, or the file's stem."""
    path = Path(run_or_file)
    return path.resolve().name if path.is_dir() else path.stem


GENERATOR_KEYS = {"model": "model", "class_index": "class_", "truncation": "truncation", "model_args": "model_args"}


def check_same_generator(a: dict[str, Any], b: dict[str, Any], choice: GeneratorChoice) -> None:
    """Two files measured together must name one generator (what the user sets applies to both)."""
    for key, setting in GENERATOR_KEYS.items():
        if getattr(choice, setting) is None and key in a and key in b and a[key] != b[key]:
            raise UsageError(
                f"the two sets were learned on different generators ({key} {a[key]!r} and {b[key]!r}); "
                "pass `model`, `class_` and `truncation` to measure both on one"
            )


def compare_file(
    run_or_file: str | os.PathLike,
    settings: CompareSettings = CompareSettings(),
    *,
    against: str | os.PathLike | None = None,
    baselines: str | Sequence[str] | None = None,
    generator: GeneratorChoice = GeneratorChoice(),
    out_dir: str | os.PathLike | None = None,
    gifs: bool = True,
    progress: ProgressCallback | None = None,
    on_images: OnImages | None = None,
) -> Comparison:
    """`hpdirs compare`: open a directions file (or a run's last directions) with its generator and
    compare it with the baselines (default: axes, random, SeFa) into out_dir (default RUN/compare,
    or compare-<file>). With `against`, a second run or file is compared with it (and no baseline
    unless asked for), into RUN/compare-vs-<other>."""
    names = parse_starts(baselines if baselines is not None else ([] if against is not None else DEFAULT_BASELINES))
    opened = open_directions(run_or_file, generator, progress)
    name, other = "learned", None
    if against is not None:
        b_path = resolve_directions_file(against)
        b = load_directions(b_path)
        if b_path.resolve() == opened.path.resolve() or torch.equal(b.matrix, opened.directions.matrix):
            raise UsageError(
                f"{run_or_file} and {against} hold the same directions, so every difference would be zero; "
                "compare two different runs, or one run with the baselines (give one run only)"
            )
        check_same_generator(opened.directions.metadata, b.metadata, generator)
        check_z_dim(b.matrix, opened.generator)
        name, other_name = source_name(run_or_file), source_name(against)
        if name == other_name:
            name, other_name = f"A {name}", f"B {other_name}"
        other = DirectionSet(other_name, b.matrix.float())
    kind = "compare" if other is None else "compare-vs-" + re.sub(r"[^A-Za-z0-9._-]+", "-", other.name).strip("-")
    target = Path(out_dir) if out_dir is not None else opened.output_dir(kind)
    info = opened.info
    if against is not None:
        info["against_file"] = str(resolve_directions_file(against))
    if opened.directions.labels:
        info["labels"] = {str(i): label for i, label in sorted(opened.directions.labels.items())}
    owner = None if out_dir is not None else opened.path.parent  # hpdirs chose the folder: it stays in the run
    budget = settings.parsed_budget if not settings.is_precise else None
    images = (budget.images or int((budget.seconds or 0) / CPU_FORWARD_SECONDS)) if budget is not None else 10**6
    measured_with = maybe_compiled(opened.generator, settings.compile, images, CPU_FORWARD_SECONDS)
    results = compare_into(
        measured_with, opened.directions.matrix, target, baselines=names, settings=settings, info=info,
        gifs=gifs, on_images=on_images, name=name, other=other, owner=owner,
    )  # fmt: skip
    opened.refresh_card(target)
    return Comparison(results, info, target, with_user_latents(settings, opened.directions.z_dim))

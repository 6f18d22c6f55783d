"""Quality per compute on a real GAN: learned directions vs axes, random and SeFa.

For each recipe, learning runs for the given cumulative CPU budgets (minutes of learning time,
resumed between budgets), and every set is saved. Then all sets are measured together by
hpdirs' compare (the same held-out samples, base points and Rademacher vectors for every set),
under an image budget (--images) or precisely (--samples): held-out penalty, D% and D_R over the
8 most active directions, each with its 95% interval, and the paired difference of each set
against SeFa and the axes. Writes a JSON file and prints Markdown tables. --remeasure measures
saved sets again (other --seed) without learning.

    make -C benchmarks quality          # or: ../.venv/bin/python quality.py --budgets 3,10
    make -C benchmarks quality-probe2   # the saved sets on probe seed 7
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from omniart import EyeGenerator
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from direction_finder.config import LearnConfig, recipe_fields
from direction_finder.evaluation.compare import CompareSettings, DirectionSet, baseline_sets, compare_sets
from direction_finder.evaluation.report import with_interval
from direction_finder.evaluation.stats import BETTER, Difference
from direction_finder.learning.learn import learn
from direction_finder.method.warmstart import curvature_directions
from direction_finder.starts import WARMSTART_SEED_OFFSET

# chunk_size 4: all 2k perturbed batches of 8 in one call of 32 images, the DCGAN's fastest
# call size on this CPU (94 images/s against 71 in calls of 8); the same for every recipe.
SHARED = dict(batch_size=8, k=2, chunk_size=4)
RECIPES = {
    # hpdirs' own recipes (direction_finder.config.RECIPES), so the benchmark measures exactly them
    "paper": {**recipe_fields("paper"), **SHARED},  # Kaiming-normal A, Adam lr 0.01
    "curvature": {**recipe_fields("curvature"), **SHARED},  # its warm start's ~30 s count in the budget
    # SeFa's closed form refined the same way (measured last session: it keeps SeFa's numbers)
    "sefa": dict(init="sefa", lr=0.001, **SHARED),
    # levers measured around the curvature recipe (not hpdirs recipes)
    "curvature-lr0.003": {**recipe_fields("curvature"), **SHARED, "lr": 0.003},
    "curvature-k4": {**recipe_fields("curvature"), **SHARED, "batch_size": 4, "k": 4, "chunk_size": 8},
    # Adam on the manifold of orthonormal Q (--optimizer riemannian), from each warm start
    "curvature-riemannian": {**recipe_fields("curvature"), **SHARED, "optimizer": "riemannian"},
    "sefa-riemannian": {**recipe_fields("sefa"), **SHARED},  # hpdirs' --recipe sefa
    # variance reduction: 4x the samples per step (a quarter of the steps), calls of 32 images
    "sefa-b32": {**recipe_fields("sefa"), **SHARED, "batch_size": 32, "chunk_size": 1},
}


def remeasure(folder: Path, measure) -> None:
    """Measure the sets a run saved with --matrices (in the order they were written)."""
    measure_saved(sorted(folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime), measure)


def measure_saved(paths: list[Path], measure) -> None:
    """Measure sets saved by an earlier run (a safetensors file each, as --matrices writes them)."""
    for path in paths:
        saved = load_file(path)
        with safe_open(path, "pt") as f:
            recipe = f.metadata()["recipe"]
        measure(path.stem, saved["matrix"], recipe=recipe, budget_min=float(saved["extra"][0]),
                steps=int(saved["extra"][1]))


def learn_and_measure(g: EyeGenerator, budgets: list[float], recipes, seed: int, measure,
                      baselines: list[str] | None = None, warm_start: bool = True) -> None:
    """The baselines, the curvature warm start alone, then each recipe after each budget."""
    baselines = ["axes", "random", "sefa"] if baselines is None else baselines
    sets, _ = baseline_sets(g, g.z_dim, baselines, seed=seed)
    for s in sets:
        measure(s.name, s.matrix, recipe="baseline", budget_min=0, steps=0)
    if warm_start:
        start = time.perf_counter()
        warm = curvature_directions(g, g.z_dim, seed=WARMSTART_SEED_OFFSET)  # as learn's init="curvature", seed 0
        measure("curvature warm start", warm, recipe="baseline",
                budget_min=round((time.perf_counter() - start) / 60, 2), steps=0)
    for recipe in recipes:
        config = LearnConfig(steps=10**9, eval_every=0, checkpoint_every=10**9, seed=0, **RECIPES[recipe])
        with tempfile.TemporaryDirectory() as run:
            for n, minutes in enumerate(budgets):
                directions = learn(g, config, out_dir=run, resume=n > 0, time_limit_s=minutes * 60)
                measure(f"{recipe} @ {minutes:g} min", directions.matrix, recipe=recipe, budget_min=minutes,
                        steps=directions.metadata["step"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="3,10", help="cumulative learning minutes, comma-separated")
    parser.add_argument("--recipes", default="paper,curvature")
    parser.add_argument("--class-name", default="blue")
    parser.add_argument("--images", default="60000", help="compare's budget in images for all sets together")
    parser.add_argument("--samples", type=int, default=None, help="measure precisely on this many samples instead")
    parser.add_argument("--seed", type=int, default=123, help="seed of the probe")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    parser.add_argument("--out", default="results/quality.json")
    parser.add_argument("--matrices", default="results/matrices", help="folder the measured sets are saved in")
    parser.add_argument("--baselines", default="axes,random,sefa", help="closed-form sets measured with the recipes")
    parser.add_argument("--no-warm-start", action="store_true", help="do not measure the curvature warm start alone")
    parser.add_argument("--also", default="", help="comma-separated saved sets (.safetensors) to measure with them")
    parser.add_argument("--remeasure", action="store_true", help="measure the sets saved in --matrices, learn nothing")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    g = EyeGenerator(args.class_name, args.device)
    common = dict(seed=args.seed, top=8, sweep_steps=5, batch_size=32)
    settings = (CompareSettings(samples=args.samples, **common) if args.samples
                else CompareSettings(budget=args.images, **common))
    sets, extras = [], {}

    def keep(name: str, matrix, **extra) -> None:
        if not args.remeasure:
            Path(args.matrices).mkdir(parents=True, exist_ok=True)
            tensors = {"matrix": matrix.float().contiguous(), "extra": torch.tensor([extra["budget_min"], extra["steps"]])}
            save_file(tensors, Path(args.matrices) / f"{name}.safetensors", metadata={"recipe": extra["recipe"]})
        sets.append(DirectionSet(name, matrix.float()))
        extras[name] = extra
        print(f"{name}: {extra}", flush=True)

    if args.remeasure:
        remeasure(Path(args.matrices), keep)
    else:
        learn_and_measure(g, budgets, filter(None, args.recipes.split(",")), args.seed, keep,
                          baselines=[b for b in args.baselines.split(",") if b], warm_start=not args.no_warm_start)
        measure_saved([Path(p) for p in args.also.split(",") if p], keep)
    start = time.perf_counter()
    results = compare_sets(g, sets[0].matrix, baselines=[], settings=settings, name=sets[0].name, others=sets[1:],
                      on_images=lambda done, total: print(f"{done}/{total} images", flush=True)
                      if done == total or done % 5000 < 64 else None)  # a line every ~5,000 images
    print(f"\nmeasured in {time.perf_counter() - start:.0f} s: {results.measured}")
    by = {r.name: r for r in results.reports}
    paired = [Difference(r.name, ref, metric, r.metrics[metric] - by[ref].metrics[metric])
              for ref in ("sefa", "axes") if ref in by for r in results.reports if r.name != ref for metric in BETTER]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    body = {"generator": g.describe(), "settings": settings.__dict__, "measured": results.measured,
            "rows": [{**r.summary(), **extras[r.name], "intervals": {m: s.as_dict() for m, s in r.metrics.items()}}
                     for r in results.reports],
            "differences": [d.as_dict() for d in paired]}
    out.write_text(json.dumps(body, indent=2))
    print("\n| set | steps | held-out penalty ↓ | D% ↑ | D_R ↑ | top activeness |\n|---|---|---|---|---|---|")
    for r in results.reports:
        cells = [with_interval(r.metrics[m], f) for m, f in
                 (("heldout_penalty", ".4g"), ("D_percent", ".1f"), ("D_R", ".3f"), ("top_activeness", ".3g"))]
        print(f"| {r.name} | {extras[r.name]['steps']} | " + " | ".join(cells) + " |")
    print("\n| set − reference | held-out penalty | D% | D_R |\n|---|---|---|---|")
    rows: dict[tuple[str, str], list[str]] = {}
    for d in paired:
        verdict = {"not significant": "n.s."}.get(d.verdict, d.verdict)
        rows.setdefault((d.reference, d.other), []).append(f"{with_interval(d.statistic, '.3g')} ({verdict})")
    for (name, ref), cells in rows.items():
        print(f"| {name} − {ref} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

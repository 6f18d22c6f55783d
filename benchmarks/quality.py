"""Quality per compute on a real GAN: learned directions vs axes, random and SeFa.

For each recipe, learning runs for the given cumulative CPU budgets (minutes of learning time,
resumed between budgets), and after each budget the directions are measured with hpdirs'
compare metrics on one fixed probe (the same held-out samples, base points and Rademacher
vectors for every set): held-out penalty, D% and D_R over the 8 most active directions, top
activeness. Writes a JSON file and prints a Markdown table. With --matrices every measured set
is saved, and --remeasure measures saved sets again on another probe (--seed) without learning.

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

import torch  # noqa: E402
from omniart import EyeGenerator  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from direction_finder.compare import CompareSettings, DirectionSet, Probe, baseline_sets, evaluate_set  # noqa: E402
from direction_finder.config import WARMSTART_SEED_OFFSET, LearnConfig, recipe_fields  # noqa: E402
from direction_finder.learn import learn  # noqa: E402
from direction_finder.warmstart import curvature_directions  # noqa: E402

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
}


def remeasure(folder: Path, measure) -> None:
    """Measure the sets a run saved with --matrices (in the order they were written)."""
    for path in sorted(folder.glob("*.safetensors"), key=lambda p: p.stat().st_mtime):
        saved = load_file(path)
        with safe_open(path, "pt") as f:
            recipe = f.metadata()["recipe"]
        measure(path.stem, saved["matrix"], recipe=recipe, budget_min=float(saved["extra"][0]),
                steps=int(saved["extra"][1]))


def learn_and_measure(g: EyeGenerator, budgets: list[float], recipes, seed: int, measure,
                      baselines: bool = True) -> None:
    """The baselines, the curvature warm start alone, then each recipe after each budget."""
    if baselines:
        sets, _ = baseline_sets(g, g.z_dim, ["axes", "random", "sefa"], seed=seed)
        for s in sets:
            measure(s.name, s.matrix, recipe="baseline", budget_min=0, steps=0)
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
    parser.add_argument("--samples", type=int, default=16, help="held-out samples for the metrics")
    parser.add_argument("--seed", type=int, default=123, help="seed of the probe")
    parser.add_argument("--k", type=int, default=2,
                        help="Rademacher vectors per probe sample (more: a less noisy held-out penalty, "
                             "cost N x samples x 2k images per set)")
    parser.add_argument("--out", default="results/quality.json")
    parser.add_argument("--matrices", default=None,
                        help="folder to save every measured set as <set>.safetensors, to re-measure on other probes")
    parser.add_argument("--no-baselines", action="store_true", help="measure only the recipes")
    parser.add_argument("--remeasure", default=None,
                        help="measure the sets saved in this folder on this probe, and learn nothing")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    g = EyeGenerator(args.class_name)
    settings = CompareSettings(samples=args.samples, seed=args.seed, k=args.k, top=8, sweep_steps=5, batch_size=32)
    probe = Probe.draw(g, g.z_dim, settings)
    rows = []

    def measure(name: str, matrix, **extra) -> None:
        if args.matrices:
            Path(args.matrices).mkdir(parents=True, exist_ok=True)
            save_file({"matrix": matrix.float().contiguous(), "extra": torch.tensor([extra["budget_min"], extra["steps"]])},
                      Path(args.matrices) / f"{name}.safetensors", metadata={"recipe": extra["recipe"]})
        start = time.perf_counter()
        report = evaluate_set(g, DirectionSet(name, matrix), probe, settings)
        row = {**report.summary(), **extra, "measure_s": time.perf_counter() - start}
        rows.append(row)
        print(json.dumps(row), flush=True)

    if args.remeasure:
        remeasure(Path(args.remeasure), measure)
    else:
        learn_and_measure(g, budgets, filter(None, args.recipes.split(",")), args.seed, measure,
                          baselines=not args.no_baselines)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"generator": g.describe(), "settings": settings.__dict__, "rows": rows}, indent=2))
    print("\n| set | steps | held-out penalty ↓ | D% ↑ | D_R ↑ | top activeness |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['steps']} | {r['heldout_penalty']:.4g} | {r['D_percent']:.1f} | {r['D_R']:.3f} "
              f"| {r['top_activeness']:.4g} |")


if __name__ == "__main__":
    main()

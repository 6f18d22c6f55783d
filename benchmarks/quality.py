"""Quality per compute on a real GAN: learned directions vs axes, random and SeFa.

For each recipe, learning runs for the given cumulative CPU budgets (minutes of learning time,
resumed between budgets), and after each budget the directions are measured with hpdirs'
compare metrics on one fixed probe (the same held-out samples, base points and Rademacher
vectors for every set): held-out penalty, D% and D_R over the 8 most active directions, top
activeness. Writes a JSON file and prints a Markdown table.

    make -C benchmarks quality        # or: ../.venv/bin/python quality.py --budgets 2,5,10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from omniart import EyeGenerator  # noqa: E402

from direction_finder.compare import CompareSettings, DirectionSet, Probe, baseline_sets, evaluate_set  # noqa: E402
from direction_finder.learn import LearnConfig, learn  # noqa: E402

RECIPES = {
    # the paper's recipe: Kaiming-normal A, Adam lr 0.01
    "paper": dict(init="random", lr=0.01, batch_size=8, k=2),
    # closed-form warm start refined by the same objective, with a step that keeps its structure
    "sefa": dict(init="sefa", lr=0.001, batch_size=8, k=2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="2,5,10", help="cumulative learning minutes, comma-separated")
    parser.add_argument("--recipes", default="paper,sefa")
    parser.add_argument("--class-name", default="blue")
    parser.add_argument("--samples", type=int, default=4, help="held-out samples for the metrics")
    parser.add_argument("--seed", type=int, default=123, help="seed of the probe")
    parser.add_argument("--k", type=int, default=2,
                        help="Rademacher vectors per probe sample (more: a less noisy held-out penalty, "
                             "cost N x samples x 2k images per set)")
    parser.add_argument("--out", default="results/quality.json")
    args = parser.parse_args()
    budgets = [float(b) for b in args.budgets.split(",")]
    g = EyeGenerator(args.class_name)
    settings = CompareSettings(samples=args.samples, seed=args.seed, k=args.k, top=8, sweep_steps=5, batch_size=32)
    probe = Probe.draw(g, g.z_dim, settings)
    rows = []

    def measure(name: str, matrix, **extra) -> None:
        start = time.perf_counter()
        report = evaluate_set(g, DirectionSet(name, matrix), probe, settings)
        row = {**report.summary(), **extra, "measure_s": time.perf_counter() - start}
        rows.append(row)
        print(json.dumps(row), flush=True)

    sets, _ = baseline_sets(g, g.z_dim, ["axes", "random", "sefa"], seed=args.seed)
    for s in sets:
        measure(s.name, s.matrix, recipe="baseline", budget_min=0, steps=0)
    for recipe in args.recipes.split(","):
        config = LearnConfig(steps=10**9, eval_every=0, checkpoint_every=10**9, seed=0, **RECIPES[recipe])
        with tempfile.TemporaryDirectory() as run:
            for n, minutes in enumerate(budgets):
                directions = learn(g, config, out_dir=run, resume=n > 0, time_limit_s=minutes * 60)
                measure(f"{recipe} @ {minutes:g} min", directions.matrix, recipe=recipe, budget_min=minutes,
                        steps=directions.metadata["step"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"generator": g.describe(), "settings": settings.__dict__, "rows": rows}, indent=2))
    print("\n| set | steps | held-out penalty ↓ | D% ↑ | D_R ↑ | top activeness |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['steps']} | {r['heldout_penalty']:.4g} | {r['D_percent']:.1f} | {r['D_R']:.3f} "
              f"| {r['top_activeness']:.4g} |")


if __name__ == "__main__":
    main()

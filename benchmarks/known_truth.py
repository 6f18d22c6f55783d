"""Where learned directions beat the closed forms, on generators whose true factors are known.

For each known-truth generator (`truth-flat`, -aligned, -layers, -shapes; see
direction_finder/generators/truth.py) and each of SEEDS seeds (a seed draws the generator's
factor rotation, the learning stream and GANSpace's samples), every set of directions:

- closed forms: axes, random, SeFa of every layer z enters (`sefa`), of the first layer
  (`sefa-first`), GANSpace's PCA of the first layer's output (`ganspace`), and the curvature warm
  start alone (`curvature`: the rotation that diagonalises the tanh curvature of 8 samples'
  Jacobians, what `--init curvature` begins from);
- learned at a fixed budget of STEPS steps x batch BATCH: the recipes `paper` (random start,
  Adam lr 0.01), `curvature` (the curvature warm start, lr 0.001), `sefa` (SeFa refined on the
  manifold, lr 0.001) and `ganspace` (GANSpace's start, then the paper's Adam lr 0.01).

Measured: recovery (mean |cos| of a one-to-one matching of the true factors to the directions,
the Hungarian method), the held-out penalty (the training objective on 256 held-out samples,
common to every set of a seed), and, for the learned sets, the learning time and step at which
recovery first reaches 0.9 (recovery is computed after every step). Means with 95% intervals
(Student t over the seeds).

    ../.venv/bin/python known_truth.py --out results/known-truth.json   # ~6 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from direction_finder import LearnConfig, learn
from direction_finder.evaluation.stats import Statistic
from direction_finder.generators import load_generator, sefa_of
from direction_finder.generators.ganspace import ganspace_directions
from direction_finder.generators.truth import KINDS, PREFIX, matched_recovery
from direction_finder.learning.objective import HeldOut, heldout_penalty
from direction_finder.method.orthonormal import gram_schmidt, orthonormal_directions
from direction_finder.method.warmstart import curvature_directions

SEEDS = 5
STEPS = 1000
BATCH = 8
HELDOUT = 256
TARGET = 0.9  # the recovery whose time is reported
GANSPACE_SAMPLES = 4096
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"recipe": "paper"},
    "curvature": {"recipe": "curvature"},
    "sefa": {"recipe": "sefa"},
    "ganspace": {"recipe": "paper", "init": "ganspace"},
}


def interval(values: list[float]) -> dict[str, float]:
    """Mean and the half-width of its 95% interval (Student t over the seeds, as compare's)."""
    mean = Statistic.mean(values)
    low, high = mean.interval()
    return {"mean": mean.value, "ci95": (high - low) / 2}


def closed_forms(generator: Any, n: int, seed: int) -> dict[str, tuple[torch.Tensor, float]]:
    """(directions, seconds to compute) of each closed-form set."""
    out: dict[str, tuple[torch.Tensor, float]] = {}
    makers = {
        "axes": lambda: torch.eye(n, generator.z_dim),
        "random": lambda: gram_schmidt(torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))),
        "sefa": lambda: sefa_of(generator, n, "sefa"),
        "sefa-first": lambda: sefa_of(generator, n, "sefa-first"),
        "ganspace": lambda: ganspace_directions(generator, n, samples=GANSPACE_SAMPLES, seed=seed),
        "curvature": lambda: curvature_directions(generator, n, seed=seed),
        "truth": lambda: generator.basis[:n],  # the reference: the true factors (and the rest of R)
    }
    for name, make in makers.items():
        started = time.perf_counter()
        directions = make()
        out[name] = (directions.float(), time.perf_counter() - started)
    return out


def learned(generator: Any, n: int, seed: int, fields: dict[str, Any], steps: int) -> dict[str, Any]:
    """One learned set: its directions and when its recovery first reached TARGET."""
    config = LearnConfig.from_recipe(
        fields["recipe"], **{k: v for k, v in fields.items() if k != "recipe"},
        steps=steps, batch_size=BATCH, eval_every=0, seed=seed, num_directions=n,
    )  # fmt: skip
    truth = generator.true_directions
    reached: dict[str, float] = {}
    started = time.perf_counter()

    def follow(info: Any) -> None:
        if not reached and info.A is not None:
            with torch.no_grad():
                if matched_recovery(orthonormal_directions(info.A), truth) >= TARGET:
                    reached.update(step=info.step, seconds=time.perf_counter() - started)

    directions = learn(generator, config, on_step=follow)
    return {"directions": directions.matrix, "seconds": time.perf_counter() - started, "reached": reached}


def measure(kind: str, seed: int, steps: int, recipes: list[str], device: str = "cpu") -> dict[str, dict[str, Any]]:
    """Every set's recovery, held-out penalty and times on one generator and seed."""
    generator = load_generator(f"{PREFIX}{kind}:seed={seed}", device=device)
    n, truth = generator.z_dim, generator.true_directions
    config = LearnConfig(batch_size=BATCH, num_directions=n).resolved(generator)
    probe = HeldOut.draw(generator, n, HELDOUT, config.k, config.eta, seed=10_000 + seed)
    sets: dict[str, tuple[torch.Tensor, dict[str, Any]]] = {}
    for name, (directions, seconds) in closed_forms(generator, n, seed).items():
        exact = matched_recovery(directions, truth) >= TARGET  # a closed form is there at once, or never
        sets[name] = (directions, {"seconds": seconds, "reached_step": 0 if exact else None,
                                   "reached_seconds": seconds if exact else None})  # fmt: skip
    for name in recipes:
        run = learned(generator, n, seed, RECIPES[name], steps)
        sets[f"learned: {name}"] = (run["directions"], {"seconds": run["seconds"], "reached_step": run["reached"].get(
            "step"), "reached_seconds": run["reached"].get("seconds")})  # fmt: skip
    return {
        name: {"recovery": matched_recovery(Q, truth), **times,
               "heldout_penalty": heldout_penalty(generator, Q.to(generator.device), probe, config)}
        for name, (Q, times) in sets.items()
    }  # fmt: skip


def summarise(per_seed: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each set's means with intervals over the seeds, and how many seeds reached TARGET."""
    out = {}
    for name, rows in per_seed.items():
        reached = [r["reached_seconds"] for r in rows if r["reached_seconds"] is not None]
        out[name] = {
            "recovery": interval([r["recovery"] for r in rows]),
            "heldout_penalty": interval([r["heldout_penalty"] for r in rows]),
            "seconds": interval([r["seconds"] for r in rows]),
            "reached": f"{len(reached)}/{len(rows)}",
            "seconds_to_target": statistics.median(reached) if reached else None,
        }
    return out


def table(results: dict[str, Any]) -> str:
    """README's table: recovery (95% interval) per generator and set, time to TARGET in brackets."""
    kinds = list(results["generators"])
    names = list(next(iter(results["generators"].values()))["sets"])
    lines = ["| set | " + " | ".join(f"`{PREFIX}{k}`" for k in kinds) + " |", "|---|" + "---|" * len(kinds)]
    for name in names:
        cells = []
        for kind in kinds:
            s = results["generators"][kind]["sets"][name]
            r = s["recovery"]
            cell = f"{r['mean']:.2f} ± {r['ci95']:.2f}"
            if s["seconds_to_target"] is not None and name.startswith("learned"):
                cell += f" ({s['reached']}, {s['seconds_to_target']:.1f} s)"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/known-truth.json"))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and the same on every machine
    kinds, recipes = args.kinds.split(","), [r for r in args.recipes.split(",") if r]
    results: dict[str, Any] = {
        "format": "hpdirs.known-truth/1", "seeds": args.seeds, "steps": args.steps, "batch_size": BATCH,
        "heldout_samples": HELDOUT, "target": TARGET, "generators": {},
    }  # fmt: skip
    for kind in kinds:
        per_seed: dict[str, list[dict[str, Any]]] = {}
        for seed in range(args.seeds):
            for name, row in measure(kind, seed, args.steps, recipes, args.device).items():
                per_seed.setdefault(name, []).append(row)
            print(f"{kind} seed {seed}: " + ", ".join(f"{k} {v[-1]['recovery']:.3f}" for k, v in per_seed.items()),
                  file=sys.stderr, flush=True)  # fmt: skip
        results["generators"][kind] = {"sets": summarise(per_seed), "per_seed": per_seed}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()

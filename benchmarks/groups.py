"""Inside SeFa's near-degenerate groups of the DCGAN: do learned directions beat SeFa's there?

Theory (and the known-truth benchmark) says learning can only add to SeFa where SeFa cannot order
its directions: in the groups of neighbouring eigenvalues that GANSpace's 4,096 samples could not
tell apart (`make -C benchmarks spectrum`). This learns `--recipe sefa` (SeFa refined on the
manifold: direction i stays SeFa's direction i, rotated within reach) and `--recipe curvature`
for --minutes of CPU each, then, for each group, measures three sets of the group's size on the
same held-out data with compare (paired, 95% intervals): SeFa's directions of the group, the
refined set's directions of the same indices, and the curvature set's directions that lie most in
the group's span (by the energy of their projection on it). The penalty, D% and D_R are those of
each set of |group| directions: restricted to the group.

    ../.venv/bin/python groups.py --out results/groups-omniart.json   # ~35 minutes on 2 cores
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
from quality import RECIPES  # noqa: E402

from direction_finder.config import LearnConfig  # noqa: E402
from direction_finder.evaluation.compare import CompareSettings, DirectionSet, compare_sets, spectrum_of  # noqa: E402
from direction_finder.evaluation.report import with_interval  # noqa: E402
from direction_finder.generators import sefa_of  # noqa: E402
from direction_finder.learning.learn import learn  # noqa: E402


def learned_sets(g: EyeGenerator, minutes: float) -> dict[str, torch.Tensor]:
    """`--recipe sefa` and `--recipe curvature` after `minutes` of learning time each (seed 0)."""
    out = {}
    for recipe in ("sefa-riemannian", "curvature"):
        config = LearnConfig(steps=10**9, eval_every=0, checkpoint_every=10**9, seed=0, **RECIPES[recipe])
        with tempfile.TemporaryDirectory() as run:
            directions = learn(g, config, out_dir=run, time_limit_s=minutes * 60)
        out[recipe] = directions.matrix.float()
        print(f"{recipe}: {directions.metadata['step']} steps", file=sys.stderr, flush=True)
    return out


def in_span(Q: torch.Tensor, span: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The len(span) rows of Q (N, z_dim) with the most of their length in the span of `span`'s
    orthonormal rows, and the mean fraction of it they have there."""
    energy = ((Q.double() @ span.double().T) ** 2).sum(dim=1)  # (N,)
    chosen = torch.argsort(energy, descending=True)[: span.shape[0]]
    return Q[chosen], float(energy[chosen].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/groups-omniart.json"))
    parser.add_argument("--minutes", type=float, default=10.0, help="learning time of each recipe")
    parser.add_argument("--images", type=int, default=8000, help="compare's image budget per group")
    parser.add_argument("--seed", type=int, default=123, help="seed of the held-out probe")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    args = parser.parse_args()
    g = EyeGenerator("blue", args.device)
    spectrum = spectrum_of(g, g.z_dim)
    assert spectrum is not None
    sefa = sefa_of(g, g.z_dim).float()
    learned = learned_sets(g, args.minutes)
    rows = []
    for first, last in spectrum["groups"]:
        span = sefa[first : last + 1]  # (|G|, z_dim)
        refined = learned["sefa-riemannian"][first : last + 1]
        curvature, energy = in_span(learned["curvature"], span)
        kept = float(((refined.double() @ span.double().T) ** 2).sum(dim=1).mean())
        size = last - first + 1
        settings = CompareSettings(budget=str(args.images), seed=args.seed, top=min(8, size), sweep_steps=5,
                                   batch_size=32)  # fmt: skip
        started = time.perf_counter()
        results = compare_sets(g, span, baselines=[], settings=settings, name="sefa",
                               others=[DirectionSet("sefa refined", refined), DirectionSet("curvature", curvature)])  # fmt: skip
        row = {
            "group": [first, last], "size": size, "seconds": time.perf_counter() - started,
            "in_span": {"sefa refined": kept, "curvature": energy},
            "sets": {r.name: {m: s.as_dict() for m, s in r.metrics.items()} for r in results.reports},
            "differences": [d.as_dict() for d in results.differences],  # sefa - each learned set, paired
        }  # fmt: skip
        rows.append(row)
        print(f"group {first}-{last}: " + "; ".join(
            f"sefa - {d.other} {d.metric} {with_interval(d.statistic, '.3g')} ({d.verdict})"
            for d in results.differences), file=sys.stderr, flush=True)  # fmt: skip
    body = {"model": "omniart-eye", "class_name": "blue", "minutes": args.minutes, "images_per_group": args.images,
            "spectrum": spectrum, "groups": rows}  # fmt: skip
    args.out.write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    main()

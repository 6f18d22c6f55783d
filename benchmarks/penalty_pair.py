"""The held-out penalty alone, of saved direction sets against a reference, with every image spent on it.

compare's budget gives most images to the Hessians of D% and D_R. To tell a small difference in the
penalty itself, this draws S held-out samples (latent, one uniformly drawn direction, eta, k
Rademacher vectors: the same for every set) and reports each set's mean penalty and its paired
difference from the reference, with 95% t intervals (direction_finder.evaluation.stats).

    python penalty_pair.py --samples 3000 results/matrices-riemannian/sefa.safetensors \
        "results/matrices-batch32/sefa-b32 @ 10 min.safetensors"
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from omniart import EyeGenerator
from safetensors.torch import load_file

from direction_finder.evaluation.measures import penalties
from direction_finder.evaluation.report import with_interval
from direction_finder.evaluation.stats import Statistic
from direction_finder.learning.objective import HeldOut


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", help="the saved set the others are compared with")
    parser.add_argument("others", nargs="+")
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=321)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    parser.add_argument("--class-name", default="blue")
    parser.add_argument("--out", default="results/penalty-pair.json")
    args = parser.parse_args()
    g = EyeGenerator(args.class_name, args.device)
    paths = [args.reference, *args.others]
    sets = {Path(p).stem: load_file(p)["matrix"].float().to(g.device) for p in paths}
    n = next(iter(sets.values())).shape[0]
    held = HeldOut.draw(g, n, args.samples, k=2, eta=5.0, seed=args.seed)
    values, start = {}, time.perf_counter()
    for name, Q in sets.items():
        each = penalties(g, Q, held.z, held.index, held.eta, held.vectors, k=2, epsilon=0.1, batch_size=32)
        values[name] = Statistic.mean(each)
        print(f"{name}: {with_interval(values[name], '.4g')} ({time.perf_counter() - start:.0f} s)", flush=True)
    reference = Path(args.reference).stem
    body = {"samples": args.samples, "seed": args.seed, "sets": {k: v.as_dict() for k, v in values.items()},
            "minus_reference": {}}  # fmt: skip
    for name, value in values.items():
        if name != reference:
            diff = value - values[reference]
            body["minus_reference"][name] = {**diff.as_dict(), "p_value": diff.p_value()}
            print(f"{name} − {reference}: {with_interval(diff, '.3g')} (p = {diff.p_value():.3g})")
    Path(args.out).write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    main()

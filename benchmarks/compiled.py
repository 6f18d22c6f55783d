"""Eager and compiled learning steps and forwards of BigGAN-deep side by side, alternated in one
process (so drift of the machine's speed biases neither), with the compile time cold (an empty
cache folder) or warm (the folder a previous run filled). Random weights: the speed is the same.

    .venv/bin/python benchmarks/compiled.py --resolution 128 --batch-sizes 1,4 --cache /tmp/cache --out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch-sizes", default="1,4")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache", required=True, help="inductor's cache folder (empty: a cold compile)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = args.cache

    from direction_finder.compiled import CompiledGenerator
    from direction_finder.config import LearnConfig
    from direction_finder.generators.biggan import load_biggan
    from direction_finder.generators.random_weights import full_config, save_random_biggan
    from direction_finder.measuring.bench import _stepper, matmul_peak, reference_step

    folder = save_random_biggan(Path(tempfile.mkdtemp()), full_config(args.resolution), seed=1)
    eager = load_biggan(class_=207, weights=folder, device=args.device)
    compiled = CompiledGenerator(eager, "reduce-overhead" if args.device.startswith("cuda") else "default")
    result: dict = {"resolution": args.resolution, "device": args.device, "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "cache_was_empty": not any(Path(args.cache).rglob("*")),
                    "matmul_peak_gflops": matmul_peak(eager.device), "batches": {}}
    for b in [int(x) for x in args.batch_sizes.split(",")]:
        config = LearnConfig(batch_size=b).resolved(eager)
        steppers = {"eager": _stepper(eager, config), "compiled": _stepper(compiled, config),
                    "reference": _stepper(eager, config, reference_step)}
        start = time.perf_counter()
        steppers["compiled"]()  # the compile (forward and backward graphs)
        compile_s = time.perf_counter() - start
        for step in steppers.values():
            step()  # warm-up
        times: dict[str, list[float]] = {name: [] for name in steppers}
        for _ in range(args.steps):
            for name, step in steppers.items():
                t = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t)
        medians = {name: statistics.median(t) for name, t in times.items()}
        result["batches"][str(b)] = {"compile_s": compile_s, "step_s": medians,
                                     "compiled_vs_eager": medians["eager"] / medians["compiled"],
                                     "compiled_vs_reference": medians["reference"] / medians["compiled"],
                                     "eager_vs_reference": medians["reference"] / medians["eager"]}
        print(json.dumps({b: result["batches"][str(b)]}), flush=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

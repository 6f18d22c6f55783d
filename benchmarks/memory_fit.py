"""Does `--max-memory` keep a learning step within its budget? And what does inference take?

For each budget, a fresh process loads a BigGAN-deep with random full-size weights (the
published architecture: the same memory as the real weights), restarts the kernel's count of
its peak resident set after loading, learns `--steps` steps under that budget and reports the
layout chosen and the peak resident set of the whole process (torch, weights, steps). Then the
peak of generating 1, 2 and 4 images under no_grad (render, compare and the explorer's calls).

    python benchmarks/memory_fit.py --resolution 512 --batch-size 4 --budgets 3GiB,4GiB,6GiB,10GiB
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time, warnings
import torch
from direction_finder import LearnConfig, learn
from direction_finder.generators import load_biggan
from direction_finder.memory import PeakMeter
spec = json.loads(sys.argv[1])
g = load_biggan(None, 207, truncation=0.4, weights=spec["weights"], device=spec["device"])
out = {}
if spec.get("budget"):
    config = LearnConfig(batch_size=spec["batch_size"], steps=spec["steps"], eval_every=0, max_memory=spec["budget"])
    meter = PeakMeter(g.device)
    with warnings.catch_warnings(record=True) as said, meter:
        warnings.simplefilter("always")
        start = time.perf_counter()
        learn(g, config)
        out["seconds"] = time.perf_counter() - start
    out["chosen"] = [str(w.message) for w in said]
    out["peak_process_mb"], out["resident_after_load_mb"] = meter.peak_mb, meter.base_mb
else:
    z = g.sample_z(4, torch.Generator().manual_seed(0))
    for count in (1, 2, 4):
        meter = PeakMeter(g.device)
        with torch.no_grad(), meter:
            g(z[:count])
        out[str(count)] = meter.used_mb
print(json.dumps(out))
"""


def child(spec: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--budgets", default="3GiB,4GiB,6GiB,10GiB")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (the peak: the resident set, or CUDA's allocator)")
    parser.add_argument("--out", default=None, help="default: results/memory-fit-<device type>.json")
    args = parser.parse_args()
    folder = Path(__file__).parent / "results"
    args.out = args.out or str(folder / f"memory-fit-{args.device.split(':')[0]}.json")
    from direction_finder.generators.random_weights import full_config, save_random_biggan

    results: dict = {"device": args.device, "resolution": args.resolution, "batch_size": args.batch_size, "steps": args.steps, "budgets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        weights = str(save_random_biggan(Path(tmp) / "w", full_config(args.resolution), seed=0))
        results["inference_mb"] = child({"weights": weights, "device": args.device})
        print("inference", results["inference_mb"], flush=True)
        for budget in args.budgets.split(","):
            row = child({"weights": weights, "device": args.device, "budget": budget, "batch_size": args.batch_size,
                         "steps": args.steps})
            results["budgets"][budget] = row
            print(budget, row, flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

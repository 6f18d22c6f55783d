"""What `hpdirs compare` costs with its defaults on biggan-deep-128 (N = 128), before and after
the budget.

After: the real CLI, `hpdirs compare RUN --json` with every default (budget 10m, baselines axes,
random and SeFa, the side-by-side GIFs), on random full-size weights (they cost exactly what the
published ones do), timed from start to exit. Before: the precise computation the old defaults
made (8 samples, every direction, sweep of 7, top 8, 8 GIFs of 4 samples x 16 frames); its
image count is exact, its seconds are estimated at the images/s this run measured, since
running it takes hours on a CPU.

    ../.venv/bin/python compare_cost.py --out results/compare-cost-cpu.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from direction_finder.generators.random_weights import full_config, save_random_biggan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="default: results/compare-cost-<device type>.json")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    parser.add_argument("--budget", default=None, help="passed to compare (default: its own)")
    args = parser.parse_args()
    args.out = args.out or f"results/compare-cost-{args.device.split(':')[0]}.json"
    hpdirs = str(Path(sys.executable).parent / "hpdirs")
    with tempfile.TemporaryDirectory() as tmp:
        weights = save_random_biggan(Path(tmp) / "weights", full_config(128), seed=1)
        learn = [hpdirs, "learn", "--weights", str(weights), "--class", "207", "--steps", "1", "--batch-size", "1",
                 "--eval-every", "0", "--out", tmp, "--name", "r", "--device", args.device]  # fmt: skip
        subprocess.run(learn, check=True, capture_output=True)
        command = [hpdirs, "compare", str(Path(tmp) / "golden_retriever" / "r"), "--json", "--device", args.device]
        if args.budget:
            command += ["--budget", args.budget]
        start = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    result = json.loads(done.stdout)
    measured = result["measured"]
    after_images = measured["images"]
    # the measuring's own rate: its seconds exclude the GIFs, which come after
    rate = (after_images - measured["images_by_part"]["gifs"]) / measured["seconds"]
    # the old defaults: 4 sets x (128 directions x 8 samples x (2k + 7 sweep steps) + 8 samples x
    # 2 x 8 x 9 Hessian images, the centre evaluated twice per diagonal entry) + 8 GIFs x 2 x 16 x 4
    before_images = 4 * (128 * 8 * (4 + 7) + 8 * 2 * 8 * 9) + 8 * 2 * 16 * 4
    body = {
        "model": "biggan-deep-128 (random full-size weights)",
        "directions": 128,
        "sets": list(result["sets"]),
        "after": {"command": "hpdirs compare RUN" + (f" --budget {args.budget}" if args.budget else ""),
                  "images": after_images, "seconds_total": seconds, "measured": measured},  # fmt: skip
        "before": {"settings": "precise, 8 samples, sweep 7, top 8, 8 GIFs", "images": before_images,
                   "seconds_estimated": before_images / rate, "images_per_s_used": rate},  # fmt: skip
        "heldout_penalty": {name: s["heldout_penalty"] for name, s in result["sets"].items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(body, indent=2) + "\n")
    print(json.dumps({k: body[k] for k in ("after", "before")}, indent=2))


if __name__ == "__main__":
    main()

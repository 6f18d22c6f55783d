"""Where a learning step's time goes, by kernel: torch.profiler over eager and compiled steps of a
full-size BigGAN-deep (random weights) at one batch size, the operators ranked by their own CPU
time. What bounds the step (convolutions, elementwise work, the optimiser, Python) reads from it.

    .venv/bin/python benchmarks/profile_step.py --batch-size 1 --steps 3 --out results/profile-step-cpu.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from direction_finder.compiled import CompiledGenerator
    from direction_finder.config import LearnConfig
    from direction_finder.generators.biggan import load_biggan
    from direction_finder.generators.random_weights import full_config, save_random_biggan
    from direction_finder.measuring.bench import _stepper

    folder = save_random_biggan(Path(tempfile.mkdtemp()), full_config(args.resolution), seed=1)
    eager = load_biggan(class_=207, weights=folder, device=args.device)
    config = LearnConfig(batch_size=args.batch_size).resolved(eager)
    result: dict = {"resolution": args.resolution, "batch_size": args.batch_size, "device": args.device,
                    "threads": torch.get_num_threads(), "torch": torch.__version__, "variants": {}}
    for name, generator in (("eager", eager), ("compiled", CompiledGenerator(eager))):
        step = _stepper(generator, config)
        step()
        step()  # compiled: the compile, then one warm step
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                step()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        rows = [{"op": e.key, "self_ms_per_step": e.self_cpu_time_total / 1000 / args.steps,
                 "share": e.self_cpu_time_total / total, "calls_per_step": e.count / args.steps}
                for e in events[: args.top]]
        result["variants"][name] = {"self_ms_per_step": total / 1000 / args.steps, "top": rows}
        print(name, f"{total / 1000 / args.steps:.0f} ms/step")
        for row in rows:
            print(f"  {row['share']:6.1%} {row['self_ms_per_step']:8.1f} ms  {row['op'][:70]}")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Peak memory of one learning step, per resolution, layout and activation checkpointing.

Each measurement runs in a fresh process, so that nothing else the process did counts: the
child loads a BigGAN-deep (random full-size weights, the published architecture, so the same
memory as the real ones), reads its resident set (the baseline: torch, weights), restarts the
kernel's count of its peak (Linux, /proc/self/clear_refs; loading peaks above what stays),
takes two learning steps and reads the peak again. The step's own memory is the difference.
On CUDA the allocator's `max_memory_allocated` is read instead. The second step is timed (the
first pays for one-time set-up).

    python -m direction_finder.measuring.memory '{"weights": DIR, "batch_size": 1, "chunk_size": 4, ...}'
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from direction_finder.memory import PeakMeter

Note = Callable[[str], None]


def measure_here(spec: dict[str, Any]) -> dict[str, Any]:
    """In this process: load, baseline, two steps, peak (see the module's docstring)."""
    from direction_finder.config import LearnConfig
    from direction_finder.generators.biggan import load_biggan
    from direction_finder.learning.objective import draw_batch, train_step

    generator = load_biggan(None, 207, truncation=0.4, weights=spec["weights"], device=spec.get("device", "cpu"))
    device = generator.device
    config = LearnConfig(
        batch_size=spec["batch_size"],
        chunk_size=spec["chunk_size"],
        micro_batch=spec.get("micro_batch"),
        checkpoint_activations=spec["checkpoint"],
        layer=spec.get("layer"),
    ).resolved(generator)
    generator.set_checkpointing(config.checkpoint_activations)
    rng = torch.Generator().manual_seed(0)
    A = torch.randn(int(generator.z_dim), int(generator.z_dim), generator=rng).to(device).requires_grad_()
    optimizer = torch.optim.Adam([A], lr=config.lr)
    seconds = 0.0
    meter = PeakMeter(device)
    with meter:  # the peak is counted from the resident set after loading (loading peaks above it)
        for step in range(2):
            batch = draw_batch(generator, config, rng)
            start = time.perf_counter()
            train_step(generator, A, optimizer, config, batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start if step == 1 else seconds
    baseline, peak = meter.base_mb, meter.peak_mb
    return {"baseline_mb": baseline, "peak_mb": peak, "step_mb": peak - baseline, "step_s": seconds}


def measure_in_child(spec: dict[str, Any], timeout_s: float = 3600) -> dict[str, Any]:
    """measure_here in a fresh Python process (its own peak resident set)."""
    done = subprocess.run(
        [sys.executable, "-m", "direction_finder.measuring.memory", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": last}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def memory_table(
    resolutions: Sequence[int],
    *,
    batch_size: int = 1,
    k: int = 2,
    device: str = "cpu",
    weights_dir: str | os.PathLike | None = None,
    note: Note | None = None,
) -> dict[str, Any]:
    """Per resolution: the two ends of the layouts (one perturbed batch per call, and all 2k in
    one call) with and without activation checkpointing, on random full-size weights made in a
    temporary folder."""
    from direction_finder.generators.random_weights import full_config, save_random_biggan

    note = note or (lambda _: None)
    out: dict[str, Any] = {"batch_size": batch_size, "device": device, "resolutions": {}}
    with tempfile.TemporaryDirectory(dir=weights_dir) as tmp:
        for resolution in resolutions:
            note(f"random biggan-deep-{resolution} weights")
            folder = save_random_biggan(Path(tmp) / str(resolution), full_config(resolution), seed=0)
            rows: dict[str, Any] = {}
            for chunk in (1, 2 * k):
                for checkpoint in (False, True):
                    name = f"{chunk} per call" + (", checkpointed" if checkpoint else "")
                    note(f"{resolution} px: {name}")
                    spec = {"weights": str(folder), "batch_size": batch_size, "chunk_size": chunk,
                            "checkpoint": checkpoint, "device": device}  # fmt: skip
                    rows[name] = {"chunk_size": chunk, "checkpoint": checkpoint, **measure_in_child(spec)}
            out["resolutions"][str(resolution)] = rows
            for chunk in (1, 2 * k):
                plain, saved = rows[f"{chunk} per call"], rows[f"{chunk} per call, checkpointed"]
                if "error" not in plain and "error" not in saved and plain["step_mb"] > 0 and plain["step_s"] > 0:
                    saved["memory_vs_plain"] = saved["step_mb"] / plain["step_mb"]
                    saved["time_vs_plain"] = saved["step_s"] / plain["step_s"]
    return out


if __name__ == "__main__":
    print(json.dumps(measure_here(json.loads(sys.argv[1]))))

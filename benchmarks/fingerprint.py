"""A fingerprint of hpdirs' observable behaviour, for checking that a refactoring changed none of it.

Runs the command line on the synthetic model (learn, resume, render, compare, info) in a
temporary folder, and prints one JSON object of SHA-256 digests: the direction matrices and A,
the loss log without its timing columns, every rendered frame (decoded pixels, not file bytes),
the sheet, and compare's numbers. Run it before and after a change on the same machine and
compare the two outputs; any difference is a change of behaviour.

    ../.venv/bin/python fingerprint.py > before.json   # ... change the code ...
    ../.venv/bin/python fingerprint.py > after.json && diff before.json after.json
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence
from safetensors.numpy import load_file

MODEL = "synthetic:z_dim=8,factors=4,size=8,seed=0"
HPDIRS = [sys.executable, "-m", "hpdirs_cli"]


def digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    return hashlib.sha256(str(array.dtype).encode() + str(array.shape).encode() + array.tobytes()).hexdigest()[:16]


def run(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    done = subprocess.run([*HPDIRS, *args], capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"hpdirs {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def matrices(path: Path) -> dict[str, str]:
    return {f"{path.name}:{key}": digest(value) for key, value in sorted(load_file(path).items())}


def text(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def loss_log(path: Path) -> str:
    with open(path, newline="") as f:
        rows = [(r["step"], r["loss"], r["smoothed_loss"], r["heldout"]) for r in csv.DictReader(f)]
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def frames(path: Path) -> str:
    with Image.open(path) as image:
        pixels = [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(image)]
    return digest(np.stack(pixels))


def tiny_biggan(root: Path) -> dict[str, str]:
    """The BigGAN paths (SeFa init, an intermediate layer, class and truncation) on random tiny weights."""
    try:
        from direction_finder.generators.random_weights import save_random_biggan, tiny_config
    except ImportError:  # the layout before random weights had a module of their own
        from direction_finder.generators.biggan import save_random_biggan, tiny_config  # type: ignore[attr-defined]

    weights = save_random_biggan(root / "weights", tiny_config())
    run("learn", "--weights", str(weights), "--offline", "--class", "207", "--truncation", "0.5",
        "--init", "sefa", "--lr", "0.001", "--layer", "block1", "--steps", "6", "--batch-size", "2",
        "--eval-every", "3", "--eval-samples", "2", "--out", str(root), "--name", "b")
    run_dir = root / "golden_retriever" / "b"
    out = {f"biggan/{key}": value for key, value in matrices(run_dir / "directions.safetensors").items()}
    run("render", str(run_dir), "--directions", "0-1", "--samples", "2", "--frames", "4", "--format", "gif")
    out["biggan/render/overview.gif"] = frames(run_dir / "render" / "overview.gif")
    return out


def main() -> None:
    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run("learn", "--model", MODEL, "--steps", "30", "--batch-size", "4", "--eval-every", "10",
            "--eval-samples", "4", "--checkpoint-every", "10", "--time-limit", "1000h",
            "--out", str(root), "--name", "a")
        run_dir = root / "synthetic" / "a"
        run("learn", "--resume", str(run_dir), "--steps", "40")
        for name in ("directions.safetensors", "directions_best.safetensors"):
            out.update(matrices(run_dir / name))
        out["loss.csv"] = loss_log(run_dir / "loss.csv")
        run("render", str(run_dir), "--directions", "0-3", "--axes", "0", "--samples", "3", "--frames", "6",
            "--format", "gif,png")
        render = run_dir / "render"
        for gif in sorted(render.glob("*.gif")):
            out[f"render/{gif.name}"] = frames(gif)
        out["render/sheet.png"] = digest(np.asarray(Image.open(render / "sheet.png").convert("RGB")))
        out["render/index.html"] = text(render / "index.html")
        run("compare", str(run_dir), "--samples", "3", "--top", "4", "--no-gifs")
        report = json.loads((run_dir / "compare" / "report.json").read_text())
        out["compare/sets"] = hashlib.sha256(json.dumps(report["sets"], sort_keys=True).encode()).hexdigest()[:16]
        out["compare/compare.html"] = text(run_dir / "compare" / "compare.html")
        info = run("info", str(run_dir))
        out["info/lines"] = str(len(info.splitlines()))
        out.update(tiny_biggan(root))
    print(json.dumps(out, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()

"""RUN/README.md: a run folder that explains itself, and can be shared as it is.

Front matter in the Hugging Face model-card style (library_name, tags, base_model), then the
generator, the settings, how far the run got, the command that reproduces it, and links to its
render and comparison once they exist. Made from the run's own files (config.json, loss.csv),
so anything may rewrite it at any time; written atomically.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from direction_finder.artifacts.directions import LAST_NAME
from direction_finder.artifacts.labels import read_label_layers, read_labels
from direction_finder.files import atomic_write

CARD_NAME = "README.md"
HUB_MODELS = {"biggan-deep-128": "osanseviero/BigGAN-deep-128"}  # base_model where a hub repo is known


def reproduce_command(config: dict[str, Any], generator: dict[str, Any]) -> str:
    """The `hpdirs learn` command line that starts this run again."""
    model = str(generator.get("model", ""))
    parts = ["hpdirs learn", f"--model {model}"] if model else ["hpdirs learn"]
    if isinstance(generator.get("class_index"), int) and generator["class_index"] >= 0:
        parts += [f"--class {generator['class_index']}", f"--truncation {generator.get('truncation')}"]
    if generator.get("weights"):
        parts.append(f"--weights {generator['weights']}")
    for key, value in sorted((generator.get("model_args") or {}).items()):
        parts.append(f"--model-arg {key}={json.dumps(value) if not isinstance(value, str) else value}")
    if generator.get("output_range"):
        parts.append(f"--output-range {','.join(str(v) for v in generator['output_range'])}")
    for key, value in config.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):  # an on/off flag
            parts += [flag] if value else []
        elif value is not None and key != "reduction":
            parts.append(f"{flag} {value}")
    return " \\\n    ".join(parts)


def _progress(run_dir: Path) -> tuple[int, float | None, float | None]:
    """(steps done, last held-out penalty, best held-out penalty) from loss.csv."""
    try:
        with open(run_dir / "loss.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return 0, None, None
    heldout = [float(r["heldout"]) for r in rows if r.get("heldout")]
    step = int(rows[-1]["step"]) if rows else 0
    return step, (heldout[-1] if heldout else None), (min(heldout) if heldout else None)


def write_run_card(run_dir: str | Path) -> Path:
    """(Re)write RUN/README.md from the run's files."""
    run_dir = Path(run_dir)
    body = json.loads((run_dir / "config.json").read_text())
    config, generator = body.get("config", {}), body.get("generator", {})
    model = str(generator.get("model", "custom"))
    step, last, best = _progress(run_dir)
    tags = ["hpdirs", "hessian-penalty", "gan", "latent-directions", model.split(":")[0]]
    front = ["---", "library_name: hpdirs", f"tags: [{', '.join(tags)}]"]
    if model in HUB_MODELS:
        front.append(f"base_model: {HUB_MODELS[model]}")
    front.append("---")
    rows = "\n".join(f"| `{key}` | {value} |" for key, value in config.items())
    pages = [("render", "render/index.html"), ("comparison", "compare/compare.html")]
    links = [f"- [{label}]({path})" for label, path in pages if (run_dir / path).is_file()]
    names, layers = read_labels(run_dir / LAST_NAME), read_label_layers(run_dir / LAST_NAME)
    named = [
        f"- {index}: {name}" + (f" (layers {layers[index][0]}-{layers[index][1]})" if index in layers else "")
        for index, name in sorted(names.items())
    ]
    heldout = f"{last:.6g} (best {best:.6g})" if last is not None and best is not None else "not measured yet"
    text = "\n".join([
        *front, "",
        f"# Latent directions of {model} · {generator.get('class_name', '')}".rstrip(" ·"), "",
        f"{config.get('num_directions')} directions learned with the Hessian Penalty (Peebles et al., ECCV 2020) "
        f"by hpdirs; truncation {generator.get('truncation')}.", "",
        f"- steps done: {step} of {config.get('steps')}",
        f"- held-out penalty: {heldout}",
        "- files: `directions.safetensors` (last), `directions_best.safetensors` (best held-out), "
        "`loss.csv`, `loss.png`, `checkpoint.pt`", "",
        "```python", "from direction_finder import load_directions  # or: import hpdirs",
        "d = load_directions(\"directions.safetensors\")  # d.matrix (N, z_dim), d.apply(z, 3, 2.0)", "```", "",
        "## Settings", "", "| setting | value |", "|---|---|", rows, "",
        "## Reproduce", "", "```bash", reproduce_command(config, generator), "```", "",
        *(["## Named directions", "", *named, ""] if named else []),
        *(["## Pictures", "", *links, ""] if links else []),
    ])  # fmt: skip
    path = run_dir / CARD_NAME
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path

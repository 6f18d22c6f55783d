"""RUN/README.md: a run folder that explains itself, and can be shared as it is.

Front matter in the Hugging Face model-card style (library_name, tags, base_model), then the
generator, the settings, how far the run got, the command that reproduces it, and links to its
render and comparison once they exist. Made from the run's own files (config.json, loss.csv),
so anything may rewrite it at any time; written atomically.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from direction_finder.artifacts.directions import LAST_NAME
from direction_finder.artifacts.labels import read_label_layers, read_labels
from direction_finder.errors import DirectionsFileError
from direction_finder.files import read_capped, read_json, write_text_atomic

CARD_NAME = "README.md"
HUB_MODELS = {"biggan-deep-128": "osanseviero/BigGAN-deep-128"}  # base_model where a hub repo is known
LOG_ROW_BYTES = 128  # a row of loss.csv: six numbers of at most 17 characters, and commas


def log_limit(steps: int) -> int:
    """The most bytes loss.csv of a run of `steps` steps can hold: a row a step, and its header."""
    return LOG_ROW_BYTES * (int(steps) + 2)


def read_run_json(path: Path) -> dict[str, Any]:
    """A run's config.json, read within limits: an object whose `config` and `generator` are
    objects (OSError or ValueError saying why not)."""
    body = read_json(path, "config.json of a run")
    if not isinstance(body, dict) or not all(isinstance(body.get(k), dict) for k in ("config", "generator")):
        raise ValueError("it is not an object with a 'config' and a 'generator' object")
    return body


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


def _progress(run_dir: Path, steps: int) -> tuple[int, float | None, float | None]:
    """(steps done, last held-out penalty, best held-out penalty) from loss.csv."""
    path = run_dir / "loss.csv"
    try:
        text = read_capped(path, log_limit(steps), "loss.csv").decode("utf-8")
    except FileNotFoundError:
        return 0, None, None
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    heldout = [float(r["heldout"]) for r in rows if r.get("heldout")]
    step = int(rows[-1]["step"]) if rows else 0
    return step, (heldout[-1] if heldout else None), (min(heldout) if heldout else None)


# what the card lists of a run folder, where the file exists (a run stopped early may have no best)
CARD_FILES = (("directions.safetensors", " (last)"), ("directions_best.safetensors", " (best held-out)"),
              ("loss.csv", ""), ("loss.png", ""), ("checkpoint.pt", ""))  # fmt: skip


def write_run_card(run_dir: str | Path) -> Path:
    """(Re)write RUN/README.md from the run's files; a DirectionsFileError naming the file when
    config.json or loss.csv cannot be read (nothing is written then)."""
    run_dir = Path(run_dir)
    try:
        body = read_run_json(run_dir / "config.json")
        config, generator = body["config"], body["generator"]
        steps = config.get("steps")
        step, last, best = _progress(run_dir, steps if isinstance(steps, int) and steps > 0 else 0)
    except (OSError, ValueError, TypeError, KeyError, csv.Error) as exc:
        detail = " ".join(str(exc).split())[:160]
        raise DirectionsFileError(f"{run_dir} has a damaged config.json or loss.csv ({detail})") from None
    model = str(generator.get("model", "custom"))
    tags = ["hpdirs", "hessian-penalty", "gan", "latent-directions", model.split(":")[0]]
    front = ["---", "library_name: hpdirs", f"tags: [{', '.join(tags)}]"]
    if model in HUB_MODELS and not generator.get("weights"):  # published weights (cache or download), not a folder
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
        "- files: " + ", ".join(f"`{name}`{about}" for name, about in CARD_FILES if (run_dir / name).is_file()), "",
        "```python", "from direction_finder import load_directions  # or: import hpdirs",
        "d = load_directions(\"directions.safetensors\")  # d.matrix (N, z_dim), d.apply(z, 3, 2.0)", "```", "",
        "## Settings", "", "| setting | value |", "|---|---|", rows, "",
        "## Reproduce", "", "```bash", reproduce_command(config, generator), "```", "",
        *(["## Named directions", "", *named, ""] if named else []),
        *(["## Pictures", "", *links, ""] if links else []),
    ])  # fmt: skip
    path = run_dir / CARD_NAME
    write_text_atomic(path, text)
    return path

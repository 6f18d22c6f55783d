"""`hpdirs info`: a directions file's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from hpdirs_cli.console import console, emit_json, shown, user_errors
from hpdirs_cli.options import Json

if TYPE_CHECKING:
    from direction_finder.artifacts.directions import Directions

File = Annotated[Path, typer.Argument(help="A directions file, or a run folder.", metavar="FILE")]


def info(file: File, json_out: Json = False) -> None:
    """Print a directions file's metadata.

    $ hpdirs info outputs/golden_retriever/first-try/directions.safetensors
    """
    from direction_finder.artifacts.directions import load_directions

    with user_errors():
        directions = load_directions(file)
    if json_out:
        labels = {str(i): v for i, v in directions.labels.items()}
        layers = {str(i): list(pair) for i, pair in directions.label_layers.items()}
        emit_json({"file": str(file), "num_directions": directions.num_directions, "z_dim": directions.z_dim,
                   "metadata": directions.metadata, "labels": labels, "label_layers": layers})  # fmt: skip
        return
    print_metadata(file, directions)


METADATA_ORDER = [
    "format",
    "model",
    "class_index",
    "class_name",
    "truncation",
    "weights",
    "kind",
    "step",
    "loss",
    "heldout",
    "created",
    "config",
    "versions",
]


def print_metadata(file: Path, directions: Directions) -> None:
    """Every metadata field of a directions file, nested ones as `key.sub`."""
    title = shown(f"{file}: {directions.num_directions} directions × z_dim {directions.z_dim}")
    table = Table("field", "value", title=title)
    order = METADATA_ORDER
    items = sorted(directions.metadata.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    for key, value in items:
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                table.add_row(shown(f"{key}.{sub}"), shown(sub_value))
        else:
            table.add_row(shown(key), shown(value))
    for index, name in sorted(directions.labels.items()):
        layers = directions.label_layers.get(index)
        table.add_row(f"label.{index}", shown(name if layers is None else f"{name} (layers {layers[0]}-{layers[1]})"))
    console.print(table)

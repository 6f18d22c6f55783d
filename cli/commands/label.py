"""`hpdirs label`: name a direction."""

from __future__ import annotations

from typing import Annotated

import typer

from hpdirs_cli.console import say, user_errors
from hpdirs_cli.options import Source, option

Index = Annotated[int, typer.Argument(help="The direction's index.", metavar="INDEX")]
Name = Annotated[str, typer.Argument(help="Its name, e.g. zoom; an empty name removes it.", metavar="NAME")]
LABEL_LAYERS_HELP = (
    "Layers this direction edits by default, e.g. 0-3.\nrender and the explorer apply it to these latent layers "
    "only (BigGAN-deep: 0 is the first linear layer, then one per block)."
)
LabelLayers = Annotated[str | None, option(LABEL_LAYERS_HELP, "all")]


def label(run_or_file: Source, index: Index, name: Name, layers: LabelLayers = None) -> None:
    """Name a direction, optionally with the layers it edits.

    The name is kept in labels.json beside the file; render, compare, info and the explorer show it.

    $ hpdirs label outputs/golden_retriever/first-try 3 zoom
    """
    from direction_finder.artifacts.directions import name_direction

    with user_errors():
        path, labels = name_direction(run_or_file, index, name, layers)
    named = f"named {labels[index]!r}" if index in labels else "no longer named"
    named += f" (layers {layers})" if layers is not None and index in labels else ""
    say(f"direction {index} of {path} is {named}")

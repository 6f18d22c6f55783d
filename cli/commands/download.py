"""`hpdirs download`: published weights into the cache."""

from __future__ import annotations

from typing import Annotated

import typer

from direction_finder.generators.catalogue import DEFAULT_MODEL
from hpdirs_cli.console import emit_json, say, user_errors
from hpdirs_cli.options import Json
from hpdirs_cli.progress import download_progress

Model = Annotated[str, typer.Option(help="biggan-deep-128, -256 or -512.")]


def download(model: Model = DEFAULT_MODEL, json_out: Json = False) -> None:
    """Fetch published weights into the cache, for offline runs.

    The cache is $HPDIRS_CACHE, else $XDG_CACHE_HOME/hpdirs, else ~/.cache/hpdirs; learn, render, compare and
    explore find the weights there.

    $ hpdirs download --model biggan-deep-256
    """
    from direction_finder.generators.weights import resolve_weights

    with user_errors(), download_progress() as progress:
        files = resolve_weights(model, None, progress=progress)
    if json_out:
        emit_json({"model": model, "folder": str(files.folder), "source": files.source,
                   "config": str(files.config), "weights": str(files.weights)})  # fmt: skip
        return
    say(f"{model}: {files.folder} ({files.source})")

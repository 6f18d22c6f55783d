"""`hpdirs models`: the models --model accepts."""

from __future__ import annotations

from rich.table import Column, Table

from hpdirs_cli.console import console


def models() -> None:
    """List the models --model accepts, plug-ins included.

    Built-in models, installed plug-ins (entry points hpdirs.generators) and how to name your own.

    $ hpdirs models
    """
    from direction_finder.generators.families import available_models

    table = Table(Column("--model", overflow="fold"), Column("from", no_wrap=True), "what")  # no name cut short
    for name, source, what in available_models():
        table.add_row(name, source, what)
    console.print(table)

"""`hpdirs help`: a command's every option in full (what --help keeps to one line each), the
same text the documentation's command pages are made from."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hpdirs_cli.console import console, fail
from hpdirs_cli.helptext import help_text

Name = Annotated[str | None, typer.Argument(help="The command to explain.", metavar="COMMAND", show_default="all")]


def help_command(ctx: typer.Context, command: Name = None) -> None:
    """Print a command's options in full: what each does, its default.

    $ hpdirs help learn
    """
    parent: Any = ctx.parent if ctx.parent is not None else ctx
    group = parent.command
    names = group.list_commands(parent)
    if command is not None and command not in names:
        raise fail(f"no command {command!r}; choose one of {', '.join(names)}")
    for name in [command] if command else names:
        sub = group.get_command(parent, name)
        console.file.write(help_text(sub, typer.Context(sub, info_name=name, parent=parent), full=True) + "\n")
    console.file.flush()

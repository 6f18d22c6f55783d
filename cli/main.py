"""The `hpdirs` Typer app: it registers the commands, one module each in commands/ (options,
body, printing). Importing it imports no torch, so --help and shell completion answer at once; a
command imports the library's heavy parts when it runs.

No default is written in the command line: the options show the library's defaults, and an
option of `learn` left out is not passed on (a resumed run keeps its own settings).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

import direction_finder
from hpdirs_cli.commands.bench import bench
from hpdirs_cli.commands.classes import classes
from hpdirs_cli.commands.compare import compare
from hpdirs_cli.commands.completion import COMPLETE_VAR, completion
from hpdirs_cli.commands.doctor import doctor
from hpdirs_cli.commands.download import download
from hpdirs_cli.commands.explore import explore
from hpdirs_cli.commands.help import help_command
from hpdirs_cli.commands.info import info
from hpdirs_cli.commands.label import label
from hpdirs_cli.commands.learn import learn
from hpdirs_cli.commands.models import models
from hpdirs_cli.commands.render import render
from hpdirs_cli.console import (
    Command,
    OneLineErrors,
    console,
    deliver_termination_as_interruption,
    hold_standard_descriptors,
)

app = typer.Typer(
    cls=OneLineErrors,
    name="hpdirs",
    help="Interpretable directions in BigGAN-deep's latent space, by the Hessian Penalty.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
# in --help's order: looking things up, then the work in the order a user does it
COMMANDS = (classes, completion, models, download, learn, info, label, render, compare, explore, bench, doctor)
for command in COMMANDS:
    app.command(cls=Command)(command)
app.command(cls=Command, name="help")(help_command)


def _version(value: bool) -> None:
    if value:
        console.print(f"hpdirs {direction_finder.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.", metavar=""),
    ] = None,
) -> None:
    """hpdirs: learn, render and compare latent directions of a frozen BigGAN-deep."""


def main() -> None:
    """Console-script entry point (termination signals arrive as an interruption; see console)."""
    hold_standard_descriptors()
    deliver_termination_as_interruption()
    if COMPLETE_VAR in os.environ:  # the shell asks for completions: typer's shell classes answer
        from typer._completion_classes import completion_init

        completion_init()
    app(prog_name="hpdirs")


if __name__ == "__main__":
    main()

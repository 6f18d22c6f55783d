"""The `hpdirs` Typer app. Each command parses its options, calls one library function, prints."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Optional, TypeVar

import typer
from rich.console import Console

import direction_finder
from direction_finder.errors import HpdirsError

app = typer.Typer(
    name="hpdirs",
    help="Discover interpretable directions in BigGAN-deep's latent space with the Hessian Penalty.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print a one-line error on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user-facing errors into one line on stderr and a non-zero exit."""
    try:
        yield
    except HpdirsError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None


def _version(value: bool) -> None:
    if value:
        console.print(f"hpdirs {direction_finder.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """hpdirs: learn, render and compare latent directions of a frozen BigGAN-deep."""


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()

"""The `hpdirs` Typer app. Each command parses its options, calls one library function, prints."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

import direction_finder
from direction_finder.errors import HpdirsError, HpdirsWarning

app = typer.Typer(
    name="hpdirs",
    help="Discover interpretable directions in BigGAN-deep's latent space with the Hessian Penalty.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)



def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print a one-line error on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    if issubclass(category, HpdirsWarning):
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user-facing errors into one line on stderr and a non-zero exit."""
    warnings.showwarning = _show_warning
    try:
        yield
    except HpdirsError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", 130) from None
    finally:
        warnings.showwarning = _default_showwarning


@contextmanager
def download_progress() -> Iterator:
    """A rich progress bar fed by the library's (filename, done, total) download callback.

    The bar starts with the first byte, so a command that downloads nothing prints nothing.
    """
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err_console, transient=True,
    )
    tasks: dict[str, int] = {}

    def update(filename: str, done: int, total: int | None) -> None:
        if not tasks:
            bar.start()
        if filename not in tasks:
            tasks[filename] = bar.add_task(f"downloading {filename}", total=total)
        bar.update(tasks[filename], completed=done)

    try:
        yield update
    finally:
        if tasks:
            bar.stop()


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


@app.command()
def classes(
    query: Annotated[str, typer.Argument(help="Part of a name, an index or a WordNet id; empty lists all 1000.")] = "",
) -> None:
    """List or search the 1000 ImageNet classes BigGAN-deep was trained on.

    Example: hpdirs classes retriever
    """
    from direction_finder.generators.imagenet import search_classes

    found = search_classes(query)
    if not found:
        raise fail(f"no ImageNet class matches {query!r}; try a shorter query or `hpdirs classes`")
    table = Table("index", "WordNet id", "names", title=f"{len(found)} ImageNet classes")
    for c in found:
        table.add_row(str(c.index), c.wordnet_id, ", ".join(c.names))
    console.print(table)


@app.command()
def download(
    model: Annotated[str, typer.Option(help="biggan-deep-128, biggan-deep-256 or biggan-deep-512.")] = "biggan-deep-128",
) -> None:
    """Fetch a model's published weights into the cache ($HPDIRS_CACHE), so later runs work offline.

    Example: hpdirs download --model biggan-deep-256
    """
    from direction_finder.generators.weights import resolve_weights

    with user_errors(), download_progress() as progress:
        files = resolve_weights(model, None, progress=progress)
    console.print(f"{model}: {files.folder} ({files.source})")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()

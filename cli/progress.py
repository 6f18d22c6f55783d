"""Progress on the terminal that several commands share: downloads and generated images (learn's
own bar is in commands/learn.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from direction_finder.validation import counted, format_duration
from hpdirs_cli.console import console, err_console


@contextmanager
def download_progress() -> Iterator[Callable[[str, int, int | None], None]]:
    """A rich progress bar fed by the library's (filename, done, total) download callback.

    The bar starts with the first byte, so a command that downloads nothing prints nothing.
    """
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

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


@contextmanager
def images_progress(
    what: str, transient: bool = False, stderr: bool = False, narrate: bool = False
) -> Iterator[Callable[[int, int], None]]:
    """An `on_images(done, total)` callback that shows images_bar, started by the first images:
    an error found before any image is generated is its one line, with no bar drawn before it.
    `narrate` also says, in lines a log keeps, how many images there will be, about how long they
    take (timed after the first call, which warms up), and how long they took."""
    bar = images_bar(what, transient, stderr)
    task: list[TaskID] = []
    started = time.perf_counter()
    state = {"first": 0, "first_at": started, "done": 0, "estimated": False}

    def say(text: str) -> None:
        bar.console.print(text, highlight=False)

    def update(done: int, total: int) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task(what, total=total))
            state.update(first=done, first_at=time.perf_counter())
            if narrate:
                say(f"{what}: {counted(total, 'image')} to generate")
        elif narrate and not state["estimated"] and done >= 2 * state["first"] and done < total:
            state["estimated"] = True
            rate = (done - state["first"]) / max(time.perf_counter() - state["first_at"], 1e-9)
            say(f"measured {rate:.3g} images/s: about {format_duration((total - done) / rate)} more")
        bar.update(task[0], completed=done, total=total)
        state["done"] = done

    try:
        yield update
    finally:
        if task:
            bar.stop()
            if narrate:
                took = format_duration(time.perf_counter() - started)
                say(f"{what}: {counted(int(state['done']), 'image')} in {took}")


def images_bar(what: str, transient: bool = False, stderr: bool = False) -> Progress:
    """A bar of images generated out of the total, with the time left (on stderr when stdout
    carries a JSON document)."""
    return Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        TimeRemainingColumn(),
        console=err_console if stderr else console,
        transient=transient,
    )

"""Progress on the terminal: downloads, generated images, and learning steps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from direction_finder.generators import describe
from direction_finder.learning.learn import StepInfo
from direction_finder.learning.runner import RunPlan
from direction_finder.validation import format_duration
from hpdirs_cli.console import console, err_console, shown


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


class LearnProgress:
    """The header line, then a bar with loss, held-out penalty, rate and time left."""

    def __init__(self) -> None:
        columns = (
            SpinnerColumn(),
            TextColumn("step {task.completed}/{task.total}"),
            BarColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("held-out {task.fields[heldout]}"),
            TextColumn("{task.fields[rate]} sample-steps/s"),
            TextColumn("ETA {task.fields[eta]}"),
        )
        self.bar = Progress(*columns, console=console, transient=False)
        self.task: TaskID | None = None
        self.plan: RunPlan | None = None
        self.announced = False

    def __enter__(self) -> LearnProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start(self, plan: RunPlan) -> None:
        self.plan, config, about = plan, plan.config, describe(plan.generator)
        ranks = f" · {plan.dist.world} ranks ({plan.dist.backend})" if plan.dist is not None else ""
        console.print(
            Text("hpdirs learn ", style="bold")
            + shown(
                f"{about.get('model', '')} · {about.get('class_name', '')}"
                f" · truncation {about.get('truncation', '')} · {config.num_directions} directions"
                f" · {config.steps} steps × batch {config.batch_size} · device {plan.generator.device}{ranks}"
                f" → {plan.run_dir}"
            ),
            highlight=False,
        )
        announcement = plan.start_announcement()
        if announcement is not None:
            console.print(announcement, highlight=False)
        self.bar.start()
        self.task = self.bar.add_task("learn", total=config.steps, loss="-", heldout="-", rate="-", eta="-")

    def step(self, info: StepInfo) -> None:
        assert self.task is not None and self.plan is not None
        heldout = self.bar.tasks[0].fields["heldout"]  # the last evaluation's, until the next one
        if info.heldout is not None and info.best_heldout is not None:
            heldout = f"{info.heldout:.4g}"
        self.bar.update(
            self.task,
            completed=info.step,
            loss=f"{info.smoothed:.4g}",
            rate=f"{info.sample_steps_per_s:.3g}",
            eta=format_duration(info.eta_s) if info.eta_s is not None else "-",
            heldout=heldout,
        )
        if not self.announced and info.eta_s is not None:
            self.announced = True
            per_step = self.plan.config.batch_size / info.sample_steps_per_s
            self.bar.console.print(
                f"measured {per_step:.3g} s/step ({info.sample_steps_per_s:.3g} sample-steps/s): "
                f"about {format_duration(info.eta_s)} more for {info.steps - info.step} steps"
                + (" plus held-out evaluations" if self.plan.config.eval_every else ""),
                highlight=False,
            )

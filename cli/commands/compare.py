"""`hpdirs compare`: directions against baselines or a second set, in numbers and GIFs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Column, Table

from direction_finder.evaluation.budget import DEFAULT_BUDGET
from direction_finder.evaluation.settings import PRECISE_SAMPLES, CompareSettings
from direction_finder.generators.choice import GeneratorChoice
from direction_finder.starts import DEFAULT_BASELINES, STARTS
from hpdirs_cli.console import console, emit_json, say, shown, user_errors
from hpdirs_cli.options import (
    OUTPUT_PANEL,
    SAMPLES_PANEL,
    Batch,
    Compile,
    ImageMemory,
    Json,
    Latents,
    Source,
    flag,
    opens_a_generator,
    option,
)
from hpdirs_cli.progress import download_progress, images_progress

if TYPE_CHECKING:
    from direction_finder.evaluation.compare import Comparison

COMPARE = CompareSettings()  # the library's defaults, which these options take as theirs
STARTS_HELP = "; ".join(f"{start.name}: {start.help}" for start in STARTS.values())
SETS, MEASURE = "The sets", "The measurement"
BASELINES_HELP = (
    "Comma-separated starts to compare with.\nEach is the start --init of that name gives: "
    f"{STARTS_HELP}. Left out with a second set: none."
)
Baselines = Annotated[str | None, option(BASELINES_HELP, ",".join(DEFAULT_BASELINES), panel=SETS)]
Against = Annotated[
    Path | None,
    typer.Argument(help="A second run or directions file, paired.", metavar="[AGAINST]", show_default="the baselines"),
]
SAMPLES_HELP = (
    "Held-out samples for every metric and set.\nThe precise computation, without a budget: every metric "
    "on these samples."
)
Samples = Annotated[int | None, option(SAMPLES_HELP, "by --budget", panel=SAMPLES_PANEL)]
BUDGET_HELP = (
    "Time (10m, 90s, 1h) or images (3300) to spend.\nThe budget chooses the samples and reserves the GIFs' images."
)
Budget = Annotated[str | None, option(BUDGET_HELP, DEFAULT_BUDGET, panel=SAMPLES_PANEL)]
PRECISE_HELP = (
    f"Every direction on the same samples; no budget.\n{PRECISE_SAMPLES} samples, or --samples; slower than a budget."
)
Precise = Annotated[bool, flag(PRECISE_HELP, "off", "--precise", panel=SAMPLES_PANEL)]
Seed = Annotated[int, option("Seed of the samples, base points and vectors.", panel=SAMPLES_PANEL)]
Top = Annotated[int, option("N': most active directions in the D% / D_R Hessians.", panel=MEASURE)]
Eta = Annotated[float, option("Base points and sweeps within [-eta, eta].", panel=MEASURE)]
Epsilon = Annotated[float, option("Finite-difference step.", panel=MEASURE)]
K = Annotated[int, option("Rademacher vectors per sample.", None, "--k", panel=MEASURE)]
SWEEP_HELP = "Coefficient values in the activeness sweep.\nThe precise computation's."
SweepSteps = Annotated[int, option(SWEEP_HELP, panel=MEASURE)]
LAYER_MEASURE = "Measure on a layer's activation.\nInstead of pixels; the names are learn's --layer ones."
Layer = Annotated[str | None, option(LAYER_MEASURE, "pixel space", panel=MEASURE)]
Gifs = Annotated[bool, flag("Write the side-by-side GIFs.", None, "--gifs/--no-gifs", panel=OUTPUT_PANEL)]
COMPARE_OUT = (
    "Output folder.\nLeft out: RUN/compare (RUN/compare-vs-<other> with a second set), or compare-<file> beside a "
    "directions file."
)
Out = Annotated[Path | None, option(COMPARE_OUT, "RUN/compare", panel=OUTPUT_PANEL)]


@opens_a_generator(recorded=True)
def compare(
    run_or_file: Source,
    against: Against = None,
    baselines: Baselines = None,
    budget: Budget = None,
    precise: Precise = False,
    samples: Samples = None,
    seed: Seed = COMPARE.seed,
    top: Top = COMPARE.top,
    eta: Eta = COMPARE.eta,
    epsilon: Epsilon = COMPARE.epsilon,
    k: K = COMPARE.k,
    sweep_steps: SweepSteps = COMPARE.sweep_steps,
    batch_size: Batch = None,
    max_memory: ImageMemory = None,
    layer: Layer = None,
    gifs: Gifs = True,
    out: Out = None,
    latents: Latents = None,
    compile: Compile = COMPARE.compile,
    json_out: Json = False,
    choice: GeneratorChoice = GeneratorChoice(),
) -> None:
    """Compare directions with baselines or a second set, in numbers.

    The baselines are axis-aligned z, random and SeFa directions (or a second run, paired): each metric with its
    95% interval, paired differences, and side-by-side GIFs.

    $ hpdirs compare outputs/golden_retriever/first-try --budget 1500
    """
    from direction_finder.evaluation.compare import compare_file

    with user_errors():
        chosen = str(latents) if latents is not None else None
        settings = CompareSettings(
            samples=samples, seed=seed, top=top, eta=eta, epsilon=epsilon, k=k, sweep_steps=sweep_steps,
            batch_size=batch_size, layer=layer, latents=chosen, budget=budget, precise=precise, max_memory=max_memory,
            compile=compile,
        )  # fmt: skip
        with (
            download_progress() as progress,
            images_progress("measuring", transient=True, stderr=json_out) as on_images,
        ):
            result = compare_file(
                run_or_file,
                settings,
                against=against,
                baselines=baselines,
                generator=choice,
                out_dir=out,
                gifs=gifs,
                progress=progress,
                on_images=on_images,
            )
    if json_out:
        emit_json({"out_dir": str(result.out_dir), **result.info, "notes": result.notes,
                   "measured": result.results.measured,
                   "sets": {r.name: r.summary() for r in result.reports},
                   "differences": [d.as_dict() for d in result.results.differences]})  # fmt: skip
        return
    print_comparison(result)


def print_comparison(result: Comparison) -> None:
    """One row per direction set (value ± 95% half-width), the paired differences, the notes, and
    where the files went."""
    from direction_finder.evaluation.report import (
        DIFFERENCE_HEADER,
        SUMMARY_HEADER,
        difference_rows,
        measured_line,
        summary_cells,
    )

    info, results = result.info, result.results
    table = Table(
        *[Column(head, overflow="fold") for head in SUMMARY_HEADER],  # narrow: a long word folds, never "…"
        title=shown(f"{info.get('model', '')} · {info.get('class_name', '')} · top {result.settings.top}"),
        caption=measured_line(results.measured, result.settings),
    )
    for r in result.reports:
        table.add_row(*map(shown, summary_cells(r)))
    console.print(table)
    if results.differences:
        reference = result.reports[0].name
        paired = Table(
            *[shown(h.format(reference=reference)).plain for h in DIFFERENCE_HEADER],
            title=shown(f"{reference} − each set, paired, ± 95% half-width (better/worse for {reference}; n.s.: no "
                        "significant difference)"),
        )  # fmt: skip
        for row in difference_rows(results.differences):
            paired.add_row(*map(shown, row))
        console.print(paired)
    for note in result.notes:
        say(f"note: {note}")
    say(f"wrote {result.out_dir}/compare.html, report.json, report.csv, differences.csv")

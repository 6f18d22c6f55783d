"""The `hpdirs` Typer app. Each command parses its options, calls one library function, prints.

Defaults are not written here: an option left out is not passed, and its help shows the
library's default (LearnConfig, RenderSettings, CompareSettings, BenchSettings, GeneratorChoice).
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar
from rich.table import Table

import direction_finder
from direction_finder.bench import BenchSettings
from direction_finder.compare import BASELINES, DEFAULT_BASELINES, CompareSettings
from direction_finder.config import DEFAULT_RECIPE, RECIPES, default
from direction_finder.errors import UsageError
from direction_finder.generators import DEFAULT_CLASS, DEFAULT_MODEL, DEFAULT_TRUNCATION, GeneratorChoice
from direction_finder.render import RenderSettings
from hpdirs_cli.console import (
    OneLineErrors,
    console,
    deliver_termination_as_interruption,
    download_progress,
    duration,
    err_console,
    fail,
    user_errors,
)
from hpdirs_cli.tables import print_bench, print_comparison, print_metadata

# The library's defaults, shown by --help and passed when an option is left out.
RENDER, COMPARE, BENCH = RenderSettings(), CompareSettings(), BenchSettings()

app = typer.Typer(
    cls=OneLineErrors,
    name="hpdirs",
    help="Discover interpretable directions in BigGAN-deep's latent space with the Hessian Penalty.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)


def _given(**options: Any) -> dict[str, Any]:
    """The options the user gave (None: left out, so the library's default applies)."""
    return {name: value for name, value in options.items() if value is not None}


def _images_bar(what: str, transient: bool = False) -> Bar:
    return Bar(TextColumn(what), BarColumn(), MofNCompleteColumn(), TextColumn("images"), TimeRemainingColumn(),
               console=console, transient=transient)


def _version(value: bool) -> None:
    if value:
        console.print(f"hpdirs {direction_finder.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
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
    model: Annotated[str, typer.Option(help="biggan-deep-128, biggan-deep-256 or biggan-deep-512.")] = DEFAULT_MODEL,
) -> None:
    """Fetch a model's published weights into the cache ($HPDIRS_CACHE), so later runs work offline.

    Example: hpdirs download --model biggan-deep-256
    """
    from direction_finder.generators.weights import resolve_weights

    with user_errors(), download_progress() as progress:
        files = resolve_weights(model, None, progress=progress)
    console.print(f"{model}: {files.folder} ({files.source})")


# Options of every command that builds a generator.
DeviceOption = Annotated[str, typer.Option("--device", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")]
OfflineOption = Annotated[bool, typer.Option("--offline", help="Never touch the network (also HPDIRS_OFFLINE=1).",
                                             show_default="off")]
# ... and of those that read a directions file and rebuild its generator.
FROM_FILE = "from the file"
ModelOverride = Annotated[Optional[str], typer.Option("--model", help="Override the model named in the file.",
                                                      show_default=FROM_FILE)]
ClassOverride = Annotated[Optional[str], typer.Option("--class", help="Override the class named in the file.",
                                                      show_default=FROM_FILE)]
TruncationOverride = Annotated[Optional[float], typer.Option("--truncation", help="Override the truncation in the file.",
                                                             show_default=FROM_FILE)]
WeightsOverride = Annotated[Optional[Path], typer.Option("--weights", help="Weights folder.",
                                                         show_default="from the file, else the cache")]
Source = Annotated[Path, typer.Argument(help="A run folder or a directions .safetensors file.")]


# --- learn -------------------------------------------------------------------------------

LAYER_HELP = ("Fast mode: penalise the normalised activation after GenBlock i instead of pixels: block0..block9 "
              "at 4,8,8,16,16,32,32,64,64,128 px for biggan-deep-128 (block11 at 256 px for -256); "
              "`hpdirs bench` prints each with its shape.")
RECIPE_ABOUT = {"paper": "Peebles et al.", "curvature": "the curvature warm start refined; README, Quality"}
RECIPE_HELP = ("Preset of --init and --lr: " + " or ".join(
    f"{name} ({fields['init']}, {fields['lr']}: {RECIPE_ABOUT.get(name, 'see README')})" for name, fields in RECIPES.items())
    + ". --init/--lr override it.")
INIT_HELP = ("random (Kaiming-normal, as the reference), axes, sefa (closed-form warm start; BigGAN), or curvature "
             "(rotation that diagonalises the tanh curvature of 8 samples' Jacobians; 16*z_dim images; try with "
             "--lr 0.001).")


def _learn_default(name: str) -> str:
    value = default(name)
    return "z_dim" if name == "num_directions" and value is None else str(value)


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `2h` or plain seconds -> seconds (> 0)."""
    units = {"s": 1, "m": 60, "h": 3600}
    value, unit = (text[:-1], text[-1]) if text and text[-1].lower() in units else (text, "s")
    try:
        seconds = float(value) * units[unit.lower()]
    except ValueError:
        raise UsageError(f"--time-limit {text!r}: give a duration such as 90s, 30m or 2h") from None
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"--time-limit {text!r} must be a positive duration")
    return seconds


@app.command()
def learn(
    class_: Annotated[Optional[str], typer.Option("--class", help="ImageNet class: name, index or WordNet id.", show_default=DEFAULT_CLASS)] = None,  # noqa: E501
    model: Annotated[Optional[str], typer.Option(help="biggan-deep-128/-256/-512, or synthetic[:z_dim=16,factors=4] (known true directions, offline).", show_default=f"{DEFAULT_MODEL}, or what --weights holds")] = None,  # noqa: E501
    weights: Annotated[Optional[Path], typer.Option(help="Folder with config.json + pytorch_model.bin (else the cache, else a download).", show_default="the cache")] = None,  # noqa: E501
    truncation: Annotated[Optional[float], typer.Option(help="Truncation in (0, 1]; snapped to BigGAN's 0.02 grid.", show_default=str(DEFAULT_TRUNCATION))] = None,  # noqa: E501
    num_directions: Annotated[Optional[int], typer.Option(help="N directions to learn (<= z_dim).", show_default=_learn_default("num_directions"))] = None,  # noqa: E501
    steps: Annotated[Optional[int], typer.Option(help="Optimisation steps.", show_default=_learn_default("steps"))] = None,  # noqa: E501
    batch_size: Annotated[Optional[int], typer.Option(help="Samples per step.", show_default=_learn_default("batch_size"))] = None,  # noqa: E501
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.", show_default=_learn_default("lr"))] = None,
    eta: Annotated[Optional[float], typer.Option(help="Base points w = eta_b e_i with eta_b ~ U[-eta, eta].", show_default=_learn_default("eta"))] = None,  # noqa: E501
    epsilon: Annotated[Optional[float], typer.Option(help="Finite-difference step.", show_default=_learn_default("epsilon"))] = None,  # noqa: E501
    k: Annotated[Optional[int], typer.Option("--k", help="Rademacher vectors per sample (>= 2).", show_default=_learn_default("k"))] = None,  # noqa: E501
    recipe: Annotated[Optional[str], typer.Option(help=RECIPE_HELP, show_default=DEFAULT_RECIPE)] = None,
    init: Annotated[Optional[str], typer.Option(help=INIT_HELP, show_default=_learn_default("init"))] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of every random draw.", show_default=_learn_default("seed"))] = None,  # noqa: E501
    checkpoint_every: Annotated[Optional[int], typer.Option(help="Steps between checkpoints.", show_default=_learn_default("checkpoint_every"))] = None,  # noqa: E501
    eval_every: Annotated[Optional[int], typer.Option(help="Steps between held-out evaluations (0: never).", show_default=_learn_default("eval_every"))] = None,  # noqa: E501
    eval_samples: Annotated[Optional[int], typer.Option(help="Samples in the fixed held-out set.", show_default=_learn_default("eval_samples"))] = None,  # noqa: E501
    chunk_size: Annotated[Optional[int], typer.Option(help="Perturbed batches per generator call (1..2k).", show_default="calls of ~2 images on CPU; all 2k on GPU or with --layer")] = None,  # noqa: E501
    layer: Annotated[Optional[str], typer.Option(help=LAYER_HELP, show_default="pixel space")] = None,
    device: DeviceOption = "auto",
    out: Annotated[Path, typer.Option(help="Output root; runs go to OUT/<class>/<name>/.")] = Path("outputs"),
    name: Annotated[Optional[str], typer.Option(help="Run name.", show_default="the UTC time")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this folder from its checkpoint.", show_default="start a new run")] = None,  # noqa: E501
    time_limit: Annotated[Optional[str], typer.Option(help="Stop and save after this much learning time (e.g. 90s, 30m, 2h); resume later.", show_default="none")] = None,  # noqa: E501
    offline: OfflineOption = False,
) -> None:
    """Learn N interpretable directions for one class by minimising the Hessian Penalty.

    Example: hpdirs learn --class golden_retriever --steps 2000 --batch-size 8
    Several GPUs: torchrun --nproc-per-node 4 -m hpdirs_cli learn --class golden_retriever --batch-size 64
    """
    from direction_finder.distributed import job_from_env
    from direction_finder.learn import LearnInterrupted, RunRequest, learn_run

    settings = _given(num_directions=num_directions, steps=steps, batch_size=batch_size, lr=lr, eta=eta,
                      epsilon=epsilon, k=k, init=init, seed=seed, checkpoint_every=checkpoint_every,
                      eval_every=eval_every, eval_samples=eval_samples, chunk_size=chunk_size, layer=layer)
    choice = GeneratorChoice(model, class_, truncation, weights, device, offline or None)
    with user_errors(), job_from_env(device) as dist:
        request = RunRequest(choice, settings, recipe, out, name, resume,
                             parse_duration(time_limit) if time_limit is not None else None)
        if dist is not None and not dist.is_main:  # rank 0 shows progress and errors
            try:
                learn_run(request, dist=dist)
            except LearnInterrupted as exc:
                raise typer.Exit(128 + int(exc.signum or signal.SIGINT)) from None
            return
        with download_progress() as progress, _LearnProgress() as shown:
            plan = learn_run(request, dist=dist, progress=progress, on_start=shown.start, on_step=shown.step)
    console.print(f"done: {plan.run_dir}/directions.safetensors (best by held-out: directions_best.safetensors)")
    console.print(f"next: hpdirs render {plan.run_dir}", highlight=False)


class _LearnProgress:
    """The header line, then a bar with loss, held-out penalty, rate and time left."""

    def __init__(self) -> None:
        columns = (SpinnerColumn(), TextColumn("step {task.completed}/{task.total}"), BarColumn(),
                   TextColumn("loss {task.fields[loss]}"), TextColumn("held-out {task.fields[heldout]}"),
                   TextColumn("{task.fields[rate]} sample-steps/s"), TextColumn("ETA {task.fields[eta]}"))
        self.bar = Bar(*columns, console=console, transient=False)
        self.task, self.plan, self.announced = None, None, False

    def __enter__(self) -> _LearnProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def start(self, plan: Any) -> None:
        from direction_finder.generators import describe

        self.plan, config, about = plan, plan.config, describe(plan.generator)
        ranks = f" · {plan.dist.world} ranks ({plan.dist.backend})" if plan.dist is not None else ""
        console.print(f"[bold]hpdirs learn[/] {about.get('model', '')} · {about.get('class_name', '')}"
                      f" · truncation {about.get('truncation', '')} · {config.num_directions} directions"
                      f" · {config.steps} steps × batch {config.batch_size} · device {plan.generator.device}{ranks}"
                      f" → {plan.run_dir}", highlight=False)
        if plan.warmstart_images:
            console.print(f"curvature warm start: Jacobians of {plan.warmstart_images // (2 * plan.generator.z_dim)} "
                          f"samples ({plan.warmstart_images} images) …", highlight=False)
        self.bar.start()
        self.task = self.bar.add_task("learn", total=config.steps, loss="-", heldout="-", rate="-", eta="-")

    def step(self, info: Any) -> None:
        assert self.task is not None and self.plan is not None
        fields = dict(loss=f"{info.smoothed:.4g}", rate=f"{info.sample_steps_per_s:.3g}",
                      eta=duration(info.eta_s) if info.eta_s is not None else "-")
        if info.heldout is not None and info.best_heldout is not None:
            fields["heldout"] = f"{info.heldout:.4g}"
        self.bar.update(self.task, completed=info.step, **fields)
        if not self.announced and info.eta_s is not None:
            self.announced = True
            per_step = self.plan.config.batch_size / info.sample_steps_per_s
            self.bar.console.print(f"measured {per_step:.3g} s/step ({info.sample_steps_per_s:.3g} sample-steps/s): "
                                   f"about {duration(info.eta_s)} more for {info.steps - info.step} steps"
                                   + (" plus held-out evaluations" if self.plan.config.eval_every else ""),
                                   highlight=False)


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="A directions file, or a run folder.")],
) -> None:
    """Print a directions file's metadata as a table.

    Example: hpdirs info outputs/golden_retriever/my-run/directions.safetensors
    """
    from direction_finder.directions import load_directions

    with user_errors():
        directions = load_directions(file)
    print_metadata(file, directions)


# --- render ------------------------------------------------------------------------------

@app.command()
def render(
    run_or_file: Source,
    directions: Annotated[Optional[str], typer.Option(help="Which directions, e.g. 0-7,12.", show_default="0-7")] = None,
    samples: Annotated[int, typer.Option(help="Samples per frame (columns of each grid).")] = RENDER.samples,  # noqa: E501
    seed: Annotated[int, typer.Option(help="Seed of the samples' latents.")] = RENDER.seed,  # noqa: E501
    eta: Annotated[float, typer.Option(help="Sweep each direction from -eta to +eta.")] = RENDER.eta,  # noqa: E501
    frames: Annotated[int, typer.Option(help="Distinct eta values per sweep (the loop plays them forth and back).")] = RENDER.frames,  # noqa: E501
    fps: Annotated[float, typer.Option(help="Frames per second of GIFs and MP4s.")] = RENDER.fps,  # noqa: E501
    align: Annotated[bool, typer.Option("--align/--no-align", help="Put every sample at the same coordinate along the direction (paper Fig. 7d).")] = RENDER.align,  # noqa: E501
    axes: Annotated[Optional[str], typer.Option(help="Also render these axis-aligned z components, e.g. 0-15.", show_default="none")] = None,  # noqa: E501
    format: Annotated[str, typer.Option("--format", help="Comma-separated: gif, mp4, png.")] = ",".join(RENDER.formats),  # noqa: E501
    size: Annotated[Optional[int], typer.Option(help="Pixels per image in the outputs.", show_default="the model's resolution")] = None,  # noqa: E501
    label: Annotated[bool, typer.Option("--label/--no-label", help="Print direction index and eta above each frame.")] = RENDER.label,  # noqa: E501
    batch_size: Annotated[Optional[int], typer.Option(help="Images per generator call.", show_default="4 on CPU, 32 on GPU")] = None,  # noqa: E501
    out: Annotated[Optional[Path], typer.Option(help="Output folder.", show_default="RUN/render, or render-<file> beside a file")] = None,  # noqa: E501
    model: ModelOverride = None,
    class_: ClassOverride = None,
    truncation: TruncationOverride = None,
    weights: WeightsOverride = None,
    device: DeviceOption = "auto",
    offline: OfflineOption = False,
) -> None:
    """Render direction sweeps: a GIF grid per direction, an overview GIF, a PNG sheet, index.html.

    Example: hpdirs render outputs/golden_retriever/first-try --directions 0-7 --samples 6
    """
    from direction_finder.render import render_file

    with user_errors():
        settings = RenderSettings(directions, axes or [], samples, seed, eta, frames, fps, align, format, size, label,
                                  batch_size)
        choice = GeneratorChoice(model, class_, truncation, weights, device, offline or None)
        with download_progress() as progress, _images_bar("rendering") as bar:
            task = bar.add_task("render", total=None)
            target = render_file(run_or_file, settings, generator=choice, out_dir=out, progress=progress,
                                 on_images=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(f"wrote {target}/index.html", highlight=False)


# --- compare -----------------------------------------------------------------------------

@app.command()
def compare(
    run_or_file: Source,
    baselines: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(BASELINES)} (the --init curvature warm start; 16*z_dim images more).")] = ",".join(DEFAULT_BASELINES),  # noqa: E501
    samples: Annotated[int, typer.Option(help="Held-out samples shared by every set.")] = COMPARE.samples,  # noqa: E501
    seed: Annotated[int, typer.Option(help="Seed of the held-out samples, base points and vectors.")] = COMPARE.seed,  # noqa: E501
    top: Annotated[int, typer.Option(help="N': most active directions in the D% / D_R Hessians.")] = COMPARE.top,  # noqa: E501
    eta: Annotated[float, typer.Option(help="Base points and sweeps within [-eta, eta].")] = COMPARE.eta,  # noqa: E501
    epsilon: Annotated[float, typer.Option(help="Finite-difference step.")] = COMPARE.epsilon,  # noqa: E501
    k: Annotated[int, typer.Option("--k", help="Rademacher vectors per sample.")] = COMPARE.k,  # noqa: E501
    sweep_steps: Annotated[int, typer.Option(help="Coefficient values in the activeness sweep.")] = COMPARE.sweep_steps,  # noqa: E501
    batch_size: Annotated[int, typer.Option(help="Images per generator call.")] = COMPARE.batch_size,  # noqa: E501
    layer: Annotated[Optional[str], typer.Option(help="Measure on this layer's activation instead of pixels (see `hpdirs learn --help`).", show_default="pixel space")] = None,  # noqa: E501
    gifs: Annotated[bool, typer.Option("--gifs/--no-gifs", help="Write the side-by-side GIFs.")] = True,
    out: Annotated[Optional[Path], typer.Option(help="Output folder.", show_default="RUN/compare, or compare-<file> beside a file")] = None,  # noqa: E501
    model: ModelOverride = None,
    class_: ClassOverride = None,
    truncation: TruncationOverride = None,
    weights: WeightsOverride = None,
    device: DeviceOption = "auto",
    offline: OfflineOption = False,
) -> None:
    """Compare learned directions with axis-aligned z, random and SeFa directions, in numbers and GIFs.

    Example: hpdirs compare outputs/golden_retriever/first-try --baselines axes,random,sefa --samples 8
    """
    from direction_finder.compare import compare_file

    with user_errors():
        settings = CompareSettings(samples, seed, top, eta, epsilon, k, sweep_steps, batch_size, layer)
        choice = GeneratorChoice(model, class_, truncation, weights, device, offline or None)
        with download_progress() as progress, _images_bar("measuring", transient=True) as bar:
            task = bar.add_task("compare", total=None)
            result = compare_file(run_or_file, settings, baselines=baselines, generator=choice,
                                  out_dir=out, gifs=gifs, progress=progress,
                                  on_images=lambda done, total: bar.update(task, completed=done, total=total))
    print_comparison(result, settings)


# --- bench -------------------------------------------------------------------------------

@app.command()
def bench(
    model: Annotated[Optional[str], typer.Option(help="biggan-deep-128/-256/-512 or synthetic[:...].", show_default=f"{DEFAULT_MODEL}, or what --weights holds")] = None,  # noqa: E501
    weights: Annotated[Optional[Path], typer.Option(help="Weights folder (random weights measure the same speed).", show_default="the cache")] = None,  # noqa: E501
    class_: Annotated[str, typer.Option("--class", help="ImageNet class (does not change the speed).")] = DEFAULT_CLASS,
    batch_size: Annotated[str, typer.Option("--batch-size", help="Comma-separated batch sizes to measure.")] = ",".join(map(str, BENCH.batch_sizes)),  # noqa: E501
    steps: Annotated[int, typer.Option(help="Timed repetitions per measurement (median; after one warm-up).")] = BENCH.steps,  # noqa: E501
    layer: Annotated[str, typer.Option(help="Layer for the fast-mode measurement: a name, auto (mid resolution) or none.")] = str(BENCH.layer),  # noqa: E501
    render: Annotated[bool, typer.Option("--render/--no-render", help="Also measure render images/s.")] = True,
    device: DeviceOption = "auto",
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench.json"),
    offline: OfflineOption = False,
) -> None:
    """Measure forward images/s, learning sample-steps/s per layout vs the reference step, FLOPs, MFU,
    the --layer fast mode, memory and render speed on this machine; writes bench.json.

    Example: hpdirs bench --model biggan-deep-128 --batch-size 1,4 --steps 3
    """
    from direction_finder.bench import bench_to_file

    with user_errors():
        try:
            sizes = [int(b) for b in batch_size.split(",") if b.strip()]
        except ValueError:
            raise fail(f"--batch-size {batch_size!r}: give comma-separated integers, e.g. 1,4") from None
        settings = BenchSettings(sizes, steps, None if layer.lower() == "none" else layer, render)
        choice = GeneratorChoice(model, class_, None, weights, device, offline or None)

        def show_layers(layers: dict[str, tuple[int, int, int]]) -> None:
            names = ", ".join(f"{n} {c}x{h}x{w}" for n, (c, h, w) in layers.items())
            console.print(f"layers for --layer: {names}", highlight=False)

        with download_progress() as progress, err_console.status("measuring") as status:
            results = bench_to_file(choice, settings, out, progress=progress, on_layers=show_layers,
                                    note=lambda message: status.update(f"measuring: {message}"))
    print_bench(results)
    console.print(f"wrote {out}", highlight=False)


def main() -> None:
    """Console-script entry point (termination signals arrive as an interruption; see console)."""
    deliver_termination_as_interruption()
    app(prog_name="hpdirs")


if __name__ == "__main__":
    main()

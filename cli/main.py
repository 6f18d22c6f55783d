"""The `hpdirs` Typer app. Each command parses its options, calls one library function, prints."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
import typer.core
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

import direction_finder
from direction_finder.errors import HpdirsError, HpdirsWarning, Terminated


class _ReaderGone(io.TextIOBase):
    """sys.stdout or sys.stderr, looked up at each write, that goes quiet instead of failing once
    its reader has gone (`hpdirs learn ... | head`): a closed pipe must not end a run that is
    writing its results to files. The descriptor is pointed at /dev/null so that the
    interpreter's own flush at exit does not fail either."""

    def __init__(self, name: str) -> None:
        self.name, self.gone = name, False

    @property
    def stream(self):  # noqa: ANN201
        return getattr(sys, self.name)

    def _quiet(self) -> None:
        self.gone = True
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._quiet()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._quiet()

    def isatty(self) -> bool:
        return not self.gone and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"


class _OneLineErrors(typer.core.TyperGroup):
    """Typer's own usage errors (unknown option, bad type, missing argument) as one `error:`
    line and exit code 2, like every other error of hpdirs, instead of a boxed panel."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            fail("aborted")
            sys.exit(1)
        except typer.TyperException as exc:  # click's UsageError and friends, bundled by typer
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            command = getattr(getattr(exc, "ctx", None), "command_path", "hpdirs")
            fail(f"{' '.join(message.split())} (see `{command} --help`)")
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    name="hpdirs",
    help="Discover interpretable directions in BigGAN-deep's latent space with the Hessian Penalty.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
console = Console(file=_ReaderGone("stdout"))
err_console = Console(file=_ReaderGone("stderr"))


def fail(message: str, code: int = 1) -> "typer.Exit":
    """Print a one-line error on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """hpdirs' own warnings as one line; a library's (torch, PIL, ...) are for developers and
    shown only with HPDIRS_DEBUG=1."""
    if issubclass(category, HpdirsWarning):
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
    elif os.environ.get("HPDIRS_DEBUG"):
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user-facing errors into one line on stderr and a non-zero exit."""
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        yield
    except HpdirsError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        raise fail(f"interrupted by {signal.Signals(signum).name}; files are written whole or not at all, "
                   "so nothing partial was left", 128 + signum) from None
    except MemoryError:
        raise fail("not enough memory; lower --batch-size (or --samples, --frames)") from None
    except RuntimeError as exc:  # torch's allocators say so in a RuntimeError (OutOfMemoryError on CUDA)
        text = str(exc)
        if isinstance(exc, _torch_oom()) or "allocate" in text or "out of memory" in text:
            asked = re.search(r"tried to allocate (\d+(?:\.\d+)?) ?(bytes|[KMG]i?B)", text)
            what = f"an allocation of {asked.group(1)} {asked.group(2)} failed" if asked else "an allocation failed"
            raise fail(f"not enough memory ({what}); lower --batch-size (or --samples, --frames)") from None
        raise
    except OSError as exc:  # the environment (disk full, permissions), not a bug
        where = f" ({exc.filename})" if exc.filename else ""
        raise fail(f"{exc.strerror or exc}{where}; free space or fix permissions, or choose another --out") from None
    finally:
        warnings.showwarning = previous  # main() keeps its filter for the whole process


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


# --- learn -------------------------------------------------------------------------------

LAYER_HELP = ("Fast mode: penalise the normalised activation after GenBlock i instead of pixels: block0..block9 "
              "at 4,8,8,16,16,32,32,64,64,128 px for biggan-deep-128 (block11 at 256 px for -256); "
              "`hpdirs bench` prints each with its shape.")

DEFAULT_RECIPE = "paper"


def _default(field: str) -> str:
    from direction_finder.learn import LearnConfig

    value = getattr(LearnConfig.from_recipe(DEFAULT_RECIPE), field)
    return "z_dim" if field == "num_directions" and value is None else str(value)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s" if m else f"{s}s"


@app.command()
def learn(
    class_: Annotated[Optional[str], typer.Option("--class", help="ImageNet class: name, index or WordNet id.", show_default="golden_retriever")] = None,
    model: Annotated[Optional[str], typer.Option(help="biggan-deep-128/-256/-512, or synthetic[:z_dim=16,factors=4] (known true directions, offline).", show_default="biggan-deep-128, or what --weights holds")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="Folder with config.json + pytorch_model.bin (else the cache, else a download).", show_default="the cache")] = None,
    truncation: Annotated[Optional[float], typer.Option(help="Truncation in (0, 1]; snapped to BigGAN's 0.02 grid.", show_default="0.4")] = None,
    num_directions: Annotated[Optional[int], typer.Option(help="N directions to learn (<= z_dim).", show_default=_default("num_directions"))] = None,
    steps: Annotated[Optional[int], typer.Option(help="Optimisation steps.", show_default=_default("steps"))] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Samples per step.", show_default=_default("batch_size"))] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.", show_default=_default("lr"))] = None,
    eta: Annotated[Optional[float], typer.Option(help="Base points w = eta_b e_i with eta_b ~ U[-eta, eta].", show_default=_default("eta"))] = None,
    epsilon: Annotated[Optional[float], typer.Option(help="Finite-difference step.", show_default=_default("epsilon"))] = None,
    k: Annotated[Optional[int], typer.Option("--k", help="Rademacher vectors per sample (>= 2).", show_default=_default("k"))] = None,
    recipe: Annotated[Optional[str], typer.Option(help="Preset of --init and --lr: paper (random, 0.01: Peebles et al.) or curvature (curvature, 0.001: the curvature warm start refined; README, Quality). --init/--lr override it.", show_default=DEFAULT_RECIPE)] = None,
    init: Annotated[Optional[str], typer.Option(help="random (Kaiming-normal, as the reference), axes, sefa (closed-form warm start; BigGAN), or curvature (rotation that diagonalises the tanh curvature of 8 samples' Jacobians; 16*z_dim images; try with --lr 0.001).", show_default=_default("init"))] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of every random draw.", show_default=_default("seed"))] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(help="Steps between checkpoints.", show_default=_default("checkpoint_every"))] = None,
    eval_every: Annotated[Optional[int], typer.Option(help="Steps between held-out evaluations (0: never).", show_default=_default("eval_every"))] = None,
    eval_samples: Annotated[Optional[int], typer.Option(help="Samples in the fixed held-out set.", show_default=_default("eval_samples"))] = None,
    chunk_size: Annotated[Optional[int], typer.Option(help="Perturbed batches per generator call (1..2k).", show_default="calls of ~2 images on CPU; all 2k on GPU or with --layer")] = None,
    layer: Annotated[Optional[str], typer.Option(help=LAYER_HELP, show_default="pixel space")] = None,
    device: Annotated[str, typer.Option(help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")] = "auto",
    out: Annotated[Path, typer.Option(help="Output root; runs go to OUT/<class>/<name>/.")] = Path("outputs"),
    name: Annotated[Optional[str], typer.Option(help="Run name.", show_default="the UTC time")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this folder from its checkpoint.", show_default="start a new run")] = None,
    time_limit: Annotated[Optional[str], typer.Option(help="Stop and save after this much learning time (e.g. 90s, 30m, 2h); resume later.", show_default="none")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Never touch the network (also HPDIRS_OFFLINE=1).", show_default="off")] = False,
) -> None:
    """Learn N interpretable directions for one class by minimising the Hessian Penalty.

    Example: hpdirs learn --class golden_retriever --steps 2000 --batch-size 8
    Several GPUs: torchrun --nproc-per-node 4 -m hpdirs_cli learn --class golden_retriever --batch-size 64
    """
    from direction_finder.distributed import init_from_env, shutdown

    given = {key: value for key, value in dict(
        num_directions=num_directions, steps=steps, batch_size=batch_size, lr=lr, eta=eta, epsilon=epsilon,
        k=k, init=init, seed=seed, checkpoint_every=checkpoint_every, eval_every=eval_every,
        eval_samples=eval_samples, chunk_size=chunk_size, layer=layer).items() if value is not None}

    with user_errors():
        from direction_finder.learn import recipe_fields

        if recipe is not None or resume is None:  # a resumed run keeps its stored init and lr
            given = {**recipe_fields(recipe or DEFAULT_RECIPE), **given}
        dist = init_from_env(device)  # torchrun: WORLD_SIZE > 1 in the environment
        finished = False
        try:
            _learn_command(dist, given, class_, model, weights, truncation, device, out, name, resume, offline,
                           parse_duration(time_limit) if time_limit is not None else None)
            finished = True
        finally:
            if dist is not None:
                shutdown(finished)


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `2h` or plain seconds -> seconds (> 0)."""
    from direction_finder.errors import UsageError

    units = {"s": 1, "m": 60, "h": 3600}
    value, unit = (text[:-1], text[-1]) if text and text[-1].lower() in units else (text, "s")
    try:
        seconds = float(value) * units[unit.lower()]
    except ValueError:
        raise UsageError(f"--time-limit {text!r}: give a duration such as 90s, 30m or 2h") from None
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError(f"--time-limit {text!r} must be a positive duration")
    return seconds


def _learn_command(dist, given, class_, model, weights, truncation, device, out, name, resume, offline,  # noqa: ANN001
                   time_limit_s=None) -> None:  # noqa: ANN001
    import dataclasses

    from direction_finder.generators import class_slug, generator_for_metadata, load_generator
    from direction_finder.learn import LearnConfig, LearnInterrupted, learn as learn_directions, new_run_dir, read_run

    main = dist is None or dist.is_main
    where = dist.device() if dist is not None else device
    with download_progress() as progress:
        if resume is not None:  # the generator the run was started with, as its config.json records
            stored, meta = read_run(resume)
            config = dataclasses.replace(stored, **given)
            generator = generator_for_metadata(meta, model=model, class_=class_, truncation=truncation,
                                               weights=weights, device=where, source=f"run {resume}",
                                               offline=offline or None, progress=progress)
        else:
            config = LearnConfig(**given)
            generator = load_generator(model, class_ if class_ is not None else "golden_retriever",
                                       truncation if truncation is not None else 0.4, weights, where,
                                       offline=offline or None, progress=progress)
    config = config.resolved(generator)
    if resume is not None:
        run_dir = resume
    elif dist is None:
        run_dir = new_run_dir(out, class_slug(generator), name)
    else:  # rank 0 creates the folder; every rank learns its name, or rank 0's error
        made: object = None
        if main:
            try:
                made = str(new_run_dir(out, class_slug(generator), name))
            except HpdirsError as exc:
                made = exc
        made = dist.broadcast(made)
        if isinstance(made, HpdirsError):
            raise made
        run_dir = Path(made)
    described = generator.describe() if hasattr(generator, "describe") else {}
    if main:
        ranks = f" · {dist.world} ranks ({dist.backend})" if dist is not None else ""
        console.print(
            f"[bold]hpdirs learn[/] {described.get('model', '')} · {described.get('class_name', '')}"
            f" · truncation {described.get('truncation', '')} · {config.num_directions} directions"
            f" · {config.steps} steps × batch {config.batch_size} · device {generator.device}{ranks} → {run_dir}",
            highlight=False)
        if config.init == "curvature" and resume is None:
            from direction_finder.warmstart import SAMPLES

            console.print(f"curvature warm start: Jacobians of {SAMPLES} samples "
                          f"({2 * SAMPLES * int(generator.z_dim)} images) …", highlight=False)
    try:
        if main:
            _run_learn(generator, config, run_dir, resume is not None, learn_directions, dist, time_limit_s)
        else:
            learn_directions(generator, config, out_dir=run_dir, resume=resume is not None, dist=dist,
                             time_limit_s=time_limit_s)
    except LearnInterrupted as exc:
        name = signal.Signals(exc.signum).name
        message = (f"interrupted by {name} at step {exc.step}; checkpoint saved in {exc.run_dir}; "
                   f"resume with: hpdirs learn --resume {exc.run_dir}")
        if main:
            raise fail(message, 128 + exc.signum) from None
        raise typer.Exit(128 + exc.signum) from None
    if main:
        console.print(f"done: {run_dir}/directions.safetensors (best by held-out: directions_best.safetensors)")
        console.print(f"next: hpdirs render {run_dir}", highlight=False)


def _run_learn(generator, config, run_dir: Path, resume: bool, learn_directions, dist=None,  # noqa: ANN001
               time_limit_s=None) -> None:  # noqa: ANN001
    from rich.progress import Progress as Bar, SpinnerColumn

    columns = (
        SpinnerColumn(), TextColumn("step {task.completed}/{task.total}"), BarColumn(),
        TextColumn("loss {task.fields[loss]}"), TextColumn("held-out {task.fields[heldout]}"),
        TextColumn("{task.fields[rate]} sample-steps/s"), TextColumn("ETA {task.fields[eta]}"),
    )
    with Bar(*columns, console=console, transient=False) as bar:
        task = bar.add_task("learn", total=config.steps, loss="-", heldout="-", rate="-", eta="-")
        announced = False

        def on_step(info) -> None:  # noqa: ANN001
            nonlocal announced
            fields = dict(loss=f"{info.smoothed:.4g}", rate=f"{info.sample_steps_per_s:.3g}",
                          eta=_duration(info.eta_s) if info.eta_s is not None else "-")
            if info.best_heldout is not None:
                fields["heldout"] = f"{info.heldout:.4g}" if info.heldout is not None else bar.tasks[0].fields["heldout"]
            bar.update(task, completed=info.step, **fields)
            if not announced and info.eta_s is not None:
                announced = True
                per_step = config.batch_size / info.sample_steps_per_s
                bar.console.print(f"measured {per_step:.3g} s/step ({info.sample_steps_per_s:.3g} sample-steps/s): "
                                  f"about {_duration(info.eta_s)} more for {info.steps - info.step} steps"
                                  + (" plus held-out evaluations" if config.eval_every else ""), highlight=False)

        learn_directions(generator, config, on_step=on_step, out_dir=run_dir, resume=resume, dist=dist,
                         time_limit_s=time_limit_s)


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="A directions file, or a run folder.")],
) -> None:
    """Print a directions file's metadata as a table.

    Example: hpdirs info outputs/golden_retriever/my-run/directions.safetensors
    """
    from direction_finder.directions import load_directions, resolve_directions_file

    with user_errors():
        directions = load_directions(resolve_directions_file(file))
    table = Table("field", "value", title=f"{file}: {directions.num_directions} directions × z_dim {directions.z_dim}")
    order = ["format", "model", "class_index", "class_name", "truncation", "weights", "kind", "step", "loss",
             "heldout", "created", "config", "versions"]
    items = sorted(directions.metadata.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    for key, value in items:
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                table.add_row(f"{key}.{sub}", str(sub_value))
        else:
            table.add_row(key, str(value))
    console.print(table)



# Options shared by the commands that read a directions file and rebuild its generator.
ModelOverride = Annotated[Optional[str], typer.Option("--model", help="Override the model named in the file.", show_default="from the file")]
ClassOverride = Annotated[Optional[str], typer.Option("--class", help="Override the class named in the file.", show_default="from the file")]
TruncationOverride = Annotated[Optional[float], typer.Option("--truncation", help="Override the truncation in the file.", show_default="from the file")]
WeightsOverride = Annotated[Optional[Path], typer.Option("--weights", help="Weights folder.", show_default="from the file, else the cache")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")]
OfflineOption = Annotated[bool, typer.Option("--offline", help="Never touch the network (also HPDIRS_OFFLINE=1).", show_default="off")]

# --- render ------------------------------------------------------------------------------

@app.command()
def render(
    run_or_file: Annotated[Path, typer.Argument(help="A run folder or a directions .safetensors file.")],
    directions: Annotated[Optional[str], typer.Option(help="Which directions, e.g. 0-7,12.", show_default="0-7")] = None,
    samples: Annotated[int, typer.Option(help="Samples per frame (columns of each grid).")] = 6,
    seed: Annotated[int, typer.Option(help="Seed of the samples' latents.")] = 0,
    eta: Annotated[float, typer.Option(help="Sweep each direction from -eta to +eta.")] = 5.0,
    frames: Annotated[int, typer.Option(help="Distinct eta values per sweep (the loop plays them forth and back).")] = 32,
    fps: Annotated[float, typer.Option(help="Frames per second of GIFs and MP4s.")] = 12.0,
    align: Annotated[bool, typer.Option("--align/--no-align", help="Put every sample at the same coordinate along the direction (paper Fig. 7d).")] = True,
    axes: Annotated[Optional[str], typer.Option(help="Also render these axis-aligned z components, e.g. 0-15.", show_default="none")] = None,
    format: Annotated[str, typer.Option("--format", help="Comma-separated: gif, mp4, png.")] = "gif,png",
    size: Annotated[Optional[int], typer.Option(help="Pixels per image in the outputs.", show_default="the model's resolution")] = None,
    label: Annotated[bool, typer.Option("--label/--no-label", help="Print direction index and eta above each frame.")] = True,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per generator call.", show_default="4 on CPU, 32 on GPU")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder.", show_default="RUN/render, or render-<file> beside a file")] = None,
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
    from rich.progress import MofNCompleteColumn, Progress as Bar

    from direction_finder.directions import load_directions, resolve_directions_file
    from direction_finder.generators import generator_for_metadata
    from direction_finder.render import RenderSettings, parse_formats, parse_indices, render as render_sweeps

    with user_errors():
        path = resolve_directions_file(run_or_file)
        loaded = load_directions(path)
        n = loaded.num_directions
        settings = RenderSettings(
            directions=parse_indices(directions or f"0-{min(8, n) - 1}", n),
            axes=parse_indices(axes, loaded.z_dim, "axes") if axes else [], samples=samples, seed=seed,
            eta=eta, frames=frames, fps=fps, align=align, formats=parse_formats(format), size=size,
            label=label, batch_size=batch_size)
        with download_progress() as progress:
            generator = generator_for_metadata(loaded.metadata, model=model, class_=class_, truncation=truncation,
                                               weights=weights, device=device, source=str(path),
                                               offline=offline or None, progress=progress)
        target = out or (path.parent / "render" if Path(run_or_file).is_dir() else path.parent / f"render-{path.stem}")
        info = generator.describe() if hasattr(generator, "describe") else {}
        info["directions_file"] = str(path)
        with Bar(TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
                 TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("render", total=None)
            render_sweeps(generator, loaded.matrix, settings, target, info=info,
                          on_images=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(f"wrote {target}/index.html", highlight=False)


# --- compare -----------------------------------------------------------------------------

@app.command()
def compare(
    run_or_file: Annotated[Path, typer.Argument(help="A run folder or a directions .safetensors file.")],
    baselines: Annotated[str, typer.Option(help="Comma-separated: axes, random, sefa, curvature (the --init curvature warm start; 16*z_dim images more).")] = "axes,random,sefa",
    samples: Annotated[int, typer.Option(help="Held-out samples shared by every set.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the held-out samples, base points and vectors.")] = 0,
    top: Annotated[int, typer.Option(help="N': most active directions in the D% / D_R Hessians.")] = 8,
    eta: Annotated[float, typer.Option(help="Base points and sweeps within [-eta, eta].")] = 5.0,
    epsilon: Annotated[float, typer.Option(help="Finite-difference step.")] = 0.1,
    k: Annotated[int, typer.Option("--k", help="Rademacher vectors per sample.")] = 2,
    sweep_steps: Annotated[int, typer.Option(help="Coefficient values in the activeness sweep.")] = 7,
    batch_size: Annotated[int, typer.Option(help="Images per generator call.")] = 16,
    layer: Annotated[Optional[str], typer.Option(help="Measure on this layer's activation instead of pixels (see `hpdirs learn --help`).", show_default="pixel space")] = None,
    gifs: Annotated[bool, typer.Option("--gifs/--no-gifs", help="Write the side-by-side GIFs.")] = True,
    out: Annotated[Optional[Path], typer.Option(help="Output folder.", show_default="RUN/compare, or compare-<file> beside a file")] = None,
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
    from rich.progress import MofNCompleteColumn, Progress as Bar

    from direction_finder.compare import BASELINES, CompareSettings, run_compare
    from direction_finder.directions import load_directions, resolve_directions_file
    from direction_finder.generators import generator_for_metadata

    with user_errors():
        chosen = [b.strip().lower() for b in baselines.split(",") if b.strip()]
        unknown = [b for b in chosen if b not in BASELINES]
        if unknown:
            raise fail(f"--baselines {baselines!r}: unknown {', '.join(unknown)}; choose from {', '.join(BASELINES)}")
        settings = CompareSettings(samples=samples, seed=seed, top=top, eta=eta, epsilon=epsilon, k=k,
                                   sweep_steps=sweep_steps, batch_size=batch_size, layer=layer)
        path = resolve_directions_file(run_or_file)
        loaded = load_directions(path)
        with download_progress() as progress:
            generator = generator_for_metadata(loaded.metadata, model=model, class_=class_, truncation=truncation,
                                               weights=weights, device=device, source=str(path),
                                               offline=offline or None, progress=progress)
        target = out or (path.parent / "compare" if Path(run_or_file).is_dir() else path.parent / f"compare-{path.stem}")
        info = {**(generator.describe() if hasattr(generator, "describe") else {}), "directions_file": str(path)}
        with Bar(TextColumn("measuring"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
                 TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("compare", total=None)
            reports, notes = run_compare(generator, loaded.matrix, target, baselines=chosen, settings=settings,
                                         info=info, gifs=gifs,
                                         on_images=lambda done, total: bar.update(task, completed=done, total=total))
    table = Table("set", "held-out penalty ↓", "D% ↑", "D_R ↑", "top activeness", "mean activeness",
                  "mean |cos| to an axis", title=f"{info.get('model', '')} · {info.get('class_name', '')} · "
                  f"{samples} held-out samples · top {top}")
    for r in reports:
        s = r.summary()
        table.add_row(r.name, f"{s['heldout_penalty']:.4g}", f"{s['D_percent']:.1f}", f"{s['D_R']:.3g}",
                      f"{s['top_activeness']:.4g}", f"{s['mean_activeness']:.4g}", f"{s['mean_match_cosine']:.3f}")
    console.print(table)
    for note in notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"wrote {target}/compare.html, report.json, report.csv", highlight=False)


# --- bench -------------------------------------------------------------------------------

@app.command()
def bench(
    model: Annotated[Optional[str], typer.Option(help="biggan-deep-128/-256/-512 or synthetic[:...].", show_default="biggan-deep-128, or what --weights holds")] = None,
    weights: Annotated[Optional[Path], typer.Option(help="Weights folder (random weights measure the same speed).", show_default="the cache")] = None,
    class_: Annotated[str, typer.Option("--class", help="ImageNet class (does not change the speed).")] = "golden_retriever",
    batch_size: Annotated[str, typer.Option("--batch-size", help="Comma-separated batch sizes to measure.")] = "1,4",
    steps: Annotated[int, typer.Option(help="Timed repetitions per measurement (median; after one warm-up).")] = 3,
    layer: Annotated[str, typer.Option(help="Layer for the fast-mode measurement: a name, auto (mid resolution) or none.")] = "auto",
    render: Annotated[bool, typer.Option("--render/--no-render", help="Also measure render images/s.")] = True,
    device: Annotated[str, typer.Option(help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.")] = "auto",
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench.json"),
    offline: Annotated[bool, typer.Option("--offline", help="Never touch the network (also HPDIRS_OFFLINE=1).", show_default="off")] = False,
) -> None:
    """Measure forward images/s, learning sample-steps/s per layout vs the reference step, FLOPs, MFU,
    the --layer fast mode, memory and render speed on this machine; writes bench.json.

    Example: hpdirs bench --model biggan-deep-128 --batch-size 1,4 --steps 3
    """
    import json

    from direction_finder.bench import BenchSettings, bench as run_bench
    from direction_finder.directions import atomic_write
    from direction_finder.generators import load_generator
    from direction_finder.learn import check_layer

    with user_errors():
        try:
            sizes = [int(b) for b in batch_size.split(",") if b.strip()]
        except ValueError:
            raise fail(f"--batch-size {batch_size!r}: give comma-separated integers, e.g. 1,4") from None
        if not sizes or min(sizes) < 1:
            raise fail(f"--batch-size {batch_size!r}: every batch size must be >= 1")
        if steps < 1:
            raise fail(f"--steps must be >= 1, got {steps}")
        with download_progress() as progress:
            generator = load_generator(model, class_, 0.4, weights, device, offline=offline or None, progress=progress)
        chosen = None if layer.lower() == "none" else layer
        if chosen not in (None, "auto"):
            check_layer(generator, chosen)
        if hasattr(generator, "layers"):
            names = ", ".join(f"{n} {c}x{h}x{w}" for n, (c, h, w) in generator.layers().items())
            console.print(f"layers for --layer: {names}", highlight=False)
        with err_console.status("measuring") as status:
            results = run_bench(generator, BenchSettings(batch_sizes=sizes, steps=steps, layer=chosen, render=render),
                                note=lambda message: status.update(f"measuring: {message}"))
        atomic_write(out, lambda tmp: tmp.write_text(json.dumps(results, indent=2) + "\n"))
    _print_bench(results)
    console.print(f"wrote {out}", highlight=False)


def _print_bench(r: dict) -> None:
    table = Table("measure", *[f"batch {b}" for b in r["batch_sizes"]],
                  title=f"{r['model']} on {r['device']} ({r['device_name']}, {r['threads']} threads)")
    learn = r["learn"]
    table.add_row("forward images/s", *[f"{r['forward_images_per_s'][str(b)]:.3g}" for b in r["batch_sizes"]])
    for layout in ("batched", "chunks", "sequential", "reference"):
        table.add_row(f"sample-steps/s, {layout}", *[f"{learn[str(b)][layout]:.3g}" for b in r["batch_sizes"]])
    table.add_row("ours (default layout) / reference", *[
        f"{learn[str(b)]['ratio_vs_reference']:.2f}x ({learn[str(b)]['default_layout']})" for b in r["batch_sizes"]])
    table.add_row("achieved GFLOP/s (MFU)", *[
        f"{learn[str(b)]['achieved_gflops']:.3g} ({learn[str(b)]['mfu']:.2f})" for b in r["batch_sizes"]])
    if "layer" in r:
        table.add_row(f"--layer {r['layer']['name']} sample-steps/s", *[
            f"{r['layer'][str(b)]['sample_steps_per_s']:.3g} ({r['layer'][str(b)]['speedup_vs_pixels']:.1f}x)"
            for b in r["batch_sizes"]])
    console.print(table)
    console.print(f"fp32 matmul peak {r['matmul_peak_gflops']:.4g} GFLOP/s · {r['flops_per_sample_step'] / 1e9:.4g} "
                  f"GFLOP per sample-step · peak memory {r['peak_memory_mb']:.0f} MiB", highlight=False)
    if "render" in r:
        console.print(f"render {r['render']['images_per_s']:.3g} images/s = {r['render']['vs_forward']:.2f}x forward "
                      f"at batch {r['render']['batch_size']}", highlight=False)


def _torch_oom() -> type:
    import torch

    return getattr(torch, "OutOfMemoryError", MemoryError)


def _terminate(signum: int, frame) -> None:  # noqa: ANN001
    raise Terminated(signum)


def main() -> None:
    """Console-script entry point.

    SIGTERM (what a scheduler sends) and SIGHUP (a closed terminal) are delivered as an
    interruption, exactly like Ctrl-C: `learn` saves the last completed step and names the resume
    command, `render` and `compare` remove their temp files; the exit code is 128 + the signal.
    """
    for kind in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(kind, _terminate)
    warnings.showwarning = _show_warning
    app(prog_name="hpdirs")


if __name__ == "__main__":
    main()

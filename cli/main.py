"""The `hpdirs` Typer app. Each command parses its options, calls one library function, prints.

No default is written here: options.py shows the library's defaults, and an option of `learn`
left out is not passed on (a resumed run keeps its own settings).
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import direction_finder
from direction_finder.evaluation.compare import CompareSettings
from direction_finder.generators import DEFAULT_CLASS, DEFAULT_MODEL, GeneratorChoice
from direction_finder.measuring.bench import BenchSettings
from direction_finder.outputs.render import RenderSettings
from direction_finder.validation import parse_duration, parse_integers
from hpdirs_cli import options as o
from hpdirs_cli.console import (
    Command,
    OneLineErrors,
    console,
    deliver_termination_as_interruption,
    emit_json,
    err_console,
    fail,
    hold_standard_descriptors,
    say,
    shown,
    user_errors,
)
from hpdirs_cli.options import BENCH, COMPARE, RENDER
from hpdirs_cli.progress import LearnProgress, download_progress, images_bar
from hpdirs_cli.tables import print_bench, print_comparison, print_metadata, print_plan

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


# The options of every command that opens a directions file and rebuilds its generator, in
# --help order after the command's own: (annotation, default). opens_a_directions_file adds them.
GENERATOR_OPTIONS: dict[str, tuple[Any, Any]] = {
    "model": (o.ModelOverride, None),
    "class_": (o.ClassOverride, None),
    "truncation": (o.TruncationOverride, None),
    "weights": (o.WeightsOverride, None),
    "device": (o.Device, o.DEVICE),
    "offline": (o.Offline, False),
    "model_arg": (o.ModelArgs, None),
    "output_range": (o.OutputRange, None),
}


def opens_a_directions_file(command: Callable[..., None]) -> Callable[..., None]:
    """`command`, with the generator options after its own, called with `choice`: the
    GeneratorChoice they make (what the directions file records, overridden where given)."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "choice"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
        for name, (kind, default) in GENERATOR_OPTIONS.items()
    ]

    @functools.wraps(command)
    def with_choice(**values: Any) -> None:
        given = {name: values.pop(name) for name in GENERATOR_OPTIONS}
        with user_errors():
            choice = GeneratorChoice.parsed(
                model=given["model"], class_=given["class_"], truncation=given["truncation"],
                weights=given["weights"], device=given["device"], offline=given["offline"],
                model_args=given["model_arg"], output_range=given["output_range"],
            )  # fmt: skip
        command(**values, choice=choice)

    parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
    with_choice.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    with_choice.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_choice


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


@app.command(cls=Command)
def classes(
    query: Annotated[str, typer.Argument(help="Part of a name, an index or a WordNet id; empty lists all 1000.")] = "",
    json_out: o.Json = False,
) -> None:
    """List or search the 1000 ImageNet classes BigGAN-deep was trained on.

    Example: hpdirs classes retriever
    """
    from direction_finder.generators.imagenet import search_classes

    found = search_classes(query)
    if not found:
        raise fail(f"no ImageNet class matches {query!r}; try a shorter query or `hpdirs classes`")
    if json_out:
        emit_json({"classes": [{"index": c.index, "wordnet_id": c.wordnet_id, "names": list(c.names)} for c in found]})
        return
    table = Table("index", "WordNet id", "names", title=f"{len(found)} ImageNet classes")
    for c in found:
        table.add_row(str(c.index), c.wordnet_id, ", ".join(c.names))
    console.print(table)


SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_HPDIRS_COMPLETE"  # the variable the shell sets when it asks hpdirs for completions


@app.command(cls=Command)
def completion(
    shell: Annotated[str, typer.Argument(help="bash, zsh or fish (never guessed from the environment).")],
) -> None:
    """Print the shell completion script; load it from your shell's start-up file.

    Example: hpdirs completion bash >> ~/.bashrc   (zsh: ~/.zshrc; fish: ~/.config/fish/completions/hpdirs.fish)
    """
    from typer._completion_shared import get_completion_script

    if shell not in SHELLS:
        raise fail(f"unknown shell {shell!r}; choose {', '.join(SHELLS)}")
    console.file.write(get_completion_script(prog_name="hpdirs", complete_var=COMPLETE_VAR, shell=shell))
    console.file.flush()


@app.command(cls=Command)
def models() -> None:
    """List the models --model accepts: built-in, installed plug-ins (entry points hpdirs.generators), your own.

    Example: hpdirs models
    """
    from direction_finder.generators import available_models

    table = Table("--model", "from", "what")
    for name, source, what in available_models():
        table.add_row(name, source, what)
    console.print(table)


@app.command(cls=Command)
def download(
    model: Annotated[str, typer.Option(help="biggan-deep-128, biggan-deep-256 or biggan-deep-512.")] = DEFAULT_MODEL,
    json_out: o.Json = False,
) -> None:
    """Fetch a model's published weights into the cache ($HPDIRS_CACHE), so later runs work offline.

    Example: hpdirs download --model biggan-deep-256
    """
    from direction_finder.generators.weights import resolve_weights

    with user_errors(), download_progress() as progress:
        files = resolve_weights(model, None, progress=progress)
    if json_out:
        emit_json({"model": model, "folder": str(files.folder), "source": files.source,
                   "config": str(files.config), "weights": str(files.weights)})  # fmt: skip
        return
    say(f"{model}: {files.folder} ({files.source})")


@app.command(cls=Command)
def learn(
    class_: o.Class = None,
    model: o.Model = None,
    weights: o.Weights = None,
    truncation: o.Truncation = None,
    num_directions: o.NumDirections = None,
    steps: o.Steps = None,
    batch_size: o.BatchSize = None,
    lr: o.Lr = None,
    eta: o.Eta = None,
    epsilon: o.Epsilon = None,
    k: o.K = None,
    recipe: o.Recipe = None,
    init: o.Init = None,
    optimizer: o.Optimizer = None,
    seed: o.Seed = None,
    checkpoint_every: o.CheckpointEvery = None,
    eval_every: o.EvalEvery = None,
    eval_samples: o.EvalSamples = None,
    chunk_size: o.ChunkSize = None,
    micro_batch: o.MicroBatch = None,
    max_memory: o.MaxMemory = None,
    checkpoint_activations: o.CheckpointActivations = None,
    layer: o.Layer = None,
    device: o.Device = o.DEVICE,
    out: o.OutRoot = o.OUT_ROOT,
    name: o.Name = None,
    resume: o.Resume = None,
    time_limit: o.TimeLimit = None,
    offline: o.Offline = False,
    model_arg: o.ModelArgs = None,
    output_range: o.OutputRange = None,
    dry_run: o.DryRun = False,
) -> None:
    """Learn N interpretable directions for one class by minimising the Hessian Penalty.

    Example: hpdirs learn --class golden_retriever --steps 2000 --batch-size 8
    Several GPUs: torchrun --nproc-per-node 4 -m hpdirs_cli learn --class golden_retriever --batch-size 64
    """
    from direction_finder.learning.distributed import job_from_env
    from direction_finder.learning.learn import LearnInterrupted
    from direction_finder.learning.runner import RunRequest, learn_run

    settings = _given(
        num_directions=num_directions,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        eta=eta,
        epsilon=epsilon,
        k=k,
        init=init,
        optimizer=optimizer,
        seed=seed,
        checkpoint_every=checkpoint_every,
        eval_every=eval_every,
        eval_samples=eval_samples,
        chunk_size=chunk_size,
        micro_batch=micro_batch,
        max_memory=max_memory,
        checkpoint_activations=checkpoint_activations,
        layer=layer,
    )
    with user_errors(), job_from_env(device) as dist:
        choice = GeneratorChoice.parsed(
            model=model, class_=class_, truncation=truncation, weights=weights, device=device, offline=offline,
            model_args=model_arg, output_range=output_range,
        )  # fmt: skip
        limit = parse_duration("time_limit", time_limit, days=3650) if time_limit is not None else None
        request = RunRequest(
            generator=choice, settings=settings, recipe=recipe, out_root=out, name=name, resume=resume,
            time_limit_s=limit,
        )  # fmt: skip
        if dry_run:
            with download_progress() as progress:
                print_plan(learn_run(request, dist=dist, progress=progress, dry_run=True), recipe)
            return
        if dist is not None and not dist.is_main:  # rank 0 shows progress and errors
            try:
                learn_run(request, dist=dist)
            except LearnInterrupted as exc:
                raise typer.Exit(128 + int(exc.signum or signal.SIGINT)) from None
            return
        with download_progress() as progress, LearnProgress() as shown_progress:
            plan = learn_run(
                request, dist=dist, progress=progress, on_start=shown_progress.start, on_step=shown_progress.step
            )
    say(f"done: {plan.run_dir}/directions.safetensors (best by held-out: directions_best.safetensors)")
    say(f"next: hpdirs render {plan.run_dir}")


@app.command(cls=Command)
def info(
    file: Annotated[Path, typer.Argument(help="A directions file, or a run folder.")],
    json_out: o.Json = False,
) -> None:
    """Print a directions file's metadata as a table.

    Example: hpdirs info outputs/golden_retriever/my-run/directions.safetensors
    """
    from direction_finder.artifacts.directions import load_directions

    with user_errors():
        directions = load_directions(file)
    if json_out:
        labels = {str(i): v for i, v in directions.labels.items()}
        layers = {str(i): list(pair) for i, pair in directions.label_layers.items()}
        emit_json({"file": str(file), "num_directions": directions.num_directions, "z_dim": directions.z_dim,
                   "metadata": directions.metadata, "labels": labels, "label_layers": layers})  # fmt: skip
        return
    print_metadata(file, directions)


@app.command(cls=Command)
def label(
    run_or_file: o.Source,
    index: Annotated[int, typer.Argument(help="The direction's index.")],
    name: Annotated[str, typer.Argument(help="Its name, e.g. zoom; an empty name removes it.")],
    layers: o.LabelLayers = None,
) -> None:
    """Name a direction; the name is kept in labels.json beside the file and shown by render, compare, info.

    Example: hpdirs label outputs/golden_retriever/first-try 3 zoom
    """
    from direction_finder.artifacts.directions import name_direction

    with user_errors():
        path, labels = name_direction(run_or_file, index, name, layers)
    named = f"named {labels[index]!r}" if index in labels else "no longer named"
    named += f" (layers {layers})" if layers is not None and index in labels else ""
    say(f"direction {index} of {path} is {named}")


@app.command(cls=Command)
@opens_a_directions_file
def render(
    run_or_file: o.Source,
    directions: o.Directions = None,
    samples: o.RenderSamples = RENDER.samples,
    seed: o.RenderSeed = RENDER.seed,
    eta: o.RenderEta = RENDER.eta,
    frames: o.Frames = RENDER.frames,
    fps: o.Fps = RENDER.fps,
    align: o.Align = RENDER.align,
    axes: o.Axes = None,
    format: o.Format = o.RENDER_FORMATS,
    size: o.Size = None,
    label: o.Label = RENDER.label,
    batch_size: o.RenderBatch = None,
    max_memory: o.ImageMemory = None,
    out: o.RenderOut = None,
    latents: o.Latents = None,
    layers: o.Layers = None,
    choice: GeneratorChoice = GeneratorChoice(),
) -> None:
    """Render direction sweeps: a GIF grid per direction, an overview GIF, a PNG sheet, index.html.

    Example: hpdirs render outputs/golden_retriever/first-try --directions 0-7 --samples 6
    """
    from direction_finder.outputs.render import render_file

    with user_errors():
        settings = RenderSettings(
            directions=directions, axes=axes or [], samples=samples, seed=seed, eta=eta, frames=frames, fps=fps,
            align=align, formats=format, size=size, label=label, batch_size=batch_size, latents=latents,
            max_memory=max_memory, layers=layers,
        )  # fmt: skip
        with download_progress() as progress, images_bar("rendering") as bar:
            task = bar.add_task("render", total=None)
            target = render_file(
                run_or_file,
                settings,
                generator=choice,
                out_dir=out,
                progress=progress,
                on_images=lambda done, total: bar.update(task, completed=done, total=total),
            )
    say(f"wrote {target}/index.html")


@app.command(cls=Command)
@opens_a_directions_file
def compare(
    run_or_file: o.Source,
    against: o.Against = None,
    baselines: o.Baselines = None,
    budget: o.Budget = None,
    precise: o.Precise = False,
    samples: o.CompareSamples = None,
    seed: o.CompareSeed = COMPARE.seed,
    top: o.Top = COMPARE.top,
    eta: o.CompareEta = COMPARE.eta,
    epsilon: o.CompareEpsilon = COMPARE.epsilon,
    k: o.CompareK = COMPARE.k,
    sweep_steps: o.SweepSteps = COMPARE.sweep_steps,
    batch_size: o.CompareBatch = None,
    max_memory: o.ImageMemory = None,
    layer: o.CompareLayer = None,
    gifs: o.Gifs = True,
    out: o.CompareOut = None,
    latents: o.Latents = None,
    json_out: o.Json = False,
    choice: GeneratorChoice = GeneratorChoice(),
) -> None:
    """Compare directions with axis-aligned z, random and SeFa directions (or with a second run), with
    95% intervals and paired differences, in numbers and GIFs.

    Example: hpdirs compare outputs/golden_retriever/first-try --budget 10m
    """
    from direction_finder.evaluation.compare import compare_file

    with user_errors():
        given = str(latents) if latents is not None else None
        settings = CompareSettings(
            samples=samples, seed=seed, top=top, eta=eta, epsilon=epsilon, k=k, sweep_steps=sweep_steps,
            batch_size=batch_size, layer=layer, latents=given, budget=budget, precise=precise, max_memory=max_memory,
        )  # fmt: skip
        with download_progress() as progress, images_bar("measuring", transient=True, stderr=json_out) as bar:
            task = bar.add_task("compare", total=None)
            result = compare_file(
                run_or_file,
                settings,
                against=against,
                baselines=baselines,
                generator=choice,
                out_dir=out,
                gifs=gifs,
                progress=progress,
                on_images=lambda done, total: bar.update(task, completed=done, total=total),
            )
    if json_out:
        emit_json({"out_dir": str(result.out_dir), **result.info, "notes": result.notes,
                   "measured": result.results.measured,
                   "sets": {r.name: r.summary() for r in result.reports},
                   "differences": [d.as_dict() for d in result.results.differences]})  # fmt: skip
        return
    print_comparison(result)


@app.command(cls=Command)
@opens_a_directions_file
def explore(
    run_or_file: o.Source,
    host: o.Host = "127.0.0.1",
    port: o.Port = 0,
    open_browser: o.OpenBrowser = False,
    eta: o.ExploreEta = RENDER.eta,
    choice: GeneratorChoice = GeneratorChoice(),
) -> None:
    """Play with the directions in a local page: a slider each, names, other sets beside them.

    Example: hpdirs explore outputs/golden_retriever/first-try --open
    """
    import threading
    import webbrowser

    from direction_finder.explore import make_server, open_explorer

    with user_errors():
        with download_progress() as progress:
            explorer = open_explorer(run_or_file, choice, eta=eta, progress=progress)
        try:
            server = make_server(explorer, host, port)
        except OSError as exc:
            raise fail(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port or --host") from None
    stop = threading.Event()
    measuring = threading.Thread(target=explorer.measure_activeness, args=(stop,), daemon=True)
    measuring.start()
    say(f"hpdirs explore: {server.url}  (Ctrl-C stops it)")
    if open_browser:
        webbrowser.open(server.url)
    signum = None  # Ctrl-C is the way to stop the explorer (exit 0); SIGTERM or SIGHUP end it (128 + signal)
    try:
        server.serve_forever()
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", None)
    finally:
        stop.set()
        server.httpd.server_close()
        explorer.close()  # queued images cancelled; waits for the forward in progress, if any
        measuring.join(timeout=60)  # torch must not be mid-forward in a thread when the interpreter exits
    if signum is not None:
        raise fail(f"stopped by {signal.Signals(signum).name}", 128 + signum)
    console.print("stopped", highlight=False)


@app.command(cls=Command)
def bench(
    model: o.BenchModel = None,
    weights: o.BenchWeights = None,
    class_: o.BenchClass = DEFAULT_CLASS,
    batch_size: o.BenchBatches = o.BENCH_BATCHES,
    steps: o.BenchSteps = BENCH.steps,
    layer: o.BenchLayer = o.BENCH_LAYER,
    render: o.BenchRender = BENCH.render,
    explore: o.BenchExplore = BENCH.explore,
    memory: o.BenchMemory = None,
    device: o.Device = o.DEVICE,
    out: o.BenchOut = Path("bench.json"),
    json_out: o.Json = False,
    offline: o.Offline = False,
    model_arg: o.ModelArgs = None,
    output_range: o.OutputRange = None,
) -> None:
    """Measure forward images/s, learning sample-steps/s per layout vs the reference step, FLOPs, MFU,
    the --layer fast mode, memory and render speed on this machine; writes bench.json.

    Example: hpdirs bench --model biggan-deep-128 --batch-size 1,4 --steps 3
    """
    from direction_finder.measuring.bench import bench_to_file

    with user_errors():
        sizes = parse_integers("batch_size", batch_size)
        resolutions = parse_integers("memory", memory or "")
        chosen_layer = None if layer.lower() == "none" else layer
        settings = BenchSettings(sizes, steps, chosen_layer, render, explore=explore, memory=resolutions)
        choice = GeneratorChoice.parsed(
            model=model, class_=class_, truncation=None, weights=weights, device=device, offline=offline,
            model_args=model_arg, output_range=output_range,
        )  # fmt: skip

        def show_layers(layers: dict[str, tuple[int, int, int]]) -> None:
            names = ", ".join(f"{n} {c}x{h}x{w}" for n, (c, h, w) in layers.items())
            (err_console if json_out else console).print(shown(f"layers for --layer: {names}"), highlight=False)

        with download_progress() as progress, err_console.status("measuring") as status:
            results = bench_to_file(
                choice,
                settings,
                out,
                progress=progress,
                on_layers=show_layers,
                note=lambda message: status.update(f"measuring: {message}"),
            )
    if json_out:
        emit_json(results)
        return
    print_bench(results)
    say(f"wrote {out}")


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

"""`hpdirs learn`: its options (the learning ones declared once, from one table), its body, its
progress and its dry run."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.table import Table
from rich.text import Text

from direction_finder.config import DEFAULT_RECIPE, RECIPES, default
from direction_finder.generators.choice import GeneratorChoice
from direction_finder.learning.request import RunRequest
from direction_finder.starts import STARTS
from direction_finder.validation import counted, format_duration, parse_duration
from hpdirs_cli.console import console, say, shown, user_errors
from hpdirs_cli.options import COMPILE_HELP, adds_options, flag, given, opens_a_generator, option
from hpdirs_cli.progress import download_progress

if TYPE_CHECKING:
    from direction_finder.learning.learn import StepInfo
    from direction_finder.learning.runner import RunPlan

METHOD, BUDGET, MEMORY, OUTPUT = "The method", "The budget", "Memory and speed", "The run folder"


def learned(name: str) -> str:
    """A LearnConfig field's default as a new run takes it (the default recipe's)."""
    value = default(name)
    return "z_dim" if name == "num_directions" and value is None else str(value)


LAYER_HELP = (
    "Fast mode: penalise a block's activation.\nThe normalised activation after GenBlock i instead of pixels: "
    "block0..block9 at 4,8,8,16,16,32,32,64,64,128 px for biggan-deep-128 (block11 at 256 px for -256); "
    "`hpdirs bench` prints each with its shape."
)
RECIPE_ABOUT = {
    "paper": "Peebles et al.",
    "curvature": "the curvature warm start refined; see Quality in the docs",
    "sefa": "SeFa refined on the manifold; the demo's",
}
RECIPE_HELP = (
    f"A preset: {', '.join(RECIPES)}.\nEach sets --init, --lr and --optimizer: "
    + "; ".join(
        f"{name} ({', '.join(str(v) for v in fields.values())}: {RECIPE_ABOUT.get(name, 'see the docs')})"
        for name, fields in RECIPES.items()
    )
    + ". --init/--lr/--optimizer override it."
)
STARTS_HELP = "; ".join(f"{start.name}: {start.help}" for start in STARTS.values())
INIT_HELP = (
    f"How A starts: random, axes or a closed form.\n{STARTS_HELP}. ganspace reads 4,096 latents on a CPU (100,000 "
    "on a GPU) in five passes to the first layer. An explicit --init overrides the recipe's."
)
OPTIMIZER_HELP = (
    "adam (on A) or riemannian (on the manifold).\nadam: Adam on A with Q = Gram-Schmidt(A), as the paper; "
    "riemannian: Adam on the manifold of orthonormal direction sets, so that A stays orthonormal itself and each "
    "step rotates it (the step's moments kept in the tangent space, a Cayley retraction). The forward pass and "
    "the objective are the same."
)
CHUNK_HELP = (
    "Perturbed batches per call, to 2k.\nFrom 1 to the 2k a step makes. Left out: calls of ~2 images on a CPU; all 2k "
    "at once on a GPU or with --layer."
)
MICRO_HELP = "Samples per backward pass.\nThe passes' gradients are summed: less memory, the same step."
MAX_MEMORY_HELP = "Fit each step into this, e.g. 8GiB.\nIt chooses --chunk-size, --micro-batch and checkpointing."
CHECKPOINT_HELP = (
    "Recompute activations in the backward.\nOnly each generator block's input is kept for the backward and the "
    "rest recomputed: the same loss and gradient (tested) for less memory and about one more forward. "
    "BigGAN-deep only; it may be switched on or off at a --resume."
)
TIME_HELP = (
    "Stop and save after this long: 90s, 30m, 2h.\nA duration is a number with its unit: s, m or h (or sec, min, "
    "hours); a bare number is refused. Continue with hpdirs learn --resume RUN."
)
STEPS_HELP = (
    "Optimisation steps (0: the start as it is).\n0 writes the --init start itself as the run's directions file, "
    "with a run's metadata: SeFa's or GANSpace's directions to render, explore, label and compare without learning."
)
DRY_RUN_HELP = (
    "Print what the run would do, then exit.\nThe resolved recipe, layout, device, run folder, images to generate, "
    "time limit and expected time; nothing is written."
)

# Every LearnConfig field learn takes: (type, help, what --help shows as the default (None: the
# field's own), flags, panel). A field left out is not passed on: a new run takes the default
# recipe's value, a resumed run keeps its own.
LEARNING: dict[str, tuple[Any, str, str | None, tuple[str, ...], str]] = {
    "num_directions": (int, "N directions to learn (<= z_dim).", None, (), METHOD),
    "init": (str, INIT_HELP, None, (), METHOD),
    "optimizer": (str, OPTIMIZER_HELP, None, (), METHOD),
    "lr": (float, "Adam learning rate.", None, (), METHOD),
    "eta": (float, "Base points w = eta_b e_i, eta_b ~ U[-eta, eta].", None, (), METHOD),
    "epsilon": (float, "Finite-difference step.", None, (), METHOD),
    "k": (int, "Rademacher vectors per sample (>= 2).", None, ("--k",), METHOD),
    "layer": (str, LAYER_HELP, "pixel space", (), METHOD),
    "seed": (int, "Seed of every random draw.", None, (), METHOD),
    "steps": (int, STEPS_HELP, None, (), BUDGET),
    "batch_size": (int, "Samples per step.", None, (), BUDGET),
    "eval_every": (int, "Steps between held-out evaluations (0: never).", None, (), BUDGET),
    "eval_samples": (int, "Samples in the fixed held-out set.", None, (), BUDGET),
    "chunk_size": (int, CHUNK_HELP, "by device", (), MEMORY),
    "micro_batch": (int, MICRO_HELP, "the whole batch", (), MEMORY),
    "max_memory": (str, MAX_MEMORY_HELP, "no limit", (), MEMORY),
    "checkpoint_activations": (
        bool, CHECKPOINT_HELP, "off", ("--checkpoint-activations/--no-checkpoint-activations",), MEMORY,
    ),
    "compile": (str, COMPILE_HELP, None, (), MEMORY),
    "checkpoint_every": (int, "Steps between checkpoints.", None, (), OUTPUT),
}  # fmt: skip


def _learning_option(name: str) -> tuple[Any, None]:
    kind, help, shown_default, flags, panel = LEARNING[name]
    made = (flag if kind is bool else option)(help, shown_default or learned(name), *flags, panel=panel)
    return Annotated[kind | None, made], None


learning_options = adds_options({name: _learning_option(name) for name in LEARNING}, lambda v: given(**v), "settings")

Recipe = Annotated[str | None, option(RECIPE_HELP, DEFAULT_RECIPE, panel=METHOD)]
TimeLimit = Annotated[str | None, option(TIME_HELP, "none", panel=BUDGET)]
OutRoot = Annotated[Path, option("Where runs go: OUT/<class>/<name>/.", panel=OUTPUT)]
Name = Annotated[str | None, option("Run name.", "the UTC time", panel=OUTPUT)]
Resume = Annotated[Path | None, option("Continue the run in this folder.\nFrom its last checkpoint.", "start a new run",
                                       panel=OUTPUT)]  # fmt: skip
DryRun = Annotated[bool, flag(DRY_RUN_HELP, "off", "--dry-run", panel=OUTPUT)]
OUT_ROOT = Path(RunRequest().out_root)


@opens_a_generator(recorded=False)
@learning_options
def learn(
    recipe: Recipe = None,
    time_limit: TimeLimit = None,
    out: OutRoot = OUT_ROOT,
    name: Name = None,
    resume: Resume = None,
    dry_run: DryRun = False,
    settings: dict[str, Any] | None = None,
    choice: GeneratorChoice = GeneratorChoice(),
) -> None:
    """Learn N interpretable directions with the Hessian Penalty.

    Directions of one class's latent space that change the image independently of each other: the generator's
    Hessian along them is pushed towards diagonal, as in Peebles et al. (ECCV 2020). Several GPUs: torchrun.

    $ hpdirs learn --class golden_retriever --recipe sefa --steps 200 --batch-size 8
    $ torchrun --nproc-per-node 4 -m hpdirs_cli learn --class golden_retriever --batch-size 64
    """
    from direction_finder.learning.distributed import job_from_env
    from direction_finder.learning.learn import LearnInterrupted
    from direction_finder.learning.runner import learn_run

    with user_errors(), job_from_env(str(choice.device)) as dist:
        limit = parse_duration("time_limit", time_limit, days=3650) if time_limit is not None else None
        request = RunRequest(
            generator=choice, settings=settings or {}, recipe=recipe, out_root=out, name=name, resume=resume,
            time_limit_s=limit,
        )  # fmt: skip
        if dry_run:
            with download_progress() as progress:
                print_plan(learn_run(request, dist=dist, progress=progress, dry_run=True), recipe, limit)
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
    say_where_it_ended(plan)


def say_where_it_ended(plan: RunPlan) -> None:
    """The run's end, in true words: its last step, the files that exist, how to go on."""
    best = plan.run_dir / "directions_best.safetensors"
    named = " (best by held-out: directions_best.safetensors)" if best.is_file() else ""
    if plan.config.steps == 0:
        say(f"wrote the start (--init {plan.config.init}) without learning: {plan.run_dir}/directions.safetensors")
    elif plan.stopped_early:
        say(f"stopped at step {plan.steps_done}/{plan.config.steps}: the time limit was reached; "
            f"{plan.run_dir}/directions.safetensors holds step {plan.steps_done}{named}")  # fmt: skip
        say(f"continue: hpdirs learn --resume {plan.run_dir}")
    else:
        say(f"done: {plan.run_dir}/directions.safetensors{named}")
    say(f"next: hpdirs render {plan.run_dir}")


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
        if self.task is not None:  # started: a run refused before its first step shows no bar
            self.bar.stop()

    def start(self, plan: RunPlan) -> None:
        from direction_finder.generators.base import describe

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
        if not self.announced and info.eta_s is not None and info.steps > info.step:
            self.announced = True
            per_step = self.plan.config.batch_size / info.sample_steps_per_s
            self.bar.console.print(
                f"measured {per_step:.3g} s/step ({info.sample_steps_per_s:.3g} sample-steps/s): "
                f"about {format_duration(info.eta_s)} more for {counted(info.steps - info.step, 'step')}"
                + (" plus held-out evaluations" if self.plan.config.eval_every else ""),
                highlight=False,
            )


def _expected(plan: RunPlan) -> str:
    """The learning time the dry run expects: from the rate a resumed run logged, else unknown."""
    expected = plan.expected_seconds()
    if expected is None:
        return "measured once it runs (learn says it after the first timed step)"
    seconds, rate = expected
    return f"about {format_duration(seconds)} at the {rate:.3g} sample-steps/s this run logged"


def print_plan(plan: RunPlan, recipe: str | None, time_limit_s: float | None = None) -> None:
    """`learn --dry-run`: what the run would be, resolved, and the images it would generate."""
    from direction_finder.generators.base import describe

    c, about = plan.config, describe(plan.generator)
    layout = (
        f"chosen for --max-memory {c.max_memory} by two calibration steps at the start"
        if c.max_memory is not None
        else f"--chunk-size {c.chunk_size} · --micro-batch {c.micro_batch or c.batch_size} · "
        f"activation checkpointing {'on' if c.checkpoint_activations else 'off'}"
    )
    images = plan.images()
    parts = ", ".join(f"{part} {count:,}" for part, count in images.items())
    rows = [
        ("generator", f"{about.get('model', '')} · {about.get('class_name', '')} · "
                      f"truncation {about.get('truncation')}"),
        ("device", str(plan.generator.device)),
        ("recipe", f"{recipe or ('as the run records' if plan.resumed else DEFAULT_RECIPE)}: --init {c.init} · "
                   f"--optimizer {c.optimizer} · --lr {c.lr:g}"),
        ("objective", f"{c.num_directions} directions · --eta {c.eta:g} · --epsilon {c.epsilon:g} · --k {c.k} · "
                      f"{c.steps} steps × batch {c.batch_size} · --seed {c.seed}"),
        ("layout", f"{layout} · compiled {c.compile}"),
        *([("start", f"--init {c.init}: {plan.start_cost.text()}")] if plan.start_cost.layer_forwards else []),
        ("run folder", f"{plan.run_dir} ({'resumed' if plan.resumed else 'new'}, not created)"),
        ("time limit", "none" if time_limit_s is None else f"{format_duration(time_limit_s)} of learning time"),
        ("expected time", _expected(plan)),
        ("images to generate", f"{sum(images.values()):,} ({parts})"),
    ]  # fmt: skip
    table = Table("", "", title="hpdirs learn --dry-run: nothing was written", show_header=False)
    for key, value in rows:
        table.add_row(key, shown(value))
    console.print(table)

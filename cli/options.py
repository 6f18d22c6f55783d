"""The options several commands share, and the decorators that give a command a group of them.

A command's own options live in its module (commands/<command>.py). An option whose value a
command passes on only when given (None: left out) shows the library's default as text; the
others take it as their value. Everything imported here is light (no torch): --help and shell
completion import this module and must answer at once.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from direction_finder.generators.catalogue import DEFAULT_CLASS, DEFAULT_MODEL, DEFAULT_TRUNCATION
from direction_finder.generators.choice import GeneratorChoice
from hpdirs_cli.console import user_errors

GENERATOR_PANEL = "The generator"
SAMPLES_PANEL, MEMORY_PANEL, OUTPUT_PANEL = "The samples", "Memory and speed", "The output"
DEVICE = str(GeneratorChoice().device)  # "auto": the best device present


def option(help: str, shown: object = None, *flags: str, panel: str | None = None) -> Any:
    """A typer option; `shown`, when given, is what --help names as its default."""
    if shown is None:
        return typer.Option(*flags, help=help, rich_help_panel=panel)
    return typer.Option(*flags, help=help, show_default=str(shown), rich_help_panel=panel)


def flag(help: str, shown: object, *flags: str, panel: str | None = None) -> Any:
    """An on/off option: no value follows it, so --help shows no type for it."""
    if shown is None:
        return typer.Option(*flags, help=help, metavar="", rich_help_panel=panel)
    return typer.Option(*flags, help=help, show_default=str(shown), metavar="", rich_help_panel=panel)


def given(**options: Any) -> dict[str, Any]:
    """The options the user gave (None: left out, so the library's default applies)."""
    return {name: value for name, value in options.items() if value is not None}


def adds_options(
    options: Mapping[str, tuple[Any, Any]], make: Callable[[dict[str, Any]], Any], into: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator: the command with `options` (name -> (annotation, default)) after its own,
    called with `into` = make(their values) instead of them (make's errors are one line)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != into]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
            for name, (kind, default) in options.items()
        ]

        @functools.wraps(command)
        def with_options(**values: Any) -> None:
            taken = {name: values.pop(name) for name in options}
            with user_errors():
                made = make(taken)
            command(**values, **{into: made})

        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
        with_options.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        with_options.__annotations__ = {p.name: p.annotation for p in parameters}
        return with_options

    return decorate


JSON_HELP = "Print one JSON document instead of tables.\nThe document goes to stdout, progress to stderr."
Json = Annotated[bool, flag(JSON_HELP, "off", "--json", panel=OUTPUT_PANEL)]
Source = Annotated[Path, typer.Argument(help="A run folder or a directions .safetensors file.", metavar="RUN_OR_FILE")]
LATENTS_HELP = "A .npy of latents (n, z_dim) to use.\nInstead of seeded samples; render takes at most 64."
Latents = Annotated[Path | None, option(LATENTS_HELP, "seeded samples", "--latents", panel=SAMPLES_PANEL)]
BATCH_SHOWN = "by device"  # not a value the option takes: what leaving it out chooses
BATCH_HELP = (
    "Images per generator call.\nLeft out: 4 on a CPU, 32 on a GPU, fewer where they would not fit --max-memory."
)
IMAGE_MEMORY_HELP = (
    "Memory a batch must fit, e.g. 8GiB.\nWhat the default --batch-size must fit. Left out: on a GPU its free "
    "memory, on a CPU no limit."
)
Batch = Annotated[int | None, option(BATCH_HELP, BATCH_SHOWN, panel=MEMORY_PANEL)]
ImageMemory = Annotated[str | None, option(IMAGE_MEMORY_HELP, "free GPU memory", "--max-memory", panel=MEMORY_PANEL)]
COMPILE_HELP = (
    "Compile the generator: on, off, auto.\nThe generator's forward runs through torch.compile. auto: on where "
    "the job is long enough to win the compile time back (full-size BigGAN-deep runs, not the small models). A "
    "compile that fails falls back to eager with a warning."
)
Compile = Annotated[str, option(COMPILE_HELP, None, "--compile", panel=MEMORY_PANEL)]

# --- the generator: every command that opens one takes the same options ---
MODEL_HELP = (
    "Which generator (`hpdirs models`).\nbiggan-deep-128, -256 or -512; synthetic[:z_dim=16,factors=4]; "
    "truth-flat, -aligned, -layers or -shapes (known true directions, offline); a plug-in as module:factory. "
    "Left out: the model --weights holds, else the default."
)
MODEL_SHOWN = DEFAULT_MODEL
WEIGHTS_HELP = "Folder with config.json + pytorch_model.bin.\nLeft out: the cache, else a download."
MODEL_ARG_HELP = (
    "key=value for a plug-in; repeatable.\nPassed to the factory of --model module:factory. A directions file "
    "records the ones it was learned with."
)
RANGE_HELP = (
    "A plug-in's output range, e.g. 0,255.\nMapped to [-1, 1], the range BigGAN-deep's images have. A directions "
    "file records the one it was learned with."
)
FROM_FILE = "from the file"
DEVICE_HELP = "cpu, cuda, cuda:N, mps; auto: the best there is.\nauto takes cuda, else mps, else the CPU."
CLASS_HELP = (
    "ImageNet class: a name, index or id.\nA name (golden_retriever), an index (207) or a WordNet id "
    "(n02099601); `hpdirs classes` searches them."
)
TRUNCATION_HELP = "Truncation in (0, 1].\nSnapped to BigGAN-deep's grid of 0.02."


def _common(recorded: bool) -> dict[str, tuple[Any, Any]]:
    """The generator options every command takes; `recorded`: a directions file's own values are
    the defaults of the plug-in ones."""
    args, output_range = ("as recorded", "as recorded") if recorded else ("none", "-1,1")
    return {
        "device": (Annotated[str, option(DEVICE_HELP, None, "--device", panel=GENERATOR_PANEL)], DEVICE),
        "offline": (
            Annotated[bool, flag("Never touch the network (also HPDIRS_OFFLINE=1).", "off", "--offline",
                                 panel=GENERATOR_PANEL)],
            False,
        ),
        "model_arg": (
            Annotated[list[str] | None, option(MODEL_ARG_HELP, args, "--model-arg", panel=GENERATOR_PANEL)], None,
        ),
        "output_range": (
            Annotated[str | None, option(RANGE_HELP, output_range, "--output-range", panel=GENERATOR_PANEL)], None,
        ),
    }  # fmt: skip


# a new run's generator (learn, bench): what is left out takes the defaults
NEW_GENERATOR: dict[str, tuple[Any, Any]] = {
    "class_": (
        Annotated[str | None, option(CLASS_HELP, DEFAULT_CLASS, "--class",
                                     panel=GENERATOR_PANEL)],
        None,
    ),
    "model": (Annotated[str | None, option(MODEL_HELP, MODEL_SHOWN, "--model", panel=GENERATOR_PANEL)], None),
    "weights": (Annotated[Path | None, option(WEIGHTS_HELP, "the cache", "--weights", panel=GENERATOR_PANEL)], None),
    "truncation": (
        Annotated[float | None, option(TRUNCATION_HELP, DEFAULT_TRUNCATION,
                                       "--truncation", panel=GENERATOR_PANEL)],
        None,
    ),
    **_common(recorded=False),
}  # fmt: skip
# the generator a directions file records (render, compare, explore): what is given overrides it
RECORDED_GENERATOR: dict[str, tuple[Any, Any]] = {
    "model": (
        Annotated[str | None, option("Override the model named in the file.", FROM_FILE, "--model",
                                     panel=GENERATOR_PANEL)],
        None,
    ),
    "class_": (
        Annotated[str | None, option("Override the class named in the file.", FROM_FILE, "--class",
                                     panel=GENERATOR_PANEL)],
        None,
    ),
    "truncation": (
        Annotated[float | None, option("Override the truncation in the file.", FROM_FILE, "--truncation",
                                       panel=GENERATOR_PANEL)],
        None,
    ),
    "weights": (
        Annotated[Path | None, option("Weights folder.", "from the file, else the cache", "--weights",
                                      panel=GENERATOR_PANEL)],
        None,
    ),
    **_common(recorded=True),
}  # fmt: skip


def _choice(values: dict[str, Any]) -> GeneratorChoice:
    return GeneratorChoice.parsed(
        model=values["model"], class_=values["class_"], truncation=values["truncation"], weights=values["weights"],
        device=values["device"], offline=values["offline"], model_args=values["model_arg"],
        output_range=values["output_range"],
    )  # fmt: skip


def opens_a_generator(recorded: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The command, with the generator options after its own (in their own --help panel), called
    with `choice`: the GeneratorChoice they make. `recorded`: the generator a directions file
    records, overridden where given; else a new one."""
    return adds_options(RECORDED_GENERATOR if recorded else NEW_GENERATOR, _choice, "choice")

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


JSON_HELP = "Print one JSON document on stdout instead of tables (progress on stderr)."
Json = Annotated[bool, flag(JSON_HELP, "off", "--json")]
Source = Annotated[Path, typer.Argument(help="A run folder or a directions .safetensors file.", metavar="RUN_OR_FILE")]
LATENTS_HELP = "A .npy of latents (n, z_dim) to use instead of seeded samples (render: n <= 64)."
Latents = Annotated[Path | None, option(LATENTS_HELP, "seeded samples", "--latents")]
BATCH_SHOWN = "4 on CPU, 32 on GPU, fewer where they would not fit the memory"
IMAGE_MEMORY_HELP = "Memory the default --batch-size must fit, e.g. 8GiB."
ImageMemory = Annotated[str | None, option(IMAGE_MEMORY_HELP, "on GPU its free memory, else no limit", "--max-memory")]
COMPILE_HELP = (
    "The generator's forward through torch.compile: on, off, or auto (on where the job is long enough to win "
    "the compile time back: full-size BigGAN-deep runs, not the small models). Falls back to eager with a warning."
)
Compile = Annotated[str, option(COMPILE_HELP, None, "--compile")]

# --- the generator: every command that opens one takes the same options ---
MODEL_HELP = (
    "biggan-deep-128, -256 or -512; synthetic[:z_dim=16,factors=4]; truth-flat, -aligned, -layers or -shapes "
    "(known true directions, offline); `hpdirs models` lists them with your plug-ins."
)
MODEL_SHOWN = f"{DEFAULT_MODEL}, or what --weights holds"
WEIGHTS_HELP = "Folder with config.json + pytorch_model.bin (else the cache, else a download)."
MODEL_ARG_HELP = "key=value for a plug-in's factory (--model module:factory); repeat for more."
RANGE_HELP = "A plug-in's output range, e.g. 0,1 or 0,255, mapped to [-1, 1]."
FROM_FILE = "from the file"
_COMMON = {
    "device": (
        Annotated[str, option("auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.", None, "--device",
                              panel=GENERATOR_PANEL)],
        DEVICE,
    ),
    "offline": (
        Annotated[bool, flag("Never touch the network (also HPDIRS_OFFLINE=1).", "off", "--offline",
                             panel=GENERATOR_PANEL)],
        False,
    ),
    "model_arg": (
        Annotated[list[str] | None, option(MODEL_ARG_HELP, "as recorded, else none", "--model-arg",
                                           panel=GENERATOR_PANEL)],
        None,
    ),
    "output_range": (
        Annotated[str | None, option(RANGE_HELP, "[-1, 1], or as recorded", "--output-range", panel=GENERATOR_PANEL)],
        None,
    ),
}  # fmt: skip
# a new run's generator (learn, bench): what is left out takes the defaults
NEW_GENERATOR: dict[str, tuple[Any, Any]] = {
    "class_": (
        Annotated[str | None, option("ImageNet class: name, index or WordNet id.", DEFAULT_CLASS, "--class",
                                     panel=GENERATOR_PANEL)],
        None,
    ),
    "model": (Annotated[str | None, option(MODEL_HELP, MODEL_SHOWN, "--model", panel=GENERATOR_PANEL)], None),
    "weights": (Annotated[Path | None, option(WEIGHTS_HELP, "the cache", "--weights", panel=GENERATOR_PANEL)], None),
    "truncation": (
        Annotated[float | None, option("Truncation in (0, 1]; snapped to BigGAN's 0.02 grid.", DEFAULT_TRUNCATION,
                                       "--truncation", panel=GENERATOR_PANEL)],
        None,
    ),
    **_COMMON,
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
    **_COMMON,
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

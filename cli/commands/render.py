"""`hpdirs render`: direction sweeps to files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from direction_finder.generators.choice import GeneratorChoice
from direction_finder.outputs.formats import FORMATS
from direction_finder.outputs.settings import RenderSettings
from hpdirs_cli.console import say, user_errors
from hpdirs_cli.options import BATCH_SHOWN, Compile, ImageMemory, Latents, Source, flag, opens_a_generator, option
from hpdirs_cli.progress import download_progress, images_progress

RENDER = RenderSettings()  # the library's defaults, which these options take as theirs
FORMATS_SHOWN = ",".join(map(str, RENDER.formats))  # as the text --format takes
ALIGN_HELP = "Put every sample at the same coordinate along the direction (paper Fig. 7d)."
LAYERS_HELP = "Edit only these latent layers, e.g. 0-3 (0: the first linear layer, then one per block; BigGAN-deep)."
FORMAT_HELP = "Comma-separated: " + ", ".join(f"{fmt.name} ({fmt.help})" for fmt in FORMATS.values()) + "."
Directions = Annotated[str | None, option("Which directions, e.g. 0-7,12.", "0-7")]
Samples = Annotated[int, option("Samples per frame (columns of each grid).")]
Seed = Annotated[int, option("Seed of the samples' latents.")]
Layers = Annotated[str | None, option(LAYERS_HELP, "all, or the layers a label gives a direction")]
Eta = Annotated[float, option("Sweep each direction from -eta to +eta.")]
Frames = Annotated[int, option("Distinct eta values per sweep (the loop plays them forth and back).")]
Fps = Annotated[float, option("Frames per second of GIFs and MP4s.")]
Align = Annotated[bool, flag(ALIGN_HELP, None, "--align/--no-align")]
Axes = Annotated[str | None, option("Also render these axis-aligned z components, e.g. 0-15.", "none")]
Format = Annotated[str, option(FORMAT_HELP, None, "--format")]
Size = Annotated[int | None, option("Pixels per image in the outputs.", "the model's resolution")]
Label = Annotated[bool, flag("Print direction index and eta above each frame.", None, "--label/--no-label")]
Batch = Annotated[int | None, option("Images per generator call.", BATCH_SHOWN)]
Out = Annotated[Path | None, option("Output folder.", "RUN/render, or render-<file> beside a file")]


@opens_a_generator(recorded=True)
def render(
    run_or_file: Source,
    directions: Directions = None,
    samples: Samples = RENDER.samples,
    seed: Seed = RENDER.seed,
    eta: Eta = RENDER.eta,
    frames: Frames = RENDER.frames,
    fps: Fps = RENDER.fps,
    align: Align = RENDER.align,
    axes: Axes = None,
    format: Format = FORMATS_SHOWN,
    size: Size = None,
    label: Label = RENDER.label,
    batch_size: Batch = None,
    max_memory: ImageMemory = None,
    out: Out = None,
    latents: Latents = None,
    layers: Layers = None,
    compile: Compile = RENDER.compile,
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
            max_memory=max_memory, layers=layers, compile=compile,
        )  # fmt: skip
        with download_progress() as progress, images_progress("rendering", narrate=True) as on_images:
            target = render_file(
                run_or_file, settings, generator=choice, out_dir=out, progress=progress, on_images=on_images
            )
    say(f"wrote {target}/index.html")

"""`hpdirs render`: direction sweeps to files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from direction_finder.generators.choice import GeneratorChoice
from direction_finder.outputs.formats import FORMATS
from direction_finder.outputs.settings import RenderSettings
from hpdirs_cli.console import say, user_errors
from hpdirs_cli.options import (
    OUTPUT_PANEL,
    SAMPLES_PANEL,
    Batch,
    Compile,
    ImageMemory,
    Latents,
    Source,
    flag,
    opens_a_generator,
    option,
)
from hpdirs_cli.progress import download_progress, images_progress

RENDER = RenderSettings()  # the library's defaults, which these options take as theirs
FORMATS_SHOWN = ",".join(map(str, RENDER.formats))  # as the text --format takes
ALIGN_HELP = (
    "Every sample at the same coordinate (Fig. 7d).\nEach sample's component along the direction is removed "
    "first, so each frame shows all samples at the same eta, as in the paper's Fig. 7d."
)
LAYERS_HELP = (
    "Edit only these layers, e.g. 0-3.\n0 is the first linear layer, then one per block (BigGAN-deep): early "
    "layers change pose and shape, late ones texture and colour. Left out: all, or the layers the direction's "
    "label gives."
)
FORMAT_HELP = (
    f"Comma-separated: {', '.join(FORMATS)}.\n" + "; ".join(f"{fmt.name}: {fmt.help}" for fmt in FORMATS.values()) + "."
)
SWEEP = "The sweeps"
RENDER_OUT = "Output folder.\nLeft out: RUN/render, or render-<file> beside a directions file."
Directions = Annotated[str | None, option("Which directions, e.g. 0-7,12.", "0-7", panel=SWEEP)]
Samples = Annotated[int, option("Samples per frame (columns of each grid).", panel=SAMPLES_PANEL)]
Seed = Annotated[int, option("Seed of the samples' latents.", panel=SAMPLES_PANEL)]
Layers = Annotated[str | None, option(LAYERS_HELP, "all, or the label's", panel=SWEEP)]
Eta = Annotated[float, option("Sweep each direction from -eta to +eta.", panel=SWEEP)]
Frames = Annotated[int, option("Distinct eta values per sweep.\nThe loop plays them forth and back.", panel=SWEEP)]
Fps = Annotated[float, option("Frames per second of GIFs and MP4s.", panel=OUTPUT_PANEL)]
Align = Annotated[bool, flag(ALIGN_HELP, None, "--align/--no-align", panel=SWEEP)]
Axes = Annotated[str | None, option("Also these axis-aligned z components, e.g. 0-15.", "none", panel=SWEEP)]
Format = Annotated[str, option(FORMAT_HELP, None, "--format", panel=OUTPUT_PANEL)]
Size = Annotated[int | None, option("Pixels per image in the outputs.", "the model's", panel=OUTPUT_PANEL)]
LABEL_HELP = "Print direction index and eta above each frame."
Label = Annotated[bool, flag(LABEL_HELP, None, "--label/--no-label", panel=OUTPUT_PANEL)]
Out = Annotated[Path | None, option(RENDER_OUT, "RUN/render", panel=OUTPUT_PANEL)]


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
    """Render direction sweeps: GIF grids, PNG sheets, index.html.

    A GIF grid per direction (samples side by side), an overview GIF of all of them, a PNG sheet, MP4s on request,
    and an index.html gallery of them all.

    $ hpdirs render outputs/golden_retriever/first-try --directions 0-7 --samples 6
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

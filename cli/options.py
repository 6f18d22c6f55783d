"""Every option of every command: its flag, its help, and the library default --help shows.

An option whose value a command passes on only when given (None: left out) shows the library's
default as text; the others take it as their value (RENDER.samples, COMPARE.k, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from direction_finder.config import DEFAULT_RECIPE, RECIPES, default
from direction_finder.evaluation.budget import DEFAULT_BUDGET
from direction_finder.evaluation.records import PRECISE_SAMPLES, CompareSettings
from direction_finder.generators import DEFAULT_CLASS, DEFAULT_MODEL, DEFAULT_TRUNCATION, GeneratorChoice
from direction_finder.learning.runner import RunRequest
from direction_finder.measuring.bench import BenchSettings
from direction_finder.outputs.render import RenderSettings
from direction_finder.starts import DEFAULT_BASELINES, STARTS

# The library's defaults of the commands whose every option is passed on.
RENDER, COMPARE, BENCH = RenderSettings(), CompareSettings(), BenchSettings()
DEVICE = str(GeneratorChoice().device)  # "auto": the best device present
OUT_ROOT = Path(RunRequest().out_root)
# ... and those of them that are lists, as the comma-separated text the options take
RENDER_FORMATS = ",".join(map(str, RENDER.formats))
BENCH_BATCHES = ",".join(map(str, BENCH.batch_sizes))
BENCH_LAYER = str(BENCH.layer)


def option(help: str, shown: object = None, *flags: str) -> Any:
    """A typer option; `shown`, when given, is what --help names as its default."""
    if shown is None:
        return typer.Option(*flags, help=help)
    return typer.Option(*flags, help=help, show_default=str(shown))


def flag(help: str, shown: object, *flags: str) -> Any:
    """An on/off option: no value follows it, so --help shows no type for it."""
    if shown is None:
        return typer.Option(*flags, help=help, metavar="")
    return typer.Option(*flags, help=help, show_default=str(shown), metavar="")


def learned(name: str) -> str:
    """A LearnConfig field's default as a new run takes it (the default recipe's)."""
    value = default(name)
    return "z_dim" if name == "num_directions" and value is None else str(value)


JSON_HELP = "Print one JSON document on stdout instead of tables (progress on stderr)."
Json = Annotated[bool, flag(JSON_HELP, "off", "--json")]

# --- every command that builds a generator ---
MODEL_ARG_HELP = "key=value for a plug-in's factory (--model module:factory); repeat for more."
RANGE_HELP = "A plug-in's output range, e.g. 0,1 or 0,255, mapped to [-1, 1]."
ModelArgs = Annotated[list[str] | None, option(MODEL_ARG_HELP, "as recorded, else none", "--model-arg")]
OutputRange = Annotated[str | None, option(RANGE_HELP, "[-1, 1], or as recorded", "--output-range")]
Device = Annotated[str, option("auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.", None, "--device")]
Offline = Annotated[bool, flag("Never touch the network (also HPDIRS_OFFLINE=1).", "off", "--offline")]

# --- the commands that read a directions file and rebuild its generator ---
FROM_FILE = "from the file"
Source = Annotated[Path, typer.Argument(help="A run folder or a directions .safetensors file.")]
ModelOverride = Annotated[str | None, option("Override the model named in the file.", FROM_FILE, "--model")]
ClassOverride = Annotated[str | None, option("Override the class named in the file.", FROM_FILE, "--class")]
TruncationOverride = Annotated[float | None, option("Override the truncation in the file.", FROM_FILE, "--truncation")]
WeightsOverride = Annotated[Path | None, option("Weights folder.", "from the file, else the cache", "--weights")]

# --- learn ---
LAYER_HELP = (
    "Fast mode: penalise the normalised activation after GenBlock i instead of pixels: block0..block9 "
    "at 4,8,8,16,16,32,32,64,64,128 px for biggan-deep-128 (block11 at 256 px for -256); "
    "`hpdirs bench` prints each with its shape."
)
RECIPE_ABOUT = {
    "paper": "Peebles et al.",
    "curvature": "the curvature warm start refined; README, Quality",
    "sefa": "SeFa refined on the manifold; the demo's",
}
RECIPE_HELP = (
    "Preset of --init and --lr (and --optimizer): "
    + " or ".join(
        f"{name} ({', '.join(str(v) for v in fields.values())}: {RECIPE_ABOUT.get(name, 'see README')})"
        for name, fields in RECIPES.items()
    )
    + ". --init/--lr/--optimizer override it."
)
STARTS_HELP = "; ".join(f"{start.name}: {start.help}" for start in STARTS.values())
INIT_HELP = f"How A starts. {STARTS_HELP}."
MODEL_HELP = (
    "biggan-deep-128/-256/-512, synthetic[:z_dim=16,factors=4] or truth-flat/-aligned/-layers/-shapes[:seed=0] "
    "(known true directions, offline)."
)
WEIGHTS_HELP = "Folder with config.json + pytorch_model.bin (else the cache, else a download)."
TIME_HELP = "Stop and save after this much learning time (e.g. 90s, 30m, 2h); resume later."
CHUNK_SHOWN = "calls of ~2 images on CPU; all 2k on GPU or with --layer"

Class = Annotated[str | None, option("ImageNet class: name, index or WordNet id.", DEFAULT_CLASS, "--class")]
MODEL_SHOWN = f"{DEFAULT_MODEL}, or what --weights holds"
Model = Annotated[str | None, option(MODEL_HELP, MODEL_SHOWN)]
Weights = Annotated[Path | None, option(WEIGHTS_HELP, "the cache")]
Truncation = Annotated[float | None, option("Truncation in (0, 1]; snapped to BigGAN's 0.02 grid.", DEFAULT_TRUNCATION)]
NumDirections = Annotated[int | None, option("N directions to learn (<= z_dim).", learned("num_directions"))]
Steps = Annotated[int | None, option("Optimisation steps.", learned("steps"))]
BatchSize = Annotated[int | None, option("Samples per step.", learned("batch_size"))]
Lr = Annotated[float | None, option("Adam learning rate.", learned("lr"))]
Eta = Annotated[float | None, option("Base points w = eta_b e_i with eta_b ~ U[-eta, eta].", learned("eta"))]
Epsilon = Annotated[float | None, option("Finite-difference step.", learned("epsilon"))]
K = Annotated[int | None, option("Rademacher vectors per sample (>= 2).", learned("k"), "--k")]
Recipe = Annotated[str | None, option(RECIPE_HELP, DEFAULT_RECIPE)]
Init = Annotated[str | None, option(INIT_HELP, learned("init"))]
OPTIMIZER_HELP = "adam (on A, as the paper) or riemannian (Adam on the manifold of orthonormal directions)."
Optimizer = Annotated[str | None, option(OPTIMIZER_HELP, learned("optimizer"))]
Seed = Annotated[int | None, option("Seed of every random draw.", learned("seed"))]
CheckpointEvery = Annotated[int | None, option("Steps between checkpoints.", learned("checkpoint_every"))]
EvalEvery = Annotated[int | None, option("Steps between held-out evaluations (0: never).", learned("eval_every"))]
EvalSamples = Annotated[int | None, option("Samples in the fixed held-out set.", learned("eval_samples"))]
ChunkSize = Annotated[int | None, option("Perturbed batches per generator call (1..2k).", CHUNK_SHOWN)]
MICRO_HELP = "Samples per backward pass; the passes' gradients are summed (less memory, same step)."
MicroBatch = Annotated[int | None, option(MICRO_HELP, "the whole batch")]
MAX_MEMORY_HELP = "Fit each step into this much memory, e.g. 8GiB: chooses --chunk-size, --micro-batch, checkpointing."
MaxMemory = Annotated[str | None, option(MAX_MEMORY_HELP, "no limit")]
CHECKPOINT_HELP = "Recompute each block's activations in the backward: less memory, same numbers, ~1 more forward."
CheckpointActivations = Annotated[
    bool | None, flag(CHECKPOINT_HELP, "off", "--checkpoint-activations/--no-checkpoint-activations")
]
Layer = Annotated[str | None, option(LAYER_HELP, "pixel space")]
OutRoot = Annotated[Path, option("Output root; runs go to OUT/<class>/<name>/.")]
Name = Annotated[str | None, option("Run name.", "the UTC time")]
Resume = Annotated[Path | None, option("Continue the run in this folder from its checkpoint.", "start a new run")]
TimeLimit = Annotated[str | None, option(TIME_HELP, "none")]

DryRun = Annotated[
    bool,
    flag("Print the resolved recipe, layout, device, run folder and images to generate, then exit.", "off",
         "--dry-run"),
]  # fmt: skip

# --- render ---
ALIGN_HELP = "Put every sample at the same coordinate along the direction (paper Fig. 7d)."
Directions = Annotated[str | None, option("Which directions, e.g. 0-7,12.", "0-7")]
RenderSamples = Annotated[int, option("Samples per frame (columns of each grid).")]
RenderSeed = Annotated[int, option("Seed of the samples' latents.")]
LAYERS_HELP = "Edit only these latent layers, e.g. 0-3 (0: the first linear layer, then one per block; BigGAN-deep)."
Layers = Annotated[str | None, option(LAYERS_HELP, "all, or the layers a label gives a direction")]
LABEL_LAYERS_HELP = "The latent layers this direction is applied to by default, e.g. 0-3 (render; BigGAN-deep)."
LabelLayers = Annotated[str | None, option(LABEL_LAYERS_HELP, "all")]
RenderEta = Annotated[float, option("Sweep each direction from -eta to +eta.")]
Frames = Annotated[int, option("Distinct eta values per sweep (the loop plays them forth and back).")]
Fps = Annotated[float, option("Frames per second of GIFs and MP4s.")]
Align = Annotated[bool, flag(ALIGN_HELP, None, "--align/--no-align")]
Axes = Annotated[str | None, option("Also render these axis-aligned z components, e.g. 0-15.", "none")]
Format = Annotated[str, option("Comma-separated: gif, mp4, png.", None, "--format")]
Size = Annotated[int | None, option("Pixels per image in the outputs.", "the model's resolution")]
Label = Annotated[bool, flag("Print direction index and eta above each frame.", None, "--label/--no-label")]
BATCH_SHOWN = "4 on CPU, 32 on GPU, fewer where they would not fit the memory"
RenderBatch = Annotated[int | None, option("Images per generator call.", BATCH_SHOWN)]
IMAGE_MEMORY_HELP = "Memory the default --batch-size must fit, e.g. 8GiB."
ImageMemory = Annotated[str | None, option(IMAGE_MEMORY_HELP, "on GPU its free memory, else no limit", "--max-memory")]
RenderOut = Annotated[Path | None, option("Output folder.", "RUN/render, or render-<file> beside a file")]

LATENTS_HELP = "A .npy of latents (n, z_dim) to use instead of seeded samples (render: n <= 64)."
Latents = Annotated[Path | None, option(LATENTS_HELP, "seeded samples", "--latents")]

# --- compare ---
BASELINES_HELP = f"Comma-separated, each the start --init of that name gives. {STARTS_HELP}."
Baselines = Annotated[str | None, option(BASELINES_HELP, f"{','.join(DEFAULT_BASELINES)} (none with a second set)")]
Against = Annotated[
    Path | None, typer.Argument(help="A second run or directions file to compare the first with (paired).")
]
SAMPLES_HELP = "Held-out samples shared by every metric and set: the precise computation, no budget."
CompareSamples = Annotated[int | None, option(SAMPLES_HELP, "chosen by --budget")]
BUDGET_HELP = "Time (10m, 90s, 1h) or images (3300) to spend; chooses the samples (and reserves the GIFs)."
Budget = Annotated[str | None, option(BUDGET_HELP, DEFAULT_BUDGET)]
PRECISE_HELP = f"Every direction on the same {PRECISE_SAMPLES} samples (or --samples): slow, no budget."
Precise = Annotated[bool, flag(PRECISE_HELP, "off", "--precise")]
CompareSeed = Annotated[int, option("Seed of the held-out samples, base points and vectors.")]
Top = Annotated[int, option("N': most active directions in the D% / D_R Hessians.")]
CompareEta = Annotated[float, option("Base points and sweeps within [-eta, eta].")]
CompareEpsilon = Annotated[float, option("Finite-difference step.")]
CompareK = Annotated[int, option("Rademacher vectors per sample.", None, "--k")]
SweepSteps = Annotated[int, option("Coefficient values in the activeness sweep (precise).")]
CompareBatch = Annotated[int | None, option("Images per generator call.", BATCH_SHOWN)]
LAYER_MEASURE = "Measure on this layer's activation instead of pixels (see `hpdirs learn --help`)."
CompareLayer = Annotated[str | None, option(LAYER_MEASURE, "pixel space")]
Gifs = Annotated[bool, flag("Write the side-by-side GIFs.", None, "--gifs/--no-gifs")]
COMPARE_OUT = "RUN/compare (RUN/compare-vs-<other> with a second set), or compare-<file> beside a file"
CompareOut = Annotated[Path | None, option("Output folder.", COMPARE_OUT)]

# --- explore ---
Host = Annotated[str, option("Address to listen on; 127.0.0.1 keeps the page to this machine.")]
Port = Annotated[int, option("Port to listen on.", "a free port")]
OpenBrowser = Annotated[bool, flag("Open the page in the default browser.", "off", "--open")]
ExploreEta = Annotated[float, option("Sliders reach from -eta to +eta.")]

# --- bench ---
BenchModel = Annotated[str | None, option("biggan-deep-128/-256/-512 or synthetic[:...].", MODEL_SHOWN)]
BenchWeights = Annotated[Path | None, option("Weights folder (random weights measure the same speed).", "the cache")]
BenchClass = Annotated[str, option("ImageNet class (does not change the speed).", None, "--class")]
BenchBatches = Annotated[str, option("Comma-separated batch sizes to measure.", None, "--batch-size")]
BenchSteps = Annotated[int, option("Timed repetitions per measurement (median; after one warm-up).")]
BenchLayer = Annotated[str, option("Layer for the fast-mode measurement: a name, auto (mid resolution) or none.")]
BenchRender = Annotated[bool, flag("Also measure render images/s.", None, "--render/--no-render")]
BenchOut = Annotated[Path, option("Where to write the JSON results.")]
MEMORY_HELP = "Also measure one step's peak memory at these resolutions (random weights), e.g. 128,256,512."
BenchMemory = Annotated[str | None, option(MEMORY_HELP, "not measured")]
EXPLORE_HELP = "Also measure the explorer's slider-to-image latency."
BenchExplore = Annotated[bool, flag(EXPLORE_HELP, None, "--explore/--no-explore")]

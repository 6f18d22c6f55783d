"""`hpdirs bench`: this machine's speed, in one table and bench.json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from rich.table import Table

from direction_finder.generators.choice import GeneratorChoice
from direction_finder.measuring.settings import BenchSettings
from direction_finder.validation import parse_integers
from hpdirs_cli.console import console, emit_json, err_console, say, shown, user_errors
from hpdirs_cli.options import Json, flag, opens_a_generator, option
from hpdirs_cli.progress import download_progress

if TYPE_CHECKING:
    from direction_finder.measuring.bench import BenchResult

if TYPE_CHECKING:
    pass

BENCH = BenchSettings()  # the library's defaults, which these options take as theirs
BATCHES, LAYER = ",".join(map(str, BENCH.batch_sizes)), str(BENCH.layer)  # as the text the options take
Batches = Annotated[str, option("Comma-separated batch sizes to measure.", None, "--batch-size")]
Steps = Annotated[int, option("Timed repetitions per measurement.\nThe median is reported, after one warm-up.")]
LAYER_HELP = "Fast-mode layer: a name, auto or none.\nauto: a block at mid resolution; none skips the measurement."
Layer = Annotated[str, option(LAYER_HELP)]
Render = Annotated[bool, flag("Also measure render images/s.", None, "--render/--no-render")]
Out = Annotated[Path, option("Where to write the JSON results.")]
MEMORY_HELP = (
    "Also peak memory at these sizes, e.g. 128,256.\nOne learning step's peak memory, with random weights of each size."
)
Memory = Annotated[str | None, option(MEMORY_HELP, "none")]
EXPLORE_HELP = "Also measure the explorer's slider-to-image latency."
Explore = Annotated[bool, flag(EXPLORE_HELP, None, "--explore/--no-explore")]
COMPILED_HELP = (
    "Also the compiled learning step.\nThe step through torch.compile, alternated with eager, and its compile "
    "times (cold and warm)."
)
Compiled = Annotated[bool, flag(COMPILED_HELP, None, "--compiled/--no-compiled")]


@opens_a_generator(recorded=False)
def bench(
    batch_size: Batches = BATCHES,
    steps: Steps = BENCH.steps,
    layer: Layer = LAYER,
    render: Render = BENCH.render,
    explore: Explore = BENCH.explore,
    memory: Memory = None,
    compiled: Compiled = BENCH.compiled,
    out: Out = Path("bench.json"),
    json_out: Json = False,
    choice: GeneratorChoice = GeneratorChoice(),
) -> None:
    """Measure this machine's speed and memory; write bench.json.

    Forward and learning speed (eager, compiled, and the reference step), MFU, the --layer fast mode, render and
    the explorer. Random weights measure the same speed as the published ones, and the class and truncation do not
    change it.

    $ hpdirs bench --model biggan-deep-128 --batch-size 1,4 --steps 3
    """
    from direction_finder.measuring.bench import bench_to_file

    with user_errors():
        sizes = parse_integers("batch_size", batch_size)
        resolutions = parse_integers("memory", memory or "")
        chosen_layer = None if layer.lower() == "none" else layer
        settings = BenchSettings(
            sizes, steps, chosen_layer, render, explore=explore, memory=resolutions, compiled=compiled
        )

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
        emit_json(results.as_json())
        return
    print_bench(results)
    say(f"wrote {out}")


def print_bench(r: BenchResult) -> None:
    """The measurements as a table and a few lines."""
    table = Table(
        "measure", *[f"batch {b}" for b in r.batch_sizes], title=f"{r.model} on {r.device} ({r.device_name}, "
        f"{r.threads} threads)",
    )  # fmt: skip
    table.add_row("forward images/s", *[f"{r.forward_images_per_s[b]:.3g}" for b in r.batch_sizes])
    for layout in ("batched", "chunks", "sequential", "reference", "compiled"):
        if all(layout in r.learn[b].rates for b in r.batch_sizes):
            table.add_row(f"sample-steps/s, {layout}", *[f"{r.learn[b].rates[layout]:.3g}" for b in r.batch_sizes])
    table.add_row(
        "ours (default layout) / reference",
        *[f"{r.learn[b].ratio_vs_reference:.2f}x ({r.learn[b].default_layout})" for b in r.batch_sizes],
    )
    table.add_row(
        "achieved GFLOP/s (MFU)", *[f"{r.learn[b].achieved_gflops:.3g} ({r.learn[b].mfu:.2f})" for b in r.batch_sizes]
    )
    if all(r.learn[b].compiled_mfu is not None for b in r.batch_sizes):
        table.add_row(
            "compiled / reference (MFU)",
            *[f"{r.learn[b].rates['compiled'] / r.learn[b].rates['reference']:.2f}x ({r.learn[b].compiled_mfu:.2f})"
              for b in r.batch_sizes],
        )  # fmt: skip
        table.add_row("compile s (first call)", *[f"{r.learn[b].compile_s:.1f}" for b in r.batch_sizes])
    if r.layer is not None:
        layer = r.layer
        table.add_row(
            f"--layer {layer.name} sample-steps/s",
            *[f"{layer.sample_steps_per_s[b]:.3g} ({layer.speedup_vs_pixels[b]:.1f}x)" for b in r.batch_sizes],
        )
    console.print(table)
    console.print(
        f"fp32 matmul peak {r.matmul_peak_gflops:.4g} GFLOP/s · {r.flops_per_sample_step / 1e9:.4g} "
        f"GFLOP per sample-step · peak memory {r.peak_memory_mb:.0f} MiB",
        highlight=False,
    )
    if r.warm_compile_s is not None:
        console.print(f"compiled again from the cache (a second run): {r.warm_compile_s:.1f} s", highlight=False)
    if r.render is not None:
        console.print(
            f"render {r.render.images_per_s:.3g} images/s = {r.render.vs_forward:.2f}x forward "
            f"at batch {r.render.batch_size}",
            highlight=False,
        )
    if r.render_compiled is not None and r.render is not None:
        console.print(
            f"render, compiled {r.render_compiled.images_per_s:.3g} images/s = "
            f"{r.render_compiled.images_per_s / r.render.images_per_s:.2f}x eager render",
            highlight=False,
        )
    if r.memory is not None:
        memory = Table("resolution", "layout", "step memory MiB", "peak MiB", "step s", "vs plain",
                       title=f"one learning step's memory at batch {r.memory['batch_size']}")  # fmt: skip
        for resolution, rows in r.memory["resolutions"].items():
            for name, row in rows.items():
                if "error" in row:
                    memory.add_row(resolution, name, row["error"], "", "", "")
                    continue
                ratio = (f"{row['memory_vs_plain']:.2f}x memory, {row['time_vs_plain']:.2f}x time"
                         if "memory_vs_plain" in row else "")  # fmt: skip
                memory.add_row(resolution, name, f"{row['step_mb']:.0f}", f"{row['peak_mb']:.0f}",
                               f"{row['step_s']:.2f}", ratio)  # fmt: skip
        console.print(memory)
    if r.explore is not None:
        for count, e in r.explore.items():
            console.print(
                f"explore, {count} sample(s): new position {e['new_position_ms']:.0f} ms"
                f" = forward {e['forward_ms']:.0f} + {e['overhead_ms']:.0f} ms; cached {e['cached_ms']:.1f} ms",
                highlight=False,
            )

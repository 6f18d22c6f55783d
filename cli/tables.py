"""The tables the commands print: a directions file's metadata, compare's numbers, bench's numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from direction_finder.artifacts.directions import Directions
from direction_finder.config import DEFAULT_RECIPE
from direction_finder.evaluation.compare import Comparison
from direction_finder.evaluation.report import (
    DIFFERENCE_HEADER,
    SUMMARY_HEADER,
    difference_rows,
    measured_line,
    summary_cells,
)
from direction_finder.generators import describe
from direction_finder.learning.runner import RunPlan
from hpdirs_cli.console import console, say, shown

METADATA_ORDER = [
    "format",
    "model",
    "class_index",
    "class_name",
    "truncation",
    "weights",
    "kind",
    "step",
    "loss",
    "heldout",
    "created",
    "config",
    "versions",
]


def print_metadata(file: Path, directions: Directions) -> None:
    """Every metadata field of a directions file, nested ones as `key.sub`."""
    title = shown(f"{file}: {directions.num_directions} directions × z_dim {directions.z_dim}")
    table = Table("field", "value", title=title)
    order = METADATA_ORDER
    items = sorted(directions.metadata.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    for key, value in items:
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                table.add_row(shown(f"{key}.{sub}"), shown(sub_value))
        else:
            table.add_row(shown(key), shown(value))
    for index, name in sorted(directions.labels.items()):
        layers = directions.label_layers.get(index)
        table.add_row(f"label.{index}", shown(name if layers is None else f"{name} (layers {layers[0]}-{layers[1]})"))
    console.print(table)


def print_comparison(result: Comparison) -> None:
    """One row per direction set (value ± 95% half-width), the paired differences, the notes, and
    where the files went."""
    info, results = result.info, result.results
    table = Table(
        *SUMMARY_HEADER,
        title=shown(f"{info.get('model', '')} · {info.get('class_name', '')} · top {result.settings.top}"),
        caption=measured_line(results.measured, result.settings),
    )
    for r in result.reports:
        table.add_row(*map(shown, summary_cells(r)))
    console.print(table)
    if results.differences:
        reference = result.reports[0].name
        paired = Table(
            *[shown(h.format(reference=reference)).plain for h in DIFFERENCE_HEADER],
            title=shown(f"{reference} − each set, paired, ± 95% half-width (better/worse for {reference}; n.s.: no "
                        "significant difference)"),
        )  # fmt: skip
        for row in difference_rows(results.differences):
            paired.add_row(*map(shown, row))
        console.print(paired)
    for note in result.notes:
        say(f"note: {note}")
    say(f"wrote {result.out_dir}/compare.html, report.json, report.csv, differences.csv")


def print_bench(r: dict[str, Any]) -> None:
    """bench.json's numbers as a table and two lines."""
    table = Table(
        "measure",
        *[f"batch {b}" for b in r["batch_sizes"]],
        title=f"{r['model']} on {r['device']} ({r['device_name']}, {r['threads']} threads)",
    )
    learn = r["learn"]
    table.add_row("forward images/s", *[f"{r['forward_images_per_s'][str(b)]:.3g}" for b in r["batch_sizes"]])
    for layout in ("batched", "chunks", "sequential", "reference"):
        table.add_row(f"sample-steps/s, {layout}", *[f"{learn[str(b)][layout]:.3g}" for b in r["batch_sizes"]])
    table.add_row(
        "ours (default layout) / reference",
        *[f"{learn[str(b)]['ratio_vs_reference']:.2f}x ({learn[str(b)]['default_layout']})" for b in r["batch_sizes"]],
    )
    table.add_row(
        "achieved GFLOP/s (MFU)",
        *[f"{learn[str(b)]['achieved_gflops']:.3g} ({learn[str(b)]['mfu']:.2f})" for b in r["batch_sizes"]],
    )
    if "layer" in r:
        table.add_row(
            f"--layer {r['layer']['name']} sample-steps/s",
            *[
                f"{r['layer'][str(b)]['sample_steps_per_s']:.3g} ({r['layer'][str(b)]['speedup_vs_pixels']:.1f}x)"
                for b in r["batch_sizes"]
            ],
        )
    console.print(table)
    console.print(
        f"fp32 matmul peak {r['matmul_peak_gflops']:.4g} GFLOP/s · {r['flops_per_sample_step'] / 1e9:.4g} "
        f"GFLOP per sample-step · peak memory {r['peak_memory_mb']:.0f} MiB",
        highlight=False,
    )
    if "render" in r:
        console.print(
            f"render {r['render']['images_per_s']:.3g} images/s = {r['render']['vs_forward']:.2f}x forward "
            f"at batch {r['render']['batch_size']}",
            highlight=False,
        )
    if "memory" in r:
        memory = Table("resolution", "layout", "step memory MiB", "peak MiB", "step s", "vs plain",
                       title=f"one learning step's memory at batch {r['memory']['batch_size']}")  # fmt: skip
        for resolution, rows in r["memory"]["resolutions"].items():
            for name, row in rows.items():
                if "error" in row:
                    memory.add_row(resolution, name, row["error"], "", "", "")
                    continue
                ratio = (f"{row['memory_vs_plain']:.2f}x memory, {row['time_vs_plain']:.2f}x time"
                         if "memory_vs_plain" in row else "")  # fmt: skip
                memory.add_row(resolution, name, f"{row['step_mb']:.0f}", f"{row['peak_mb']:.0f}",
                               f"{row['step_s']:.2f}", ratio)  # fmt: skip
        console.print(memory)
    if "explore" in r:
        for count, e in r["explore"].items():
            console.print(
                f"explore, {count} sample(s): new position {e['new_position_ms']:.0f} ms"
                f" = forward {e['forward_ms']:.0f} + {e['overhead_ms']:.0f} ms; cached {e['cached_ms']:.1f} ms",
                highlight=False,
            )


def print_plan(plan: RunPlan, recipe: str | None) -> None:
    """`learn --dry-run`: what the run would be, resolved, and the images it would generate."""
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
        ("layout", layout),
        *([("start", f"--init {c.init}: {plan.start_cost.text()}")] if plan.start_cost.layer_forwards else []),
        ("run folder", f"{plan.run_dir} ({'resumed' if plan.resumed else 'new'}, not created)"),
        ("images to generate", f"{sum(images.values()):,} ({parts})"),
    ]  # fmt: skip
    table = Table("", "", title="hpdirs learn --dry-run: nothing was written", show_header=False)
    for key, value in rows:
        table.add_row(key, shown(value))
    console.print(table)

"""compare's outputs: report.json (every metric of every set), report.csv (one row per set), a
GIF per most active learned direction beside its best-matching axis, and compare.html.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from direction_finder.directions import atomic_write
from direction_finder.media import add_label, ping_pong, tile, to_uint8, write_gif
from direction_finder.render import sweep

REPORT_FORMAT = "hpdirs.compare/1"  # report.json
# The columns of compare's summary, as the terminal table and compare.html show them.
SUMMARY_HEADER = (
    "set", "held-out penalty ↓", "D% ↑", "D_R ↑", "top activeness", "mean activeness", "mean |cos| to an axis",
)  # fmt: skip


def summary_cells(report: SetReport) -> list[str]:
    """One set's row under SUMMARY_HEADER, formatted."""
    s = report.summary()
    return [report.name, f"{s['heldout_penalty']:.4g}", f"{s['D_percent']:.1f}", f"{s['D_R']:.3g}",
            f"{s['top_activeness']:.4g}", f"{s['mean_activeness']:.4g}", f"{s['mean_match_cosine']:.3f}"]  # fmt: skip


if TYPE_CHECKING:
    from direction_finder.compare import CompareSettings, SetReport


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    return value


def write_reports(
    out: Path, reports: list[SetReport], notes: list[str], info: dict[str, Any], settings: CompareSettings
) -> None:
    """report.json (every metric of every set), report.csv (one row per set)."""
    body = {
        "format": REPORT_FORMAT,
        **info,
        "settings": settings.__dict__,
        "notes": notes,
        "sets": {
            r.name: {
                **r.summary(),
                "per_direction_penalty": r.per_direction_penalty,
                "activeness": r.activeness,
                "top": r.top,
                "match_axis": r.match_axis,
                "match_cosine": r.match_cosine,
            }
            for r in reports
        },
    }
    atomic_write(out / "report.json", lambda tmp: tmp.write_text(json.dumps(_json_number(body), indent=2) + "\n"))
    buffer = io.StringIO()
    rows = [_json_number(r.summary()) for r in reports]
    fields = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "report.csv", lambda tmp: tmp.write_text(buffer.getvalue()))


def side_by_side(
    generator: Any,
    learned: Tensor,
    report: SetReport,
    out: Path,
    *,
    samples: int = 4,
    seed: int = 0,
    eta: float = 5.0,
    frames: int = 16,
    fps: float = 10.0,
    size: int | None = None,
    on_images: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """For each of the most active learned directions n: a GIF of n | its best-matching axis z_j,
    the same samples and eta in every frame (aligned sweeps)."""
    z = generator.sample_z(samples, torch.Generator().manual_seed(seed))
    etas = torch.linspace(-eta, eta, frames)
    eye = torch.eye(int(generator.z_dim))
    written = []
    for n in report.top:
        j = report.match_axis[n]
        columns = []
        for vector in (learned[n].float(), eye[j]):
            grids = []
            for frame in sweep(generator, vector.to(generator.device), z, etas, align=True):
                pixels = to_uint8(frame, size)  # (S, h, w, 3)
                grids.append(tile(pixels, 1, samples))
                if on_images:
                    on_images(samples)
            columns.append(grids)
        gap = np.full((columns[0][0].shape[0], 8, 3), 255, np.uint8)
        pictures = [
            add_label(
                np.concatenate([a, gap, b], axis=1),
                f"direction {n} | axis z{j} (|cos| {report.match_cosine[n]:.2f})   eta {float(e):+.2f}",
            )
            for a, b, e in zip(columns[0], columns[1], etas, strict=True)
        ]
        name = f"pair_{n:03d}_z{j:03d}.gif"
        write_gif(out / name, [pictures[i] for i in ping_pong(len(pictures))], 1000.0 / fps)
        written.append({"direction": n, "axis": j, "cosine": report.match_cosine[n], "file": name})
    return written


def write_compare_html(
    out: Path,
    reports: list[SetReport],
    notes: list[str],
    pairs: list[dict[str, Any]],
    info: dict[str, Any],
    settings: CompareSettings,
) -> None:
    e = html.escape
    header = list(SUMMARY_HEADER)
    has_recovery = any("recovery" in r.extra for r in reports)
    if has_recovery:
        header.append("recovery ↑")
    rows = []
    for r in reports:
        cells = summary_cells(r)
        if has_recovery:
            cells.append(f"{r.extra.get('recovery', float('nan')):.3f}")
        rows.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    figures = "\n".join(
        f'<figure><img src="{e(p["file"])}" alt="direction {p["direction"]} vs axis z{p["axis"]}">'
        f"<figcaption>learned direction {p['direction']} | axis z{p['axis']} (|cos| {p['cosine']:.2f})"
        "</figcaption></figure>"
        for p in pairs
    )
    model, class_name, truncation = (e(str(info.get(key, "?"))) for key in ("model", "class_name", "truncation"))
    measured = (
        f"{settings.samples} held-out samples (seed {settings.seed}) · η ∈ [−{settings.eta}, {settings.eta}] · "
        f"ε {settings.epsilon} · k {settings.k} ·"
    )
    layer = " · layer " + e(settings.layer) if settings.layer else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hpdirs compare · {e(str(info.get("class_name", "")))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
td:first-child {{ text-align: left; }} figure {{ margin: 0 0 1rem 0; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>Learned directions vs baselines</h1>
<p>model {model} · class {class_name} · truncation {truncation} ·
{measured}
D%, D_R over the {settings.top} most active directions of each set{layer}</p>
<table><tr>{"".join(f"<th>{e(h)}</th>" for h in header)}</tr>
{chr(10).join(rows)}
</table>
{"".join(f"<p>{e(n)}</p>" for n in notes)}
<h2>Learned direction | best-matching axis</h2>
{figures}
</body></html>
"""
    atomic_write(out / "compare.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))

"""compare's outputs: report.json (every metric of every set with its interval, and the paired
differences), report.csv (one row per set), differences.csv (one row per paired difference), a
GIF per most active direction beside its best-matching axis (or the other set's closest
direction), and compare.html.
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

from direction_finder.evaluation.measures import matching
from direction_finder.evaluation.records import Results, SetReport
from direction_finder.evaluation.settings import CompareSettings
from direction_finder.evaluation.stats import Difference, Statistic
from direction_finder.files import write_text_atomic
from direction_finder.method.sweeps import sweep
from direction_finder.outputs.media import add_label, ping_pong, tile, to_uint8, write_gif

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

REPORT_FORMAT = "hpdirs.compare/2"  # report.json
PAIRS, PAIR_SAMPLES, PAIR_FRAMES = 4, 3, 12  # side-by-side GIFs: directions, samples, frames per sweep
# The columns of compare's summary, as the terminal table and compare.html show them: value ± the
# half-width of its 95% interval.
SUMMARY_HEADER = (
    "set", "held-out penalty ↓", "D% ↑", "D_R ↑", "top activeness", "mean activeness", "mean |cos| to an axis",
)  # fmt: skip
DIFFERENCE_HEADER = ("{reference} − set", "held-out penalty", "D%", "D_R")
_FORMATS = {
    "heldout_penalty": ".4g", "D_percent": ".1f", "D_R": ".3g", "top_activeness": ".4g", "mean_activeness": ".4g",
}  # fmt: skip


def with_interval(statistic: Statistic, spec: str) -> str:
    """`4.279 ± 0.051`: the value and the half-width of its 95% interval (the value alone if unknown)."""
    low, high = statistic.interval()
    if not math.isfinite(low):
        return format(statistic.value, spec)
    return f"{statistic.value:{spec}} ± {(high - low) / 2:.2g}"


def summary_cells(report: SetReport) -> list[str]:
    """One set's row under SUMMARY_HEADER, formatted."""
    cells = [with_interval(report.metrics[name], spec) for name, spec in _FORMATS.items()]
    return [report.name, *cells, f"{np.mean(report.match_cosine):.3f}"]


def difference_rows(differences: list[Difference]) -> list[list[str]]:
    """Under DIFFERENCE_HEADER: per other set, each metric's paired difference ± its half-width and
    the verdict (better / worse for the reference, n.s. where the interval holds zero)."""
    rows: dict[str, list[str]] = {}
    for d in differences:
        verdict = {"not significant": "n.s."}.get(d.verdict, d.verdict)
        text = with_interval(d.statistic, _FORMATS[d.metric])
        text = "−" + text[1:] if text.startswith("-") else text
        rows.setdefault(d.other, [d.other]).append(f"{text} ({verdict})")
    return list(rows.values())


def measured_line(measured: dict[str, Any], settings: CompareSettings) -> str:
    """How the numbers were measured, in one line."""
    if measured["mode"] == "precise":
        what = f"{measured['samples']} held-out samples (seed {settings.seed}), every direction"
    else:
        what = (
            f"budget {measured['budget']}: penalty on {measured['penalty_samples']:,} samples, one random direction "
            f"each; D%/D_R on "
            f"{measured['hessian_samples']} samples, top directions by local activeness at the first "
            f"{measured['jacobian_samples']} (seed {settings.seed})"
        )
    return f"{what} · {measured['images']:,} images in {measured['seconds']:.0f} s"


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    if isinstance(value, list):
        return [_json_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_number(v) for k, v in value.items()}
    return value


def write_reports(out: Path, results: Results, info: dict[str, Any], settings: CompareSettings) -> None:
    """report.json (every metric of every set), report.csv (one row per set), differences.csv."""
    body = {
        "format": REPORT_FORMAT,
        **info,
        "settings": settings.__dict__,
        "measured": results.measured,
        "notes": results.notes,
        "spectrum": results.spectrum,
        "sets": {
            r.name: {
                **r.summary(),
                "intervals": {name: statistic.as_dict() for name, statistic in r.metrics.items()},
                "per_direction_penalty": r.per_direction_penalty,
                "activeness": r.activeness,
                "top": r.top,
                "match_axis": r.match_axis,
                "match_cosine": r.match_cosine,
            }
            for r in results.reports
        },
        "differences": [d.as_dict() for d in results.differences],
    }
    write_text_atomic(out / "report.json", json.dumps(_json_number(body), indent=2) + "\n")
    _write_csv(out / "report.csv", [_json_number(r.summary()) for r in results.reports])
    rows = [{**d.as_dict(), "ci95_low": d.statistic.interval()[0], "ci95_high": d.statistic.interval()[1]}
            for d in results.differences]  # fmt: skip
    _write_csv(out / "differences.csv", [_json_number({k: v for k, v in r.items() if k != "ci95"}) for r in rows])


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def side_by_side(
    generator: Generator,
    learned: Tensor,
    report: SetReport,
    out: Path,
    *,
    samples: int = PAIR_SAMPLES,
    seed: int = 0,
    eta: float = 5.0,
    frames: int = PAIR_FRAMES,
    pairs: int = PAIRS,
    fps: float = 10.0,
    size: int | None = None,
    partner: tuple[str, Tensor] | None = None,
    batch_size: int = 16,
    on_images: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """For each of the `pairs` most active directions n: a GIF of n | the axis z_j closest to it
    (or, with partner = (name, matrix), that set's closest direction), the same samples and eta
    in every frame (aligned sweeps)."""
    z = generator.sample_z(samples, torch.Generator().manual_seed(seed))
    etas = torch.linspace(-eta, eta, frames)
    others = torch.eye(int(generator.z_dim)) if partner is None else partner[1].float()
    matches, cosines = matching(learned.float(), None if partner is None else others)
    written = []
    for n in report.top[:pairs]:
        j = matches[n]
        columns = []
        for vector in (learned[n].float(), others[j]):
            grids = []
            for frame in sweep(generator, vector.to(generator.device), z, etas, align=True, batch_size=batch_size):
                pixels = to_uint8(frame, size)  # (S, h, w, 3)
                grids.append(tile(pixels, 1, samples))
                if on_images:
                    on_images(samples)
            columns.append(grids)
        gap = np.full((columns[0][0].shape[0], 8, 3), 255, np.uint8)
        what = f"axis z{j}" if partner is None else f"{partner[0]} d{j}"
        pictures = [
            add_label(
                np.concatenate([a, gap, b], axis=1),
                f"{report.name} d{n} | {what} (|cos| {cosines[n]:.2f})   eta {float(e):+.2f}",
            )
            for a, b, e in zip(columns[0], columns[1], etas, strict=True)
        ]
        name = f"pair_{n:03d}_{'z' if partner is None else 'd'}{j:03d}.gif"
        write_gif(out / name, [pictures[i] for i in ping_pong(len(pictures))], 1000.0 / fps)
        written.append({"direction": n, "partner": what, "cosine": cosines[n], "file": name})
    return written


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>\n{body}\n</table>"


def write_compare_html(
    out: Path, results: Results, pairs: list[dict[str, Any]], info: dict[str, Any], settings: CompareSettings
) -> None:
    e = html.escape
    reports = results.reports
    header = list(SUMMARY_HEADER)
    has_recovery = any("recovery" in r.extra for r in reports)
    if has_recovery:
        header.append("recovery ↑")
    rows = [summary_cells(r) + ([f"{r.extra.get('recovery', math.nan):.3f}"] if has_recovery else []) for r in reports]
    reference = reports[0].name
    differences = ""
    if results.differences:
        columns = [h.format(reference=reference) for h in DIFFERENCE_HEADER]
        differences = (
            f"<h2>{e(reference)} against each set: paired differences</h2>\n"
            "<p>value ± the half-width of its 95% interval, over the same held-out samples; better / worse "
            f"for {e(reference)} where the interval excludes zero, n.s. where it does not</p>\n"
            + _html_table(columns, difference_rows(results.differences))
        )
    figures = "\n".join(
        f'<figure><img src="{e(p["file"])}" alt="direction {p["direction"]} vs {e(p["partner"])}">'
        f"<figcaption>{e(reference)} d{p['direction']} | {e(p['partner'])} (|cos| {p['cosine']:.2f})"
        "</figcaption></figure>"
        for p in pairs
    )
    pairs_of = pairs[0]["partner"] if pairs else "axis"
    model, class_name, truncation = (e(str(info.get(key, "?"))) for key in ("model", "class_name", "truncation"))
    layer = " · layer " + e(settings.layer) if settings.layer else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hpdirs compare · {e(str(info.get("class_name", "")))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
td:first-child {{ text-align: left; }} figure {{ margin: 0 0 1rem 0; }} img {{ max-width: 100%; }}
</style></head><body>
<h1>{e(reference)} against {e(", ".join(r.name for r in reports[1:]) or "nothing")}</h1>
<p>model {model} · class {class_name} · truncation {truncation} ·
{e(measured_line(results.measured, settings))} · η ∈ [−{settings.eta}, {settings.eta}] · ε {settings.epsilon} ·
k {settings.k} · D%, D_R over the {settings.top} most active directions of each set{layer}</p>
{_html_table(header, rows)}
{"".join(f"<p>{e(n)}</p>" for n in results.notes)}
{differences}
<h2>{e(reference)} direction | {"the closest axis" if len(reports) < 2 or "axis" in pairs_of else "the closest"}</h2>
{figures}
</body></html>
"""
    write_text_atomic(out / "compare.html", page)

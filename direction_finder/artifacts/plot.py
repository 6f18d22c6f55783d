"""A small loss-curve chart drawn with Pillow (no plotting library needed).

Pillow's built-in bitmap font has ASCII only, so the chart uses nothing else: legend entries
are a drawn line and a name, not a dash character the font lacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageDraw


def log_ticks(low: float, high: float) -> list[float]:
    """Values to label on a log axis from low to high: decades; 2 and 5 times them within two
    decades; every digit within one; and low and high themselves when fewer than two fall in."""
    decades = math.log10(high / low)
    steps = tuple(float(m) for m in range(1, 10)) if decades < 1 else (1.0, 2.0, 5.0) if decades < 2 else (1.0,)
    ticks = [m * 10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1) for m in steps]
    inside = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
    return inside if len(inside) >= 2 else sorted({low, *inside, high})


def loss_curve(
    series: Mapping[str, Sequence[tuple[int, float]]],
    path: Path | BinaryIO,
    title: str = "",
    size: tuple[int, int] = (640, 360),
) -> None:
    """Draw each named series of (step, value > 0) on a log-y chart and save it as PNG."""
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    width, height = size
    left, right, top, bottom = 64, 16, 40, 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    points = [(s, v) for data in series.values() for s, v in data if v > 0 and math.isfinite(v)]
    draw.text((left, 4), title, fill="black")
    if not points:
        draw.text((left, height // 2), "no data yet", fill="black")
        image.save(path, format="PNG")
        return
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1 = x1 if x1 > x0 else x0 + 1
    ly0, ly1 = math.log10(y0), math.log10(y1)
    if ly1 - ly0 < 1e-6:
        ly0, ly1 = ly0 - 0.5, ly1 + 0.5
    inset = 8  # pixels between the frame and the outermost points: a dot there is drawn whole

    def xy(step: float, value: float) -> tuple[float, float]:
        fx = (step - x0) / (x1 - x0)
        fy = (math.log10(value) - ly0) / (ly1 - ly0)
        return left + inset + fx * (width - left - right - 2 * inset), height - bottom - inset - fy * (
            height - top - bottom - 2 * inset
        )

    for tick in log_ticks(10**ly0, 10**ly1):
        _, y = xy(x0, tick)
        draw.line([left, y, width - right, y], fill=(225, 225, 225))  # a light grid line per value
        draw.line([left - 4, y, left, y], fill="black")
        draw.text((4, y - 6), f"{tick:.3g}", fill="black")
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    draw.text((4, top - 20), "value (log scale)", fill="black")
    for step in (x0, (x0 + x1) // 2, x1):
        x, _ = xy(step, 10**ly0)
        draw.text((x - 10, height - bottom + 6), str(int(step)), fill="black")
    draw.text((width // 2 - 12, height - 16), "step", fill="black")
    for n, (name, data) in enumerate(series.items()):
        colour = colours[n % len(colours)]
        line = [xy(s, v) for s, v in data if v > 0 and math.isfinite(v)]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for x, y in line if len(line) <= 64 else []:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        if len(line) == 1:  # a single point draws no line: its value is written beside it
            (x, y), value = line[0], next(v for _, v in data if v > 0 and math.isfinite(v))
            draw.text((x - 8 - 6 * len(f"{value:.4g}"), y - 6), f"{value:.4g}", fill=colour)  # left of it, level
        lx, ly = width - right - 200, 6 + 14 * n  # in the margin above the plot: it hides no curve
        draw.line([lx, ly + 2, lx + 18, ly + 2], fill=colour, width=2)  # the series' own line, not a glyph
        draw.text((lx + 24, ly - 4), name, fill="black")
    image.save(path, format="PNG")

"""A small loss-curve chart drawn with Pillow (no plotting library needed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image, ImageDraw


def _log_ticks(low: float, high: float) -> list[float]:
    return [10.0**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]


def loss_curve(
    series: Mapping[str, Sequence[tuple[int, float]]], path: Path, title: str = "", size: tuple[int, int] = (640, 360)
) -> None:
    """Draw each named series of (step, value > 0) on a log-y chart and save it as PNG."""
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
    width, height = size
    left, right, top, bottom = 64, 16, 28, 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    points = [(s, v) for data in series.values() for s, v in data if v > 0 and math.isfinite(v)]
    draw.text((left, 8), title, fill="black")
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

    def xy(step: float, value: float) -> tuple[float, float]:
        fx = (step - x0) / (x1 - x0)
        fy = (math.log10(value) - ly0) / (ly1 - ly0)
        return left + fx * (width - left - right), height - bottom - fy * (height - top - bottom)

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for tick in _log_ticks(10**ly0, 10**ly1):
        if 10**ly0 <= tick <= 10**ly1:
            _, y = xy(x0, tick)
            draw.line([left - 4, y, left, y], fill="black")
            draw.text((4, y - 6), f"{tick:.0e}", fill="black")
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
        draw.text((width - right - 180, top + 6 + 14 * n), f"— {name}", fill=colour)
    image.save(path, format="PNG")

"""Frames to files: images to uint8 grids with captions, and grids to GIF, MP4 and PNG.

Every file is written atomically (a temp file in the same folder, then a rename).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from direction_finder.errors import UsageError
from direction_finder.files import atomic_write, write_bytes_atomic


def ping_pong(count: int) -> list[int]:
    """0, 1, ..., n-1, n-2, ..., 1: -eta -> +eta -> -eta, a seamless loop without repeated ends."""
    return list(range(count)) + list(range(count - 2, 0, -1))


def to_uint8(images: Tensor, size: int | None = None) -> np.ndarray:
    """(n, C, H, W) in [-1, 1] -> (n, size, size, 3) uint8 (grey images repeated to RGB)."""
    if size is not None and size != images.shape[-1]:
        images = torch.nn.functional.interpolate(
            images, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if pixels.shape[1] == 1:
        pixels = pixels.repeat(1, 3, 1, 1)
    return pixels[:, :3].permute(0, 2, 3, 1).cpu().numpy()


def tile(images: np.ndarray, rows: int, cols: int, pad: int = 2, background: int = 255) -> np.ndarray:
    """(rows * cols, H, W, 3) uint8 -> one (rows*(H+pad)+pad, cols*(W+pad)+pad, 3) grid, row-major."""
    n, h, w, c = images.shape
    if n != rows * cols:
        raise ValueError(f"tile needs {rows * cols} images, got {n}")
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), background, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        out[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = images[
            i
        ]
    return out


def add_label(image: np.ndarray, text: str) -> np.ndarray:
    """A strip with `text` above the image (so no pixel of the grid is covered)."""
    strip = 14
    canvas = Image.new("RGB", (image.shape[1], image.shape[0] + strip), "white")
    canvas.paste(Image.fromarray(image), (0, strip))
    ImageDraw.Draw(canvas).text((3, 1), text, fill="black")
    return np.asarray(canvas)


def _even(frame: np.ndarray) -> np.ndarray:
    """libx264 needs even width and height: pad with white."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255)


def write_gif(path: Path, frames: Sequence[np.ndarray], duration_ms: float) -> None:
    """An endlessly looping GIF (loop=0; duration per frame in milliseconds), written atomically.

    Each frame is quantised with Pillow's fast octree (one byte per pixel from then on); the
    median-cut default of a plain RGB save is far slower (docs/performance.md).
    """
    palette = {}  # quantise each distinct frame once (ping-pong repeats them)
    images = []
    for frame in frames:
        key = id(frame)
        if key not in palette:
            palette[key] = Image.fromarray(frame).quantize(
                256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
            )
        images.append(palette[key])

    def write(stream: BinaryIO) -> None:
        images[0].save(
            stream, format="GIF", save_all=True, append_images=images[1:], duration=round(duration_ms), loop=0
        )

    atomic_write(path, write)


def write_mp4(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """H.264 MP4 via PyAV (the optional `mp4` extra), written atomically."""
    try:
        import av  # noqa: F401
    except ImportError:
        raise UsageError("MP4 needs PyAV: pip install 'hpdirs[mp4]' (or use `formats` gif,png)") from None
    import imageio.v3 as iio

    encoded = iio.imwrite(
        "<bytes>", np.stack([_even(f) for f in frames]), extension=".mp4", plugin="pyav", codec="libx264", fps=fps
    )  # in memory, then written through the temp file's descriptor like every other file
    write_bytes_atomic(path, encoded)


def write_png(path: Path, image: np.ndarray) -> None:
    atomic_write(path, lambda stream: Image.fromarray(image).save(stream, format="PNG"))


def grid_frame(samples: np.ndarray) -> np.ndarray:
    """(S, h, w, 3) -> one row of S images, or a near-square grid when S > 8."""
    s = samples.shape[0]
    cols = s if s <= 8 else math.ceil(math.sqrt(s))
    rows = math.ceil(s / cols)
    if rows * cols > s:
        samples = np.concatenate([samples, np.full((rows * cols - s, *samples.shape[1:]), 255, np.uint8)])
    return tile(samples, rows, cols)


def labelled_grid(images: np.ndarray, row_names: Sequence[str], column_names: Sequence[str]) -> np.ndarray:
    """(R, C, h, w, 3) uint8 -> one grid with each row's name at its left and each column's name
    above it, so that the picture reads without a page around it."""
    rows, columns = images.shape[:2]
    grid = tile(images.reshape(rows * columns, *images.shape[2:]), rows, columns)
    h, w = images.shape[2:4]
    pad, strip = 2, 14
    margin = 8 + 6 * max((len(name) for name in row_names), default=0)  # PIL's default font: ~6 px a character
    canvas = Image.new("RGB", (margin + grid.shape[1], strip + grid.shape[0]), "white")
    canvas.paste(Image.fromarray(grid), (margin, strip))
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(column_names):
        draw.text((margin + pad + c * (w + pad), 1), name, fill="black")
    for r, name in enumerate(row_names):
        draw.text((3, strip + pad + r * (h + pad) + h // 2 - 5), name, fill="black")
    return np.asarray(canvas)

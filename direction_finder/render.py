"""Direction sweeps rendered to GIF grids, MP4, PNG sheets and an HTML gallery.

Generation is streamed in bounded batches. Frames are kept as uint8 in a disk-backed array
(one direction x frame x sample x image), so memory does not grow with directions x frames x
samples; each output is assembled from it and written atomically (temp file, then rename).
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from direction_finder.directions import atomic_write, check_z_dim, writable_dir
from direction_finder.errors import HpdirsError, UsageError
from direction_finder.learn import FLOAT_LIMITS, LIMITS

FORMATS = ("gif", "mp4", "png")
MAX_FRAMES = 1000  # a sweep of more distinct frames than this is no longer watched, only stored
# GIF stores each frame's duration in centiseconds (1..65535), so 100 fps is the fastest it
# shows; 0.01 fps (100 s a frame) is slower than anyone watches.
FPS_RANGE = (0.01, 100.0)


def default_render_batch(device: torch.device | str) -> int:
    """Images per generator call: on our 2-core CPU small calls are fastest (biggan-deep-128:
    4.4 images/s at batch 1, 4.1 at 4, 3.1 at 16); accelerators want large ones."""
    return 32 if torch.device(device).type in ("cuda", "mps") else 4


def parse_indices(text: str, limit: int, what: str = "directions") -> list[int]:
    """`0-7,12` -> [0, 1, ..., 7, 12]; every index must be in 0..limit-1."""
    indices: list[int] = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        start, dash, end = part.partition("-")
        try:
            lo, hi = (int(start), int(end)) if dash else (int(part), int(part))
        except ValueError:
            raise UsageError(f"--{what} {text!r}: {part!r} is not an index or a range like 0-7") from None
        if lo > hi:
            raise UsageError(f"--{what} {text!r}: range {part} runs backwards")
        if lo < 0 or hi >= limit:
            raise UsageError(f"--{what} {text!r}: {part} is outside 0-{limit - 1}")
        indices.extend(i for i in range(lo, hi + 1) if i not in indices)
    if not indices:
        raise UsageError(f"--{what} {text!r} selects nothing; use e.g. 0-7,12")
    return indices


def parse_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in str(text).split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"--format {text!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return formats


def eta_values(eta: float, frames: int) -> Tensor:
    """frames evenly spaced values from -eta to +eta (the ping-pong return reuses them)."""
    if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta > 0):
        raise UsageError(f"eta must be a finite number > 0, got {eta!r}")
    if eta > FLOAT_LIMITS["eta"]:  # the range learning accepts
        raise UsageError(f"eta must be at most {FLOAT_LIMITS['eta']:g} (latents are ~N(0, 1)), got {eta!r}")
    if isinstance(frames, bool) or not isinstance(frames, int) or not 2 <= frames <= MAX_FRAMES:
        raise UsageError(f"frames must be an integer from 2 to {MAX_FRAMES}, got {frames!r}")
    return torch.linspace(-eta, eta, frames)


def ping_pong(count: int) -> list[int]:
    """0, 1, ..., n-1, n-2, ..., 1: -eta -> +eta -> -eta, a seamless loop without repeated ends."""
    return list(range(count)) + list(range(count - 2, 0, -1))


def move(z: Tensor, direction: Tensor, eta: Tensor | float, align: bool) -> Tensor:
    """z (n, z_dim) moved to eta along a unit direction (z_dim,).

    align=False: z + eta d. align=True (paper Fig. 7d): the component of z along d is removed
    first, so every sample sits at the same coordinate eta along d.
    """
    d = direction.to(z.device, z.dtype)
    if align:
        z = z - (z @ d)[:, None] * d[None, :]
    return z + torch.as_tensor(eta, dtype=z.dtype, device=z.device).reshape(-1, 1) * d[None, :]


def sweep(generator: Any, direction: Tensor, z: Tensor, etas: Tensor, *, align: bool = True,
          batch_size: int = 16) -> Iterator[Tensor]:
    """Yield one frame per eta: the images (S, C, H, W) of all S samples at that eta.

    Latents of consecutive frames are batched together, batch_size images per generator call.
    """
    samples = z.shape[0]
    latents = torch.cat([move(z, direction, e, align) for e in etas])  # (F * S, z_dim)
    pending: list[Tensor] = []
    buffered = 0
    with torch.no_grad():
        for start in range(0, latents.shape[0], batch_size):
            images = generator(latents[start : start + batch_size]).float()
            pending.append(images)
            buffered += images.shape[0]
            while buffered >= samples:
                stacked = torch.cat(pending)
                yield stacked[:samples]
                rest = stacked[samples:]
                pending, buffered = ([rest] if rest.shape[0] else []), rest.shape[0]


def to_uint8(images: Tensor, size: int | None = None) -> np.ndarray:
    """(n, C, H, W) in [-1, 1] -> (n, size, size, 3) uint8 (grey images repeated to RGB)."""
    if size is not None and size != images.shape[-1]:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear",
                                                 antialias=True, align_corners=False)
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
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = images[i]
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
    median-cut default of a plain RGB save costs ~30x more time.
    """
    palette = {}  # quantise each distinct frame once (ping-pong repeats them)
    images = []
    for frame in frames:
        key = id(frame)
        if key not in palette:
            palette[key] = Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE,
                                                           dither=Image.Dither.NONE)
        images.append(palette[key])

    def write(tmp: Path) -> None:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=int(round(duration_ms)), loop=0)

    atomic_write(path, write)


def write_mp4(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """H.264 MP4 via PyAV (the optional `mp4` extra), written atomically."""
    try:
        import av  # noqa: F401
    except ImportError:
        raise UsageError("MP4 needs PyAV: pip install 'hpdirs[mp4]' (or use --format gif,png)") from None
    import imageio.v3 as iio

    def write(tmp: Path) -> None:
        iio.imwrite(tmp, np.stack([_even(f) for f in frames]), extension=".mp4", plugin="pyav",
                    codec="libx264", fps=fps)

    atomic_write(path, write)


def write_png(path: Path, image: np.ndarray) -> None:
    atomic_write(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))


@dataclass
class RenderSettings:
    """What to render: which directions (and axes), how many samples, which etas and formats."""

    directions: list[int]
    axes: list[int] = field(default_factory=list)
    samples: int = 6
    seed: int = 0
    eta: float = 5.0
    frames: int = 32
    fps: float = 12.0
    align: bool = True
    formats: list[str] = field(default_factory=lambda: ["gif", "png"])
    size: int | None = None  # pixels per image in the outputs; None = the generator's
    label: bool = True
    batch_size: int | None = None  # images per generator call; None: default_render_batch(device)

    def __post_init__(self) -> None:
        for name in ("samples", "batch_size"):
            value = getattr(self, name)
            if name == "batch_size" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name.replace('_', '-')} must be an integer >= 1, got {value!r}")
        if self.samples > 64:
            raise UsageError(f"samples {self.samples} is too many for a grid; use at most 64")
        low, high = LIMITS["seed"]
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not low <= self.seed <= high:
            raise UsageError(f"seed must be an integer from {low} to {high:,}, got {self.seed!r}")
        eta_values(self.eta, self.frames)
        if not (isinstance(self.fps, (int, float)) and FPS_RANGE[0] <= self.fps <= FPS_RANGE[1]):
            raise UsageError(f"fps must be a number from {FPS_RANGE[0]:g} to {FPS_RANGE[1]:g}, got {self.fps!r}")
        if self.size is not None and not 8 <= self.size <= 1024:
            raise UsageError(f"size must be 8..1024 pixels, got {self.size}")
        parse_formats(",".join(self.formats))


@dataclass(frozen=True)
class Track:
    """One row of the render: a learned direction or an axis-aligned z component."""

    kind: str  # "direction" or "axis"
    index: int
    vector: Tensor  # (z_dim,), unit

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.index:03d}"

    @property
    def short(self) -> str:
        return f"{'d' if self.kind == 'direction' else 'z'}{self.index}"


def render(
    generator: Any,
    matrix: Tensor,
    settings: RenderSettings,
    out_dir: str | os.PathLike,
    *,
    info: dict[str, Any] | None = None,
    on_images: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Render the selected directions (rows of matrix, (N, z_dim)) and axes into out_dir.

    Writes <kind>_<index>.gif/.mp4 per row, overview.gif (rows = directions, columns =
    samples), sheet.png (rows = directions, columns = eta steps, first sample), index.html, and
    render.json; returns the manifest. on_images(done, total) reports generated images.
    """
    check_z_dim(matrix, generator)  # before anything is created
    out = writable_dir(out_dir)
    z_dim = int(generator.z_dim)
    tracks = [Track("direction", i, matrix[i].float()) for i in settings.directions]
    tracks += [Track("axis", j, torch.eye(z_dim)[j]) for j in settings.axes]
    etas = eta_values(settings.eta, settings.frames)
    z = generator.sample_z(settings.samples, torch.Generator().manual_seed(settings.seed))  # (S, z_dim)
    total = len(tracks) * settings.frames * settings.samples
    done = 0
    manifest: dict[str, Any] = {**(info or {}), "eta": settings.eta, "frames": settings.frames,
                                "samples": settings.samples, "seed": settings.seed, "align": settings.align,
                                "fps": settings.fps, "rows": []}
    with tempfile.TemporaryDirectory(dir=out, prefix=".render-") as scratch:
        store = None
        for t, track in enumerate(tracks):
            for f, frame in enumerate(sweep(generator, track.vector, z, etas, align=settings.align,
                                            batch_size=settings.batch_size or default_render_batch(generator.device))):
                pixels = to_uint8(frame, settings.size)  # (S, h, w, 3)
                if store is None:
                    shape = (len(tracks), settings.frames, *pixels.shape)
                    store = frame_store(Path(scratch) / "frames.npy", shape, out)
                store[t, f] = pixels
                done += pixels.shape[0]
                if on_images is not None:
                    on_images(done, total)
            manifest["rows"].append(_write_track(out, track, store[t], etas, settings))
        assert store is not None
        _write_overview(out, tracks, store, etas, settings, manifest)
        store.flush()
        del store
    atomic_write(out / "render.json", lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n"))
    write_gallery(out, manifest)
    return manifest


def frame_store(path: Path, shape: tuple[int, ...], out: Path) -> np.ndarray:
    """A uint8 array of `shape` in a file, its blocks reserved before the first frame is stored.

    A plain memory map is sparse: on a disk that fills up, the first page the kernel cannot back
    kills the process with SIGBUS, leaving the scratch file behind. Reserving the whole size up
    front turns that into an error here, after the first frame (which gives the image size).
    Where the OS has no posix_fallocate (macOS), the map stays sparse.
    """
    store = np.lib.format.open_memmap(path, "w+", np.uint8, shape)
    size = path.stat().st_size
    try:
        if hasattr(os, "posix_fallocate"):
            with open(path, "r+b") as f:
                os.posix_fallocate(f.fileno(), 0, size)
    except OSError as exc:
        del store
        raise RenderSpaceError(
            f"not enough space in {out} for the render's frames ({size / 2**20:.1f} MiB: {exc.strerror}); free "
            "space, choose another --out, or render fewer --directions, --frames or --samples") from None
    return store


class RenderSpaceError(HpdirsError):
    """The output folder's disk cannot hold the render's frame store."""


def _grid_frame(samples: np.ndarray) -> np.ndarray:
    """(S, h, w, 3) -> one row of S images, or a near-square grid when S > 8."""
    s = samples.shape[0]
    cols = s if s <= 8 else math.ceil(math.sqrt(s))
    rows = math.ceil(s / cols)
    if rows * cols > s:
        samples = np.concatenate([samples, np.full((rows * cols - s, *samples.shape[1:]), 255, np.uint8)])
    return tile(samples, rows, cols)


def _write_track(out: Path, track: Track, frames: np.ndarray, etas: Tensor, settings: RenderSettings) -> dict:
    """One direction's GIF / MP4: each frame the grid of samples at one eta, ping-pong order."""
    grids = []
    for f in range(frames.shape[0]):
        grid = _grid_frame(frames[f])
        grids.append(add_label(grid, f"{track.short}  eta {float(etas[f]):+.2f}") if settings.label else grid)
    order = ping_pong(len(grids))
    row: dict[str, Any] = {"kind": track.kind, "index": track.index, "files": {}}
    if "gif" in settings.formats:
        write_gif(out / f"{track.name}.gif", [grids[i] for i in order], 1000.0 / settings.fps)
        row["files"]["gif"] = f"{track.name}.gif"
    if "mp4" in settings.formats:
        write_mp4(out / f"{track.name}.mp4", [grids[i] for i in order], settings.fps)
        row["files"]["mp4"] = f"{track.name}.mp4"
    return row


def _write_overview(out: Path, tracks: list[Track], store: np.ndarray, etas: Tensor,
                    settings: RenderSettings, manifest: dict[str, Any]) -> None:
    rows, frames, samples = len(tracks), store.shape[1], store.shape[2]
    if "gif" in settings.formats or "mp4" in settings.formats:
        overview = []
        for f in range(frames):
            grid = tile(store[:, f].reshape(rows * samples, *store.shape[3:]), rows, samples)
            overview.append(add_label(grid, f"eta {float(etas[f]):+.2f}") if settings.label else grid)
        order = ping_pong(frames)
        if "gif" in settings.formats:
            write_gif(out / "overview.gif", [overview[i] for i in order], 1000.0 / settings.fps)
            manifest["overview"] = "overview.gif"
        if "mp4" in settings.formats:
            write_mp4(out / "overview.mp4", [overview[i] for i in order], settings.fps)
            manifest["overview_mp4"] = "overview.mp4"
    if "png" in settings.formats:
        columns = min(frames, 9)  # the sheet shows evenly spaced eta steps of the first sample
        picks = np.linspace(0, frames - 1, columns).round().astype(int)
        sheet = tile(store[:, picks, 0].reshape(rows * columns, *store.shape[3:]), rows, columns)
        write_png(out / "sheet.png", sheet)
        manifest["sheet"] = "sheet.png"
        manifest["sheet_etas"] = [round(float(etas[i]), 4) for i in picks]
        manifest["sheet_rows"] = [t.short for t in tracks]


def write_gallery(out: Path, manifest: dict[str, Any]) -> None:
    """index.html: every rendered file, with model, class, eta range and direction index."""
    e = html.escape
    title = f"{manifest.get('model', '')} · {manifest.get('class_name', '')}".strip(" ·")
    facts = (f"model {e(str(manifest.get('model', '?')))} · class {e(str(manifest.get('class_name', '?')))} "
             f"({e(str(manifest.get('class_index', '?')))}) · truncation {e(str(manifest.get('truncation', '?')))} · "
             f"η from −{manifest['eta']} to +{manifest['eta']} · {manifest['frames']} frames · "
             f"{manifest['samples']} samples (seed {manifest['seed']}) · "
             f"{'aligned' if manifest['align'] else 'not aligned'}")
    cards = []
    for row in manifest["rows"]:
        label = f"{'direction' if row['kind'] == 'direction' else 'axis z'} {row['index']}"
        media = ""
        if "gif" in row["files"]:
            media = f'<img src="{e(row["files"]["gif"])}" alt="{e(label)}">'
        elif "mp4" in row["files"]:
            media = f'<video src="{e(row["files"]["mp4"])}" autoplay loop muted playsinline></video>'
        links = " ".join(f'<a href="{e(f)}">{e(k)}</a>' for k, f in row["files"].items())
        cards.append(f'<figure>{media}<figcaption>{e(label)} · {links}</figcaption></figure>')
    parts = [f"<h2>Overview</h2><img src=\"{e(manifest['overview'])}\" alt=\"overview\">"] if "overview" in manifest else []
    if "sheet" in manifest:
        etas = ", ".join(f"{v:+.2f}" for v in manifest["sheet_etas"])
        parts.append(f"<h2>Sheet</h2><p>rows: {e(', '.join(manifest['sheet_rows']))}; columns: η = {e(etas)}</p>"
                     f"<img src=\"{e(manifest['sheet'])}\" alt=\"sheet\">")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>hpdirs · {e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 1rem; }}
figure {{ margin: 0; }} figcaption {{ font-size: 0.85rem; }}
img, video {{ max-width: 100%; image-rendering: pixelated; }}
</style></head><body>
<h1>hpdirs · {e(title)}</h1>
<p>{facts}</p>
<h2>Directions</h2>
<div class="grid">
{chr(10).join(cards)}
</div>
{chr(10).join(parts)}
</body></html>
"""
    atomic_write(out / "index.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))

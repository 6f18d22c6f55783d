"""Direction sweeps rendered to GIF grids, MP4, PNG sheets and an HTML gallery.

Generation is streamed in bounded batches. Frames are kept as uint8 in a disk-backed array
(one direction x frame x sample x image), so memory does not grow with directions x frames x
samples; each output is assembled from it and written atomically (temp file, then rename).
"""

from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from direction_finder.config import FLOAT_LIMITS, LIMITS
from direction_finder.directions import atomic_write, check_z_dim, writable_dir
from direction_finder.errors import HpdirsError, UsageError
from direction_finder.generators import GeneratorChoice, ProgressCallback
from direction_finder.media import add_label, grid_frame, ping_pong, tile, to_uint8, write_gif, write_mp4, write_png
from direction_finder.runs import open_directions
from direction_finder.validation import check_fields, integer, positive, within

FORMATS = ("gif", "mp4", "png")
MAX_FRAMES = 1000  # a sweep of more distinct frames than this is no longer watched, only stored
MAX_SAMPLES = 64  # samples in one grid
# GIF stores each frame's duration in centiseconds (1..65535), so 100 fps is the fastest it
# shows; 0.01 fps (100 s a frame) is slower than anyone watches.
FPS_RANGE = (0.01, 100.0)
SIZE_RANGE = (8, 1024)  # pixels per image in the outputs
DEFAULT_DIRECTIONS = 8  # rendered when none are chosen: the first eight
CPU_RENDER_BATCH = 4  # images per generator call on a CPU: small calls are fastest there (README, Performance)
ACCELERATOR_RENDER_BATCH = 32


def default_render_batch(device: torch.device | str) -> int:
    """Images per generator call: small on a CPU, large on an accelerator."""
    return ACCELERATOR_RENDER_BATCH if torch.device(device).type in ("cuda", "mps") else CPU_RENDER_BATCH


def parse_indices(text: str, limit: int, what: str = "directions") -> list[int]:
    """`0-7,12` -> [0, 1, ..., 7, 12]; every index must be in 0..limit-1."""
    indices: list[int] = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        start, dash, end = part.partition("-")
        try:
            lo, hi = (int(start), int(end)) if dash else (int(part), int(part))
        except ValueError:
            raise UsageError(f"`{what}` {text!r}: {part!r} is not an index or a range like 0-7") from None
        if lo > hi:
            raise UsageError(f"`{what}` {text!r}: range {part} runs backwards")
        if lo < 0 or hi >= limit:
            raise UsageError(f"`{what}` {text!r}: {part} is outside 0-{limit - 1}")
        indices.extend(i for i in range(lo, hi + 1) if i not in indices)
    if not indices:
        raise UsageError(f"`{what}` {text!r} selects nothing; use e.g. 0-7,12")
    return indices


def parse_formats(text: str | Sequence[str]) -> list[str]:
    """`gif,png` (or a list of names) -> the formats, each one of FORMATS."""
    items = text.split(",") if isinstance(text, str) else list(text)
    formats = [str(f).strip().lower() for f in items if str(f).strip()]
    if [f for f in formats if f not in FORMATS] or not formats:
        shown = text if isinstance(text, str) else ",".join(map(str, text))
        raise UsageError(f"`formats` {shown!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return formats


def eta_values(eta: float, frames: int) -> Tensor:
    """frames evenly spaced values from -eta to +eta (the ping-pong return reuses them)."""
    positive("eta", eta, FLOAT_LIMITS["eta"])  # the range learning accepts
    integer("frames", frames, 2, MAX_FRAMES)
    return torch.linspace(-eta, eta, frames)


def move(z: Tensor, direction: Tensor, eta: Tensor | float, align: bool) -> Tensor:
    """z (n, z_dim) moved to eta along a unit direction (z_dim,).

    align=False: z + eta d. align=True (paper Fig. 7d): the component of z along d is removed
    first, so every sample sits at the same coordinate eta along d.
    """
    d = direction.to(z.device, z.dtype)
    if align:
        z = z - (z @ d)[:, None] * d[None, :]
    return z + torch.as_tensor(eta, dtype=z.dtype, device=z.device).reshape(-1, 1) * d[None, :]


def sweep(
    generator: Any, direction: Tensor, z: Tensor, etas: Tensor, *, align: bool = True, batch_size: int = 16
) -> Iterator[Tensor]:
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


Indices = str | Sequence[int]  # `0-7,12` or a list of indices


@dataclass
class RenderSettings:
    """What to render: which directions (and axes), how many samples, which etas and formats."""

    directions: Indices | None = None  # None: the first DEFAULT_DIRECTIONS
    axes: Indices = field(default_factory=list)  # axis-aligned z components to render as well
    samples: int = 6
    seed: int = 0
    eta: float = 5.0
    frames: int = 32
    fps: float = 12.0
    align: bool = True
    formats: str | Sequence[str] = field(default_factory=lambda: ["gif", "png"])
    size: int | None = None  # pixels per image in the outputs; None = the generator's
    label: bool = True
    batch_size: int | None = None  # images per generator call; None: default_render_batch(device)

    def __post_init__(self) -> None:
        check_fields(
            self,
            {
                "samples": (1, MAX_SAMPLES),
                "batch_size": LIMITS["batch_size"],
                "seed": LIMITS["seed"],
                "size": SIZE_RANGE,
            },
            optional=("batch_size", "size"),
        )
        eta_values(self.eta, self.frames)
        within("fps", self.fps, *FPS_RANGE)
        self.formats = parse_formats(self.formats)

    def rows(self, num_directions: int, z_dim: int) -> tuple[list[int], list[int]]:
        """The directions and axes to render, checked against the file's N and z_dim."""
        directions = (
            self.directions if self.directions is not None else f"0-{min(DEFAULT_DIRECTIONS, num_directions) - 1}"
        )
        return _indices(directions, num_directions, "directions"), _indices(self.axes, z_dim, "axes")


def _indices(chosen: Indices, limit: int, what: str) -> list[int]:
    if isinstance(chosen, str):
        return parse_indices(chosen, limit, what)
    return parse_indices(",".join(str(int(i)) for i in chosen), limit, what) if len(chosen) else []


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
    settings.rows(matrix.shape[0], int(generator.z_dim))
    out = writable_dir(out_dir)
    z_dim = int(generator.z_dim)
    directions, axes = settings.rows(matrix.shape[0], z_dim)
    tracks = [Track("direction", i, matrix[i].float()) for i in directions]
    tracks += [Track("axis", j, torch.eye(z_dim)[j]) for j in axes]
    etas = eta_values(settings.eta, settings.frames)
    z = generator.sample_z(settings.samples, torch.Generator().manual_seed(settings.seed))  # (S, z_dim)
    total = len(tracks) * settings.frames * settings.samples
    done = 0
    manifest: dict[str, Any] = {
        **(info or {}),
        "eta": settings.eta,
        "frames": settings.frames,
        "samples": settings.samples,
        "seed": settings.seed,
        "align": settings.align,
        "fps": settings.fps,
        "rows": [],
    }
    with tempfile.TemporaryDirectory(dir=out, prefix=".render-") as scratch:
        store: np.memmap | None = None  # made when the first frame gives the image size
        for t, track in enumerate(tracks):
            for f, frame in enumerate(
                sweep(
                    generator,
                    track.vector,
                    z,
                    etas,
                    align=settings.align,
                    batch_size=settings.batch_size or default_render_batch(generator.device),
                )
            ):
                pixels = to_uint8(frame, settings.size)  # (S, h, w, 3)
                if store is None:
                    shape = (len(tracks), settings.frames, *pixels.shape)
                    store = frame_store(Path(scratch) / "frames.npy", shape, out)
                store[t, f] = pixels
                done += pixels.shape[0]
                if on_images is not None:
                    on_images(done, total)
            assert store is not None  # every sweep yields frames
            manifest["rows"].append(_write_track(out, track, store[t], etas, settings))
        assert store is not None
        _write_overview(out, tracks, store, etas, settings, manifest)
        store.flush()
        del store
    atomic_write(out / "render.json", lambda tmp: tmp.write_text(json.dumps(manifest, indent=2) + "\n"))
    write_gallery(out, manifest)
    return manifest


def frame_store(path: Path, shape: tuple[int, ...], out: Path) -> np.memmap:
    """A uint8 array of `shape` in a file, its blocks reserved before the first frame is stored.

    A plain memory map is sparse: on a disk that fills up, the first page the kernel cannot back
    kills the process with SIGBUS, leaving the scratch file behind. Reserving the whole size up
    front turns that into an error here, after the first frame (which gives the image size).
    Where the OS has no posix_fallocate (macOS), the map stays sparse.
    """
    store = np.lib.format.open_memmap(path, "w+", np.uint8, shape)
    size = path.stat().st_size
    try:
        if hasattr(os, "posix_fallocate"):  # an OS capability, not a generator's
            with open(path, "r+b") as f:
                os.posix_fallocate(f.fileno(), 0, size)
    except OSError as exc:
        del store
        raise RenderSpaceError(
            f"not enough space in {out} for the render's frames ({size / 2**20:.1f} MiB: {exc.strerror}); free "
            "space, choose another `out_dir`, or render fewer `directions`, `frames` or `samples`"
        ) from None
    return store


class RenderSpaceError(HpdirsError):
    """The output folder's disk cannot hold the render's frame store."""


def _write_track(out: Path, track: Track, frames: np.ndarray, etas: Tensor, settings: RenderSettings) -> dict:
    """One direction's GIF / MP4: each frame the grid of samples at one eta, ping-pong order."""
    grids = []
    for f in range(frames.shape[0]):
        grid = grid_frame(frames[f])
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


def _write_overview(
    out: Path, tracks: list[Track], store: np.ndarray, etas: Tensor, settings: RenderSettings, manifest: dict[str, Any]
) -> None:
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
    facts = (
        f"model {e(str(manifest.get('model', '?')))} · class {e(str(manifest.get('class_name', '?')))} "
        f"({e(str(manifest.get('class_index', '?')))}) · truncation {e(str(manifest.get('truncation', '?')))} · "
        f"η from −{manifest['eta']} to +{manifest['eta']} · {manifest['frames']} frames · "
        f"{manifest['samples']} samples (seed {manifest['seed']}) · "
        f"{'aligned' if manifest['align'] else 'not aligned'}"
    )
    cards = []
    for row in manifest["rows"]:
        label = f"{'direction' if row['kind'] == 'direction' else 'axis z'} {row['index']}"
        media = ""
        if "gif" in row["files"]:
            media = f'<img src="{e(row["files"]["gif"])}" alt="{e(label)}">'
        elif "mp4" in row["files"]:
            media = f'<video src="{e(row["files"]["mp4"])}" autoplay loop muted playsinline></video>'
        links = " ".join(f'<a href="{e(f)}">{e(k)}</a>' for k, f in row["files"].items())
        cards.append(f"<figure>{media}<figcaption>{e(label)} · {links}</figcaption></figure>")
    parts = [f'<h2>Overview</h2><img src="{e(manifest["overview"])}" alt="overview">'] if "overview" in manifest else []
    if "sheet" in manifest:
        etas = ", ".join(f"{v:+.2f}" for v in manifest["sheet_etas"])
        parts.append(
            f"<h2>Sheet</h2><p>rows: {e(', '.join(manifest['sheet_rows']))}; columns: η = {e(etas)}</p>"
            f'<img src="{e(manifest["sheet"])}" alt="sheet">'
        )
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


def render_file(
    run_or_file: str | os.PathLike,
    settings: RenderSettings,
    *,
    generator: GeneratorChoice = GeneratorChoice(),
    out_dir: str | os.PathLike | None = None,
    progress: ProgressCallback | None = None,
    on_images: Callable[[int, int], None] | None = None,
) -> Path:
    """`hpdirs render`: open a directions file (or a run's last directions) with its generator
    and render it into out_dir (default RUN/render, or render-<file> beside a file)."""
    opened = open_directions(run_or_file, generator, progress)
    settings.rows(opened.directions.num_directions, opened.directions.z_dim)  # before the first image
    target = Path(out_dir) if out_dir is not None else opened.output_dir("render")
    render(opened.generator, opened.directions.matrix, settings, target, info=opened.info, on_images=on_images)
    return target

"""Direction sweeps rendered to GIF grids, MP4, PNG sheets and an HTML gallery.

Generation is streamed in bounded batches. Frames are kept as uint8 in a disk-backed array
(one direction x frame x sample x image), so memory does not grow with directions x frames x
samples; each output is assembled from it and written atomically (temp file, then rename).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from direction_finder.artifacts.directions import check_z_dim
from direction_finder.artifacts.labels import label_ranges
from direction_finder.artifacts.latents import read_latents, write_latents
from direction_finder.artifacts.runs import open_directions
from direction_finder.compiled import CPU_FORWARD_SECONDS, maybe_compiled
from direction_finder.errors import HpdirsError
from direction_finder.files import shown_path, staged_output, write_text_atomic
from direction_finder.generators.choice import GeneratorChoice
from direction_finder.generators.weights import ProgressCallback
from direction_finder.memory import render_batch
from direction_finder.method.sweeps import sweep
from direction_finder.outputs.formats import ANIMATION, SHEET, chosen, output_names
from direction_finder.outputs.gallery import write_gallery
from direction_finder.outputs.media import add_label, grid_frame, labelled_grid, ping_pong, tile, to_uint8
from direction_finder.outputs.settings import MAX_SAMPLES, RenderSettings, check_sweep

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

RENDER_FORMAT = "hpdirs.render/1"  # render.json
SHEET_COLUMNS = 9  # etas on the sheet: odd, so that the middle column is eta 0


def render_files() -> re.Pattern[str]:
    """Every name a render writes (the formats' and its own): a folder holds one render, whole
    (staged_output removes the files of an earlier render the new one lacks)."""
    return re.compile(rf"{output_names()}|latents\.npy|render\.json|index\.html")


def eta_values(eta: float, frames: int) -> Tensor:
    """frames evenly spaced values from -eta to +eta (the ping-pong return reuses them)."""
    check_sweep(eta, frames)
    return torch.linspace(-eta, eta, frames)


@dataclass(frozen=True)
class Track:
    """One row of the render: a learned direction or an axis-aligned z component."""

    kind: str  # "direction" or "axis"
    index: int
    vector: Tensor  # (z_dim,), unit
    label: str = ""  # the name someone gave the direction (labels.json), if any
    layers: range | None = None  # the latent layers the edit reaches (None: all)

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.index:03d}"

    @property
    def short(self) -> str:
        """`d3`, `d3 zoom` for a named direction, or `z5` for an axis: captions and sheet rows."""
        short = f"{'d' if self.kind == 'direction' else 'z'}{self.index}"
        return f"{short} {self.label}" if self.label else short


def render(
    generator: Generator,
    matrix: Tensor,
    settings: RenderSettings,
    out_dir: str | os.PathLike,
    *,
    info: dict[str, Any] | None = None,
    labels: Mapping[int, str] | None = None,
    label_layers: Mapping[int, tuple[int, int]] | None = None,
    on_images: Callable[[int, int], None] | None = None,
    owner: Path | None = None,
) -> dict[str, Any]:
    """Render the selected directions (rows of matrix, (N, z_dim)) and axes into out_dir.

    Writes <kind>_<index>.gif/.mp4 per row, overview.gif (rows = directions, columns =
    samples), sheet.png (rows = directions, columns = SHEET_COLUMNS etas evenly spaced through
    0, first sample, names and etas drawn on it), index.html, and render.json; returns the
    manifest. `labels` names directions in captions; `label_layers` gives named directions the
    latent layers they reach unless `settings.layers` sets one range for all. on_images(done,
    total) reports images. The folder holds the earlier render or this one, whole, never a mix
    (staged_output); `owner`: the run folder out_dir belongs to, when hpdirs chose it.
    """
    check_z_dim(matrix, generator)  # before anything is created
    settings.rows(matrix.shape[0], int(generator.z_dim))
    layers = settings.layer_range(generator)
    own = label_ranges(generator, label_layers or {}, labels or {}) if layers is None else {}
    with staged_output(Path(out_dir), render_files(), owner=owner) as out:
        return _render_into(generator, matrix, settings, out, layers, own, info, labels, on_images)


def _render_into(
    generator: Generator,
    matrix: Tensor,
    settings: RenderSettings,
    out: Path,
    layers: range | None,
    own: dict[int, range],
    info: dict[str, Any] | None,
    labels: Mapping[int, str] | None,
    on_images: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    z_dim = int(generator.z_dim)
    directions, axes = settings.rows(matrix.shape[0], z_dim)
    tracks = [
        Track("direction", i, matrix[i].float(), (labels or {}).get(i, ""), own.get(i, layers)) for i in directions
    ]
    tracks += [Track("axis", j, torch.eye(z_dim)[j], layers=layers) for j in axes]
    etas = eta_values(settings.eta, settings.frames)
    if settings.latents is not None:  # the user's latents: every row is a sample
        z = read_latents(settings.latents, z_dim, MAX_SAMPLES).to(generator.device)  # (S, z_dim)
    else:
        z = generator.sample_z(settings.samples, torch.Generator().manual_seed(settings.seed))  # (S, z_dim)
    batch = render_batch(generator, settings.batch_size, settings.max_memory)
    settings = dataclasses.replace(settings, samples=int(z.shape[0]), batch_size=batch)
    sheet_images = SHEET_COLUMNS * len(tracks) if chosen(settings.formats, SHEET) else 0
    total = len(tracks) * settings.frames * settings.samples + sheet_images
    generator = maybe_compiled(generator, settings.compile, total, CPU_FORWARD_SECONDS)
    done = 0
    manifest: dict[str, Any] = {
        "format": RENDER_FORMAT,
        **(info or {}),
        "eta": settings.eta,
        "frames": settings.frames,
        "samples": settings.samples,
        "seed": settings.seed,
        "align": settings.align,
        "fps": settings.fps,
        "layers": None if layers is None else [layers.start, layers.stop - 1],
        "rows": [],
    }
    with contextlib.ExitStack() as scratch:
        store: np.memmap | None = None  # made when the first frame gives the image size
        for t, track in enumerate(tracks):
            for f, frame in enumerate(
                sweep(
                    generator,
                    track.vector,
                    z,
                    etas,
                    align=settings.align,
                    batch_size=int(settings.batch_size or 1),
                    layers=track.layers,
                )
            ):
                pixels = to_uint8(frame, settings.size)  # (S, h, w, 3)
                if store is None:
                    shape = (len(tracks), settings.frames, *pixels.shape)
                    store = scratch.enter_context(frame_store(shape, out))
                store[t, f] = pixels
                done += pixels.shape[0]
                if on_images is not None:
                    on_images(done, total)
            assert store is not None  # every sweep yields frames
            manifest["rows"].append(_write_track(out, track, store[t], etas, settings))
        assert store is not None
        _write_overview(out, tracks, store, etas, settings, manifest)
        del store
    if chosen(settings.formats, SHEET):
        done = _write_sheet(generator, out, tracks, z[:1], settings, manifest, done, total, on_images)
    write_latents(out / "latents.npy", z)  # the samples shown: `--latents` renders them again
    manifest["latents"] = "latents.npy"
    write_text_atomic(out / "render.json", json.dumps(manifest, indent=2) + "\n")
    write_gallery(out, manifest)
    return manifest


@contextlib.contextmanager
def frame_store(shape: tuple[int, ...], out: Path) -> Iterator[np.memmap]:
    """A uint8 array of `shape` in a file in `out`, its blocks reserved before the first frame is
    stored. The file is made exclusively and unlinked at once: it is reached only through its
    descriptor, and gone with it, whatever stops the render.

    A plain memory map is sparse: on a disk that fills up, the first page the kernel cannot back
    kills the process with SIGBUS. Reserving the whole size up front turns that into an error
    here, after the first frame (which gives the image size). Where the OS has no
    posix_fallocate (macOS), the map stays sparse.
    """
    size = int(np.prod(shape))
    fd, name = tempfile.mkstemp(prefix=".frames-", dir=out)
    os.unlink(name)
    with os.fdopen(fd, "r+b") as f:
        try:
            if hasattr(os, "posix_fallocate"):  # an OS capability, not a generator's
                os.posix_fallocate(fd, 0, size)
            else:
                os.ftruncate(fd, size)
        except OSError as exc:
            raise RenderSpaceError(
                f"not enough space in {shown_path(out)} for the render's frames ({size / 2**20:.1f} MiB: "
                f"{exc.strerror}); free space, choose another `out_dir`, or render fewer `directions`, `frames` "
                "or `samples`"
            ) from None
        yield np.memmap(f, np.uint8, "r+", shape=shape)


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
    if track.label:
        row["label"] = track.label
    if track.layers is not None:
        row["layers"] = [track.layers.start, track.layers.stop - 1]
    for fmt in chosen(settings.formats, ANIMATION):
        fmt.write(out / f"{track.name}.{fmt.name}", [grids[i] for i in order], settings.fps)
        row["files"][fmt.name] = f"{track.name}.{fmt.name}"
    return row


def _write_overview(
    out: Path, tracks: list[Track], store: np.ndarray, etas: Tensor, settings: RenderSettings, manifest: dict[str, Any]
) -> None:
    rows, frames, samples = len(tracks), store.shape[1], store.shape[2]
    animations = chosen(settings.formats, ANIMATION)
    if animations:
        overview = []
        for f in range(frames):
            grid = tile(store[:, f].reshape(rows * samples, *store.shape[3:]), rows, samples)
            overview.append(add_label(grid, f"eta {float(etas[f]):+.2f}") if settings.label else grid)
        order = ping_pong(frames)
        for fmt in animations:
            fmt.write(out / f"overview.{fmt.name}", [overview[i] for i in order], settings.fps)
            manifest[fmt.manifest_key] = f"overview.{fmt.name}"


def _write_sheet(
    generator: Generator,
    out: Path,
    tracks: list[Track],
    z: Tensor,
    settings: RenderSettings,
    manifest: dict[str, Any],
    done: int,
    total: int,
    on_images: Callable[[int, int], None] | None,
) -> int:
    """sheet.png: one row per track, edits z + eta d of the first sample at SHEET_COLUMNS etas
    evenly spaced from -eta to +eta, so the middle column (eta 0) is the sample itself; row names
    and etas drawn on it. Not aligned, unlike the GIFs: the sheet shows what each edit does."""
    etas = torch.linspace(-settings.eta, settings.eta, SHEET_COLUMNS)
    rows = []
    for track in tracks:
        frames = sweep(generator, track.vector, z, etas, align=False, batch_size=int(settings.batch_size or 1),
                       layers=track.layers)  # fmt: skip
        rows.append(np.concatenate([to_uint8(frame, settings.size) for frame in frames]))  # (C, h, w, 3)
        done += SHEET_COLUMNS
        if on_images is not None:
            on_images(done, total)
    grid = np.stack(rows)  # (rows, C, h, w, 3)
    sheet = labelled_grid(grid, [t.short for t in tracks], [f"{float(e):+.2f}" for e in etas])
    for fmt in chosen(settings.formats, SHEET):
        fmt.write(out / f"sheet.{fmt.name}", [sheet], 0.0)
        manifest[fmt.manifest_key] = f"sheet.{fmt.name}"
    manifest["sheet_etas"] = [round(float(e), 4) for e in etas]
    manifest["sheet_rows"] = [t.short for t in tracks]
    return done


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
    render(
        opened.generator,
        opened.directions.matrix,
        settings,
        target,
        info=opened.info,
        labels=opened.directions.labels,
        label_layers=opened.directions.label_layers,
        on_images=on_images,
        owner=None if out_dir is not None else opened.path.parent,
    )
    opened.refresh_card(target)
    return target

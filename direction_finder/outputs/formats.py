"""The formats render writes, one table: `--format`, the files a render may hold, the render's
manifest and the gallery all read it, so a new format is one function and one row here (and its
test). Light on purpose (no torch, no Pillow at import): the command line's help reads it.

An animation format writes one file per rendered row and the overview, its frames played forth
and back; a sheet format writes the one still picture of every row at a few etas.
"""

from __future__ import annotations

import html
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from direction_finder.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

ANIMATION, SHEET = "animation", "sheet"


@dataclass(frozen=True)
class Format:
    name: str  # what `--format` takes; also the file extension
    kind: str  # ANIMATION or SHEET
    help: str
    # animation: (path, frames (uint8 (h, w, 3) each, in playing order), frames per second);
    # sheet: (path, [the sheet], 0)
    write: Callable[[Path, Sequence[np.ndarray], float], None]
    manifest_key: str  # where render.json names the overview (animation) or the sheet
    embed: Callable[[str, str], str] | None = None  # (file, caption) -> the gallery's HTML for it
    check: Callable[[], None] | None = None  # raises UsageError when this machine cannot write it


def _gif(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    from direction_finder.outputs.media import write_gif

    write_gif(path, frames, 1000.0 / fps)


def _mp4(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    from direction_finder.outputs.media import write_mp4

    write_mp4(path, frames, fps)


def _mp4_check() -> None:
    if importlib.util.find_spec("av") is None:
        raise UsageError("MP4 needs PyAV: pip install 'hpdirs[mp4]' (or use `formats` gif,png)")


def _png(path: Path, images: Sequence[np.ndarray], fps: float) -> None:
    from direction_finder.outputs.media import write_png

    write_png(path, images[0])


def _image(src: str, alt: str) -> str:
    return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">'


def _video(src: str, alt: str) -> str:
    return f'<video src="{html.escape(src)}" autoplay loop muted playsinline></video>'


FORMATS: dict[str, Format] = {
    fmt.name: fmt
    for fmt in (
        Format("gif", ANIMATION, "a looping GIF per direction and the overview", _gif, "overview", _image),
        Format("mp4", ANIMATION, "an H.264 MP4 of each (needs PyAV)", _mp4, "overview_mp4", _video, _mp4_check),
        Format("png", SHEET, "sheet.png: every direction at 9 etas, named", _png, "sheet", _image),
    )
}
DEFAULT_FORMATS = ("gif", "png")


def parse_formats(text: str | Sequence[str]) -> list[str]:
    """`gif,png` (or a list of names) -> the formats, each a row of FORMATS this machine can write."""
    items = text.split(",") if isinstance(text, str) else list(text)
    formats = [str(f).strip().lower() for f in items if str(f).strip()]
    if [f for f in formats if f not in FORMATS] or not formats:
        shown = text if isinstance(text, str) else ",".join(map(str, text))
        raise UsageError(f"`formats` {shown!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    for name in formats:
        check = FORMATS[name].check
        if check is not None:
            check()
    return formats


def chosen(formats: Sequence[str], kind: str) -> list[Format]:
    """The rows of `kind` among `formats`, in the table's order (the order files are written in)."""
    return [fmt for fmt in FORMATS.values() if fmt.kind == kind and fmt.name in formats]


def output_names() -> str:
    """A pattern of every file name the formats write (render's folder holds those and its own)."""
    animations = "|".join(fmt.name for fmt in FORMATS.values() if fmt.kind == ANIMATION)
    sheets = "|".join(fmt.name for fmt in FORMATS.values() if fmt.kind == SHEET)
    return rf"(direction|axis)_\d{{3,}}\.({animations})|overview\.({animations})|sheet\.({sheets})"

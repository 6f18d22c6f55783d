"""outputs/formats.py: the table of output formats. Every row writes what its name says, and a
new format is one function and one row that render, its folder and its gallery take at once."""

import json

import numpy as np
import pytest

from direction_finder.errors import UsageError
from direction_finder.outputs import formats
from direction_finder.outputs.formats import ANIMATION, FORMATS, SHEET, Format
from direction_finder.outputs.render import render
from direction_finder.outputs.settings import RenderSettings


def test_every_format_row_writes_a_file_its_name_says(tmp_path, synthetic):
    written = render(synthetic, synthetic.basis, RenderSettings(directions=[0], samples=2, frames=3,
                                                                formats=list(FORMATS)), tmp_path / "r")  # fmt: skip
    for fmt in FORMATS.values():
        key = written[fmt.manifest_key]
        assert (tmp_path / "r" / key).is_file() and key.endswith(f".{fmt.name}")
        if fmt.kind == ANIMATION:
            assert (tmp_path / "r" / f"direction_000.{fmt.name}").is_file()
    page = (tmp_path / "r" / "index.html").read_text()
    assert '<img src="direction_000.gif"' in page and '<img src="overview.gif" alt="overview">' in page


def test_a_new_format_is_one_function_and_one_row(monkeypatch, tmp_path, synthetic):
    def write_npy(path, frames, fps):  # every frame, stacked: (frames, h, w, 3) uint8
        with open(path, "wb") as stream:
            np.save(stream, np.stack(frames))

    row = Format("npy", ANIMATION, "the frames as one array", write_npy, "overview_npy")
    monkeypatch.setitem(FORMATS, "npy", row)
    settings = RenderSettings(directions=[0], samples=2, frames=3, formats="npy")
    manifest = render(synthetic, synthetic.basis, settings, tmp_path / "r")
    frames = np.load(tmp_path / "r" / "direction_000.npy")
    assert frames.shape[0] == 4 and frames.dtype == np.uint8  # 3 frames played forth and back: 0 1 2 1
    assert manifest["overview_npy"] == "overview.npy" and manifest["rows"][0]["files"] == {"npy": "direction_000.npy"}
    stored = json.loads((tmp_path / "r" / "render.json").read_text())
    assert stored["overview_npy"] == "overview.npy"
    # the folder's own files: a second render without it removes the first one's npy files
    render(synthetic, synthetic.basis, RenderSettings(directions=[0], samples=2, frames=3, formats="gif"),
           tmp_path / "r")  # fmt: skip
    assert not (tmp_path / "r" / "direction_000.npy").exists()
    assert FORMATS["png"].kind == SHEET


def test_a_format_this_machine_cannot_write_is_refused_before_any_image(monkeypatch):
    monkeypatch.setattr(formats.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match="MP4 needs PyAV"):
        RenderSettings(formats="gif,mp4")
    with pytest.raises(UsageError, match="`formats` 'avi': choose from gif, mp4, png"):
        RenderSettings(formats="avi")

"""The extension tables besides the starts' (tests/test_starts.py): output formats and built-in
generator families. A new row and its function are all a new format or family needs."""

import json

import numpy as np
import pytest
import torch
from conftest import invoke

from direction_finder.errors import UsageError
from direction_finder.generators import families
from direction_finder.generators.choice import GeneratorChoice
from direction_finder.generators.families import FAMILIES, Family, available_models, family_of, load_generator
from direction_finder.generators.synthetic import SyntheticGenerator
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


def test_every_family_claims_its_own_names_and_builds_them():
    assert family_of(None).name == "biggan" and family_of("biggan-deep-256").name == "biggan"
    assert family_of("synthetic:z_dim=4").name == "synthetic" and family_of("truth-flat").name == "truth"
    assert family_of("tests_plugin:make") is None and family_of("unknown") is None
    assert isinstance(load_generator("synthetic:z_dim=4", device="cpu"), SyntheticGenerator)
    assert load_generator("truth-aligned:z_dim=6", device="cpu").z_dim == 6
    with pytest.raises(UsageError, match="unknown model 'unknown'; choose one of biggan-deep-128"):
        load_generator("unknown", device="cpu", offline=True)
    listed = [name for name, _, _ in available_models()]
    assert listed[:3] == ["biggan-deep-128", "biggan-deep-256", "biggan-deep-512"] and listed[-1] == "module.path:factory"


def test_a_new_family_is_one_function_and_one_row(monkeypatch, tmp_path):
    def build(model, class_, truncation, weights, device, **kwargs):  # `tiny[:z_dim]`: a synthetic generator
        return SyntheticGenerator(z_dim=int(model.partition(":")[2] or 4), factors=2, size=4)

    row = Family("tiny", lambda model: (model or "").startswith("tiny"), (("tiny[:z_dim]", "a small one"),), build,
                 self_contained=True)  # fmt: skip
    monkeypatch.setattr(families, "FAMILIES", (row, *FAMILIES))
    assert GeneratorChoice(model="tiny:5", device="cpu").load().z_dim == 5
    assert ("tiny[:z_dim]", "built-in", "a small one") in available_models()
    result = invoke(["learn", "--model", "tiny:3", "--steps", "2", "--eval-every", "0", "--out", tmp_path, "--name", "r"])
    assert result.exit_code == 0, result.stderr
    rendered = invoke(["render", tmp_path / "synthetic" / "r", "--frames", "2", "--samples", "1", "--format", "gif"])
    assert rendered.exit_code == 0, rendered.stderr  # found again from what the file records: model tiny:3
    assert torch.is_tensor(GeneratorChoice(device="cpu").for_metadata({"model": "tiny:3"}, "a file").basis)

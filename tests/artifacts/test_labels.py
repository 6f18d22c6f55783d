"""artifacts/labels.py: names of directions in labels.json beside the file, read by load_directions,
used by apply, render, compare and info; the rules a name obeys; writes at once that all land."""

import json
import os

import pytest
import torch
from helpers import runner

from direction_finder import load_directions, save_directions
from direction_finder.artifacts.labels import LABELS_FORMAT, read_labels, write_label
from direction_finder.errors import DirectionsFileError, UsageError
from direction_finder.method.orthonormal import gram_schmidt
from hpdirs_cli.main import app


@pytest.fixture()
def file(tmp_path):
    matrix = gram_schmidt(torch.randn(5, 8, generator=torch.Generator().manual_seed(0)))
    return save_directions(tmp_path / "directions.safetensors", matrix, {"model": "synthetic:z_dim=8,factors=4,size=8"})


def test_labels_round_trip_and_name_directions(file):
    write_label(file, 3, " zoom ", 5)
    write_label(file, 0, "background", 5)
    d = load_directions(file)
    assert d.labels == {0: "background", 3: "zoom"} and read_labels(file) == d.labels
    assert d.names == ["background", "d1", "d2", "zoom", "d4"]
    body = json.loads((file.parent / "labels.json").read_text())
    assert body == {"format": LABELS_FORMAT, "files": {"directions.safetensors": {"0": "background", "3": "zoom"}}}
    z = torch.randn(4, 8)
    assert torch.equal(d.apply(z, "zoom", 2.0), z + 2.0 * d.matrix[3])
    assert torch.equal(d.apply(z[0], "zoom", -1.0), z[0] - d.matrix[3])  # a single latent keeps its shape
    assert torch.equal(d.apply(z, 3, torch.tensor([1.0, 2.0, 3.0, 4.0]))[1], z[1] + 2 * d.matrix[3])
    with pytest.raises(KeyError, match="no direction is named 'rotate'"):
        d.apply(z, "rotate", 1.0)
    write_label(file, 3, "", 5)  # an empty name removes it
    assert load_directions(file).labels == {0: "background"}
    assert not [p for p in os.listdir(file.parent) if p.startswith(".")]  # written atomically


@pytest.mark.parametrize("index, label, message", [
    (5, "zoom", "direction 5 does not exist; this file has 0..4"),
    (1, "background", "direction 0 is already named 'background'"),
    (1, "42", "is a number"),
    (1, "x" * 65, "1 to 64 printable characters"),
    (1, "new\nline", "printable"),
    (1, "right\u202eto left", "printable"),
    (1, "zero\u200bwidth", "printable"),
    (1, "line\u2028separator", "printable"),
    (1, "next\x85line", "printable"),
    (1, "   ", "printable"),  # only "" removes a name: blanks are a mistake, not a removal
    (1, "bad\udcffbytes", "printable"),  # what argv holds for bytes that are not UTF-8
])
def test_bad_labels_are_refused_and_change_nothing(file, index, label, message):
    write_label(file, 0, "background", 5)
    before = (file.parent / "labels.json").read_text()
    with pytest.raises(UsageError, match=message):
        write_label(file, index, label, 5)
    assert (file.parent / "labels.json").read_text() == before


def test_a_damaged_labels_file_is_one_clear_error(file):
    (file.parent / "labels.json").write_text('{"format": "hpdirs.labels/1", "files": {"directions.safetensors": [1]}}')
    with pytest.raises(DirectionsFileError, match="labels.json is damaged"):
        load_directions(file)


def test_label_command_and_render_compare_info_show_the_name(file, tmp_path):
    named = runner.invoke(app, ["label", str(file), "2", "zoom"])
    assert named.exit_code == 0 and "direction 2 of" in named.stdout and "'zoom'" in named.stdout
    bad = runner.invoke(app, ["label", str(file), "9", "zoom"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: direction 9 does not exist")
    info = runner.invoke(app, ["info", str(file)], env={"COLUMNS": "200"})
    assert "label.2" in info.stdout and "zoom" in info.stdout
    out = tmp_path / "render"
    rendered = runner.invoke(app, ["render", str(file), "--directions", "1-2", "--samples", "2", "--frames", "3",
                                   "--out", str(out)])
    assert rendered.exit_code == 0, rendered.stderr
    manifest = json.loads((out / "render.json").read_text())
    assert manifest["sheet_rows"] == ["d1", "d2 zoom"] and manifest["rows"][1]["label"] == "zoom"
    assert "direction 2 (zoom)" in (out / "index.html").read_text()
    compared = runner.invoke(app, ["compare", str(file), "--samples", "2", "--top", "2", "--no-gifs",
                                   "--baselines", "axes", "--out", str(tmp_path / "compare")])
    assert compared.exit_code == 0, compared.stderr
    assert json.loads((tmp_path / "compare" / "report.json").read_text())["labels"] == {"2": "zoom"}




@pytest.mark.parametrize("value", ["", "  zoom", "right\u202eleft", "7", "x" * 65])
def test_a_hand_edited_labels_file_is_checked_by_the_same_rules(file, value):
    (file.parent / "labels.json").write_text(json.dumps({"format": LABELS_FORMAT,
                                                         "files": {file.name: {"1": value}}}))
    with pytest.raises(DirectionsFileError, match="labels.json is damaged"):
        load_directions(file)


def test_label_bytes_that_are_not_text_are_one_line(file):
    import subprocess
    import sys

    out = subprocess.run([sys.executable.encode(), b"-m", b"hpdirs_cli", b"label", str(file).encode(), b"1",
                          b"caf\xe9"], capture_output=True, timeout=120)
    assert out.returncode == 1 and out.stderr.count(b"\n") == 1 and b"printable" in out.stderr, out.stderr
    assert not (file.parent / "labels.json").exists()


def test_concurrent_label_writes_from_threads_all_land(file):
    from concurrent.futures import ThreadPoolExecutor

    matrix = gram_schmidt(torch.randn(16, 20, generator=torch.Generator().manual_seed(0)))
    wide = save_directions(file.parent / "wide.safetensors", matrix, {"model": "synthetic:z_dim=20"})
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: write_label(wide, i, f"name{i}", 16), range(16)))
    assert read_labels(wide) == {i: f"name{i}" for i in range(16)}


LABEL_LOOP = """
import sys
from direction_finder.artifacts.labels import write_label
path, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(first, first + count):
    write_label(path, i, f"name{i}", 60)
"""


def test_concurrent_label_processes_lose_nothing(tmp_path):
    import subprocess
    import sys

    matrix = gram_schmidt(torch.randn(60, 64, generator=torch.Generator().manual_seed(0)))
    wide = save_directions(tmp_path / "wide.safetensors", matrix, {"model": "synthetic:z_dim=64"})
    processes = [subprocess.Popen([sys.executable, "-c", LABEL_LOOP, str(wide), str(20 * p), "20"])
                 for p in range(3)]
    assert [p.wait(timeout=120) for p in processes] == [0, 0, 0]
    assert read_labels(wide) == {i: f"name{i}" for i in range(60)}


def test_a_name_can_carry_the_latent_layers_it_is_applied_to(file):
    from direction_finder.artifacts.labels import read_label_layers

    write_label(file, 2, "pose", 5, (0, 3))
    write_label(file, 4, "colour", 5)
    body = json.loads((file.parent / "labels.json").read_text())
    assert body["layers"] == {"directions.safetensors": {"2": [0, 3]}}
    assert read_label_layers(file) == {2: (0, 3)} and load_directions(file).label_layers == {2: (0, 3)}
    write_label(file, 2, "pose", 5)  # renamed without layers: the range stays
    assert read_label_layers(file) == {2: (0, 3)}
    write_label(file, 2, "", 5)  # the name removed: its layers with it
    assert read_label_layers(file) == {} and "layers" not in json.loads((file.parent / "labels.json").read_text())
    with pytest.raises(UsageError, match="`layers` go with a name"):
        write_label(file, 3, "", 5, (0, 1))
    shown = runner.invoke(app, ["label", str(file), "1", "zoom", "--layers", "1-2"])
    assert shown.exit_code == 0 and "named 'zoom' (layers 1-2)" in shown.stdout
    bad = runner.invoke(app, ["label", str(file), "1", "zoom", "--layers", "3-1"])
    assert bad.exit_code == 1 and "--layers '3-1' is not a range of layers such as 0-3" in bad.stderr
    info = runner.invoke(app, ["info", str(file)], env={"COLUMNS": "200"})
    assert "zoom (layers 1-2)" in info.stdout
    (file.parent / "labels.json").write_text(json.dumps({**json.loads((file.parent / "labels.json").read_text()),
                                                         "layers": {file.name: {"4": [2, 1]}}}))
    with pytest.raises(DirectionsFileError, match="labels.json is damaged"):
        load_directions(file)


def test_render_applies_the_layers_a_label_gives(tiny_biggan, tmp_path):
    import warnings

    from direction_finder import SyntheticGenerator
    from direction_finder.errors import HpdirsWarning
    from direction_finder.outputs.render import RenderSettings, render

    L = tiny_biggan.latent_layers
    matrix = gram_schmidt(torch.randn(3, 16, generator=torch.Generator().manual_seed(2)))
    settings = RenderSettings(directions=[0, 1], samples=1, frames=3, formats=["gif"])
    named = render(tiny_biggan, matrix, settings, tmp_path / "named", labels={1: "late"},
                   label_layers={1: (2, L - 1)})
    assert [row.get("layers") for row in named["rows"]] == [None, [2, L - 1]]
    every = render(tiny_biggan, matrix, RenderSettings(directions=[0, 1], samples=1, frames=3, formats=["gif"],
                                                       layers=f"0-{L - 1}"), tmp_path / "every",
                   labels={1: "late"}, label_layers={1: (2, L - 1)})
    assert [row["layers"] for row in every["rows"]] == [[0, L - 1], [0, L - 1]]  # --layers sets one range for all
    with pytest.raises(UsageError, match=f"label 'late' gives direction 1 the layers 0-{L}"):
        render(tiny_biggan, matrix, settings, tmp_path / "bad", labels={1: "late"}, label_layers={1: (0, L)})
    synthetic = SyntheticGenerator(z_dim=16, factors=4, size=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain = render(synthetic, matrix, settings, tmp_path / "synthetic", labels={1: "late"},
                       label_layers={1: (0, 1)})
    assert any(issubclass(w.category, HpdirsWarning) and "no layer-wise latents" in str(w.message) for w in caught)
    assert "layers" not in plain["rows"][1]

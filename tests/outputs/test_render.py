"""outputs/render.py: GIF/MP4/PNG geometry and timing, the sheet, atomicity, the gallery in a browser."""

import json
import shutil
import subprocess

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from helpers import runner
from PIL import Image

from direction_finder.errors import UsageError
from direction_finder.generators.synthetic import SyntheticGenerator
from direction_finder.method.orthonormal import gram_schmidt
from direction_finder.method.sweeps import sweep
from direction_finder.outputs.media import to_uint8
from direction_finder.outputs.render import SHEET_COLUMNS, render
from direction_finder.outputs.settings import RenderSettings, parse_indices
from hpdirs_cli.main import app


def test_files_geometry_timing_and_loop(synthetic, tmp_path):
    settings = RenderSettings(directions=[0, 2], axes=[5], samples=3, frames=6, fps=10, formats=["gif", "mp4", "png"],
                              label=False)
    manifest = render(synthetic, synthetic.basis, settings, tmp_path, info={"model": "synthetic"})
    cell = 16 + 2  # image + padding
    frames = iio.imread(tmp_path / "direction_000.gif", index=None)
    assert frames.shape == (2 * 6 - 2, 2 + cell * 1, 2 + cell * 3, 3)  # ping-pong: 10 frames
    meta = Image.open(tmp_path / "direction_000.gif")
    assert meta.info["loop"] == 0 and meta.info["duration"] == 100 and meta.n_frames == 10
    overview = iio.imread(tmp_path / "overview.gif", index=None)
    assert overview.shape == (10, 2 + cell * 3, 2 + cell * 3, 3)  # rows: 2 directions + 1 axis
    sheet = iio.imread(tmp_path / "sheet.png")
    names = 8 + 6 * 2  # the row names' margin: "d0", "d2", "z5", ~6 px a character
    assert sheet.shape == (14 + 2 + cell * 3, names + 2 + cell * 9, 3)  # 9 eta columns, etas strip above
    video = iio.imread(tmp_path / "direction_002.mp4", plugin="pyav", index=None)
    assert video.shape[0] == 10 and video.shape[1] % 2 == 0 and video.shape[2] % 2 == 0
    assert [row["index"] for row in manifest["rows"]] == [0, 2, 5]
    assert json.loads((tmp_path / "render.json").read_text())["rows"][2]["kind"] == "axis"
    # the first GIF frame is the sweep at -eta (up to the 256-colour GIF palette), not at +eta
    z = synthetic.sample_z(3, torch.Generator().manual_seed(0))
    at = {eta: to_uint8(next(sweep(synthetic, synthetic.basis[0], z, torch.tensor([eta]))))[0].astype(int)
          for eta in (-5.0, 5.0)}
    first = frames[0][2:18, 2:18].astype(int)
    moved = np.abs(at[-5.0] - at[5.0]) > 40  # the pixels this direction changes a lot
    assert moved.sum() > 50
    assert np.abs(first - at[-5.0])[moved].mean() < 0.3 * np.abs(first - at[5.0])[moved].mean()




def test_an_interrupted_render_leaves_no_partial_file(synthetic, tmp_path):
    render(synthetic, synthetic.basis, RenderSettings(directions=[0], samples=2, frames=4), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    calls = []

    def stop(done, total):
        calls.append(done)
        if len(calls) == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render(synthetic, synthetic.basis, RenderSettings(directions=[0, 1, 2], samples=2, frames=4, seed=3),
               tmp_path, on_images=stop)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert not [n for n in after if n.startswith(".")]  # no temp files, no scratch folder
    assert set(after) == set(before)  # direction 1 was stopped mid-sweep: nothing of it exists
    assert iio.imread(tmp_path / "direction_000.gif", index=None).shape[0] == 6  # rewritten whole
    assert after["index.html"] == before["index.html"] and after["sheet.png"] == before["sheet.png"]


@pytest.mark.parametrize("text, limit, expected", [
    ("0-3,7", 8, [0, 1, 2, 3, 7]), ("5", 8, [5]), ("2,2,1-2", 8, [2, 1]), (" 0 - 1 ".replace(" ", ""), 4, [0, 1]),
])
def test_parse_indices(text, limit, expected):
    assert parse_indices(text, limit) == expected


@pytest.mark.parametrize("text, message", [
    ("0-8", "outside 0-7"), ("3-1", "runs backwards"), ("a", "not an index"), ("", "selects nothing"),
    ("-1", "not an index"),
])
def test_parse_indices_errors(text, message):
    with pytest.raises(UsageError, match=message):
        parse_indices(text, 8)


@pytest.mark.parametrize("kwargs, message", [
    ({"samples": 0}, "`samples` must be"), ({"frames": 1}, "`frames` must be"), ({"eta": 0}, "`eta` must be"),
    ({"formats": ["gif", "avi"]}, "choose from gif, mp4, png"), ({"size": 4}, "`size` must be"),
    ({"fps": 0.0}, "`fps` must be"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(UsageError, match=message):
        RenderSettings(directions=[0], **kwargs)


def test_cli_render_reads_model_class_and_weights_from_the_run(tiny_weights, tmp_path):
    learned = runner.invoke(app, ["learn", "--weights", str(tiny_weights), "--class", "tench", "--steps", "2",
                                  "--batch-size", "1", "--eval-every", "0", "--out", str(tmp_path), "--name", "r"])
    assert learned.exit_code == 0, learned.stderr
    run = tmp_path / "tench" / "r"
    result = runner.invoke(app, ["render", str(run), "--directions", "0-2", "--samples", "2", "--frames", "4",
                                 "--axes", "0"])
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in (run / "render").iterdir())
    assert names == ["axis_000.gif", "direction_000.gif", "direction_001.gif", "direction_002.gif", "index.html",
                     "latents.npy", "overview.gif", "render.json", "sheet.png"]
    page = (run / "render" / "index.html").read_text()
    assert "biggan-deep-32" in page and "tench" in page and "η from −5.0 to +5.0" in page
    bad = runner.invoke(app, ["render", str(run), "--directions", "0-99"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: --directions '0-99': 0-99 is outside 0-15")


def test_cli_render_asks_for_the_model_when_the_file_does_not_say(tmp_path):
    from direction_finder import save_directions

    save_directions(tmp_path / "d.safetensors", torch.eye(4, 8), {})
    result = runner.invoke(app, ["render", str(tmp_path / "d.safetensors")])
    assert result.exit_code == 1
    assert "does not say which model it was learned with; pass --model (and --class)" in result.stderr
    mismatch = runner.invoke(app, ["render", str(tmp_path / "d.safetensors"), "--model", "synthetic:z_dim=16"])
    assert mismatch.exit_code == 1 and "z_dim 8 but the generator has 16" in mismatch.stderr


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on this machine (.ci/run installs Debian's)")
def test_gallery_opens_in_a_headless_browser_and_every_image_loads(synthetic, tmp_path):
    render(synthetic, synthetic.basis, RenderSettings(directions=[0, 1, 2], axes=[0], samples=2, frames=4), tmp_path)
    probe = (tmp_path / "index.html").read_text().replace("</body>", """<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  document.body.setAttribute('data-probe', JSON.stringify({count: images.length, broken}));
});
</script></body>""")
    (tmp_path / "probe.html").write_text(probe)
    out = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
                          (tmp_path / "probe.html").as_uri()], capture_output=True, text=True, timeout=120)
    marker = out.stdout.split("data-probe=\"", 1)
    assert len(marker) == 2, out.stderr[-2000:]
    import html

    result = json.loads(html.unescape(marker[1].split("\"", 1)[0]))
    assert result == {"count": 6, "broken": []}  # 4 sweeps + overview + sheet


def test_the_sheet_is_evenly_spaced_through_zero_and_its_middle_column_is_the_sample(tmp_path):
    g = SyntheticGenerator(z_dim=8, factors=4, size=8)
    matrix = gram_schmidt(torch.randn(3, 8, generator=torch.Generator().manual_seed(1)))
    settings = RenderSettings(directions=[0, 2], samples=2, frames=4, eta=5.0, formats=["png"])
    manifest = render(g, matrix, settings, tmp_path, labels={2: "zoom"})
    etas = manifest["sheet_etas"]
    assert len(etas) == SHEET_COLUMNS and etas[SHEET_COLUMNS // 2] == 0.0
    np.testing.assert_allclose(np.diff(etas), 10.0 / (SHEET_COLUMNS - 1), atol=1e-4)
    assert manifest["sheet_rows"] == ["d0", "d2 zoom"]
    sheet = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB"))
    z = g.sample_z(2, torch.Generator().manual_seed(0))  # render's samples (seed 0)
    sample = to_uint8(g(z[:1]))[0]  # (8, 8, 3): the first, unedited
    # the middle column holds the unedited sample: find it in the sheet, below the eta strip
    found = [
        (y, x)
        for y in range(sheet.shape[0] - 8)
        for x in range(sheet.shape[1] - 8)
        if np.abs(sheet[y : y + 8, x : x + 8].astype(int) - sample.astype(int)).max() <= 1
    ]
    assert found, "the unedited sample is not on the sheet"
    margin = sheet.shape[1] - (SHEET_COLUMNS * (8 + 2) + 2)  # the names' margin at the left
    columns = {(x - margin - 2) // 10 for _, x in found}
    assert SHEET_COLUMNS // 2 in columns
    assert margin > 0 and (sheet[:14] < 128).any()  # names at the left, etas drawn above


def test_layers_limit_the_edit_and_all_layers_render_as_the_plain_edit(tiny_biggan, tmp_path):
    import numpy as np
    from PIL import Image, ImageSequence

    def frames(folder):
        with Image.open(folder / "direction_001.gif") as image:
            return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(image)])

    matrix = gram_schmidt(torch.randn(3, 16, generator=torch.Generator().manual_seed(2)))
    L = tiny_biggan.latent_layers
    base = {"directions": [1], "samples": 2, "frames": 4, "formats": ["gif", "png"]}
    plain = render(tiny_biggan, matrix, RenderSettings(**base), tmp_path / "plain")
    every = render(tiny_biggan, matrix, RenderSettings(**base, layers=f"0-{L - 1}"), tmp_path / "every")
    late = render(tiny_biggan, matrix, RenderSettings(**base, layers=f"2-{L - 1}"), tmp_path / "late")
    assert every["layers"] == [0, L - 1] and plain["layers"] is None
    np.testing.assert_array_equal(frames(tmp_path / "plain"), frames(tmp_path / "every"))
    assert not np.array_equal(frames(tmp_path / "plain"), frames(tmp_path / "late"))
    assert f"· layers 2-{L - 1}" in (tmp_path / "late" / "index.html").read_text()  # the gallery says so
    assert "· layers" not in (tmp_path / "plain" / "index.html").read_text()
    for bad, message in ((f"0-{L}", f"is outside this generator's layers 0-{L - 1}"), ("0,2", "not a range of layers")):
        with pytest.raises(UsageError, match=message):
            render(tiny_biggan, matrix, RenderSettings(**base, layers=bad), tmp_path / "bad")
    with pytest.raises(UsageError, match="no layer-wise latents"):
        render(SyntheticGenerator(z_dim=16), matrix, RenderSettings(**base, layers="0-1"), tmp_path / "synthetic")


def test_render_runs_on_every_device(device, tmp_path):
    generator = SyntheticGenerator(z_dim=6, factors=2, size=8, device=device)
    manifest = render(generator, generator.basis, RenderSettings(directions=[0], samples=2, frames=3), tmp_path)
    assert (tmp_path / manifest["rows"][0]["files"]["gif"]).is_file() and (tmp_path / "sheet.png").is_file()


def test_render_says_what_it_will_make_about_how_long_and_leaves_a_final_line(tmp_path):
    """What a log of `hpdirs render` (no terminal) keeps: the count, an estimate, the end."""
    import os
    import re
    import sys

    from helpers import learned_run

    run = learned_run(tmp_path)
    done = subprocess.run([sys.executable, "-m", "hpdirs_cli", "render", str(run), "--samples", "2", "--frames", "8"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    total = 8 * 8 * 2 + 9 * 8  # 8 directions x 8 frames x 2 samples, and the sheet's 9 columns x 8 rows
    assert lines[0] == f"rendering: {total} images to generate"
    assert any(re.fullmatch(r"measured \S+ images/s: about \S+ more", line) for line in lines), lines
    assert re.fullmatch(rf"rendering: {total} images in \S+", lines[-2]) and lines[-1].startswith("wrote ")

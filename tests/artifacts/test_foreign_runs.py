"""A run folder, a directions file or a cache entry is someone else's data: passed around as a
tarball, it may carry links, FIFOs, devices, huge or deeply nested files. Nothing outside the run
is written, no read hangs or runs out of memory, every refusal is one line, and work that
succeeded is not failed by what is derived from it afterwards."""

import io
import json
import os
import resource
import shutil
import signal
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch
from helpers import SYNTH, cli_process, fill, invoke, learned_run, one_error_line
from safetensors.torch import save_file

from direction_finder import load_directions
from direction_finder.generators import weights as w
from direction_finder.outputs.render import RenderSettings, render_file

RENDER = ["--samples", "1", "--frames", "2", "--directions", "0-1"]
COMPARE = ["--samples", "2", "--top", "2", "--baselines", "axes", "--no-gifs"]
DEEP = "[" * 200_000 + "]" * 200_000  # JSON nested 200,000 levels deep


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("foreign")
    return learned_run(out, "theirs", "--checkpoint-every", "2", eval_every=2)


@pytest.fixture
def run(made, tmp_path):
    """A copy of someone's run, to spoil."""
    copy = tmp_path / "theirs"
    shutil.copytree(made, copy)
    return copy


@pytest.fixture
def victim(tmp_path):
    """A folder of the user's own files, named like what render and compare write."""
    folder = tmp_path / "victim"
    folder.mkdir()
    for name in ("index.html", "render.json", "sheet.png", "report.json", "compare.html"):
        (folder / name).write_text(f"the user's own {name}\n")
    return folder


def untouched(folder: Path) -> bool:
    return {p.name: p.read_text() for p in folder.iterdir()} == {
        name: f"the user's own {name}\n"
        for name in ("index.html", "render.json", "sheet.png", "report.json", "compare.html")
    }


def within(seconds, args):
    """invoke(args) that must finish within `seconds`: a read that blocks fails the test, not the suite."""
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("result", invoke(args)), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"hpdirs {' '.join(map(str, args))} still runs after {seconds} s")
    return done["result"]


# --- nothing written outside the run ---------------------------------------------------------


@pytest.mark.parametrize("kind, options", [("render", RENDER), ("compare", COMPARE)])
def test_an_output_folder_that_is_a_link_out_of_the_run_is_refused(run, victim, kind, options):
    (run / kind).symlink_to(victim)
    result = invoke([kind, run, *options])
    assert result.exit_code == 1
    one_error_line(result.stderr)
    assert f"{run / kind} is a link or not a folder" in result.stderr and "--out" in result.stderr
    assert untouched(victim)


@pytest.mark.parametrize("kind, options, name", [("render", RENDER, "index.html"), ("compare", COMPARE, "report.json")])
def test_an_output_file_that_is_a_link_is_refused(run, victim, kind, options, name):
    (run / kind).mkdir()
    (run / kind / name).symlink_to(victim / name)
    result = invoke([kind, run, *options])
    assert result.exit_code == 1
    one_error_line(result.stderr)
    assert "is a link or not a regular file" in result.stderr
    assert untouched(victim) and (run / kind / name).is_symlink()


def test_a_folder_the_user_names_is_followed_as_given(run, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "shortcut").symlink_to(elsewhere)
    result = invoke(["render", run, *RENDER, "--out", tmp_path / "shortcut"])
    assert result.exit_code == 0, result.stderr
    assert (elsewhere / "index.html").is_file() and (elsewhere / "direction_001.gif").is_file()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="writes go through held folders on Linux only")
def test_a_link_planted_while_rendering_is_not_followed(run, victim):
    """The render's folder is swapped for a link to the victim after the first images: every later
    write still goes to the folder the render opened."""
    planted = []

    def plant(done, total):
        if not planted:
            os.rename(run / "render", run / "render-moved")
            (run / "render").symlink_to(victim)
            planted.append(done)

    render_file(run, RenderSettings(directions=[0, 1], samples=1, frames=2), on_images=plant)
    assert planted and untouched(victim)
    assert (run / "render-moved" / "index.html").is_file() and (run / "render-moved" / "render.json").is_file()


# --- reads that are bounded and never block --------------------------------------------------

SPECIAL = [  # (file of the run, command, what the one line says)
    ("config.json", ["learn", "--resume", "{run}"], "config.json is missing or damaged"),
    (".lock", ["learn", "--resume", "{run}"], "is not a lock file hpdirs wrote"),
    ("loss.csv", ["learn", "--resume", "{run}"], "loss.csv is damaged"),
    ("checkpoint.pt", ["learn", "--resume", "{run}"], "checkpoint.pt cannot be read"),
    ("labels.json", ["info", "{run}"], "labels.json is damaged"),
    ("directions.safetensors", ["info", "{run}"], "cannot be a directions file"),
    ("z.npy", ["render", "{run}", *RENDER, "--latents", "{run}/z.npy"], "cannot be latents"),
]


@pytest.mark.parametrize("special", ["fifo", "dev-zero"])
@pytest.mark.parametrize("name, argv, fragment", SPECIAL, ids=[s[0] for s in SPECIAL])
def test_a_fifo_or_a_device_in_a_run_is_one_line_at_once(run, special, name, argv, fragment):
    path = run / name
    path.unlink(missing_ok=True)
    os.mkfifo(path) if special == "fifo" else path.symlink_to("/dev/zero")
    result = within(60, [a.format(run=run) for a in argv])
    assert result.exit_code == 1, result.stdout
    one_error_line(result.stderr)
    assert fragment in result.stderr and "not a regular file" in result.stderr, result.stderr


def test_a_cache_record_that_is_a_fifo_is_not_waited_for(tiny_weights):
    entry = w.cache_root() / "biggan-deep-256"
    shutil.copytree(tiny_weights, entry)
    os.mkfifo(entry / w.RECORD_NAME)
    result = within(60, ["download", "--model", "biggan-deep-256"])
    assert result.exit_code == 0, result.stderr


def test_a_settings_file_of_megabytes_is_refused_by_its_size(run):
    with open(run / "config.json", "r+b") as f:
        f.truncate(3 * 2**20)  # sparse: no disk spent
    result = within(60, ["learn", "--resume", run])
    assert result.exit_code == 1
    one_error_line(result.stderr)
    assert "holds 3145728 bytes, more than any config.json of a run (1048576 at most)" in result.stderr


def test_more_directions_than_dimensions_are_refused_from_the_header(tmp_path):
    path = tmp_path / "tall.safetensors"
    save_file({"directions": torch.zeros(15000, 1)}, str(path), metadata={"format": "hpdirs.directions/1"})
    result = within(30, ["info", path])
    assert result.exit_code == 1
    one_error_line(result.stderr)
    assert "holds 15000 directions of size 1, but at most 1 orthonormal directions exist" in result.stderr


def _rewrite_checkpoint(run: Path, extra: str, data: bytes, compression: int) -> None:
    """checkpoint.pt with its members as written, plus `extra` holding `data`."""
    original = (run / "checkpoint.pt").read_bytes()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(run / "checkpoint.pt", "w") as target:
        for member in source.infolist():
            target.writestr(member, source.read(member))
        target.writestr(extra, data, compress_type=compression)


@pytest.mark.parametrize("compression, fragment", [
    (zipfile.ZIP_DEFLATED, "it holds compressed members, which torch.save never writes"),
    (zipfile.ZIP_STORED, "more than any checkpoint of this run"),
])  # fmt: skip
def test_a_checkpoint_that_would_unpack_into_more_than_its_run_needs_is_refused_first(run, compression, fragment):
    prefix = zipfile.ZipFile(run / "checkpoint.pt").namelist()[0].split("/")[0]
    size = 64 * 2**20 if compression == zipfile.ZIP_DEFLATED else 2 * 2**20  # 64 MiB of zeros deflate to 64 KiB
    _rewrite_checkpoint(run, f"{prefix}/data/99", bytes(size), compression)
    assert (run / "checkpoint.pt").stat().st_size < 3 * 2**20
    result = within(60, ["learn", "--resume", run, "--steps", "6"])
    assert result.exit_code == 1
    one_error_line(result.stderr)
    assert "checkpoint.pt cannot be read" in result.stderr and fragment in result.stderr


# --- one line, not a traceback ----------------------------------------------------------------


def _deep_config(run: Path) -> list:
    body = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(body)[:-1] + f', "deep": {DEEP}}}')
    return ["learn", "--resume", run]


def _deep_labels(run: Path) -> list:
    (run / "labels.json").write_text('{"format": "hpdirs.labels/1", "files": ' + DEEP + "}")
    return ["info", run]


def _deep_checkpoint(run: Path) -> list:
    data = torch.load(run / "checkpoint.pt", weights_only=True)
    data["config"] = DEEP
    torch.save(data, run / "checkpoint.pt")
    return ["learn", "--resume", run]


def _long_label_index(run: Path) -> list:
    files = {"directions.safetensors": {"1" * 5000: "zoom"}}
    (run / "labels.json").write_text(json.dumps({"format": "hpdirs.labels/1", "files": files}))
    return ["label", run, "1", "tilt"]


@pytest.mark.parametrize("spoil, fragment", [
    (_deep_config, "nested more than 32 levels deep"),
    (_deep_labels, "nested more than 32 levels deep"),
    (_deep_checkpoint, "its config cannot be read"),
    (_long_label_index, "labels.json is damaged"),
], ids=["config.json", "labels.json", "checkpoint config", "label index of 5000 digits"])  # fmt: skip
def test_deep_json_and_huge_numbers_are_one_line(run, spoil, fragment):
    result = within(60, spoil(run))
    assert result.exit_code == 1
    one_error_line(result.stderr)
    assert fragment in result.stderr


def test_deep_json_in_a_directions_files_metadata_is_text(run):
    d = load_directions(run)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in d.metadata.items()}
    save_file({"directions": d.matrix}, str(run / "deep.safetensors"), metadata={**meta, "config": DEEP})
    result = within(60, ["info", run / "deep.safetensors", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["metadata"]["config"] == DEEP


def test_deep_json_in_a_download_record_is_ignored(tiny_weights):
    entry = w.cache_root() / "biggan-deep-256"
    shutil.copytree(tiny_weights, entry)
    (entry / w.RECORD_NAME).write_text(DEEP)
    result = within(60, ["download", "--model", "biggan-deep-256"])
    assert result.exit_code == 0, result.stderr


SPOILED_CARDS = {
    "config.json not JSON": ("config.json", "{'not': json"),
    "config of the wrong types": ("config.json", '{"config": [1, 2], "generator": 5}'),
    "held-out value not a number": ("loss.csv", None),
}


@pytest.mark.parametrize("case", SPOILED_CARDS)
@pytest.mark.parametrize("kind, options, made_file", [("render", RENDER, "index.html"),
                                                      ("compare", COMPARE, "compare.html")])  # fmt: skip
def test_a_finished_render_or_compare_is_not_failed_by_the_run_card(run, case, kind, options, made_file):
    name, text = SPOILED_CARDS[case]
    if text is None:  # the last row's held-out value becomes `abc`
        text = (run / name).read_text().rstrip("\n").rsplit(",", 4)
        text = ",".join([text[0], text[1], "abc", *text[3:]]) + "\n"
    (run / name).write_text(text)
    result = invoke([kind, run, *options])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("warning: the run card") and "was not updated" in result.stderr
    assert "Traceback" not in result.stderr and (run / kind / made_file).is_file()


# --- nothing lost -----------------------------------------------------------------------------


def test_the_log_always_holds_the_checkpoints_steps(tmp_path):
    """`ulimit -f`: the log outgrows the limit while the checkpoint still fits. The log is written
    before the checkpoint, so the checkpoint is never ahead of it, and a resume loses no row."""
    limit = 12 * 1024
    args = ["learn", *SYNTH, "--steps", "100000", "--batch-size", "2", "--eval-every", "0",
            "--checkpoint-every", "7", "--out", tmp_path, "--name", "limited"]  # fmt: skip
    process = cli_process(*map(str, args), preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit,) * 2))
    _, err = process.communicate(timeout=240)
    assert process.returncode == 1 and "File too large" in err, err
    run = tmp_path / "synthetic" / "limited"
    step = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    logged = [int(line.split(",")[0]) for line in (run / "loss.csv").read_text().splitlines()[1:]]
    assert step > 0 and logged[-1] >= step
    resumed = invoke(["learn", "--resume", run, "--steps", step + 3])
    assert resumed.exit_code == 0, resumed.stderr
    logged = [int(line.split(",")[0]) for line in (run / "loss.csv").read_text().splitlines()[1:]]
    assert logged == list(range(1, step + 4))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_render_folder_holds_one_render_whole(run):
    assert invoke(["render", run, "--samples", "1", "--frames", "2", "--directions", "0-3"]).exit_code == 0
    assert (run / "render" / "direction_003.gif").is_file()
    assert invoke(["render", run, *RENDER]).exit_code == 0
    names = sorted(p.name for p in (run / "render").iterdir())
    assert names == ["direction_000.gif", "direction_001.gif", "index.html", "latents.npy", "overview.gif",
                     "render.json", "sheet.png"]  # fmt: skip
    manifest = json.loads((run / "render" / "render.json").read_text())
    assert [row["index"] for row in manifest["rows"]] == [0, 1]


def test_sigterm_during_a_render_over_an_earlier_one_keeps_the_earlier_one_whole(run):
    assert invoke(["render", run, *RENDER]).exit_code == 0
    before = _snapshot(run / "render")
    process = cli_process("render", str(run), "--frames", "400", "--samples", "16", "--directions", "0-7")
    deadline = time.time() + 60
    while time.time() < deadline and not any((run / "render").glob(".staging-*/direction_*.gif")):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    one_error_line(err)
    assert _snapshot(run / "render") == before  # the earlier render, every file of it, and nothing else


def test_a_full_disk_at_the_start_of_a_resume_leaves_no_lock(made, small_disk):
    run = small_disk / "theirs"
    shutil.copytree(made, run)
    fill(small_disk, 0)
    result = invoke(["learn", "--resume", run, "--steps", "6"])
    assert result.exit_code == 1
    one_error_line(result.stderr)
    assert "No space left on device" in result.stderr
    assert not (run / ".lock").exists()


def test_a_limit_far_above_the_file_costs_only_what_the_file_holds(tmp_path):
    """A run of 10**9 steps may write a log of 128 GB: its cap. Reading a small log under that cap
    takes the log's bytes, not the cap's (read in blocks, not in one read of cap + 1 bytes)."""
    from direction_finder.files import read_capped

    (tmp_path / "loss.csv").write_bytes(b"step,loss\n1,0.5\n" * 1000)
    assert read_capped(tmp_path / "loss.csv", 128 * 10**9, "loss.csv") == b"step,loss\n1,0.5\n" * 1000
    assert len(read_capped(tmp_path / "loss.csv", 16_000, "loss.csv")) == 16_000
    with pytest.raises(ValueError, match="holds 16000 bytes, more than any loss.csv"):
        read_capped(tmp_path / "loss.csv", 15_999, "loss.csv")

"""A shared directions file or run folder is data: nothing recorded in it chooses code to run.

The hostile files here record a `module:factory` that would run a shell command (`os:system`,
`subprocess:getoutput`) with a marker file as its proof; every command that opens them must stop
with one line that shows the recorded spec and how to name it, and the marker must not appear.
"""

import json
import shutil

import pytest
import torch
from helpers import invoke

from direction_finder import load_directions, save_directions
from direction_finder.errors import UsageError
from direction_finder.explore import open_explorer

SYNTHETIC = "synthetic:z_dim=8,factors=3,size=8"
LEARN = ["learn", "--model", SYNTHETIC, "--steps", "2", "--batch-size", "2", "--eval-every", "2",
         "--eval-samples", "2", "--checkpoint-every", "2", "--device", "cpu"]


def hostile(spec, marker):
    """What a file records to make a reader's hpdirs run `touch MARKER`."""
    call = {"os:system": "command", "subprocess:getoutput": "cmd"}[spec]
    return {"model": spec, "model_args": {call: f"touch {marker}"}}


def one_line_refusal(result, spec):
    assert result.exit_code == 1, result.stdout
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert spec in result.stderr and f"--model {spec}" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = invoke([*LEARN, "--out", str(out), "--name", "honest"])
    assert result.exit_code == 0, result.stderr
    return out / "synthetic" / "honest"


@pytest.mark.parametrize("spec", ["os:system", "subprocess:getoutput"])
@pytest.mark.parametrize("command", [
    ["render", "{file}", "--samples", "1", "--frames", "2"],
    ["compare", "{file}", "--samples", "2", "--top", "2", "--no-gifs"],
    ["explore", "{file}", "--port", "0"],
])
def test_a_directions_file_that_names_a_factory_runs_nothing(run, tmp_path, spec, command):
    marker = tmp_path / "ran"
    file = tmp_path / "shared.safetensors"
    directions = load_directions(run)
    save_directions(file, directions.matrix, {**directions.metadata, **hostile(spec, marker)})
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke([part.replace("{file}", str(file)) for part in command])
    one_line_refusal(result, spec)
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output folder either


def test_resuming_a_run_folder_whose_config_names_a_factory_runs_nothing(run, tmp_path):
    marker = tmp_path / "ran"
    shared = tmp_path / "shared"
    shutil.copytree(run, shared)
    config = json.loads((shared / "config.json").read_text())
    config["generator"].update(hostile("os:system", marker))
    (shared / "config.json").write_text(json.dumps(config))
    snapshot = {p.name: p.read_bytes() for p in shared.iterdir() if p.is_file()}
    result = invoke(["learn", "--resume", str(shared), "--steps", "4"])
    one_line_refusal(result, "os:system")
    assert not marker.exists()
    assert {p.name: p.read_bytes() for p in shared.iterdir() if p.is_file()} == snapshot


def test_the_library_refuses_too_and_info_only_reads(run, tmp_path):
    marker = tmp_path / "ran"
    file = tmp_path / "shared.safetensors"
    save_directions(file, load_directions(run).matrix, {**load_directions(run).metadata,
                                                        **hostile("os:system", marker)})
    with pytest.raises(UsageError, match="never imports code that a file names"):
        open_explorer(file)
    shown = invoke(["info", str(file), "--json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["metadata"]["model"] == "os:system"
    assert not marker.exists()


def test_an_unknown_builtin_name_in_a_file_is_refused_without_import(run, tmp_path):
    file = tmp_path / "odd.safetensors"
    save_directions(file, load_directions(run).matrix, {**load_directions(run).metadata, "model": "os.system"})
    result = invoke(["render", str(file), "--samples", "1", "--frames", "2"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "names the model 'os.system', which hpdirs does not know" in result.stderr


def test_the_file_cannot_swap_the_factory_of_a_named_plugin(run, tmp_path):
    """--model names the code; the file's recorded arguments are only data passed to it."""
    marker = tmp_path / "ran"
    file = tmp_path / "shared.safetensors"
    save_directions(file, load_directions(run).matrix, {**load_directions(run).metadata,
                                                        **hostile("os:system", marker)})
    result = invoke(["render", str(file), "--model", SYNTHETIC, "--samples", "1", "--frames", "2",
                     "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    assert not marker.exists() and (tmp_path / "out" / "index.html").is_file()
    assert torch.equal(load_directions(file).matrix, load_directions(run).matrix)


# --- a run that is only read is not written; what cannot be right is said -------------------


def test_rendering_a_read_only_run_elsewhere_writes_nothing_into_it(run, tmp_path):
    shared = tmp_path / "shared"
    shutil.copytree(run, shared)
    (shared / "README.md").unlink(missing_ok=True)
    before = {p.name: p.read_bytes() for p in shared.iterdir()}
    for path in [shared, *shared.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        result = invoke(["render", str(shared), "--samples", "1", "--frames", "2", "--out", str(tmp_path / "out")])
        assert result.exit_code == 0, result.stderr
        compared = invoke(["compare", str(shared), "--samples", "2", "--top", "2", "--no-gifs",
                           "--baselines", "axes", "--out", str(tmp_path / "cmp")])
        assert compared.exit_code == 0, compared.stderr
    finally:
        shared.chmod(0o755)
    assert {p.name: p.read_bytes() for p in shared.iterdir()} == before
    assert (tmp_path / "out" / "index.html").is_file() and (tmp_path / "cmp" / "report.json").is_file()


def test_comparing_a_set_with_itself_is_refused(run, tmp_path):
    copy = tmp_path / "copy.safetensors"
    shutil.copy(run / "directions.safetensors", copy)
    for other in (run, run / "directions.safetensors", copy):
        result = invoke(["compare", str(run), str(other), "--samples", "2"])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
        assert "hold the same directions" in result.stderr
    assert not (run / "compare-vs-copy").exists()


def test_a_failed_compare_leaves_no_empty_folder(run, tmp_path):
    bad = tmp_path / "z.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    result = invoke(["compare", str(run), "--latents", str(bad), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 1 and "not a .npy array" in result.stderr
    assert not (tmp_path / "cmp").exists()


def test_a_loss_log_cut_mid_line_loses_its_last_row_not_a_digit(run, tmp_path):
    shared = tmp_path / "shared"
    shutil.copytree(run, shared)
    log = shared / "loss.csv"
    text = log.read_text()
    log.write_text(text.rstrip("\n")[:-3])  # the last row's last value lost its last digits
    result = invoke(["learn", "--resume", str(shared), "--steps", "4"])
    assert result.exit_code == 0, result.stderr
    rows = log.read_text().splitlines()
    assert rows[0].startswith("step,") and [r.split(",")[0] for r in rows[1:]] == ["1", "3", "4"]  # 2 was cut
    original = {r.split(",")[0]: r for r in text.splitlines()[1:]}
    assert rows[1] == original["1"]  # the rows before the cut kept as they were


def test_seeds_beyond_32_bits_are_refused_not_wrapped(run, tmp_path):
    """torch's CPU generator keeps a seed's low 32 bits: 2**32 would silently draw as 0 does."""
    for args in ([*LEARN, "--out", str(tmp_path / "new")], ["render", str(run), "--out", str(tmp_path / "r")],
                 ["compare", str(run), "--out", str(tmp_path / "c")]):
        result = invoke([*args, "--seed", str(2**32)])
        assert result.exit_code == 1 and "--seed must be an integer from 0 to 4,294,967,295" in result.stderr
    assert not list(tmp_path.iterdir())


def test_what_a_file_or_a_path_says_is_shown_as_text_not_markup_or_terminal_codes(run, tmp_path):
    odd = tmp_path / "[red]odd"  # markup in a path (a folder name cannot hold a closing tag's /)
    odd.mkdir()
    file = odd / "shared.safetensors"
    save_directions(file, load_directions(run).matrix, {**load_directions(run).metadata,
                                                        "note": "[/bold] [link=http://x]y\x1b[2J"})
    shown = invoke(["info", str(file)])
    assert shown.exit_code == 0, shown.stderr
    assert "[/bold] [link=http://x]y\\x1b[2J" in shown.stdout and "\x1b" not in shown.stdout
    rendered = invoke(["render", str(file), "--samples", "1", "--frames", "2"])
    assert rendered.exit_code == 0 and f"wrote {odd}/render-shared/index.html" in rendered.stdout
    missing = invoke(["render", str(odd / "[bold]x.safetensors")])
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1 and "[red]odd/[bold]x" in missing.stderr

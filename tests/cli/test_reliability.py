"""Every bad input and fault: the real CLI exits non-zero with one line on stderr saying what is
wrong and what to do, prints no traceback, and leaves existing outputs unchanged."""

import hashlib
import json
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import SYNTH, Exploit, cli_process, fill, learned_run, one_error_line, runner
from safetensors.torch import save_file

from direction_finder import save_directions
from hpdirs_cli.main import app


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_weights):
    """Files every row may use; `precious` is an existing run that must never change."""
    root = tmp_path_factory.mktemp("world")
    out = root / "outputs"
    run = learned_run(out, "precious", "--checkpoint-every", "2", eval_every=2)
    w = {"root": root, "out": out, "run": run, "tiny": tiny_weights}
    damaged = {}
    for name in ("no-config", "bad-json", "renamed-key", "half-weights", "nan-weights"):
        damaged[name] = root / name
        shutil.copytree(tiny_weights, damaged[name])
    (damaged["no-config"] / "config.json").unlink()
    (damaged["bad-json"] / "config.json").write_text("{'not': json")
    state = torch.load(tiny_weights / "pytorch_model.bin", weights_only=True)
    renamed = dict(state)
    renamed["generator.gen_z.bias_renamed"] = renamed.pop("generator.gen_z.bias")
    torch.save(renamed, damaged["renamed-key"] / "pytorch_model.bin")
    data = (tiny_weights / "pytorch_model.bin").read_bytes()
    (damaged["half-weights"] / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    poisoned = dict(state)
    poisoned["generator.gen_z.bias"] = torch.full_like(state["generator.gen_z.bias"], float("nan"))
    torch.save(poisoned, damaged["nan-weights"] / "pytorch_model.bin")
    w.update(damaged)
    files = root / "files"
    files.mkdir()
    (files / "empty.safetensors").write_bytes(b"")
    good = (w["run"] / "directions.safetensors").read_bytes()
    (files / "truncated.safetensors").write_bytes(good[: len(good) // 2])
    (files / "text.safetensors").write_text("just some text\n")
    save_file({"directions": torch.eye(4, 8)}, str(files / "other-format.safetensors"),
              metadata={"format": "hpdirs.directions/2", "model": "synthetic"})
    save_directions(files / "z8.safetensors", torch.eye(4, 8), {"model": "synthetic:z_dim=16"})
    save_directions(files / "no-model.safetensors", torch.eye(4, 8), {})
    save_directions(files / "zero-rows.safetensors", torch.zeros(0, 8), {"model": "synthetic:z_dim=8"})
    save_directions(files / "odd-meta.safetensors", torch.eye(4, 16),
                    {"model": "biggan-deep-32", "class_index": 207, "truncation": "abc", "weights": str(tiny_weights)})
    with open(files / "pickle.safetensors", "wb") as f:
        pickle.dump({"directions": Exploit()}, f)
    (files / "a-file").write_text("x")
    exploit_run = root / "exploit-run"
    shutil.copytree(w["run"], exploit_run)
    torch.save({"format": "hpdirs.checkpoint/1", "A": Exploit()}, exploit_run / "checkpoint.pt")
    w.update(files=files, exploit_run=exploit_run)
    return w


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


T = "{tiny}"
LEARN = ["learn", "--weights", T, "--class", "207", "--steps", "1", "--batch-size", "1", "--eval-every", "0",
         "--out", "{out}"]
RENDER = ["render", "{run}", "--frames", "4", "--samples", "2", "--out", "{root}/render-out"]

ROWS = [
    # (case, argv, fragments of the one-line message)
    ("unknown class", ["learn", "--weights", T, "--class", "golden_retreiver", "--out", "{out}"],
     ["unknown class 'golden_retreiver'", "207 golden retriever (n02099601)", "hpdirs classes"]),
    ("ambiguous class", ["learn", "--weights", T, "--class", "crane", "--out", "{out}"],
     ["'crane' is ambiguous", "134 crane", "517 crane", "pass the index or WordNet id"]),
    ("truncation 0", [*LEARN, "--truncation", "0"], ["truncation must be in (0, 1], got 0.0"]),
    ("truncation 1.5", [*LEARN, "--truncation", "1.5"], ["truncation must be in (0, 1], got 1.5"]),
    ("truncation nan", [*LEARN, "--truncation", "nan"], ["truncation must be a number in (0, 1], got nan"]),
    ("steps -1", [*LEARN, "--steps", "-1"], ["steps must be an integer from 0 to 1,000,000,000, got -1"]),
    ("batch-size negative", [*LEARN, "--batch-size", "-2"], ["batch-size must be an integer from 1 to 65,536, got -2"]),
    ("num-directions 0", [*LEARN, "--num-directions", "0"], ["num-directions must be an integer from 1"]),
    ("num-directions > z_dim", [*LEARN, "--num-directions", "17"], ["num-directions 17 is more than z_dim 16"]),
    ("frames 0", [*RENDER, "--frames", "0"], ["frames must be an integer from 2 to 1,000, got 0"]),
    ("samples 0", [*RENDER, "--samples", "0"], ["samples must be an integer from 1 to 64, got 0"]),
    ("samples too many", [*RENDER, "--samples", "1000"], ["--samples must be an integer from 1 to 64, got 1000"]),
    ("eta 0", [*LEARN, "--eta", "0"], ["eta must be a finite number > 0, got 0.0"]),
    ("epsilon negative", [*LEARN, "--epsilon", "-0.1"], ["epsilon must be a finite number > 0"]),
    ("k 1", [*LEARN, "--k", "1"], ["k must be an integer from 2 to 1,024"]),
    ("unknown recipe", [*LEARN, "--recipe", "fast"], ["unknown recipe 'fast'", "paper, curvature"]),
    ("unknown init", [*LEARN, "--init", "zeros"], ["init must be random, axes, sefa, sefa-first, curvature or ganspace"]),
    ("render eta 0", [*RENDER, "--eta", "0"], ["eta must be a finite number > 0"]),
    ("weights path missing", ["learn", "--weights", "{root}/nowhere", "--class", "207"],
     ["--weights", "nowhere does not exist", "config.json and pytorch_model.bin"]),
    ("folder without config.json", ["learn", "--weights", "{no-config}", "--class", "207"], ["has no config.json"]),
    ("config.json not JSON", ["learn", "--weights", "{bad-json}", "--class", "207"], ["is not valid JSON"]),
    ("renamed key", ["learn", "--weights", "{renamed-key}", "--class", "207"],
     ["missing keys: generator.gen_z.bias", "unexpected keys: generator.gen_z.bias_renamed"]),
    ("another resolution", ["learn", "--model", "biggan-deep-256", "--weights", T, "--class", "207"],
     ["are for 32 px but the model is biggan-deep-256", "omit --model"]),
    ("truncated weights", ["learn", "--weights", "{half-weights}", "--class", "207"],
     ["damaged, truncated or not a weights file", "download again"]),
    ("offline, empty cache", ["learn", "--class", "207", "--offline"],
     ["offline and biggan-deep-128 is not in the cache", "--weights FOLDER"]),
    ("directions missing", ["render", "{files}/nope.safetensors"], ["does not exist"]),
    ("directions empty", ["render", "{files}/empty.safetensors"], ["is empty"]),
    ("directions truncated", ["info", "{files}/truncated.safetensors"], ["not a readable safetensors file"]),
    ("not safetensors", ["compare", "{files}/text.safetensors"], ["not a readable safetensors file"]),
    ("other format version", ["info", "{files}/other-format.safetensors"],
     ["format 'hpdirs.directions/2', not 'hpdirs.directions/1'"]),
    ("z_dim mismatch", ["render", "{files}/z8.safetensors"],
     ["the directions have z_dim 8 but the generator has 16"]),
    ("pickle as directions", ["render", "{files}/pickle.safetensors"], ["not a readable safetensors file"]),
    ("pickle as checkpoint", ["learn", "--resume", "{exploit_run}"], ["cannot be read", "damaged or not ours"]),
    ("output not writable", [*LEARN[:-1], "{files}/a-file/outputs"], ["cannot create", "choose another --out"]),
    ("render output not writable", [*RENDER[:-1], "{files}/a-file/render"], ["cannot create"]),
    ("NaN loss", ["learn", "--weights", "{nan-weights}", "--class", "207", "--steps", "3", "--batch-size", "1",
                     "--out", "{root}/nan-out"],
     ["the loss became nan at step 1; no checkpoint had been written yet", "check the generator's weights"]),
    ("cuda without CUDA", [*LEARN, "--device", "cuda"], ["CUDA is not available on this machine"]),
    ("metadata lacks model", ["render", "{files}/no-model.safetensors"],
     ["does not say which model it was learned with; pass --model (and --class)"]),
    ("compare: metadata lacks model", ["compare", "{files}/no-model.safetensors"], ["pass --model (and --class)"]),
    ("resume, another config", ["learn", "--resume", "{run}", "--lr", "0.5", "--k", "3"],
     ["cannot resume", "different config (lr: 0.01 -> 0.5; k: 2 -> 3)"]),
]


@pytest.mark.parametrize("case, argv, fragments", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input(world, case, argv, fragments, monkeypatch):
    if case == "cuda without CUDA" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(world["root"])
    before = snapshot(world["root"])
    args = [a.format(**{k: v for k, v in world.items()}) for a in argv]
    result = runner.invoke(app, args)
    assert result.exit_code != 0, f"{case}: exit 0\n{result.stdout}"
    message = result.stderr
    assert message.startswith("error: ") and message.count("\n") == 1, f"{case}: {message!r}"
    assert "Traceback" not in message + result.stdout
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"
    after = snapshot(world["root"])
    changed = [name for name in before if before[name] != after.get(name)]
    assert not changed, f"{case} changed {changed}"
    assert not [n for n in after if Path(n).name.startswith(".") and ".tmp" in n]
    assert not (world["root"] / "PWNED").exists()


def test_off_grid_truncation_is_snapped_with_a_one_line_warning(world, tmp_path):
    result = runner.invoke(app, [a.format(**world) for a in LEARN] + ["--truncation", "0.413", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert "warning: truncation 0.413 is off the 0.02 grid of BigGAN's BatchNorm statistics; using 0.42" in result.stderr
    run = next((tmp_path / "golden_retriever").iterdir())
    assert json.loads((run / "config.json").read_text())["generator"]["truncation"] == 0.42


def test_ctrl_c_during_render_leaves_no_partial_file(world, tmp_path):
    out = tmp_path / "render"
    process = cli_process("render", str(world["run"]), "--frames", "400", "--samples", "16", "--directions", "0-7",
                   "--format", "gif,png", "--out", str(out))
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and any(out.glob(".staging-*/direction_*.gif"))):
        time.sleep(0.05)  # the render's files are made in a staging folder, and moved in when all are done
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.startswith("error: interrupted") and "Traceback" not in err
    assert not out.exists()  # made for this render, which did not finish: no files, no staging, no folder


def test_two_runs_with_the_same_name_at_once_are_separated(tmp_path):
    args = ["learn", "--model", "synthetic:z_dim=8,factors=3,size=4", "--steps", "200", "--batch-size", "2",
            "--out", str(tmp_path), "--name", "same"]
    first, second = cli_process(*args), cli_process(*args)
    results = [(p.wait(timeout=120), p.stderr.read()) for p in (first, second)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert "already exists; choose another --name" in loser and loser.count("\n") == 1
    run = tmp_path / "synthetic" / "same"
    from direction_finder import load_directions

    assert load_directions(run).metadata["step"] == 200
    assert len((run / "loss.csv").read_text().splitlines()) == 201  # one writer: no interleaved rows


def test_every_option_of_every_command_shows_its_default():
    from test_cli import COMMAND_NAMES, panel_rows

    for command in COMMAND_NAMES:
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "250"})
        assert result.exit_code == 0
        rows = [row for panel, rows in panel_rows(result.stdout).items() if not panel.startswith("Example")
                for row in rows if not row.startswith("  --help ")]  # fmt: skip
        assert rows or command in ("models", "doctor")
        for row in rows:
            assert re.search(r"  \[[^]]+\]$", row), f"{command}: {row}"


# --- signals, closed pipes, full disks, damaged run files, absurd values, paths, permissions ---



def _checkpoint_then_resume(run: Path, more: int = 3) -> None:
    """The run's checkpoint is whole, no temp file is left, and resuming it runs `more` steps."""
    from direction_finder import load_directions

    step = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    assert step > 0 and not [p for p in run.iterdir() if p.name.startswith(".")]
    resumed = runner.invoke(app, ["learn", "--resume", str(run), "--steps", str(step + more)])
    assert resumed.exit_code == 0, resumed.stderr
    assert load_directions(run).metadata["step"] == step + more


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_termination_signals_during_learn_checkpoint_like_ctrl_c(tmp_path, signum):
    process = cli_process("learn", *SYNTH, "--steps", "100000", "--batch-size", "2", "--eval-every", "0",
                   "--checkpoint-every", "100000", "--out", str(tmp_path), "--name", "cut")
    for line in process.stdout:  # learning is under way once the first step was measured
        if line.startswith("measured"):
            break
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    run = tmp_path / "synthetic" / "cut"
    assert process.returncode == 128 + signum, err
    one_error_line(err)
    assert f"interrupted by {signal.Signals(signum).name}" in err
    assert f"resume with: hpdirs learn --resume {run}" in err
    assert not (run / ".lock").exists()
    _checkpoint_then_resume(run)


def test_sigterm_during_render_leaves_no_temp_file(world, tmp_path):
    out = tmp_path / "render"
    process = cli_process("render", str(world["run"]), "--frames", "400", "--samples", "16", "--directions", "0-7",
                   "--out", str(out))
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and any(out.glob(".staging-*/direction_*.gif"))):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    one_error_line(err)
    assert "interrupted by SIGTERM" in err
    assert not out.exists()  # no temp file, no staging folder, and the folder made for the render gone with it


def test_a_closed_stdout_does_not_stop_or_lose_the_run(tmp_path):
    """`hpdirs learn ... | head -1`: the reader goes away; the run goes on and finishes."""
    process = cli_process("learn", *SYNTH, "--steps", "300", "--batch-size", "2", "--eval-every", "50",
                   "--checkpoint-every", "100", "--out", str(tmp_path), "--name", "piped")
    process.stdout.readline()
    process.stdout.close()  # as head does after its line
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    from direction_finder import load_directions

    assert load_directions(tmp_path / "synthetic" / "piped").metadata["step"] == 300


def test_learn_on_a_disk_that_fills_up_stops_with_one_line_and_resumes(small_disk):
    filler = fill(small_disk, 96 * 1024)  # room for the first checkpoints; loss.csv and loss.png grow
    args = ["learn", *SYNTH, "--steps", "100000", "--batch-size", "2", "--eval-every", "5",
            "--checkpoint-every", "5", "--out", str(small_disk), "--name", "full"]
    process = cli_process(*args)
    _, err = process.communicate(timeout=240)
    run = small_disk / "synthetic" / "full"
    assert process.returncode == 1, err
    one_error_line(err)
    assert "No space left on device" in err and f"hpdirs learn --resume {run}" in err
    filler.unlink()  # free space, as the message says
    _checkpoint_then_resume(run)


def test_render_on_a_nearly_full_disk_fails_up_front_with_one_line(world, small_disk):
    out = small_disk / "render"
    # 8 directions x 400 frames x 16 samples of 4 x 4 px: a 2.4 MiB frame store on a 512 KiB disk
    result = cli_process("render", str(world["run"]), "--frames", "400", "--samples", "16", "--directions", "0-7",
                  "--out", str(out))
    _, err = result.communicate(timeout=120)
    assert result.returncode == 1, err  # not SIGBUS (-7)
    one_error_line(err)
    assert f"not enough space in {out} for the render's frames" in err
    assert not out.exists()  # no scratch folder, nothing half-written, no empty folder left


def _limit_file_size(limit: int):
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_file_size_limit_is_a_write_error_with_one_line_not_a_torch_error(tmp_path):
    """`ulimit -f`: writes past the limit fail with EFBIG (Python ignores SIGXFSZ). torch.save
    would report only 'file write failed'; hpdirs serialises in memory and writes itself."""
    args = ["learn", *SYNTH, "--steps", "100000", "--batch-size", "2", "--eval-every", "5", "--checkpoint-every", "5",
            "--out", str(tmp_path), "--name", "limited"]
    process = cli_process(*args, preexec_fn=_limit_file_size(16 * 1024))  # the checkpoint fits, the log outgrows it
    _, err = process.communicate(timeout=240)
    run = tmp_path / "synthetic" / "limited"
    assert process.returncode == 1, err
    one_error_line(err)
    assert "could not write to" in err and "File too large" in err and "--resume" in err
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] > 0
    # too small even for the first checkpoint: nothing is kept, and the name is free again
    process = cli_process(*args[:-1], "tiny-limit", preexec_fn=_limit_file_size(4 * 1024))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    one_error_line(err)
    assert "before the run's first checkpoint; nothing was kept" in err
    assert not (tmp_path / "synthetic" / "tiny-limit").exists()


def _damage(run: Path, name: str, how: str) -> None:
    path = run / name
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00\xff not what it was \n")
    elif name == "checkpoint.pt":
        data = torch.load(path, weights_only=True)
        field, value = how.split("=", 1)
        data[field] = {"abc": "abc", "shape": torch.zeros(3, 3), "none": None, "nan": float("nan")}[value]
        torch.save(data, path)
    elif name == "config.json":
        body = json.loads(path.read_text())
        field, value = how.split("=", 1)
        body["config"][field] = json.loads(value)
        path.write_text(json.dumps(body))
    elif name == "loss.csv":
        path.write_text(path.read_text().replace("step,loss", "stop,loss").replace("\n2,", "\nx,"))


DAMAGE = [
    ("checkpoint.pt", "truncate", "cannot be read"),
    ("checkpoint.pt", "step=abc", "step is 'abc'"),
    ("checkpoint.pt", "A=shape", "A is not a finite (8, 8) matrix"),
    ("checkpoint.pt", "optimizer=none", "optimizer is not an Adam state"),
    ("checkpoint.pt", "rng=abc", "rng is not a random-number generator state"),
    ("checkpoint.pt", "average=nan", "average is nan"),
    ("checkpoint.pt", "config=abc", "config cannot be read"),
    ("config.json", "garbage", "config.json is missing or damaged"),
    ("config.json", "lr=\"fast\"", "lr must be a finite number > 0"),
    ("config.json", "steps=-3", "steps must be an integer from 0"),
    ("loss.csv", "garbage", "loss.csv is damaged"),
    ("loss.csv", "edited", "loss.csv is damaged"),
]


@pytest.mark.parametrize("name, how, fragment", DAMAGE, ids=[f"{n} {h}" for n, h, _ in DAMAGE])
def test_a_damaged_run_file_is_one_line_naming_it_and_changes_nothing(world, tmp_path, name, how, fragment):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    _damage(run, name, how)
    before = snapshot(run)
    result = runner.invoke(app, ["learn", "--resume", str(run), "--steps", "6"])
    assert result.exit_code == 1, result.stdout
    one_error_line(result.stderr)
    assert name in result.stderr and fragment in result.stderr, result.stderr
    assert snapshot(run) == before  # config.json above all: a failed resume rewrites nothing


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(world, tmp_path):
    result = runner.invoke(app, ["learn", "--weights", str(world["nan-weights"]), "--class", "207", "--steps", "3",
                                 "--batch-size", "1", "--out", str(tmp_path), "--name", "doomed"])
    assert result.exit_code == 1 and "no checkpoint had been written yet" in result.stderr
    assert not (tmp_path / "golden_retriever" / "doomed").exists()
    again = runner.invoke(app, [*[a.format(**world) for a in LEARN[:-1]], str(tmp_path), "--name", "doomed"])
    assert again.exit_code == 0, again.stderr  # the name is free: neither new nor resumable is not a state


ABSURD = [
    ("lr 1e300", [*LEARN, "--lr", "1e300"], ["lr must be at most 10, got 1e+300"], 1),
    ("epsilon 1e300", [*LEARN, "--epsilon", "1e300"], ["epsilon must be at most 100"], 1),
    ("eta 1e300", [*LEARN, "--eta", "1e300"], ["eta must be at most 1000"], 1),
    ("seed 2**64", [*LEARN, "--seed", str(2**64)], ["seed must be an integer from 0 to"], 1),
    ("batch-size 1e15", [*LEARN, "--batch-size", "1e15"], ["Invalid value for '--batch-size'", "--help"], 2),
    ("batch-size 10**15", [*LEARN, "--batch-size", str(10**15)], ["batch-size must be an integer from 1 to 65,536"], 1),
    ("steps 10**12", [*LEARN, "--steps", str(10**12)], ["steps must be an integer from 0 to 1,000,000,000"], 1),
    ("render frames 1e13", [*RENDER, "--frames", "1e13"], ["Invalid value for '--frames'"], 2),
    ("render frames 10**13", [*RENDER, "--frames", str(10**13)], ["frames must be an integer from 2 to 1,000"], 1),
    ("render fps 1e-9", [*RENDER, "--fps", "1e-9"], ["fps must be a number from 0.01 to 100"], 1),
    ("render eta 1e300", [*RENDER, "--eta", "1e300"], ["eta must be at most 1000"], 1),
    ("render seed 2**64", [*RENDER, "--seed", str(2**64)], ["seed must be an integer from 0 to"], 1),
    ("compare epsilon 1e300", ["compare", "{run}", "--epsilon", "1e300"], ["epsilon must be at most 100"], 1),
    ("compare samples 10**9", ["compare", "{run}", "--samples", str(10**9)], ["samples must be an integer from 1"], 1),
    ("0-row directions", ["render", "{files}/zero-rows.safetensors"], ["holds 0 directions"], 1),
    ("non-numeric truncation", ["render", "{files}/odd-meta.safetensors"], ["records truncation 'abc'"], 1),
    ("unknown option", ["learn", "--stepz", "3"], ["No such option: --stepz", "hpdirs learn --help"], 2),
    ("bad type", ["render", "{run}", "--samples", "many"], ["Invalid value for '--samples'"], 2),
    ("missing argument", ["render"], ["Missing argument"], 2),
    ("unknown command", ["lern"], ["No such command 'lern'"], 2),
]


@pytest.mark.parametrize("case, argv, fragments, code", ABSURD, ids=[r[0] for r in ABSURD])
def test_absurd_values_and_usage_errors_are_one_line(world, case, argv, fragments, code, capfd, monkeypatch):
    before = snapshot(world["root"])
    args = [a.format(**world) for a in argv]
    if code == 2:  # typer's own usage errors, as the console script runs the app (file descriptors read)
        monkeypatch.chdir(world["root"])
        monkeypatch.setenv("COLUMNS", "200")
        capfd.readouterr()
        with pytest.raises(SystemExit) as stop:
            app(args, prog_name="hpdirs")
        returncode, stderr = stop.value.code, capfd.readouterr().err
    else:  # the library's errors: the same one line in-process (a fresh interpreter costs ~3 s each)
        result = runner.invoke(app, args, env={"COLUMNS": "200"})
        returncode, stderr = result.exit_code, result.stderr
    assert returncode == code, (case, stderr)
    one_error_line(stderr)
    for fragment in fragments:
        assert fragment in stderr, (case, stderr)
    assert snapshot(world["root"]) == before


def test_a_relative_weights_path_works_from_anywhere_and_other_weights_are_noticed(tiny_weights, tmp_path, monkeypatch):
    from direction_finder.generators.random_weights import save_random_biggan, tiny_config

    shutil.copytree(tiny_weights, tmp_path / "weights")
    monkeypatch.chdir(tmp_path)
    learned = runner.invoke(app, ["learn", "--weights", "weights", "--class", "207", "--steps", "2", "--batch-size", "1",
                                  "--eval-every", "0", "--out", "out", "--name", "rel"])
    assert learned.exit_code == 0, learned.stderr
    run = (tmp_path / "out" / "golden_retriever" / "rel").resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (elsewhere / "weights").mkdir()  # a folder of the same name here must not be picked up
    rendered = runner.invoke(app, ["render", str(run), "--frames", "2", "--samples", "1", "--directions", "0",
                                   "--format", "png"])
    assert rendered.exit_code == 0, rendered.stderr
    resumed = runner.invoke(app, ["learn", "--resume", str(run), "--steps", "3"])  # biggan-deep-32: not published
    assert resumed.exit_code == 0, resumed.stderr
    save_random_biggan(tmp_path / "weights", tiny_config(), seed=5)  # other weights behind the same folder
    result = runner.invoke(app, ["render", str(run), "--frames", "2", "--samples", "1", "--directions", "0"])
    assert result.exit_code == 1
    one_error_line(result.stderr)
    assert f"the weights in {tmp_path / 'weights'} are not the ones" in result.stderr
    explicit = runner.invoke(app, ["render", str(run), "--weights", str(tmp_path / "weights"), "--frames", "2",
                                   "--samples", "1", "--directions", "0", "--format", "png", "--out", "r2"])
    assert explicit.exit_code == 0 and "warning: the weights in" in explicit.stderr


def test_files_get_the_users_umask(world, tmp_path):
    commands = (["learn", *SYNTH, "--steps", "3", "--batch-size", "2", "--eval-every", "2", "--out", str(tmp_path),
                 "--name", "modes"],
                ["render", str(tmp_path / "synthetic" / "modes"), "--frames", "2", "--samples", "2", "--directions",
                 "0-1"],
                ["compare", str(tmp_path / "synthetic" / "modes"), "--samples", "2", "--no-gifs"])
    # the three commands in one process under umask 022 (one start of Python and torch, not three)
    script = ("import json, os, sys; os.umask(0o022); from hpdirs_cli.main import main\n"
              "for argv in json.loads(sys.argv[1]):\n"
              "    sys.argv = ['hpdirs', *argv]\n"
              "    try:\n        main()\n    except SystemExit as stop:\n        assert stop.code in (0, None), argv\n")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in tmp_path.rglob("*")}
    assert {m for p, m in modes.items() if (tmp_path / p).is_file()} == {"0o644"}, modes
    assert {m for p, m in modes.items() if (tmp_path / p).is_dir()} == {"0o755"}, modes


def test_running_out_of_memory_is_one_line_and_leaves_no_run(world, tmp_path):
    """A real allocation failure: the address space capped at 3 GiB (`ulimit -v`), a batch that needs more."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    process = subprocess.run([sys.executable, "-m", "hpdirs_cli", "learn", "--weights", str(world["tiny"]), "--class",
                              "207", "--steps", "1", "--batch-size", "65536", "--eval-every", "0", "--out",
                              str(tmp_path), "--name", "huge"], capture_output=True, text=True, timeout=120,
                             preexec_fn=cap)
    assert process.returncode == 1, process.stderr
    one_error_line(process.stderr)
    assert "not enough memory (an allocation of" in process.stderr and "lower --batch-size" in process.stderr
    assert not (tmp_path / "golden_retriever" / "huge").exists()

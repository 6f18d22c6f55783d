"""The CLI as a user runs it: the installed console script and in-process via CliRunner."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import SYNTH, invoke, runner
from tolerances import FLOAT32_EPS

from hpdirs_cli.main import app


def test_console_script_is_installed_and_prints_the_version():
    import direction_finder

    out = subprocess.run([sys.executable, "-m", "hpdirs_cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"hpdirs {direction_finder.__version__}"


def test_classes_lists_and_searches():
    result = runner.invoke(app, ["classes", "retriever"])
    assert result.exit_code == 0
    for name in ["golden retriever", "Labrador retriever", "n02099601"]:
        assert name in result.stdout
    assert "1,000 ImageNet classes" in runner.invoke(app, ["classes"]).stdout
    titles = runner.invoke(app, ["classes", "tabby"], env={"COLUMNS": "200"}).stdout.splitlines()
    assert titles[0].strip() == "1 ImageNet class"


def test_classes_without_a_match_is_one_line_on_stderr():
    result = runner.invoke(app, ["classes", "zzzz"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "error: no ImageNet class matches 'zzzz'; try a shorter query or `hpdirs classes`\n"


def test_library_never_imports_the_cli_libraries():
    code = "import sys, direction_finder, direction_finder.generators.biggan; print('typer' in sys.modules or 'rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_learn_end_to_end_on_a_tiny_biggan_folder(tiny_weights, tmp_path):
    import torch

    from direction_finder import load_directions

    result = runner.invoke(app, ["learn", "--weights", str(tiny_weights), "--class", "207", "--steps", "3",
                                 "--batch-size", "2", "--eval-samples", "2", "--out", str(tmp_path), "--name", "r"])
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "golden_retriever" / "r"
    assert sorted(p.name for p in run.iterdir()) == ["README.md", "checkpoint.pt", "config.json",
                                                     "directions.safetensors", "directions_best.safetensors",
                                                     "loss.csv", "loss.png"]
    d = load_directions(run)
    # Householder QR in float32: orthonormal to ~4 * z_dim * eps
    torch.testing.assert_close(d.matrix @ d.matrix.T, torch.eye(16), atol=4 * 16 * FLOAT32_EPS, rtol=0)
    assert (d.metadata["model"], d.metadata["class_index"], d.metadata["truncation"]) == ("biggan-deep-32", 207, 0.4)
    assert d.metadata["weights"] == str(tiny_weights) and d.metadata["config"]["steps"] == 3
    info = runner.invoke(app, ["info", str(run / "directions.safetensors")])
    assert info.exit_code == 0 and "golden retriever" in info.stdout and "hpdirs.directions/1" in info.stdout


def test_learn_offline_with_an_empty_cache_fails_cleanly():
    result = runner.invoke(app, ["learn", "--class", "207", "--offline", "--steps", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: offline and biggan-deep-128 is not in the cache")


def test_ctrl_c_prints_the_resume_command_and_resume_is_bitwise_identical(tmp_path):
    import os
    import signal

    import torch

    from direction_finder import load_directions

    args = ["learn", "--model", "synthetic:z_dim=8,factors=3,size=4", "--steps", "1200", "--batch-size", "2",
            "--eval-every", "200", "--checkpoint-every", "400", "--out", str(tmp_path)]
    process = subprocess.Popen([sys.executable, "-m", "hpdirs_cli", *args, "--name", "cut"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "COLUMNS": "200"})
    for line in process.stdout:  # wait until learning is under way
        if line.startswith("measured"):
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    run = tmp_path / "synthetic" / "cut"
    assert process.returncode == 130, err
    assert f"resume with: hpdirs learn --resume {run}" in err and "Traceback" not in err
    step = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < step < 1200
    resumed = runner.invoke(app, ["learn", "--resume", str(run)])
    assert resumed.exit_code == 0, resumed.stderr
    whole = runner.invoke(app, [*args, "--name", "whole"])
    assert whole.exit_code == 0
    assert torch.equal(load_directions(run).matrix, load_directions(tmp_path / "synthetic" / "whole").matrix)
    refused = runner.invoke(app, ["learn", "--resume", str(run), "--lr", "0.1"])
    assert refused.exit_code == 1 and "different config (lr: 0.01 -> 0.1)" in refused.stderr


def test_time_limit_option_parses_durations_and_refuses_nonsense(tmp_path):
    from direction_finder.evaluation.budget import parse_budget
    from direction_finder.validation import format_duration, parse_duration

    texts = ("90s", "30m", "30min", "2h", "45sec", "0.5m", "1.5 hours")
    assert [parse_duration("time_limit", t, days=1) for t in texts] == [90, 1800, 1800, 7200, 45, 30, 5400]
    assert [parse_budget(t).seconds for t in texts] == [90, 1800, 1800, 7200, 45, 30, 5400]
    # one reading of a bare number across commands: images in a budget, nothing in a time limit
    assert parse_budget("30").images == 30
    bare = runner.invoke(app, ["learn", "--model", "synthetic", "--time-limit", "30", "--out", str(tmp_path)])
    assert bare.exit_code == 1 and "--time-limit '30' has no unit; give one such as 90s, 30m or 2h" in bare.stderr
    assert [format_duration(s) for s in (12, 187, 3900)] == ["12s", "3m 07s", "1h 05m"]
    result = runner.invoke(app, ["learn", "--model", "synthetic", "--time-limit", "soon", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "--time-limit 'soon' is not a duration; give one such as 90s, 30m" in result.stderr
    stopped = runner.invoke(app, ["learn", "--model", "synthetic", "--steps", "100000000", "--time-limit", "1s",
                                  "--eval-every", "0", "--out", str(tmp_path), "--name", "t"])
    assert stopped.exit_code == 0, stopped.stderr
    from direction_finder import load_directions

    run = tmp_path / "synthetic" / "t"
    step = load_directions(run).metadata["step"]
    assert 0 < step < 100000000
    # what it says is true: the step reached, how to go on, and no best file that does not exist
    said = " ".join(stopped.stdout.split())
    assert f"stopped at step {step}/100000000: the time limit was reached" in said, said
    assert f"continue: hpdirs learn --resume {run}" in said and "done:" not in said
    assert not (run / "directions_best.safetensors").exists() and "directions_best" not in said
    assert "directions_best" not in (run / "README.md").read_text()


def test_recipes_preset_init_and_lr_and_explicit_options_win(tmp_path):
    import json

    def learned(*options: str) -> dict:
        name = f"r{len(list(tmp_path.glob('synthetic/*')))}"
        result = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=8,factors=4,size=8", "--steps", "2",
                                     "--eval-every", "0", "--out", str(tmp_path), "--name", name, *options])
        assert result.exit_code == 0, result.stderr
        return json.loads((tmp_path / "synthetic" / name / "config.json").read_text())["config"]

    assert (learned()["init"], learned()["lr"]) == ("random", 0.01)  # the default recipe: paper
    curvature = learned("--recipe", "curvature")
    assert (curvature["init"], curvature["lr"]) == ("curvature", 0.001)
    mixed = learned("--recipe", "curvature", "--lr", "0.02")
    assert (mixed["init"], mixed["lr"]) == ("curvature", 0.02)
    assert curvature["optimizer"] == "adam"  # a recipe that names no optimiser keeps the paper's


def test_the_sefa_recipe_starts_from_sefa_on_the_manifold(tiny_weights, tmp_path):
    import json

    result = runner.invoke(app, ["learn", "--weights", str(tiny_weights), "--class", "207", "--steps", "2",
                                 "--batch-size", "1", "--eval-every", "0", "--recipe", "sefa", "--out", str(tmp_path),
                                 "--name", "s"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    config = json.loads((tmp_path / "golden_retriever" / "s" / "config.json").read_text())["config"]
    assert (config["init"], config["lr"], config["optimizer"]) == ("sefa", 0.001, "riemannian")


@pytest.mark.parametrize("redirect", [">&-", "2>&-", "<&-"])
def test_a_standard_stream_closed_at_start_up_is_no_traceback(tmp_path, redirect):
    script = f"hpdirs classes retriever --json {redirect}; echo rc=$?; hpdirs classes zzzqqq {redirect}; echo rc=$?"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr
    assert out.stdout.count("rc=0") == 1 and out.stdout.count("rc=1") == 1, out.stdout


def test_json_to_a_full_device_is_one_line_and_a_failure():
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    for args in (["classes", "retriever", "--json"], ["classes", "retriever"]):
        with open("/dev/full", "w") as full:
            out = subprocess.run([sys.executable, "-m", "hpdirs_cli", *args], stdout=full, stderr=subprocess.PIPE,
                                 text=True, timeout=120)
        assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
        assert out.stderr.startswith("error: cannot write to stdout (No space left on device)")


def test_dry_run_resolves_everything_and_writes_nothing(tmp_path):
    result = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=8", "--steps", "50", "--eval-every", "20",
                                 "--batch-size", "4", "--recipe", "curvature", "--out", str(tmp_path), "--name", "d",
                                 "--dry-run", "--time-limit", "90m"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "curvature: --init curvature" in out and "device │ cpu" in out
    assert "time limit │ 1h 30m of learning time" in out and "compiled off" in out
    assert f"{tmp_path}/synthetic/d (new, not created)" in out
    # 50 steps x 4 samples x 2k images; 3 evaluations (20, 40, 50) x 16 samples x 2k; 2 x 8 x z_dim warm start
    assert "images to generate │ 1,120 (learning steps 800, held-out evaluations 192, warm start 128)" in out
    assert not list(tmp_path.iterdir())
    ran = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=8", "--steps", "2", "--out", str(tmp_path),
                              "--name", "d"])
    assert ran.exit_code == 0
    again = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=8", "--out", str(tmp_path), "--name", "d",
                                "--dry-run"])
    assert again.exit_code == 1 and "already exists" in again.stderr
    resumed = runner.invoke(app, ["learn", "--resume", str(tmp_path / "synthetic" / "d"), "--steps", "9",
                                  "--dry-run"], env={"COLUMNS": "200"})
    assert resumed.exit_code == 0 and "(resumed, not created)" in " ".join(resumed.stdout.split())
    from direction_finder import load_directions

    assert load_directions(tmp_path / "synthetic" / "d").metadata["step"] == 2


def test_a_signal_during_start_up_is_one_line_and_its_exit_code(tmp_path):
    """SIGTERM while the command line is still importing (torch takes seconds): handled from the
    first instant, not a silent death by the signal."""
    import signal
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "hpdirs_cli", "classes", "retriever"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    status = Path(f"/proc/{process.pid}/status")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until its SIGTERM handler is installed (SigCgt, bit 15)
        caught = [line for line in status.read_text().splitlines() if line.startswith("SigCgt:")]
        if caught and int(caught[0].split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            break
        time.sleep(0.001)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err == "error: interrupted by SIGTERM while starting; nothing was written\n", err


def test_a_signal_after_the_command_is_no_traceback(tmp_path):
    """A SIGTERM that lands while the interpreter cleans up after a finished command (here sent
    by an exit handler, so it always lands there) ends the process with 143 and no traceback."""
    import signal
    import subprocess
    import sys

    code = ("import atexit, os, signal, sys; atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM)); "
            "sys.argv = ['hpdirs', 'classes', 'retriever']; from hpdirs_cli.launch import main; main()")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "golden retriever" in done.stdout and done.stderr == "", done.stderr


def test_the_estimate_counts_steps_in_words_and_is_not_said_for_none(tmp_path):
    three = invoke(["learn", *SYNTH, "--steps", "3", "--eval-every", "0", "--out", tmp_path, "--name", "three"])
    assert three.exit_code == 0 and re.search(r"about \S+ more for 1 step\n", three.stdout), three.stdout
    two = invoke(["learn", *SYNTH, "--steps", "2", "--eval-every", "0", "--out", tmp_path, "--name", "two"])
    assert two.exit_code == 0 and "more for" not in two.stdout, two.stdout


def test_what_the_arguments_and_files_can_refuse_is_refused_before_any_output(tiny_weights, tmp_path):
    learned = invoke(["learn", "--weights", tiny_weights, "--class", "207", "--steps", "2", "--batch-size", "1",
                      "--eval-every", "0", "--out", tmp_path, "--name", "r"])  # fmt: skip
    assert learned.exit_code == 0, learned.stderr
    run = tmp_path / "golden_retriever" / "r"

    def hpdirs(*args):  # a process of its own: stdout exactly as a terminal or a log gets it
        return subprocess.run([sys.executable, "-m", "hpdirs_cli", *map(str, args)], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200"}, timeout=120)  # fmt: skip

    for layers in ("0-99", "3-1"):
        result = hpdirs("render", run, "--layers", layers, "--device", "cpu", "--offline")
        assert result.returncode == 1 and result.stdout == "", result.stdout  # no progress bar before the error
        assert result.stderr.startswith("error: --layers") and result.stderr.count("\n") == 1, result.stderr
    refused = hpdirs("learn", "--resume", run, "--lr", "0.1")
    assert refused.returncode == 1 and refused.stdout == "", refused.stdout  # no header, no step bar
    assert "different config (lr: 0.01 -> 0.1)" in refused.stderr


COMMAND_NAMES = ("learn", "render", "compare", "explore", "label", "info", "bench", "classes", "models",
                 "download", "completion", "doctor", "help")  # fmt: skip


def panel_rows(shown: str) -> dict[str, list[str]]:
    """--help's panels ("The method:", ...) and their lines."""
    panels: dict[str, list[str]] = {}
    for block in shown.split("\n\n"):
        head, *rows = block.splitlines()
        if head.endswith(":") and not head.startswith(" ") and rows and rows[0].startswith("  "):
            panels[head[:-1]] = rows
    return panels


def test_help_fits_80_columns_with_one_line_per_option_in_groups():
    """What a pipe gives (80 columns): nothing cut, nothing wrapped: an option is one line with
    its type, its summary and its default; the options sit in named groups."""
    for command in COMMAND_NAMES:
        shown = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"}).stdout
        assert max(map(len, shown.splitlines())) <= 80 and "…" not in shown, command
        for panel, rows in panel_rows(shown).items():
            if panel in ("Example", "Examples"):
                continue
            for row in rows:  # "  --name TYPE  Summary.  [default]": no continuation lines
                assert re.match(r"  (--|[A-Z_]+ )", row) and re.search(r"\.(  \[[^]]+\])?$", row), (command, row)
    learn = panel_rows(runner.invoke(app, ["learn", "--help"]).stdout)
    assert list(learn)[1:] == ["The method", "The budget", "The run folder", "Memory and speed", "The generator",
                           "Options"]  # fmt: skip
    assert "  --[no-]checkpoint-activations  Recompute activations in the backward.  [off]" in learn["Memory and speed"]


def test_every_option_in_full_is_in_hpdirs_help():
    """--help keeps a summary; `hpdirs help COMMAND` has each option's whole text, at 80 columns."""
    from hpdirs_cli.commands.learn import INIT_HELP
    from hpdirs_cli.helptext import split_help

    full = runner.invoke(app, ["help", "learn"], env={"COLUMNS": "80"})
    assert full.exit_code == 0 and max(map(len, full.stdout.splitlines())) <= 80
    words = " ".join(full.stdout.split())
    summary, details = split_help(INIT_HELP)
    assert f"--init TEXT [random] {summary} {details}" in words
    every = runner.invoke(app, ["help"]).stdout
    assert all(f"Usage: hpdirs {name} " in every for name in COMMAND_NAMES)
    wrong = runner.invoke(app, ["help", "lern"])
    assert wrong.exit_code == 1 and wrong.stderr.startswith("error: no command 'lern'; choose one of classes")


def test_the_top_level_help_gives_each_command_one_sentence_at_80_columns():
    shown = runner.invoke(app, ["--help"], env={"COLUMNS": "80"}).stdout
    rows = panel_rows(shown)["Commands"]
    assert max(map(len, shown.splitlines())) <= 80
    sentences = dict(row.strip().split("  ", 1) for row in rows)
    assert tuple(sentences) == ("classes", "completion", "models", "download", "learn", "info", "label", "render",
                                "compare", "explore", "bench", "doctor", "help")  # fmt: skip
    assert all(s.strip().endswith(".") and ". " not in s for s in sentences.values()), sentences


def test_the_dry_run_of_a_resume_expects_the_time_the_run_logged(tmp_path):
    from helpers import learned_run

    run = learned_run(tmp_path, "r", "--checkpoint-every", "2", steps=4)
    rows = [line.split(",") for line in (run / "loss.csv").read_text().splitlines()[1:]]
    rate = sorted(float(row[5]) for row in rows[1:])[len(rows[1:]) // 2]  # the median after the warm-up step
    shown = " ".join(invoke(["learn", "--resume", run, "--steps", "10", "--dry-run"], COLUMNS="200").stdout.split())
    from direction_finder.validation import format_duration

    expected = format_duration(6 * 2 / rate)  # 6 more steps x batch 2
    assert f"expected time │ about {expected} at the {rate:.3g} sample-steps/s this run logged" in shown, shown
    new = " ".join(invoke(["learn", *SYNTH, "--dry-run", "--out", tmp_path], COLUMNS="200").stdout.split())
    assert "expected time │ measured once it runs" in new

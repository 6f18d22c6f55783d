"""Machine-readable output: --json prints one JSON document on stdout, and every JSON file hpdirs
writes says its format."""

import json
import shutil

import pytest
from helpers import runner

from direction_finder.generators import weights as w
from hpdirs_cli.main import app


def doc(args):
    result = runner.invoke(app, [*args, "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # stdout is the document and nothing else


def test_info_classes_download_and_compare_print_one_json_document(tiny_weights, tmp_path):
    classes = doc(["classes", "retriever"])["classes"]
    assert {"index": 207, "wordnet_id": "n02099601", "names": ["golden retriever"]} in classes
    shutil.copytree(tiny_weights, w.cache_root() / "biggan-deep-256")
    downloaded = doc(["download", "--model", "biggan-deep-256"])
    assert downloaded["source"] == "cache" and downloaded["model"] == "biggan-deep-256"
    learned = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=6,factors=2,size=4", "--steps", "2",
                                  "--eval-every", "0", "--out", str(tmp_path), "--name", "j"])
    assert learned.exit_code == 0, learned.stderr
    run = tmp_path / "synthetic" / "j"
    info = doc(["info", str(run)])
    assert info["num_directions"] == 6 and info["metadata"]["step"] == 2 and info["labels"] == {}
    compared = doc(["compare", str(run), "--samples", "2", "--top", "2", "--baselines", "axes", "--no-gifs"])
    report = json.loads((run / "compare" / "report.json").read_text())
    for name, summary in compared["sets"].items():  # the numbers of the table are the report's
        assert summary["heldout_penalty"] == report["sets"][name]["heldout_penalty"]
        assert summary["D_R"] == report["sets"][name]["D_R"]
    rendered = runner.invoke(app, ["render", str(run), "--samples", "1", "--frames", "2"])
    assert rendered.exit_code == 0, rendered.stderr
    for path, kind in [(run / "config.json", "hpdirs.run/1"), (run / "render" / "render.json", "hpdirs.render/1"),
                       (run / "compare" / "report.json", "hpdirs.compare/2")]:
        assert json.loads(path.read_text())["format"] == kind


def test_bench_json_is_the_file(tiny_weights, tmp_path):
    out = tmp_path / "bench.json"
    printed = doc(["bench", "--weights", str(tiny_weights), "--steps", "1", "--batch-size", "1", "--no-render",
                   "--no-explore", "--no-compiled", "--layer", "none", "--device", "cpu", "--out", str(out)])
    assert printed == json.loads(out.read_text()) and printed["format"] == "hpdirs.bench/1"


def test_shell_completion_scripts_complete_commands_and_options():

    for shell, marker in [("bash", "complete -o default -F _hpdirs_completion hpdirs"), ("zsh", "#compdef hpdirs"),
                          ("fish", "complete --command hpdirs")]:
        result = runner.invoke(app, ["completion", shell])
        assert result.exit_code == 0 and marker in result.stdout, result.stdout
    bad = runner.invoke(app, ["completion", "tcsh"])
    assert bad.exit_code == 1 and "unknown shell 'tcsh'; choose bash, zsh, fish" in bad.stderr


@pytest.mark.slow  # ~9 s: three starts of the installed command from a real bash
def test_a_real_bash_completes_through_the_installed_command():
    import os
    import subprocess
    import sys
    from pathlib import Path

    # a real bash sources the script and asks the installed command, as a user's shell does
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    script = ('source <(hpdirs completion bash); COMP_WORDS=(hpdirs le); COMP_CWORD=1; _hpdirs_completion hpdirs;'
              ' echo "${COMPREPLY[@]}"; COMP_WORDS=(hpdirs render x --sam); COMP_CWORD=3;'
              ' _hpdirs_completion hpdirs; echo "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PATH": path})
    assert out.stdout.split("\n")[:2] == ["learn", "--samples"], (out.stdout, out.stderr)


def test_a_run_folder_explains_itself_in_its_readme(tmp_path):
    from direction_finder.artifacts.card import reproduce_command

    args = ["learn", "--model", "synthetic:z_dim=6,factors=2,size=4", "--steps", "4", "--eval-every", "2",
            "--eval-samples", "2", "--lr", "0.02", "--out", str(tmp_path), "--name", "card"]
    assert runner.invoke(app, args).exit_code == 0
    run = tmp_path / "synthetic" / "card"
    card = (run / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: hpdirs\ntags: [hpdirs, hessian-penalty, gan, latent-directions")
    assert "- steps done: 4 of 4" in card and "held-out penalty: " in card and "not measured" not in card
    assert "| `lr` | 0.02 |" in card and "render/index.html" not in card
    body = json.loads((run / "config.json").read_text())
    command = reproduce_command(body["config"], body["generator"])
    assert command in card and "--lr 0.02" in command and "--init random" in command
    # the command in the card starts the same run again: the same directions, bit for bit
    again = command.replace(" \\\n    ", " ").split()[2:] + ["--out", str(tmp_path / "again"), "--name", "card"]
    assert runner.invoke(app, ["learn", *again]).exit_code == 0
    from direction_finder import load_directions

    first, second = load_directions(run), load_directions(tmp_path / "again" / "synthetic" / "card")
    assert (first.matrix == second.matrix).all()
    assert runner.invoke(app, ["render", str(run), "--samples", "1", "--frames", "2"]).exit_code == 0
    assert "- [render](render/index.html)" in (run / "README.md").read_text()
    assert "## Named directions" not in (run / "README.md").read_text()
    assert runner.invoke(app, ["label", str(run), "1", "pose", "--layers", "0-1"]).exit_code == 0
    assert runner.invoke(app, ["render", str(run), "--samples", "1", "--frames", "2"]).exit_code == 0
    assert "## Named directions\n\n- 1: pose (layers 0-1)\n" in (run / "README.md").read_text()
    assert "pyproject" not in card and "pypi.org" not in card  # links only to what exists

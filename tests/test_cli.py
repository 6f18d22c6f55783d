"""The CLI as a user runs it: the installed console script and in-process via CliRunner."""

import subprocess
import sys

from typer.testing import CliRunner

from hpdirs_cli.main import app

runner = CliRunner()


def test_console_script_is_installed_and_prints_the_version():
    import direction_finder

    out = subprocess.run([sys.executable, "-m", "hpdirs_cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"hpdirs {direction_finder.__version__}"


def test_classes_lists_and_searches():
    result = runner.invoke(app, ["classes", "retriever"])
    assert result.exit_code == 0
    for name in ["golden retriever", "Labrador retriever", "n02099601"]:
        assert name in result.stdout
    assert "1000 ImageNet classes" in runner.invoke(app, ["classes"]).stdout


def test_classes_without_a_match_is_one_line_on_stderr():
    result = runner.invoke(app, ["classes", "zzzz"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "error: no ImageNet class matches 'zzzz'; try a shorter query or `hpdirs classes`\n"


def test_library_never_imports_the_cli_libraries():
    code = "import sys, direction_finder, direction_finder.generators.biggan; print('typer' in sys.modules or 'rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"

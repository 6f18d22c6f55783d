"""What the test files share: the one in-process runner of the command line and the one in a
process of its own, a small learning run made through the command line, generators that count
what they are asked for, and a pickle that would run code. `from helpers import invoke, ...`."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from direction_finder.generators.synthetic import SyntheticGenerator
from hpdirs_cli.main import app

runner = CliRunner()  # typer's in-process runner: stdout and stderr apart, exit codes as the shell sees them


def invoke(args, **env):
    """`hpdirs ARGS` in this process, with wide columns (a one-line message stays one line)."""
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **env})


SYNTH_MODEL = "synthetic:z_dim=8,factors=3,size=4"
SYNTH = ["--model", SYNTH_MODEL]  # a model that learns in milliseconds


def learn_args(out, name, *extra, model=SYNTH_MODEL, steps=4, batch_size=2, eval_every=0):
    """`hpdirs learn` of a small run into OUT/<class>/NAME, with `extra` options after."""
    return ["learn", "--model", model, "--steps", steps, "--batch-size", batch_size, "--eval-every", eval_every,
            "--out", out, "--name", name, *extra]  # fmt: skip


def learned_run(out, name="r", *extra, **settings):
    """A small run made through the command line (learn_args); its folder."""
    result = invoke(learn_args(out, name, *extra, **settings))
    assert result.exit_code == 0, result.stderr
    return next(Path(out).glob(f"*/{name}"))


def learn_synthetic(tmp_path, name, extra=()):
    """A run of 300 steps on the synthetic model, learned through the CLI: OUT/synthetic/NAME."""
    result = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=8,factors=4,size=8", "--steps", "300",
                                 "--batch-size", "8", "--eval-every", "0", "--out", str(tmp_path), "--name", name,
                                 *extra])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return next(tmp_path.glob(f"*/{name}"))


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` but for about `leave` bytes, with a file that can be removed to free space."""
    free = shutil.disk_usage(disk).free
    filler = disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def cli_process(*args, **kwargs):
    """`hpdirs ARGS` in a process of its own (signals, limits, exit codes as a shell sees them)."""
    return subprocess.Popen([sys.executable, "-m", "hpdirs_cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"}, **kwargs)


def one_error_line(err: str) -> None:
    """stderr is one `error:` line and no traceback."""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err


class Counting(SyntheticGenerator):
    """A synthetic generator that records how many images each call asks for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    @property
    def images(self):
        return sum(self.calls)

    def __call__(self, z):
        self.calls.append(z.shape[0])
        return super().__call__(z)


class Exploit:
    """Unpickled, it would write PWNED in the working folder: what a hostile file hides."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))

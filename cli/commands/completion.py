"""`hpdirs completion`: the shell's completion script. Completions themselves are answered by
main.main() when the shell sets COMPLETE_VAR; neither imports torch."""

from __future__ import annotations

from typing import Annotated

import typer

from hpdirs_cli.console import console, fail

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_HPDIRS_COMPLETE"  # the variable the shell sets when it asks hpdirs for completions
Shell = Annotated[str, typer.Argument(help="bash, zsh or fish.\nNever guessed from the environment.", metavar="SHELL")]


def completion(shell: Shell) -> None:
    """Print the shell completion script.

    Load it from your shell's start-up file (zsh: ~/.zshrc; fish: ~/.config/fish/completions/hpdirs.fish).

    $ hpdirs completion bash >> ~/.bashrc
    """
    from typer._completion_shared import get_completion_script

    if shell not in SHELLS:
        raise fail(f"unknown shell {shell!r}; choose {', '.join(SHELLS)}")
    console.file.write(get_completion_script(prog_name="hpdirs", complete_var=COMPLETE_VAR, shell=shell))
    console.file.flush()

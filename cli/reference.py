"""The documentation's command references, made from the command line itself:
`python -m hpdirs_cli.reference docs/generated` writes one Markdown file per command (what
`make reference` runs; a test fails while a committed file differs from what this makes)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer.main

from hpdirs_cli.helptext import reference_markdown
from hpdirs_cli.main import app

GENERATED_NOTE = "<!-- made by `make reference` from the command line's own help; edit the help, not this file -->\n"


def pages() -> dict[str, str]:
    """command name -> its reference page's Markdown."""
    group = typer.main.get_command(app)
    root = typer.Context(group, info_name="hpdirs")
    made = {}
    for name in group.list_commands(root):  # type: ignore[attr-defined]
        command = group.get_command(root, name)  # type: ignore[attr-defined]
        made[name] = GENERATED_NOTE + reference_markdown(command, typer.Context(command, info_name=name, parent=root))
    return made


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hpdirs_cli.reference FOLDER", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (folder / f"{name}.md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

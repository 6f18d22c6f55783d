"""`hpdirs doctor`: what a bug report needs about this machine, in one command."""

from __future__ import annotations

from rich.table import Table

from hpdirs_cli.console import console, emit_json, shown
from hpdirs_cli.options import Json


def doctor(json_out: Json = False) -> None:
    """Print what a bug report needs about this machine.

    Versions, torch's build and the devices it sees, the cache and what it holds, the compiler --compile uses.

    $ hpdirs doctor --json > hpdirs-system.json
    """
    import direction_finder
    from direction_finder.measuring.system import system_report

    report = {"hpdirs": direction_finder.__version__, **system_report()}
    if json_out:
        emit_json(report)
        return
    table = Table("", "", title="hpdirs doctor", show_header=False)
    for key, value in report.items():
        shown_value = ", ".join(value) if isinstance(value, list) else value
        if isinstance(value, dict):
            shown_value = ", ".join(value) or "none"
        table.add_row(key.replace("_", " "), shown("none" if shown_value in (None, "", []) else shown_value))
    console.print(table)

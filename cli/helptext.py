"""What `--help` and `hpdirs help` show: one line per option, grouped, in 80 columns; and each
command's full reference, which the documentation's command pages are made from.

An option's help text is its summary (the first line: what --help shows) and, after a newline,
the details (what `hpdirs help COMMAND` and the docs add). A command's docstring is its summary
line, then paragraphs; a line that starts with `$ ` is an example command, shown as typed.
Everything here is light (no torch, no rich): --help must answer at once.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

WIDTH = 80  # what a pipe gets; lines are laid out for it on any terminal
OPTIONS_PANEL = "Options"
TYPES = {"<int>": "INT", "<float>": "FLOAT", "<path>": "PATH", "<str>": "TEXT", "<list[str]>": "TEXT"}


@dataclass(frozen=True)
class Entry:
    """One argument or option as the help shows it."""

    names: str  # "--steps INT", "--[no-]align", "RUN_OR_FILE"
    summary: str
    details: str
    default: str  # "" where none is shown
    panel: str
    repeatable: bool = False


def split_help(text: str | None) -> tuple[str, str]:
    """(summary, details) of a help text: its first line, and the rest joined into one paragraph."""
    first, _, rest = (text or "").strip().partition("\n")
    return first.strip(), " ".join(rest.split())


def _metavar(param: Any, ctx: Any) -> str:
    if getattr(param, "is_flag", False):
        return ""
    if param.metavar is not None:
        return str(param.metavar).strip("[]")
    return TYPES.get(param.display_type_rich(ctx=ctx), "VALUE")


def _default(param: Any) -> str:
    shown = getattr(param, "show_default", False)
    if isinstance(shown, str):
        return shown
    if getattr(param, "required", False):
        return "required"
    if not shown or param.default is None:
        return ""
    if isinstance(param.default, bool):
        return "on" if param.default else "off"
    return str(param.default)


def _names(param: Any, ctx: Any) -> str:
    if param.param_type_name == "argument":
        return _metavar(param, ctx)
    name = param.opts[0]
    if param.secondary_opts == ["--no-" + name[2:]]:
        name = "--[no-]" + name[2:]
    elif param.secondary_opts:
        name = "/".join([*param.opts, *param.secondary_opts])
    metavar = _metavar(param, ctx)
    return f"{name} {metavar}" if metavar else name


def entries(command: Any, ctx: Any) -> list[Entry]:
    """The command's arguments and options, in their panels' order (arguments first)."""
    found = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        summary, details = split_help(param.help)
        panel = "Arguments" if param.param_type_name == "argument" else (param.rich_help_panel or OPTIONS_PANEL)
        found.append(Entry(_names(param, ctx), summary, details, _default(param), panel,
                           bool(getattr(param, "multiple", False))))  # fmt: skip
    order = {"Arguments": 0}
    for entry in found:
        order.setdefault(entry.panel, len(order))
    return sorted(found, key=lambda e: order[e.panel])  # stable: each panel keeps its options' order


def panels(found: list[Entry]) -> dict[str, list[Entry]]:
    grouped: dict[str, list[Entry]] = {}
    for entry in found:
        grouped.setdefault(entry.panel, []).append(entry)
    return grouped


def usage(command: Any, ctx: Any) -> str:
    pieces = [ctx.command_path]
    if any(p.param_type_name == "option" for p in command.get_params(ctx)):
        pieces.append("[OPTIONS]")
    if hasattr(command, "commands"):
        pieces.append("COMMAND [ARGS]...")
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            name = _metavar(param, ctx)
            pieces.append(name if param.required else f"[{name}]")
    return " ".join(pieces)


@dataclass(frozen=True)
class Description:
    summary: str
    paragraphs: list[str]  # prose, one string each
    examples: list[str]  # commands as typed, without the `$ `


def describe(text: str | None) -> Description:
    """A command's docstring as its summary line, prose paragraphs and example commands."""
    blocks = [b.strip() for b in inspect.cleandoc(text or "").split("\n\n") if b.strip()]
    summary = " ".join(blocks[0].split()) if blocks else ""
    paragraphs, examples = [], []
    for block in blocks[1:]:
        prose = []
        for line in block.splitlines():
            if line.strip().startswith("$ "):
                examples.append(line.strip()[2:])
            else:
                prose.append(line.strip())
        if prose:
            paragraphs.append(" ".join(prose))
    return Description(summary, paragraphs, examples)


def command_lines(words: str, width: int, indent: str = "  ") -> list[str]:
    """A shell command in lines of at most `width`, continued with ` \\` so it still pastes whole."""
    lines: list[str] = []
    units: list[str] = []
    line = indent
    for word in words.split(" "):  # an option and its value stay on one line
        if units and units[-1].startswith("--") and " " not in units[-1] and not word.startswith("-"):
            units[-1] += " " + word
        else:
            units.append(word)
    for word in units:
        if line.strip() and len(line) + 1 + len(word) + 2 > width:
            lines.append(line + " \\")
            line = indent + "  " + word
        else:
            line = line + (" " if line.strip() else "") + word
    return [*lines, line]


def _rows(found: list[Entry], width: int, full: bool) -> list[str]:
    column = max(len(e.names) for e in found) + 2
    lines = []
    for entry in found:
        default = f"  [{entry.default}]" if entry.default else ""
        repeat = " (repeatable)" if entry.repeatable and full else ""
        if not full:
            lines.append(f"  {entry.names:<{column}}{entry.summary}{default}".rstrip())
            continue
        lines.append(f"  {entry.names}{default}")
        text = " ".join(part for part in (entry.summary + repeat, entry.details) if part)
        lines += textwrap.wrap(text, width, initial_indent="      ", subsequent_indent="      ",
                               break_on_hyphens=False, break_long_words=False)  # fmt: skip
    return lines


def help_text(command: Any, ctx: Any, full: bool = False) -> str:
    """`--help` (one line per option) or, with `full`, the whole reference of a command or group."""
    width = WIDTH
    about = describe(command.help)
    lines = [f"Usage: {usage(command, ctx)}", ""]
    if about.summary:
        lines += [*textwrap.wrap(about.summary, width, break_on_hyphens=False), ""]
    for paragraph in about.paragraphs:
        lines += [*textwrap.wrap(paragraph, width, break_on_hyphens=False), ""]
    if about.examples:
        lines.append("Examples:" if len(about.examples) > 1 else "Example:")
        for example in about.examples:
            lines += command_lines(example, width)
        lines.append("")
    if hasattr(command, "commands"):
        names = command.list_commands(ctx)
        column = max(map(len, names)) + 2
        lines.append("Commands:")
        for name in names:
            sub = command.get_command(ctx, name)
            lines.append(f"  {name:<{column}}{describe(sub.help).summary}")
        lines.append("")
    for panel, found in panels(entries(command, ctx)).items():
        lines += [f"{panel}:", *_rows(found, width, full), ""]
    if not full and not hasattr(command, "commands") and ctx.info_name != "help":
        lines.append(f"Every option in full: hpdirs help {ctx.info_name}")
    elif hasattr(command, "commands"):
        lines.append("A command's options: hpdirs COMMAND --help; in full: hpdirs help COMMAND")
    return "\n".join(lines).rstrip() + "\n"


def reference_markdown(command: Any, ctx: Any) -> str:
    """A command's usage, examples and every option in full, as the Markdown its documentation
    page includes (its own narrative above it)."""
    about = describe(command.help)
    out = [about.summary, "", "```text", f"Usage: {usage(command, ctx)}", "```", ""]
    if about.examples:
        out += ["```bash", *about.examples, "```", ""]
    out += [paragraph + "\n" for paragraph in about.paragraphs]
    for panel, found in panels(entries(command, ctx)).items():
        out += [f"### {panel}", ""]
        for e in found:
            default = f" (default: {e.default})" if e.default else ""
            repeat = " Repeatable." if e.repeatable else ""
            text = " ".join(part for part in (e.summary, e.details) if part)
            out.append(f"- **`{e.names}`**{default}: {_markdown(text)}{repeat}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _markdown(text: str) -> str:
    """Help text as Markdown prose: what Markdown would read as markup (`<`, `*`, `_`) kept as
    text, outside the `code` spans, which show it as it is."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # the even parts lie outside the spans
        parts[i] = parts[i].replace("\\", "\\\\").replace("<", "&lt;").replace("*", "\\*").replace("_", "\\_")
    return "`".join(parts)

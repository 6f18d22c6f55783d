"""How the command line talks: stdout and stderr that survive a closed pipe, one-line errors with
the library's setting names shown as this CLI's flags, one-line warnings, progress bars."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, cast

import typer
import typer.core
from rich.console import Console
from rich.text import Text

from direction_finder.errors import HpdirsError, HpdirsNote, HpdirsWarning, RunStopped
from hpdirs_cli.helptext import help_text, split_help

# Library settings whose flag is not simply --name-with-dashes.
FLAG_NAMES = {
    "out_dir": "--out",
    "out_root": "--out",
    "class_": "--class",
    "formats": "--format",
    "batch_sizes": "--batch-size",
    "model_args": "--model-arg",
}


def flags(message: str) -> str:
    """The library names settings in backquotes (`batch_size`); show each as its flag (--batch-size)."""
    return re.sub(r"`([a-z_]+)`", lambda m: FLAG_NAMES.get(m[1], "--" + m[1].replace("_", "-")), message)


class OutputLost(OSError):
    """stdout could not be written (a full device, an I/O error): what the user asked to see is
    lost, so the command fails with one line on stderr instead of claiming success."""


class _ReaderGone(io.TextIOBase):
    """sys.stdout or sys.stderr, looked up at each write, that goes quiet instead of failing once
    its reader has gone (`hpdirs learn ... | head`): a closed pipe must not end a run that is
    writing its results to files. The descriptor is pointed at /dev/null so that the
    interpreter's own flush at exit does not fail either. A stream closed before start-up
    (`>&-`, where Python sets sys.stdout to None) is quiet from the start. Any other failure to
    write stdout (ENOSPC, EIO) is an OutputLost, once."""

    def __init__(self, name: str) -> None:
        self.name, self.gone = name, False

    @property
    def stream(self) -> Any:
        stream = getattr(sys, self.name)
        if stream is None:  # closed when hpdirs started: nothing can be shown there
            self.gone = True
            return io.StringIO()
        return stream

    def _quiet(self) -> None:
        self.gone = True
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def _failed(self, exc: OSError) -> None:
        self._quiet()
        if not isinstance(exc, BrokenPipeError) and self.name == "stdout":
            raise OutputLost(exc.errno, f"cannot write to stdout ({exc.strerror or exc})") from None

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except OSError as exc:
                self._failed(exc)
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except OSError as exc:
                self._failed(exc)

    def isatty(self) -> bool:
        return not self.gone and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"


class Command(typer.core.TyperCommand):
    """Every command: --help in 80 columns, one line per option (helptext); shell completion
    shows an option's summary line."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(help_text(self, ctx))

    def shell_complete(self, ctx: Any, incomplete: str) -> list[Any]:
        items = super().shell_complete(ctx, incomplete)
        for item in items:
            item.help = split_help(item.help)[0] or None
        return items


class OneLineErrors(typer.core.TyperGroup):
    """Typer's own usage errors (unknown option, bad type, missing argument) as one `error:`
    line and exit code 2, like every other error of hpdirs, instead of a boxed panel; --help in
    80 columns, a line per command."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(help_text(self, ctx))

    def main(self, *args: Any, **kwargs: Any) -> Any:
        standalone = kwargs.get("standalone_mode", True)
        kwargs["standalone_mode"] = False  # errors come back here, to be printed as one line
        if not standalone:
            return super().main(*args, **kwargs)
        try:
            code = super().main(*args, **kwargs)
        except typer.Abort:
            fail("aborted")
            sys.exit(1)
        except OutputLost as exc:
            fail(f"{exc.strerror}; the output is lost (free space, or send it elsewhere)")
            sys.exit(1)
        except typer.TyperException as exc:  # click's UsageError and friends, bundled by typer
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            command = getattr(getattr(exc, "ctx", None), "command_path", "hpdirs")
            fail(f"{' '.join(message.split())} (see `{command} --help`)")
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(code if isinstance(code, int) else 0)


# rich asks for an IO[str]; a text stream that writes and flushes is all it uses of one. No rich
# markup is read from any string printed: they hold paths, names and metadata, where `[/bold]`
# is text (styles are given as Text instead).
console = Console(file=cast(IO[str], _ReaderGone("stdout")), markup=False)
err_console = Console(file=cast(IO[str], _ReaderGone("stderr")), markup=False)


def shown(value: object) -> Text:
    """Text that came from a file, a run or the command line, to show and nothing else:
    characters that are not printable (an escape sequence that would clear or retitle the
    terminal) appear as escapes."""
    return Text("".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value)))


def say(*parts: object) -> None:
    """One line on stdout of plain text (see shown)."""
    console.print(shown("".join(map(str, parts))), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error on stderr and return the Exit to raise."""
    err_console.print(Text("error: ", style="bold red") + shown(message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """hpdirs' own warnings as one line; a library's (torch, PIL, ...) are for developers and
    shown only with HPDIRS_DEBUG=1."""
    if issubclass(category, HpdirsWarning):
        kind = Text("note: ", style="cyan") if issubclass(category, HpdirsNote) else Text("warning: ", style="yellow")
        err_console.print(kind + shown(flags(str(message))), highlight=False, soft_wrap=True)
    elif os.environ.get("HPDIRS_DEBUG"):
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user-facing errors into one line on stderr and a non-zero exit."""
    previous = warnings.showwarning
    warnings.showwarning = show_warning
    try:
        yield
    except RunStopped as exc:  # learning stopped: say how to continue, if it can be continued
        resume = f"; resume with: hpdirs learn --resume {exc.run_dir}" if exc.resumable else ""
        raise fail(flags(str(exc)) + resume, 128 + exc.signum if exc.signum else 1) from None
    except HpdirsError as exc:
        raise fail(flags(str(exc))) from None
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        raise fail(
            f"interrupted by {signal.Signals(signum).name}; files are written whole or not at all, "
            "so nothing partial was left",
            128 + signum,
        ) from None
    except MemoryError:
        raise fail("not enough memory; lower --batch-size (or --samples, --frames)") from None
    except RuntimeError as exc:  # torch's allocators say so in a RuntimeError (OutOfMemoryError on CUDA)
        text = str(exc)
        if isinstance(exc, _torch_oom()) or "allocate" in text or "out of memory" in text:
            asked = re.search(r"tried to allocate (\d+(?:\.\d+)?) ?(bytes|[KMG]i?B)", text)
            what = f"an allocation of {asked.group(1)} {asked.group(2)} failed" if asked else "an allocation failed"
            raise fail(f"not enough memory ({what}); lower --batch-size (or --samples, --frames)") from None
        raise
    except OutputLost:
        raise  # stdout itself: said once, by OneLineErrors
    except OSError as exc:  # the environment (disk full, permissions), not a bug
        where = f" ({exc.filename})" if exc.filename else ""
        raise fail(f"{exc.strerror or exc}{where}; free space or fix permissions, or choose another --out") from None
    finally:
        warnings.showwarning = previous  # main() keeps its filter for the whole process


def _torch_oom() -> type:
    import torch

    return getattr(torch, "OutOfMemoryError", MemoryError)


def _terminate(signum: int, frame: Any) -> None:
    from direction_finder.errors import Terminated

    raise Terminated(signum)


def hold_standard_descriptors() -> None:
    """Put /dev/null on a standard descriptor (0, 1, 2) that was closed at start-up: otherwise the
    next file hpdirs opens would get that number, and anything writing to stdout or stderr
    below Python (torch's C++ warnings) would write into it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)


def deliver_termination_as_interruption() -> None:
    """SIGTERM (what a scheduler sends) and SIGHUP (a closed terminal) arrive as an interruption,
    exactly like Ctrl-C: `learn` saves the last completed step and names the resume command,
    `render` and `compare` remove their temp files; the exit code is 128 + the signal."""
    for kind in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(kind, _terminate)
    warnings.showwarning = show_warning


def emit_json(document: Any) -> None:
    """One JSON document on stdout: no colours, no markup; infinities as strings, as in the files."""
    import json
    import math

    def plain(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return "inf" if value > 0 else "-inf" if value < 0 else "nan"
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    console.file.write(json.dumps(plain(document), indent=2) + "\n")
    console.file.flush()

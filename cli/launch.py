"""The `hpdirs` command's entry point, light on purpose: it handles termination signals before the
command line's heavy imports (torch takes seconds), so a SIGTERM, SIGHUP or Ctrl-C during start-up
ends the process with one line and exit code 128 + the signal, never silently or with a traceback.
Nothing is written before those imports are done, so nothing can be left half-written."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


class _StartUpInterrupted(KeyboardInterrupt):
    """errors.Terminated before the library is imported: importing it (direction_finder) is the
    heavy part this module runs ahead of."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: Any) -> None:
    raise _StartUpInterrupted(signum)


def _exit_now(signum: int, frame: Any) -> None:
    """After the command: what is left is the interpreter's own cleanup (torch's finalisers), which
    a signal must not turn into an 'Exception ignored' traceback. Output is flushed; every file is
    already whole."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(128 + signum)


def main() -> None:
    """Install the signal handlers, import the command line, run it."""
    try:  # a signal may land while the second handler is being installed: inside, it is one line too
        for kind in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(kind, _interrupt)
        from hpdirs_cli.main import main as run
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        sys.stderr.write(f"error: interrupted by {signal.Signals(signum).name} while starting; nothing was written\n")
        sys.exit(128 + signum)
    try:
        run()
    finally:
        for kind in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(kind, _exit_now)

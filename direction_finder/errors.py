"""Errors a user can act on. Their messages are one line: what was wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class HpdirsError(Exception):
    """Base of every error the CLI prints as a one-line message instead of a traceback."""


class UsageError(HpdirsError, ValueError):
    """A setting out of range or a name that does not resolve."""


class WeightsError(HpdirsError):
    """Generator weights that cannot be found, fetched or loaded."""


class DirectionsFileError(HpdirsError):
    """A directions file or checkpoint that is missing, damaged or not ours."""


class RunStopped(HpdirsError):
    """Learning stopped before its last step. `run_dir` holds what was saved; `resumable` says
    whether continuing it can succeed; `signum` is the signal that stopped it, if one did."""

    def __init__(
        self, message: str, run_dir: Path | None = None, resumable: bool = False, signum: int | None = None
    ) -> None:
        super().__init__(message)
        self.run_dir, self.resumable, self.signum = run_dir, resumable and run_dir is not None, signum


class HpdirsWarning(UserWarning):
    """Something the user should know, that does not stop the command (printed as one line)."""


class HpdirsNote(HpdirsWarning):
    """A choice the library made for the user (a layout that fits the memory), printed as one line."""


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM from a scheduler, SIGHUP from a closed terminal) delivered
    as an interruption, so that it runs every cleanup Ctrl-C runs: the checkpoint of the last
    completed step, temp files removed, the run's lock released."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

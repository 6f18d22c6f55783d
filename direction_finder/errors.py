"""Errors a user can act on. Their messages are one line: what was wrong and what to do."""

from __future__ import annotations


class HpdirsError(Exception):
    """Base of every error the CLI prints as a one-line message instead of a traceback."""


class UsageError(HpdirsError, ValueError):
    """A setting out of range or a name that does not resolve."""


class WeightsError(HpdirsError):
    """Generator weights that cannot be found, fetched or loaded."""


class DirectionsFileError(HpdirsError):
    """A directions file or checkpoint that is missing, damaged or not ours."""


class HpdirsWarning(UserWarning):
    """Something the user should know, that does not stop the command (printed as one line)."""


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM from a scheduler, SIGHUP from a closed terminal) delivered
    as an interruption, so that it runs every cleanup Ctrl-C runs: the checkpoint of the last
    completed step, temp files removed, the run's lock released."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

"""Everything about a run folder: its name, its lock, its files, its checkpoint, reading it back,
and opening a directions file together with the generator it was learned with.

A run folder (OUT/<class>/<run>/) holds config.json (settings, generator, versions), loss.csv and
loss.png (the log), directions.safetensors (last), directions_best.safetensors (best by
held-out penalty) and checkpoint.pt (what a resume needs). Every write is atomic.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from direction_finder.artifacts.card import log_limit, read_run_json, write_run_card
from direction_finder.artifacts.directions import (
    LAST_NAME,
    Directions,
    load_directions,
    resolve_directions_file,
)
from direction_finder.artifacts.plot import loss_curve
from direction_finder.config import LearnConfig
from direction_finder.errors import DirectionsFileError, HpdirsError, HpdirsWarning, UsageError
from direction_finder.files import UnfitFile, atomic_write, read_capped, write_text_atomic
from direction_finder.generators.base import describe
from direction_finder.generators.choice import GeneratorChoice
from direction_finder.generators.weights import ProgressCallback
from direction_finder.validation import plain

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

BEST_NAME = "directions_best.safetensors"
LOSS_NAME = "loss.csv"
CONFIG_NAME = "config.json"
CURVE_NAME = "loss.png"
LOCK_NAME = ".lock"
RUN_FORMAT = "hpdirs.run/1"  # config.json of a run folder
PLUGIN_FIELDS = ("model_args", "output_range")
LOG_FIELDS = ["step", "loss", "smoothed_loss", "heldout", "elapsed_s", "sample_steps_per_s"]


# --- naming and reading back ----------------------------------------------------------------


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(f"`name` {name!r} is not a valid folder name")


def _run_names(parent: Path, name: str | None) -> list[Path]:
    """The folders a new run may take, in order: the name given (only it), else the UTC time,
    then the time suffixed -2, -3, ... on a clash. One rule for the dry run and the run."""
    if name is not None:
        _check_name(name)
        return [parent / name]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return [parent / (stamp if n == 1 else f"{stamp}-{n}") for n in range(1, 1000)]


def _taken(candidates: list[Path], named: bool) -> UsageError:
    """The error when every candidate of _run_names is taken."""
    first = candidates[0]
    if named:
        return UsageError(f"run {first} already exists; choose another `name`, or `resume` {first}")
    return UsageError(f"too many runs named {first.name} in {first.parent}")


def free_run_dir(out_root: str | os.PathLike, class_slug: str, name: str | None = None) -> Path:
    """The folder new_run_dir would make now, made by nobody (`hpdirs learn --dry-run`)."""
    candidates = _run_names(Path(out_root) / class_slug, name)
    free = next((path for path in candidates if not path.exists()), None)
    if free is None:
        raise _taken(candidates, name is not None)
    return free


def new_run_dir(out_root: str | os.PathLike, class_slug: str, name: str | None = None) -> Path:
    """OUT/<class>/<run>/, created exclusively: two runs never share a folder.

    Without a name, the run is named by the UTC time (suffixed -2, -3, ... on a clash).
    """
    parent = Path(out_root) / class_slug
    candidates = _run_names(parent, name)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {parent} ({exc.strerror}); choose another `out_dir`") from None
    for path in candidates:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise UsageError(f"cannot create {path} ({exc.strerror}); choose another `out_dir`") from None
    raise _taken(candidates, name is not None)


def logged_rate(run_dir: str | os.PathLike, steps: int) -> tuple[int, float] | None:
    """(the last step, the median sample-steps/s) a run's loss.csv records, its first step (a
    warm-up) left out; None where it records none or cannot be read (no estimate then)."""
    try:
        text = read_capped(Path(run_dir) / LOSS_NAME, log_limit(steps), LOSS_NAME).decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text)))
        rates = sorted(r for r in (float(row["sample_steps_per_s"]) for row in rows[1:]) if r > 0)
        return (int(rows[-1]["step"]), rates[len(rates) // 2]) if rates else None
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, csv.Error):
        return None


def read_run(run_dir: str | os.PathLike) -> tuple[LearnConfig, dict[str, Any]]:
    """The config and generator description a run folder was started with (its config.json)."""
    path = Path(run_dir) / CONFIG_NAME
    if not Path(run_dir).is_dir():
        raise UsageError(f"`resume` {run_dir}: no such run folder")
    try:
        body = read_run_json(path)
        return LearnConfig.from_dict(body["config"]), dict(body["generator"])
    except UsageError as exc:  # a hand-edited value out of range
        raise DirectionsFileError(
            f"{path} is damaged ({plain(str(exc))}); restore it (the run's checkpoint has "
            "the original settings) or start a new run"
        ) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = " ".join(str(exc).split())[:160]
        raise DirectionsFileError(
            f"{path} is missing or damaged ({type(exc).__name__}: {detail}); cannot resume this run"
        ) from None


def remove_unfinished(run_dir: Path) -> None:
    """Remove the files a run that never reached its first checkpoint wrote, and its folder."""
    for name in (CONFIG_NAME, LOSS_NAME, CURVE_NAME, LAST_NAME, BEST_NAME, LOCK_NAME, "README.md"):
        (run_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # something else is in it: leave it
        run_dir.rmdir()


# --- one writer, and the run's files ----------------------------------------------------------


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One writer per run folder: a second process gets a clear error instead of interleaving."""
    lock = run_dir / LOCK_NAME
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                pid = int(read_capped(lock, 32, "lock file").strip() or b"0")
            except UnfitFile as exc:  # a link to /dev/zero, a FIFO: not a lock hpdirs wrote, and not removed
                raise UsageError(
                    f"{lock} is not a lock file hpdirs wrote ({exc}); remove it if no hpdirs process is using the run"
                ) from None
            except (OSError, ValueError):
                pid = 0
            if pid and _alive(pid):
                raise UsageError(
                    f"run {run_dir} is being written by process {pid}; wait for it or use another `name`"
                ) from None
            lock.unlink(missing_ok=True)  # stale: its writer is gone
    else:
        raise UsageError(f"cannot lock {run_dir}; remove {lock} if no hpdirs process is using it")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
    except BaseException:  # a full disk: no empty lock is left behind
        lock.unlink(missing_ok=True)
        raise
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def versions() -> dict[str, str]:
    """The versions of what produced a result: torch, hpdirs, pytorch-pretrained-biggan."""
    from importlib import metadata

    out = {"torch": str(torch.__version__)}
    for package in ("hpdirs", "pytorch-pretrained-biggan"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def directions_metadata(
    meta: dict[str, Any], config: LearnConfig, step: int, loss: float, kind: str, heldout: float | None
) -> dict[str, Any]:
    """What a directions file records: the generator, the config, the step and its losses."""
    return {
        **{
            k: meta.get(k, "")
            for k in ("model", "class_index", "class_name", "truncation", "weights", "weights_fingerprint")
        },
        **{k: meta[k] for k in PLUGIN_FIELDS if k in meta},  # how a plug-in generator is made again
        "config": config.to_dict(),
        "step": step,
        "loss": loss,
        "heldout": heldout,
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
    }


@dataclass
class RunFiles:
    """config.json and the log (loss.csv, loss.png) of one run folder; every write is atomic."""

    dir: Path
    config: LearnConfig
    meta: dict[str, Any]
    rows: list[dict[str, str]] = field(default_factory=list)

    def write_config(self) -> None:
        body = {"format": RUN_FORMAT, "config": self.config.to_dict(), "generator": self.meta, "versions": versions()}
        write_text_atomic(self.dir / CONFIG_NAME, json.dumps(body, indent=2) + "\n")

    def load_rows(self, up_to_step: int) -> None:
        """The log's rows up to the checkpoint's step (a damaged log: one line naming it)."""
        path = self.dir / LOSS_NAME
        if not os.path.lexists(path):
            return
        try:
            text = read_capped(path, log_limit(self.config.steps), LOSS_NAME).decode("utf-8")
            # Every row is written with its newline: a last line without one was cut (a crash of
            # another writer, a copy cut short), and its last number may be a prefix of the value.
            text = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
            reader = csv.DictReader(io.StringIO(text, newline=""))
            if reader.fieldnames != LOG_FIELDS:
                raise ValueError(f"its header is {reader.fieldnames}")
            rows = list(reader)
            for row in rows:
                if None in row or None in row.values():
                    raise ValueError(f"a row has {len(row) - (None in row)} fields, not {len(LOG_FIELDS)}")
                int(row["step"]), float(row["smoothed_loss"])  # what the loss curve reads
                if row["heldout"]:
                    float(row["heldout"])
        except (OSError, UnicodeDecodeError, ValueError, TypeError, csv.Error) as exc:
            raise DirectionsFileError(
                f"{path} is damaged ({' '.join(str(exc).split())[:160]}); delete it (the log "
                "restarts at the checkpoint's step) or restore it, then resume"
            ) from None
        self.rows = [r for r in rows if int(r["step"]) <= up_to_step]

    def add_row(self, row: dict[str, Any]) -> None:
        self.rows.append(
            {k: ("" if v is None else (f"{v:.9g}" if isinstance(v, float) else str(v))) for k, v in row.items()}
        )

    def write_log(self) -> None:
        """loss.csv, every row so far. Written before the checkpoint: a checkpoint never holds a
        step the log lacks (a resume keeps the log's rows up to the checkpoint's step)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.dir / LOSS_NAME, buffer.getvalue())

    def write_card_and_curve(self) -> None:
        """README.md and loss.png, made from config.json and the log."""
        series = {
            "training loss (smoothed)": [(int(r["step"]), float(r["smoothed_loss"])) for r in self.rows],
            "held-out penalty": [(int(r["step"]), float(r["heldout"])) for r in self.rows if r["heldout"]],
        }
        model, class_name = str(self.meta.get("model", "")), str(self.meta.get("class_name", ""))
        named = class_name and class_name != model.split(":")[0]  # synthetic's class is its model's name
        title = f"{model} · {class_name}" if named else model

        write_run_card(self.dir)  # the run's README.md, with the steps done so far
        atomic_write(self.dir / CURVE_NAME, lambda stream: loss_curve(series, stream, title=title))


# --- a directions file and its generator ------------------------------------------------------


@dataclass(frozen=True)
class OpenedDirections:
    """A directions file, the generator it was learned with, and where its outputs go."""

    path: Path
    directions: Directions
    generator: Generator
    from_run: bool  # opened through its run folder

    @property
    def info(self) -> dict[str, Any]:
        """What reports record about the source: the generator and the directions file."""
        return {**describe(self.generator), "directions_file": str(self.path)}

    def output_dir(self, kind: str) -> Path:
        """RUN/<kind> for a run folder, <kind>-<file stem> beside a file."""
        return self.path.parent / kind if self.from_run else self.path.parent / f"{kind}-{self.path.stem}"

    def refresh_card(self, written: Path) -> None:
        """Rewrite the run's README.md (its links to render and compare), for a run folder, when
        `written` (what render or compare wrote) is one of the run's own folders: a run that was
        only read (`--out` elsewhere, perhaps a read-only run) is not written. The work asked for
        is done by then: a card that cannot be made is a warning, never a failure."""
        inside = written.resolve().parent == self.path.parent.resolve()
        if self.from_run and inside and (self.path.parent / CONFIG_NAME).is_file():
            try:
                write_run_card(self.path.parent)
            except (HpdirsError, OSError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                warnings.warn(
                    f"the run card {self.path.parent / 'README.md'} was not updated ({reason}); {written} is complete",
                    HpdirsWarning,
                    stacklevel=2,
                )


def open_directions(
    run_or_file: str | os.PathLike,
    choice: GeneratorChoice = GeneratorChoice(),
    progress: ProgressCallback | None = None,
) -> OpenedDirections:
    """Load a directions file (or a run's last directions) and rebuild the generator its metadata
    names; anything set in `choice` overrides the file."""
    path = resolve_directions_file(run_or_file)
    directions = load_directions(path)
    generator = choice.for_metadata(directions.metadata, source=str(path), progress=progress)
    return OpenedDirections(path, directions, generator, Path(run_or_file).is_dir())

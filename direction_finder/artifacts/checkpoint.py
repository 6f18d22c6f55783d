"""The checkpoint of a run folder (checkpoint.pt): everything a resume needs, checked field by
field before a resumed run writes anything.

It is a torch file loaded with weights_only=True (nothing in it can execute code) and written
atomically after being serialised in memory (a full disk arrives as an OSError with its errno).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from direction_finder.config import LearnConfig
from direction_finder.errors import DirectionsFileError, UsageError
from direction_finder.files import UnfitFile, opened_regular, parse_json, write_bytes_atomic
from direction_finder.validation import plain

CHECKPOINT_FORMAT = "hpdirs.checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"
SMOOTHING = 0.98  # bias-corrected exponential moving average of the training loss, for display
MATRICES = 4  # (N, z_dim) matrices a checkpoint holds: A, the best directions, Adam's two moments
SMALL_PARTS = 2**20  # bytes besides them: the pickle, the generator's state, the config, Adam's step


def checkpoint_limit(num_directions: int, z_dim: int) -> int:
    """The most bytes a checkpoint of (N, z_dim) directions holds, stored or unpacked: its
    matrices in float64 at most, and the small parts."""
    return MATRICES * num_directions * z_dim * 8 + SMALL_PARTS


@dataclass(kw_only=True)
class RunState:
    """Everything that must survive an interruption, at a step boundary: the checkpoint."""

    step: int
    A: Tensor
    optimizer: dict[str, Any]
    rng: Tensor
    average: float  # EMA of the training loss started at 0 (divide by 1 - SMOOTHING^step)
    elapsed: float
    best_heldout: float
    best_step: int
    best_matrix: Tensor | None

    @property
    def smoothed_loss(self) -> float:
        return self.average / (1 - SMOOTHING**self.step) if self.step else math.nan

    def to_checkpoint(self, config: LearnConfig, meta: dict[str, Any]) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "A": self.A,
            "optimizer": self.optimizer,
            "rng": self.rng,
            "average": self.average,
            "elapsed": self.elapsed,
            "best_heldout": self.best_heldout,
            "best_step": self.best_step,
            "best_matrix": self.best_matrix,
            "config": json.dumps(config.to_dict(), sort_keys=True),
            "generator": json.dumps(meta, sort_keys=True),
        }

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any]) -> RunState:
        """The state of a checkpoint that check_checkpoint accepted."""
        return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls)})


def save_checkpoint(state: RunState, config: LearnConfig, meta: dict[str, Any], path: Path) -> None:
    """Serialised in memory, then written atomically (a full disk arrives as an OSError)."""
    buffer = io.BytesIO()
    torch.save(state.to_checkpoint(config, meta), buffer)
    write_bytes_atomic(path, buffer.getvalue())


def _check_archive(path: Path, limit: int) -> None:
    """torch.save writes a zip archive whose members are stored, not compressed: refuse anything
    else (the old pickle-only format may announce a storage of any size before reading it), and
    an archive whose members add up to more than `limit` bytes, before a tensor is loaded. So a
    small file cannot unpack into gigabytes."""
    with opened_regular(path, limit, "checkpoint of this run") as stream:
        if not zipfile.is_zipfile(stream):
            raise UnfitFile("it is not the zip archive torch.save writes")
        members = zipfile.ZipFile(stream).infolist()
    if any(m.compress_type != zipfile.ZIP_STORED for m in members):
        raise UnfitFile("it holds compressed members, which torch.save never writes")
    declared = sum(m.file_size for m in members)
    if declared > limit:
        raise UnfitFile(f"its members declare {declared} bytes, more than a checkpoint of this run ({limit} at most)")


def read_checkpoint(path: Path, limit: int) -> dict[str, Any]:
    """Load a checkpoint of at most `limit` bytes (checkpoint_limit) with weights_only=True
    (nothing in it can execute code), once its archive is known to unpack within the limit."""
    if not os.path.lexists(path):
        raise DirectionsFileError(f"no checkpoint at {path}; `resume` needs a run folder that learning wrote")
    try:
        _check_archive(path, limit)
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle refused by weights_only, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DirectionsFileError(
            f"checkpoint {path} cannot be read ({first[:200]}); it is damaged or not ours"
        ) from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise DirectionsFileError(f"{path} is not an hpdirs checkpoint ({CHECKPOINT_FORMAT})")
    return data


def checkpoint_json(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    """A JSON object stored in a checkpoint (its config or generator description)."""
    try:
        value = parse_json(data[key])
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return value
    except (KeyError, TypeError, ValueError) as exc:
        raise DirectionsFileError(
            f"checkpoint {path} is damaged (its {key} cannot be read: {exc}); it cannot be resumed: start a new run"
        ) from None


def checkpoint_config(data: dict[str, Any], path: Path) -> LearnConfig:
    try:
        return LearnConfig.from_dict(checkpoint_json(data, "config", path))
    except UsageError as exc:
        raise DirectionsFileError(
            f"checkpoint {path} is damaged ({plain(str(exc))}); it cannot be resumed: start a new run"
        ) from None


def check_checkpoint(data: dict[str, Any], path: Path, config: LearnConfig, z_dim: int) -> None:
    """Every field of a checkpoint has the type, shape and range this run needs; a
    DirectionsFileError naming the file and the field otherwise (never a traceback later)."""
    n = int(config.num_directions or z_dim)

    def bad(name: str, why: str) -> DirectionsFileError:
        return DirectionsFileError(
            f"checkpoint {path} is damaged ({name} {why}); it cannot be resumed: start a new run, or restore the file"
        )

    def number(name: str) -> None:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise bad(name, f"is {value!r}, not a number")

    step = data.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or not step >= 0:
        raise bad("step", f"is {step!r}, not a step number")
    A = data.get("A")
    if not isinstance(A, Tensor) or A.shape != (n, z_dim) or not A.is_floating_point() or not bool(A.isfinite().all()):
        raise bad("A", f"is not a finite ({n}, {z_dim}) matrix")
    for name in ("average", "elapsed", "best_heldout"):
        number(name)
    if isinstance(data.get("best_step"), bool) or not isinstance(data.get("best_step"), int):
        raise bad("best_step", "is not an integer")
    best = data.get("best_matrix")
    if best is not None and (not isinstance(best, Tensor) or best.shape != (n, z_dim)):
        raise bad("best_matrix", f"is not a ({n}, {z_dim}) matrix")
    rng = data.get("rng")
    try:
        if not isinstance(rng, Tensor):
            raise TypeError("not a tensor")
        torch.Generator().set_state(rng)
    except (TypeError, RuntimeError, ValueError):
        raise bad("rng", "is not a random-number generator state") from None
    probe = torch.optim.Adam([torch.zeros(n, z_dim, requires_grad=True)], lr=config.lr)
    try:
        probe.load_state_dict(data.get("optimizer"))  # type: ignore[arg-type]
        for state in probe.state.values():
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state and tuple(state[key].shape) != (n, z_dim):
                    raise ValueError(f"{key} has shape {tuple(state[key].shape)}")
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError) as exc:
        raise bad("optimizer", f"is not an Adam state for A ({' '.join(str(exc).split())[:120]})") from None


def resumable_checkpoint(run_dir: Path, config: LearnConfig, meta: dict[str, Any], z_dim: int) -> dict[str, Any]:
    """The checkpoint of run_dir, if this config and generator may continue it; else one line
    saying what differs or what is damaged."""
    path = run_dir / CHECKPOINT_NAME
    checkpoint = read_checkpoint(path, checkpoint_limit(int(config.num_directions or z_dim), z_dim))
    differences = checkpoint_config(checkpoint, path).differences(config)
    if differences:
        raise UsageError(
            f"cannot resume {run_dir} with a different config ({'; '.join(differences)}); "
            "use the original settings or start a new run"
        )
    old_meta = checkpoint_json(checkpoint, "generator", path)
    changed = [k for k in ("model", "class_index", "truncation") if old_meta.get(k) != meta.get(k)]
    if changed:
        raise UsageError(
            f"cannot resume {run_dir}: the generator differs in {', '.join(changed)} "
            f"(was {', '.join(str(old_meta.get(k)) for k in changed)})"
        )
    check_checkpoint(checkpoint, path, config, z_dim)
    return checkpoint

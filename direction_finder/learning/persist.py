"""What a learning run keeps: after each step a row of the log, and at a checkpoint the state
(checkpoint.pt), both directions files and the log with its card and curve; under torchrun only
rank 0 writes, and every rank learns whether it could."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from direction_finder.artifacts.checkpoint import CHECKPOINT_NAME, RunState, save_checkpoint
from direction_finder.artifacts.directions import Directions, save_directions
from direction_finder.artifacts.runs import BEST_NAME, LAST_NAME, RunFiles, directions_metadata
from direction_finder.config import LearnConfig
from direction_finder.errors import RunStopped
from direction_finder.learning.distributed import DistContext, RankFailed
from direction_finder.method.orthonormal import canonical_signs, orthonormal_directions


class RunWriteError(RunStopped):
    """A run's files could not be written (disk full, permissions); the earlier ones are intact."""


class RunSaver:
    """The files of one run (None: learning in memory) and how its state is written to them."""

    def __init__(self, files: RunFiles | None, config: LearnConfig, meta: dict[str, Any], dist: DistContext | None):
        self.files, self.config, self.meta, self.dist = files, config, meta, dist

    @property
    def run_dir(self) -> Path | None:
        return self.files.dir if self.files is not None else None

    def log(self, row: dict[str, Any]) -> None:
        """One step's row of loss.csv (written with the next checkpoint)."""
        if self.files is not None:
            self.files.add_row(row)

    def save(self, state: RunState, device: torch.device, interrupted: bool = False) -> None:
        """Checkpoint, directions and log of `state`; under torchrun, every rank learns whether
        rank 0 could write them (after an interruption the others are already leaving)."""
        error = None
        if self.files is not None:
            try:
                self._write(self.files, state)
            except OSError as exc:
                error = self._write_error(self.files.dir, state.step, exc)
        if self.dist is not None and self.dist.world > 1 and not interrupted:
            rank_0_wrote = self.dist.agree(error is None, device)
            if not rank_0_wrote and error is None:
                raise RankFailed(
                    f"rank 0 could not write the checkpoint at step {state.step}; stopping rank {self.dist.rank}"
                )
        if error is not None:
            raise error

    def _write(self, files: RunFiles, s: RunState) -> None:
        config = self.config
        files.write_log()  # first: the checkpoint's step is always in the log
        save_checkpoint(s, config, self.meta, files.dir / CHECKPOINT_NAME)
        with torch.no_grad():
            Q = canonical_signs(orthonormal_directions(s.A))
        loss = s.smoothed_loss
        # the held-out penalty evaluated at this very step, where one was (the log has it)
        heldout = next(
            (float(r["heldout"]) for r in reversed(files.rows) if int(r["step"]) == s.step and r["heldout"]), None
        )
        save_directions(
            files.dir / LAST_NAME,
            Directions(Q.cpu(), directions_metadata(self.meta, config, s.step, loss, "last", heldout), s.A.cpu()),
        )
        if s.best_matrix is not None:
            save_directions(
                files.dir / BEST_NAME,
                Directions(
                    canonical_signs(s.best_matrix.cpu()),
                    directions_metadata(self.meta, config, s.best_step, loss, "best", s.best_heldout),
                ),
            )
        files.write_card_and_curve()

    @staticmethod
    def _write_error(run_dir: Path, step: int, exc: OSError) -> RunWriteError:
        reason = exc.strerror or str(exc)
        if (run_dir / CHECKPOINT_NAME).exists():
            return RunWriteError(
                f"could not write to {run_dir} ({reason}) at step {step}; the files "
                "written before are intact: free space, then resume the run",
                run_dir,
                True,
            )
        return RunWriteError(
            f"could not write to {run_dir} ({reason}) at step {step}, before the run's "
            "first checkpoint; nothing was kept: free space and start the run again",
            run_dir,
        )

"""Learn N latent directions: Adam on A, minimising the objective of direction_finder.learning.objective.

learn() runs the loop (one step, an evaluation on the held-out set now and then, a checkpoint
now and then) in memory or in a run folder (direction_finder.artifacts.runs, direction_finder.artifacts.checkpoint),
resumably and under torchrun.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from direction_finder.artifacts.checkpoint import (
    CHECKPOINT_NAME,
    SMOOTHING,
    RunState,
    resumable_checkpoint,
)
from direction_finder.artifacts.directions import Directions
from direction_finder.artifacts.runs import (
    RunFiles,
    directions_metadata,
    remove_unfinished,
    run_lock,
)
from direction_finder.compiled import maybe_compiled
from direction_finder.config import HELDOUT_SEED_OFFSET, LearnConfig
from direction_finder.errors import HpdirsWarning, RunStopped, UsageError
from direction_finder.generators.base import describe, working_dtype
from direction_finder.learning.distributed import DistContext
from direction_finder.learning.layout import fit_layout
from direction_finder.learning.objective import HeldOut, draw_batch, heldout_penalty, smaller_layout, train_step
from direction_finder.learning.persist import RunSaver
from direction_finder.method.manifold import make_optimizer
from direction_finder.method.orthonormal import canonical_signs, orthonormal_directions
from direction_finder.starts import start_named, starting_directions

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator


class LearnInterrupted(RunStopped):
    """Ctrl-C, SIGTERM or SIGHUP: the checkpoint of the last completed step was written."""

    def __init__(self, run_dir: Path | None, step: int, signum: int = signal.SIGINT) -> None:
        where = f"; checkpoint saved in {run_dir}" if run_dir else ""
        super().__init__(
            f"interrupted by {signal.Signals(signum).name} at step {step}{where}", run_dir, True, int(signum)
        )
        self.step = step


class NonFiniteLoss(RunStopped):
    """The loss became NaN or inf; the last good checkpoint is kept."""


@dataclass(frozen=True)
class StepInfo:
    """What the progress display needs after each step."""

    step: int
    steps: int
    loss: float
    smoothed: float
    heldout: float | None  # this step's held-out penalty, when evaluated
    best_heldout: float | None
    elapsed: float  # seconds of learning so far (across resumes)
    sample_steps_per_s: float  # over this session's steps after the first
    eta_s: float | None  # estimated seconds to finish
    A: Tensor | None = None  # (N, z_dim), the parameter after this step (Q = Gram-Schmidt of it): read only

    def log_row(self) -> dict[str, Any]:
        """The row of loss.csv this step writes (its fields as runs.LOG_FIELDS names them)."""
        return {
            "step": self.step,
            "loss": self.loss,
            "smoothed_loss": self.smoothed,
            "heldout": self.heldout,
            "elapsed_s": self.elapsed,
            "sample_steps_per_s": self.sample_steps_per_s,
        }


OnStep = Callable[[StepInfo], None]


def learn(
    generator: Generator,
    config: LearnConfig,
    *,
    on_step: OnStep | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    dist: DistContext | None = None,
    time_limit_s: float | None = None,
) -> Directions:
    """Learn config.num_directions directions for `generator` (any Generator-protocol object).

    With out_dir, writes directions.safetensors (last), directions_best.safetensors (best by
    held-out penalty), config.json, loss.csv, loss.png and checkpoint.pt there; every
    checkpoint_every steps and on Ctrl-C (LearnInterrupted) the checkpoint is written
    atomically. resume=True continues from out_dir's checkpoint, bitwise identically on CPU.
    With `dist` (a DistContext, under torchrun) the batch is split over the ranks, gradients are
    averaged, and only rank 0 writes files (every rank needs out_dir to read a resumed run).
    time_limit_s stops (and saves) after the first step at which the run's learning time,
    across resumes, reaches it. Returns the last directions.
    """
    config = config.resolved(generator)
    meta = describe(generator)
    if dist is not None and config.batch_size % dist.world:
        raise UsageError(
            f"`batch_size` {config.batch_size} does not split evenly over {dist.world} ranks; "
            f"use a multiple of {dist.world}"
        )
    if resume and out_dir is None:
        raise UsageError("`resume` needs the run folder `out_dir` to continue from")
    if out_dir is None:
        return _Loop(generator, config, meta, None, None, dist).run(on_step, time_limit_s)
    run_dir = Path(out_dir)
    main = dist is None or dist.is_main
    fresh = False  # a folder this run starts empty: removed again if no checkpoint is ever written
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(run_dir, os.W_OK):
            raise UsageError(f"cannot write to {run_dir}; choose another `out_dir`")
        fresh = not resume and not any(run_dir.iterdir())
    try:
        with run_lock(run_dir) if main else nullcontext():
            files = RunFiles(run_dir, config, meta) if main else None
            checkpoint = None
            if resume:  # every file is checked before any is written: a failed resume changes nothing
                checkpoint = resumable_checkpoint(run_dir, config, meta, int(generator.z_dim))
                if files is not None:
                    files.load_rows(int(checkpoint["step"]))
            elif main and (run_dir / CHECKPOINT_NAME).exists():
                raise UsageError(f"{run_dir} already holds a run; pass `resume` {run_dir} or choose another `name`")
            if files is not None:
                files.write_config()
            return _Loop(generator, config, meta, files, checkpoint, dist).run(on_step, time_limit_s)
    except BaseException:
        if fresh and not (run_dir / CHECKPOINT_NAME).exists():
            remove_unfinished(run_dir)  # neither a new name nor a resumable run: leave nothing
        raise


@dataclass
class Throughput:
    """This session's learning rate and time to go. Its first step warms up (allocations, kernel
    choice) and is not timed, unless it is the run's last."""

    first_step: int
    batch_size: int
    timed_steps: int = 0
    timed_seconds: float = 0.0

    def add(self, step: int, last: bool, seconds: float) -> None:
        if step > self.first_step or last:
            self.timed_steps, self.timed_seconds = self.timed_steps + 1, self.timed_seconds + seconds

    def sample_steps_per_s(self, seconds: float) -> float:
        """Over the timed steps; before there are any, this step's own rate."""
        if self.timed_seconds > 0:
            return self.batch_size * self.timed_steps / self.timed_seconds
        return self.batch_size / max(seconds, 1e-9)

    def eta_s(self, steps_left: int) -> float | None:
        return steps_left * (self.timed_seconds / self.timed_steps) if self.timed_steps else None


class _Loop:
    """One session of the learning loop: A, Adam, the sample stream, the held-out set; what it
    keeps goes through a RunSaver."""

    def __init__(
        self,
        generator: Generator,
        config: LearnConfig,
        meta: dict[str, Any],
        files: RunFiles | None,
        checkpoint: dict[str, Any] | None,
        dist: DistContext | None,
    ) -> None:
        self.generator, self.config, self.meta, self.dist = generator, config, meta, dist
        self.saver = RunSaver(files, config, meta, dist)
        # the config steps are computed with: the user's, with the layout fit_layout chose (images
        # per call, samples per pass, checkpointing); an out-of-memory error makes it smaller
        self.step_config = fit_layout(generator, config, config.batch_size // self._ranks)
        # the forward compiled where the resolved config says so (after the layout's calibration,
        # which measures the eager forward's memory); inductor's caches in hpdirs' cache folder
        self.generator = maybe_compiled(generator, config.compile, 0)
        self.state, self.optimizer, self.A = _starting_state(generator, config, checkpoint, dist)
        self.rng = torch.Generator()
        self.rng.set_state(self.state.rng)
        self.heldout = None
        if config.eval_every:
            self.heldout = HeldOut.draw(
                generator,
                int(config.num_directions or 0),
                config.eval_samples,
                config.k,
                config.eta,
                config.seed + HELDOUT_SEED_OFFSET,
            )

    @property
    def _ranks(self) -> int:
        return self.dist.world if self.dist is not None else 1

    def run(self, on_step: OnStep | None, time_limit_s: float | None) -> Directions:
        config = self.config
        clock = Throughput(first_step=self.state.step, batch_size=config.batch_size)
        try:
            for step in range(self.state.step, config.steps):
                # step: one optimisation step, timed
                started = time.perf_counter()
                loss = self.step(step)
                done, seconds = step + 1, time.perf_counter() - started
                clock.add(step, done == config.steps, seconds)
                # evaluate: the held-out penalty when due, and the state after this step
                heldout = self.evaluate(done)
                self._advance(done, loss, seconds, heldout)
                # report: one record for the log row and the progress display
                info = StepInfo(
                    step=done,
                    steps=config.steps,
                    loss=loss,
                    smoothed=self.state.smoothed_loss,
                    heldout=heldout[0] if heldout is not None else None,
                    best_heldout=None if self.state.best_step < 0 else self.state.best_heldout,
                    elapsed=self.state.elapsed,
                    sample_steps_per_s=clock.sample_steps_per_s(seconds),
                    eta_s=clock.eta_s(config.steps - done),
                    A=self.A.detach(),
                )
                self.saver.log(info.log_row())
                # persist: a checkpoint every checkpoint_every steps (the last one after the loop)
                if done % config.checkpoint_every == 0 and done != config.steps:
                    self.saver.save(self.state, self.A.device)
                if on_step is not None:
                    on_step(info)
                # stop: on the time limit, every rank at the same step
                if time_limit_s is not None and self._out_of_time(time_limit_s):
                    break
        except KeyboardInterrupt as exc:
            with _signals_ignored():  # a second Ctrl-C or SIGTERM must not cut the last save short
                self.saver.save(self.state, self.A.device, interrupted=True)
            raise LearnInterrupted(self.saver.run_dir, self.state.step, getattr(exc, "signum", signal.SIGINT)) from None
        self.saver.save(self.state, self.A.device)
        with torch.no_grad():
            Q = canonical_signs(orthonormal_directions(self.A).cpu())
        return Directions(
            Q,
            directions_metadata(self.meta, config, self.state.step, self.state.smoothed_loss, "last", None),
            self.A.detach().cpu(),
        )

    def step(self, step: int) -> float:
        """One optimisation step (0-based `step`); its loss. A non-finite loss stops the run."""
        batch = draw_batch(self.generator, self.config, self.rng, self.dist)
        while True:
            try:
                loss = float(train_step(self.generator, self.A, self.optimizer, self.step_config, batch, self.dist))
                break
            except torch.OutOfMemoryError:
                if not self._smaller_layout(step):
                    raise
            if self.A.device.type == "cuda":  # the failed attempt's tensors went with its exception
                torch.cuda.empty_cache()
        if not math.isfinite(loss):
            kept = ""
            run_dir = self.saver.run_dir
            if run_dir is not None:
                kept = (
                    f"; the last good checkpoint (step {self.state.step}) is kept in {run_dir}"
                    if (run_dir / CHECKPOINT_NAME).exists()
                    else "; no checkpoint had been written yet"
                )
            raise NonFiniteLoss(
                f"the loss became {loss} at step {step + 1}{kept}; "
                "lower `lr` or `eta`, or check the generator's weights"
            )
        return loss

    def _smaller_layout(self, step: int) -> bool:
        """After an out-of-memory error: a smaller layout (objective.smaller_layout), said in one line;
        False under torchrun (other ranks would wait in the all-reduce) or with nothing left."""
        smaller = smaller_layout(self.step_config, self.generator, self.config.batch_size) if self._ranks == 1 else None
        if smaller is None:
            return False
        self.step_config, change = smaller
        warnings.warn(f"out of memory at step {step + 1}: {change}, and the step taken again", HpdirsWarning, 2)
        return True

    def evaluate(self, done: int) -> tuple[float, Tensor] | None:
        """The held-out penalty after step `done` and the directions it was measured for, when an
        evaluation is due (every eval_every steps and after the last)."""
        if self.heldout is None or not (done % self.config.eval_every == 0 or done == self.config.steps):
            return None
        with torch.no_grad():
            Q = orthonormal_directions(self.A)
        config = self.step_config
        return heldout_penalty(self.generator, Q, self.heldout, config, config.micro_batch, self.dist), Q

    def _advance(self, done: int, loss: float, seconds: float, heldout: tuple[float, Tensor] | None) -> None:
        """The state after step `done` (what a checkpoint written now holds), keeping the best
        held-out directions so far."""
        s = self.state
        best_heldout, best_step, best_matrix = s.best_heldout, s.best_step, s.best_matrix
        if heldout is not None and heldout[0] < s.best_heldout:
            best_heldout, best_step, best_matrix = heldout[0], done, heldout[1].detach().clone()
        self.state = RunState(
            step=done,
            A=self.A.detach().clone(),
            optimizer=copy.deepcopy(self.optimizer.state_dict()),
            rng=self.rng.get_state(),
            average=SMOOTHING * s.average + (1 - SMOOTHING) * loss,  # EMA from 0
            elapsed=s.elapsed + seconds,
            best_heldout=best_heldout,
            best_step=best_step,
            best_matrix=best_matrix,
        )

    def _out_of_time(self, time_limit_s: float) -> bool:
        stop = self.state.elapsed >= time_limit_s
        if self.dist is not None and self.dist.world > 1:  # ranks' clocks differ: stop together
            stop = not self.dist.agree(not stop, self.A.device)
        return stop


def _starting_state(
    generator: Generator, config: LearnConfig, checkpoint: dict[str, Any] | None, dist: DistContext | None
) -> tuple[RunState, torch.optim.Optimizer, Tensor]:
    """The state the session starts from: a resumed run's checkpoint, or step 0 (under torchrun,
    rank 0's A on every rank: a warm start computed on each device may differ)."""
    state, optimizer, A = _initial_state(generator, config, resuming=checkpoint is not None)
    if dist is not None and dist.world > 1 and checkpoint is None:
        with torch.no_grad():
            A.copy_(dist.broadcast(A.detach().cpu()).to(A.device))
        state = dataclasses.replace(state, A=A.detach().clone())
    if checkpoint is not None:
        state = RunState.from_checkpoint(checkpoint)
        with torch.no_grad():
            A.copy_(state.A.to(A.device))
        optimizer.load_state_dict(state.optimizer)
    return state, optimizer, A


def _initial_state(
    generator: Generator, config: LearnConfig, resuming: bool = False
) -> tuple[RunState, torch.optim.Optimizer, Tensor]:
    """Step 0: A, Adam and the sample stream. A resumed run replaces A, so no warm start is
    computed for it. The start (a row of starts.STARTS; LearnConfig.resolved checked that the
    generator can take it) draws from the run's stream unless it has its own, so `random` is the
    first draw of the run; its seconds start the run's learning time."""
    n, z_dim = int(config.num_directions or generator.z_dim), int(generator.z_dim)
    rng = torch.Generator().manual_seed(config.seed)
    started = time.perf_counter()
    if resuming:
        A = torch.eye(n, z_dim)  # replaced by the checkpoint's A, and rng by its stream
    else:
        A = starting_directions(start_named(config.init), generator, n, config.seed, stream=rng)  # (n, z_dim)
    A = A.to(generator.device, working_dtype(generator)).requires_grad_(True)
    optimizer = make_optimizer(config.optimizer, A, config.lr)  # riemannian: A made orthonormal itself
    state = RunState(
        step=0,
        A=A.detach().clone(),
        optimizer=copy.deepcopy(optimizer.state_dict()),
        rng=rng.get_state(),
        average=0.0,
        elapsed=time.perf_counter() - started,
        best_heldout=math.inf,
        best_step=-1,
        best_matrix=None,
    )
    return state, optimizer, A


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP ignored for the duration (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kinds = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    before = [signal.signal(kind, signal.SIG_IGN) for kind in kinds]
    try:
        yield
    finally:
        for kind, handler in zip(kinds, before, strict=True):
            signal.signal(kind, handler)

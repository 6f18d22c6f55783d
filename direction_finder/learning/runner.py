"""A learning run as `hpdirs learn` starts it: from what a user asked for to the generator, the
config and the run folder, then learn().
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from direction_finder.artifacts.checkpoint import resumable_checkpoint
from direction_finder.artifacts.runs import free_run_dir, logged_rate, new_run_dir, read_run
from direction_finder.config import DEFAULT_RECIPE, LearnConfig, recipe_fields
from direction_finder.errors import HpdirsError
from direction_finder.generators.base import describe
from direction_finder.generators.choice import class_slug
from direction_finder.generators.weights import ProgressCallback
from direction_finder.learning.distributed import DistContext
from direction_finder.learning.learn import OnStep, learn
from direction_finder.learning.request import RunRequest
from direction_finder.starts import Cost, start_named

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator


@dataclass(frozen=True)
class RunPlan:
    """What learn_run is about to do, for the caller to announce."""

    generator: Generator
    config: LearnConfig  # resolved for the generator
    run_dir: Path
    resumed: bool
    dist: DistContext | None
    steps_done: int | None = None  # after learning: the last step taken (less than `steps` after a time limit)

    def expected_seconds(self) -> tuple[float, float] | None:
        """(seconds, sample-steps/s) the steps still to take should need, at the rate a resumed
        run's log records; None for a new run, whose rate is measured once it runs."""
        logged = logged_rate(self.run_dir, self.config.steps) if self.resumed else None
        if logged is None:
            return None
        done, rate = logged
        return max(self.config.steps - done, 0) * self.config.batch_size / rate, rate

    @property
    def stopped_early(self) -> bool:
        """Learning ended before config.steps: its time limit was reached."""
        return self.steps_done is not None and self.steps_done < self.config.steps

    @property
    def start_cost(self) -> Cost:
        """What the start computes before the first step (nothing for a resumed run)."""
        return Cost() if self.resumed else start_named(self.config.init).cost(self.generator)

    def start_announcement(self) -> str | None:
        """The line said before a start that takes time (None: it takes none)."""
        announce = start_named(self.config.init).announce
        return None if self.resumed or announce is None else announce(self.generator, self.start_cost)

    def images(self) -> dict[str, int]:
        """The generator images the whole run makes, by part (for a resumed run, an upper bound:
        the steps already done are counted too). The penalty is evaluated at the 2k perturbed
        points of each sample only; held-out evaluations come every `eval_every` steps and after
        the last."""
        c, per_sample = self.config, 2 * self.config.k
        evaluations = 0 if not c.eval_every else -(-c.steps // c.eval_every)
        return {
            "learning steps": c.steps * c.batch_size * per_sample,
            "held-out evaluations": evaluations * c.eval_samples * per_sample,
            "warm start": self.start_cost.images,
        }


def learn_run(
    request: RunRequest,
    *,
    dist: DistContext | None = None,
    progress: ProgressCallback | None = None,
    on_start: Callable[[RunPlan], None] | None = None,
    on_step: OnStep | None = None,
    dry_run: bool = False,
) -> RunPlan:
    """`hpdirs learn`: build the generator (a resumed run's from its config.json), the config and
    the run folder (made by rank 0 under torchrun), announce them, learn. Returns the plan.
    With `dry_run`, stop before anything is written: the plan names the folder a new run would
    get now."""
    fields = dict(request.settings)
    if request.recipe is not None or request.resume is None:  # a resumed run keeps its stored init and lr
        fields = {**recipe_fields(request.recipe or DEFAULT_RECIPE), **fields}
    device = dist.device() if dist is not None else request.generator.device
    choice = dataclasses.replace(request.generator, device=device)
    if request.resume is not None:
        stored, meta = read_run(request.resume)
        config = dataclasses.replace(stored, **fields)
        generator = choice.for_metadata(meta, source=f"run {request.resume}", progress=progress)
        run_dir = Path(request.resume)
    else:
        config = LearnConfig(**fields)
        generator = choice.load(progress=progress)
    config = config.resolved(generator)
    if request.resume is None and dry_run:
        run_dir = free_run_dir(request.out_root, class_slug(generator), request.name)
    elif request.resume is None:
        run_dir = new_run_dir_on_all_ranks(request.out_root, class_slug(generator), request.name, dist)
    plan = RunPlan(generator, config, run_dir, request.resume is not None, dist)
    if plan.resumed:  # refused before anything is announced: a resume with another config, a damaged run
        resumable_checkpoint(run_dir, config, describe(generator), int(generator.z_dim))
    if dry_run:
        return plan
    if on_start is not None:
        on_start(plan)
    directions = learn(
        generator,
        config,
        on_step=on_step,
        out_dir=run_dir,
        resume=plan.resumed,
        dist=dist,
        time_limit_s=request.time_limit_s,
    )
    return dataclasses.replace(plan, steps_done=int(directions.metadata["step"]))


def new_run_dir_on_all_ranks(
    out_root: str | os.PathLike, class_slug: str, name: str | None, dist: DistContext | None
) -> Path:
    """new_run_dir, made by rank 0 only; every rank learns its name, or rank 0's error."""
    if dist is None:
        return new_run_dir(out_root, class_slug, name)
    made: object = None
    if dist.is_main:
        try:
            made = str(new_run_dir(out_root, class_slug, name))
        except HpdirsError as exc:
            made = exc
    made = dist.broadcast(made)
    if isinstance(made, HpdirsError):
        raise made
    return Path(str(made))

"""A learning run as a user asks for it (RunRequest). Light on purpose (no torch at import): the
command line's help shows its defaults."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from direction_finder.generators.choice import GeneratorChoice


@dataclass(frozen=True)
class RunRequest:
    """A learning run as a user asks for it: a new run (settings left out take the recipe's and
    LearnConfig's defaults) or a resumed one (settings left out keep the run's)."""

    generator: GeneratorChoice = GeneratorChoice()
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # LearnConfig fields given
    recipe: str | None = None  # None: DEFAULT_RECIPE for a new run, the stored init and lr for a resume
    out_root: str | os.PathLike = "outputs"  # a new run goes to OUT_ROOT/<class>/<name>/
    name: str | None = None  # None: the UTC time
    resume: str | os.PathLike | None = None  # the run folder to continue
    time_limit_s: float | None = None

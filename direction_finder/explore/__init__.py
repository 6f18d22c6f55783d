"""`hpdirs explore`: a local page with a slider per direction, the image of the current
coefficients, side-by-side sets, class and truncation, exports, and names for directions.

It works offline on a CPU: the page, its script and style ship in this package, and the server
is the standard library's. Use open_explorer() and make_server() from code.
"""

from __future__ import annotations

import dataclasses
import os

from direction_finder.artifacts.runs import open_directions
from direction_finder.compiled import CPU_FORWARD_SECONDS, maybe_compiled
from direction_finder.explore.server import ExploreServer, make_server
from direction_finder.explore.session import Explorer, View
from direction_finder.generators.choice import GeneratorChoice
from direction_finder.generators.weights import ProgressCallback


def open_explorer(
    run_or_file: str | os.PathLike,
    choice: GeneratorChoice | None = None,
    *,
    eta: float = 5.0,
    progress: ProgressCallback | None = None,
    compile: str = "auto",
) -> Explorer:
    """An Explorer of a directions file (or a run's last directions) and its generator, its forward
    compiled where `compile` says so (`auto`: a session of SESSION_IMAGES pictures does not win
    the compile time back on this machine's measurements, so it stays eager; `on` compiles)."""
    choice = choice or GeneratorChoice()
    opened = open_directions(run_or_file, choice, progress)
    generator = maybe_compiled(opened.generator, compile, SESSION_IMAGES, CPU_FORWARD_SECONDS)
    return Explorer(dataclasses.replace(opened, generator=generator), choice, eta)


SESSION_IMAGES = 400  # pictures an exploring session asks for, for `auto`


__all__ = ["ExploreServer", "Explorer", "View", "make_server", "open_explorer"]

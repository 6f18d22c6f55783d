"""`hpdirs explore`: a local page with a slider per direction, the image of the current
coefficients, side-by-side sets, class and truncation, exports, and names for directions.

It works offline on a CPU: the page, its script and style ship in this package, and the server
is the standard library's. Use open_explorer() and make_server() from code.
"""

from __future__ import annotations

import os

from direction_finder.artifacts.runs import open_directions
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
) -> Explorer:
    """An Explorer of a directions file (or a run's last directions) and its generator."""
    choice = choice or GeneratorChoice()
    return Explorer(open_directions(run_or_file, choice, progress), choice, eta)


__all__ = ["ExploreServer", "Explorer", "View", "make_server", "open_explorer"]

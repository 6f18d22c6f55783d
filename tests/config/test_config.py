"""config.py: LearnConfig's ranges and the checks against the generator (directions, layers)."""

import pytest

from direction_finder import SyntheticGenerator
from direction_finder.config import LearnConfig
from direction_finder.errors import UsageError


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": -1}, "`steps` must be an integer from 0 to 1,000,000,000"),
    ({"batch_size": -1}, "`batch_size` must be an integer from 1 to 65,536"),
    ({"num_directions": 0}, "`num_directions` must be an integer from 1"),
    ({"eta": 0.0}, "`eta` must be a finite number > 0"),
    ({"epsilon": -0.1}, "`epsilon` must be a finite number > 0"),
    ({"lr": float("nan")}, "`lr` must be a finite number > 0"),
    ({"k": 1}, "`k` must be an integer from 2 to 1,024"),
    ({"lr": 1e300}, r"`lr` must be at most 10, got 1e\+300"),
    ({"seed": 2**64}, "`seed` must be an integer from 0 to 4,294,967,295"),
    ({"init": "zeros"}, "`init` must be random, axes, sefa, sefa-first, curvature or ganspace"),
    ({"reduction": "none"}, "`reduction` must be mean or max"),
])
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(UsageError, match=message):
        LearnConfig(**kwargs)



def test_too_many_directions_and_unsupported_layers_are_refused():
    g = SyntheticGenerator(z_dim=8)
    with pytest.raises(UsageError, match="`num_directions` 9 is more than z_dim 8"):
        LearnConfig(num_directions=9).resolved(g)
    with pytest.raises(UsageError, match="exposes no intermediate layers"):
        LearnConfig(layer="block3").resolved(g)

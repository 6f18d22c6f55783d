"""hpdirs' library: interpretable GAN latent directions via the Hessian Penalty."""

from direction_finder.artifacts.directions import Directions, load_directions, save_directions
from direction_finder.config import RECIPES, LearnConfig
from direction_finder.errors import DirectionsFileError, HpdirsError, UsageError, WeightsError
from direction_finder.generators import Generator, load_biggan, load_generator
from direction_finder.generators.synthetic import SyntheticGenerator, recovery_score
from direction_finder.learning.learn import learn
from direction_finder.method.orthonormal import canonical_signs, gram_schmidt, orthonormal_directions
from direction_finder.method.penalty import (
    autograd_hessian,
    finite_difference_hessian,
    hessian_penalty,
    hessian_penalty_reference,
    offdiagonal_energy,
    rademacher,
)
from direction_finder.method.warmstart import curvature_directions

# The one place the version is written: pyproject.toml reads it from here when the package is built.
__version__ = "0.1.0"

__all__ = [
    "RECIPES",
    "Directions",
    "DirectionsFileError",
    "Generator",
    "HpdirsError",
    "LearnConfig",
    "SyntheticGenerator",
    "UsageError",
    "WeightsError",
    "__version__",
    "autograd_hessian",
    "canonical_signs",
    "curvature_directions",
    "finite_difference_hessian",
    "gram_schmidt",
    "hessian_penalty",
    "hessian_penalty_reference",
    "learn",
    "load_biggan",
    "load_directions",
    "load_generator",
    "offdiagonal_energy",
    "orthonormal_directions",
    "rademacher",
    "recovery_score",
    "save_directions",
]

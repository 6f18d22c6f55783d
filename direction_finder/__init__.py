"""hpdirs' library: interpretable GAN latent directions via the Hessian Penalty."""

from direction_finder.directions import gram_schmidt
from direction_finder.errors import DirectionsFileError, HpdirsError, UsageError, WeightsError
from direction_finder.generators import Generator, load_biggan
from direction_finder.penalty import (
    autograd_hessian,
    finite_difference_hessian,
    hessian_penalty,
    hessian_penalty_reference,
    offdiagonal_energy,
    rademacher,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "DirectionsFileError",
    "Generator",
    "HpdirsError",
    "UsageError",
    "WeightsError",
    "load_biggan",
    "autograd_hessian",
    "finite_difference_hessian",
    "gram_schmidt",
    "hessian_penalty",
    "hessian_penalty_reference",
    "offdiagonal_energy",
    "rademacher",
]

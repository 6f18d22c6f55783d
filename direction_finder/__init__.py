"""hpdirs' library: interpretable GAN latent directions via the Hessian Penalty.

Each public name is imported from its module when first used: `import direction_finder` (and the
light modules the command line's help reads) must not import torch."""

from __future__ import annotations

from direction_finder.exports import homes, lazy

# The one place the version is written: pyproject.toml reads it from here when the package is built.
__version__ = "0.1.0"

_HOME = homes(
    **{
        "artifacts.directions": ("Directions", "load_directions", "save_directions"),
        "config": ("RECIPES", "LearnConfig"),
        "errors": ("DirectionsFileError", "HpdirsError", "UsageError", "WeightsError"),
        "generators.base": ("Generator",),
        "generators.biggan": ("load_biggan",),
        "generators.families": ("load_generator",),
        "generators.synthetic": ("SyntheticGenerator", "recovery_score"),
        "learning.learn": ("learn",),
        "method.orthonormal": ("canonical_signs", "gram_schmidt", "orthonormal_directions"),
        "method.penalty": ("autograd_hessian", "finite_difference_hessian", "hessian_penalty",
                           "hessian_penalty_reference", "offdiagonal_energy", "rademacher"),
        "method.warmstart": ("curvature_directions",),
    }
)  # fmt: skip
__all__ = sorted([*_HOME, "__version__"])
__getattr__, __dir__ = lazy(__name__, _HOME)

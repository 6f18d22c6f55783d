"""hpdirs' library: interpretable GAN latent directions via the Hessian Penalty.

Each public name is imported from its module when first used: `import direction_finder` (and the
light modules the command line's help reads) must not import torch."""

from __future__ import annotations

import importlib
from typing import Any

# The one place the version is written: pyproject.toml reads it from here when the package is built.
__version__ = "0.1.0"

_HOME = {  # name -> the module that defines it
    **dict.fromkeys(("Directions", "load_directions", "save_directions"), "artifacts.directions"),
    **dict.fromkeys(("RECIPES", "LearnConfig"), "config"),
    **dict.fromkeys(("DirectionsFileError", "HpdirsError", "UsageError", "WeightsError"), "errors"),
    **dict.fromkeys(("Generator",), "generators.base"),
    **dict.fromkeys(("load_biggan",), "generators.biggan"),
    **dict.fromkeys(("load_generator",), "generators.families"),
    **dict.fromkeys(("SyntheticGenerator", "recovery_score"), "generators.synthetic"),
    **dict.fromkeys(("learn",), "learning.learn"),
    **dict.fromkeys(("canonical_signs", "gram_schmidt", "orthonormal_directions"), "method.orthonormal"),
    **dict.fromkeys(
        ("autograd_hessian", "finite_difference_hessian", "hessian_penalty", "hessian_penalty_reference",
         "offdiagonal_energy", "rademacher"),
        "method.penalty",
    ),
    **dict.fromkeys(("curvature_directions",), "method.warmstart"),
}  # fmt: skip
__all__ = sorted([*_HOME, "__version__"])


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value  # found once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})

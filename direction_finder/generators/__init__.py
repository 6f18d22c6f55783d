"""Generators hpdirs can learn directions for (anything satisfying the Generator protocol): the
protocol and its capabilities (base), the built-in families (families), what a user asked for
(choice). Each name below is imported from its module when first used, so that importing a light
part (the catalogue of names, a GeneratorChoice) does not import torch."""

from __future__ import annotations

import importlib
from typing import Any

_HOME = {  # name -> the module that defines it
    **dict.fromkeys(
        ("Checkpointable", "ClassConditional", "Described", "Factorisable", "Fingerprinted", "Generator",
         "KnownTruth", "Layered", "LayerwiseLatent", "ZLayered", "describe", "display_name", "resolve_device",
         "sefa", "sefa_all", "sefa_of", "working_dtype"),
        "base",
    ),
    **dict.fromkeys(("BigGANGenerator", "load_biggan"), "biggan"),
    **dict.fromkeys(("DEFAULT_CLASS", "DEFAULT_MODEL", "DEFAULT_TRUNCATION"), "catalogue"),
    **dict.fromkeys(("ImageNetClass", "resolve_class", "search_classes"), "imagenet"),
    **dict.fromkeys(("SyntheticGenerator",), "synthetic"),
    **dict.fromkeys(("ProgressCallback",), "weights"),
    **dict.fromkeys(("available_models", "generator_for_metadata", "load_generator"), "families"),
    **dict.fromkeys(("GeneratorChoice", "class_slug"), "choice"),
}  # fmt: skip
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value  # found once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})

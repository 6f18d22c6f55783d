"""Generators hpdirs can learn directions for (anything satisfying the Generator protocol): the
protocol and its capabilities (base), the built-in families (families), what a user asked for
(choice). Each name below is imported from its module when first used, so that importing a light
part (the catalogue of names, a GeneratorChoice) does not import torch."""

from __future__ import annotations

from direction_finder.exports import homes, lazy

_HOME = homes(
    base=("Checkpointable", "ClassConditional", "Described", "Factorisable", "Fingerprinted", "Generator",
          "KnownTruth", "Layered", "LayerwiseLatent", "ZLayered", "describe", "display_name", "resolve_device",
          "sefa", "sefa_all", "sefa_of", "working_dtype"),
    biggan=("BigGANGenerator", "load_biggan"),
    catalogue=("DEFAULT_CLASS", "DEFAULT_MODEL", "DEFAULT_TRUNCATION"),
    imagenet=("ImageNetClass", "resolve_class", "search_classes"),
    synthetic=("SyntheticGenerator",),
    weights=("ProgressCallback",),
    families=("available_models", "generator_for_metadata", "load_generator"),
    choice=("GeneratorChoice", "class_slug"),
)  # fmt: skip
__all__ = sorted(_HOME)
__getattr__, __dir__ = lazy(__name__, _HOME)

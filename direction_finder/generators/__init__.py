"""Generators hpdirs can learn directions for (anything satisfying the Generator protocol)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch

from direction_finder.errors import HpdirsWarning
from direction_finder.generators.base import Generator, resolve_device
from direction_finder.generators.biggan import DEFAULT_MODEL, BigGANGenerator, load_biggan
from direction_finder.generators.imagenet import ImageNetClass, resolve_class, search_classes
from direction_finder.generators.synthetic import SyntheticGenerator, parse_synthetic


def load_generator(
    model: str | None = None,
    class_: str | int | None = "golden_retriever",
    truncation: float = 0.4,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    **kwargs: Any,
) -> Any:
    """A generator by model name: biggan-deep-128/-256/-512 (see load_biggan) or
    `synthetic[:z_dim=..,factors=..,size=..,seed=..]` (known true directions; ignores class)."""
    if model is not None and model.split(":", 1)[0] == "synthetic":
        return parse_synthetic(model, resolve_device(device))
    if class_ is None:
        from direction_finder.errors import UsageError

        raise UsageError("no class given; pass --class (a name, index or WordNet id)")
    return load_biggan(model, class_, truncation, weights, device, **kwargs)


def generator_for_metadata(
    metadata: dict[str, Any],
    *,
    model: str | None = None,
    class_: str | int | None = None,
    truncation: float | None = None,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    source: str = "the directions file",
    **kwargs: Any,
) -> Any:
    """The generator a directions file was learned with, from its metadata; each part overridable.

    A file whose metadata lacks the model or class needs them given (UsageError says so).
    """
    from pathlib import Path

    from direction_finder.errors import UsageError
    from direction_finder.generators.weights import MODEL_NAMES

    name = model or metadata.get("model") or None
    if name is None:
        raise UsageError(f"{source} does not say which model it was learned with; pass --model (and --class)")
    if not isinstance(name, str):
        raise UsageError(f"{source} names the model {name!r}, which is not a model name; pass --model")
    synthetic = name.split(":", 1)[0] == "synthetic"
    if class_ is None and not synthetic:
        index = metadata.get("class_index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise UsageError(f"{source} does not say which class it was learned for; pass --class")
        class_ = index
    if truncation is None:
        stored = metadata.get("truncation") or 0.4
        if isinstance(stored, bool) or not isinstance(stored, (int, float)):
            raise UsageError(f"{source} records truncation {stored!r}, which is not a number; pass --truncation")
        truncation = float(stored)
    implicit = weights is None and bool(metadata.get("weights")) and not synthetic
    if implicit:
        weights = Path(str(metadata["weights"]))
        if not weights.exists():
            raise UsageError(f"{source} was learned with weights from {weights}, which is gone; pass --weights")
    if weights is not None and model is None and name not in MODEL_NAMES:
        name = None  # a custom architecture: its config.json decides
    generator = load_generator(name, class_, truncation, weights, device, **kwargs)
    recorded = metadata.get("weights_fingerprint")
    found = getattr(generator, "weights_fingerprint", "")
    if recorded and found and recorded != found:
        where = getattr(getattr(generator, "weights", None), "folder", weights)
        message = (f"the weights in {where} are not the ones {source} was learned with (fingerprint {found}, "
                   f"recorded {recorded})")
        if implicit:
            raise UsageError(f"{message}; pass --weights with the original folder, or this one to use it anyway")
        warnings.warn(f"{message}; using them as you asked", HpdirsWarning, stacklevel=2)
    return generator


def class_slug(generator: Any) -> str:
    """The folder name runs of this generator go under: outputs/<slug>/<run>/."""
    info = getattr(generator, "class_info", None)
    return info.slug if info is not None else "synthetic" if isinstance(generator, SyntheticGenerator) else "custom"


__all__ = [
    "DEFAULT_MODEL", "BigGANGenerator", "Generator", "SyntheticGenerator", "class_slug", "generator_for_metadata", "load_generator", "ImageNetClass", "load_biggan", "resolve_class", "resolve_device",
    "search_classes",
]

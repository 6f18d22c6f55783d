"""Generators hpdirs can learn directions for (anything satisfying the Generator protocol)."""

from __future__ import annotations

import os
from typing import Any

import torch

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


def class_slug(generator: Any) -> str:
    """The folder name runs of this generator go under: outputs/<slug>/<run>/."""
    info = getattr(generator, "class_info", None)
    return info.slug if info is not None else "synthetic" if isinstance(generator, SyntheticGenerator) else "custom"


__all__ = [
    "DEFAULT_MODEL", "BigGANGenerator", "Generator", "SyntheticGenerator", "class_slug", "load_generator", "ImageNetClass", "load_biggan", "resolve_class", "resolve_device",
    "search_classes",
]

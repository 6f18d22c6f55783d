"""The built-in generator families, one table, and the one place that turns a model name (with a
class, truncation, weights and device) into a generator, new or as a file records it.

A family is one row: the names it claims, what `hpdirs models` lists, and one function that
builds it; a new built-in family is one function and one row. Plug-ins (`module:factory`, or an
installed `hpdirs.generators` entry point) are found by plugins.py, the way a family row is.
Light on purpose (no torch at import): `hpdirs models` reads the table; each row's function imports
its generator when called.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from direction_finder.errors import HpdirsWarning, UsageError
from direction_finder.generators.catalogue import (
    DEFAULT_CLASS,
    DEFAULT_TRUNCATION,
    MODEL_NAMES,
    TRUTH_ABOUT,
    TRUTH_DEFAULTS,
    TRUTH_PREFIX,
    installed_plugins,
)

if TYPE_CHECKING:
    import torch

    from direction_finder.generators.base import Generator

# (model name, class, truncation, weights, device, keyword arguments the family takes) -> generator
Build = Callable[..., "Generator"]


@dataclass(frozen=True)
class Family:
    """One built-in kind of generator."""

    name: str
    claims: Callable[[str | None], bool]  # whether a `model` names this family (None: no name given)
    listed: tuple[tuple[str, str], ...]  # (what `--model` takes, what it is) for `hpdirs models`
    build: Build
    # built from its name alone: no ImageNet class, no weights folder, nothing to download
    self_contained: bool = False


def _head(model: str | None) -> str:
    return (model or "").split(":", 1)[0]


def _biggan(model: str | None, class_: Any, truncation: float, weights: Any, device: Any, **kwargs: Any) -> Generator:
    from direction_finder.generators.biggan import load_biggan

    if class_ is None:
        raise UsageError("no class given; pass `class_` (a name, index or WordNet id)")
    return load_biggan(model, class_, truncation, weights, device, **kwargs)


def _synthetic(model: str | None, class_: Any, truncation: float, weights: Any, device: Any, **_: Any) -> Generator:
    from direction_finder.generators.base import resolve_device
    from direction_finder.generators.synthetic import parse_synthetic

    assert model is not None
    return parse_synthetic(model, resolve_device(device))


def _truth(model: str | None, class_: Any, truncation: float, weights: Any, device: Any, **_: Any) -> Generator:
    from direction_finder.generators.base import resolve_device
    from direction_finder.generators.truth import parse_truth

    assert model is not None
    return parse_truth(model, resolve_device(device))


FAMILIES: tuple[Family, ...] = (
    Family(
        "synthetic",
        lambda model: _head(model) == "synthetic",
        (("synthetic[:z_dim=8,factors=4,size=8,seed=0]", "known true directions, offline"),),
        _synthetic,
        self_contained=True,
    ),
    Family(
        "truth",
        lambda model: _head(model) in {TRUTH_PREFIX + kind for kind in TRUTH_ABOUT},
        tuple(
            (f"{TRUTH_PREFIX}{kind}[:z_dim={TRUTH_DEFAULTS[kind][0]},seed=0]", f"known factors: {about}")
            for kind, about in TRUTH_ABOUT.items()
        ),
        _truth,
        self_contained=True,
    ),
    # last: a model left out is BigGAN-deep (the default, or what a weights folder's config.json says)
    Family(
        "biggan",
        lambda model: model is None or bool(re.fullmatch(r"biggan-deep-\d+", model)),
        tuple((name, "BigGAN-deep, published weights (cache, download or --weights)") for name in MODEL_NAMES),
        _biggan,
    ),
)


def family_of(model: str | None) -> Family | None:
    """The built-in family a model name belongs to (None: a plug-in, or no model hpdirs knows)."""
    return next((family for family in FAMILIES if family.claims(model)), None)


def load_generator(
    model: str | None = None,
    class_: str | int | None = DEFAULT_CLASS,
    truncation: float = DEFAULT_TRUNCATION,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    *,
    model_args: Mapping[str, Any] | None = None,
    output_range: tuple[float, float] | None = None,
    **kwargs: Any,
) -> Generator:
    """A generator by model name: a built-in family's (biggan-deep-128/-256/-512: see load_biggan;
    `synthetic[:z_dim=..,factors=..,size=..,seed=..]` and `truth-*`: known true directions, no
    class), or a plug-in: `module.path:factory` or an installed `hpdirs.generators` entry point,
    called with model_args (see plugins)."""
    from direction_finder.generators.plugins import is_plugin, load_plugin

    family = family_of(model)
    if family is None and is_plugin(model):
        assert model is not None
        return load_plugin(model, model_args, device, output_range)
    if model_args or output_range:
        raise UsageError("`model_args` and `output_range` are for plug-in generators (`model` module:factory)")
    if family is None:
        family = FAMILIES[-1]  # BigGAN-deep's loader names the models it takes, in its error
    return family.build(model, class_, truncation, weights, device, **kwargs)


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
) -> Generator:
    """The generator a directions file was learned with, from its metadata; each part overridable.

    A file whose metadata lacks the model or class needs them given (UsageError says so). A file
    is data: a `module:factory` it records is imported only when the caller names it again as
    `model` (built-in families and installed plug-ins need no such word).
    """
    from direction_finder.generators.base import Fingerprinted
    from direction_finder.generators.biggan import BigGANGenerator
    from direction_finder.generators.plugins import is_plugin, parse_output_range, refuse_recorded_factory

    name = model or metadata.get("model") or None
    if model is None and isinstance(name, str):
        refuse_recorded_factory(name, source)
    if is_plugin(name) and family_of(name) is None:  # a plug-in: its recorded arguments and range, unless given
        assert isinstance(name, str)
        if kwargs.get("model_args") is None:
            kwargs["model_args"] = metadata.get("model_args") or {}
        if kwargs.get("output_range") is None and metadata.get("output_range"):
            kwargs["output_range"] = parse_output_range(metadata["output_range"])
        return load_generator(name, None, 1.0, None, device, **kwargs)
    if name is None:
        raise UsageError(f"{source} does not say which model it was learned with; pass `model` (and `class_`)")
    if not isinstance(name, str):
        raise UsageError(f"{source} names the model {name!r}, which is not a model name; pass `model`")
    family = family_of(name)
    if model is None and family is None:
        raise UsageError(f"{source} names the model {name!r}, which hpdirs does not know; pass `model`")
    self_contained = family is not None and family.self_contained
    if class_ is None and not self_contained:
        index = metadata.get("class_index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise UsageError(f"{source} does not say which class it was learned for; pass `class_`")
        class_ = index
    if truncation is None:
        stored = metadata.get("truncation") or DEFAULT_TRUNCATION
        if isinstance(stored, bool) or not isinstance(stored, (int, float)):
            raise UsageError(f"{source} records truncation {stored!r}, which is not a number; pass `truncation`")
        truncation = float(stored)
    implicit = weights is None and bool(metadata.get("weights")) and not self_contained
    if implicit:
        weights = Path(str(metadata["weights"]))
        if not weights.exists():
            raise UsageError(f"{source} was learned with weights from {weights}, which is gone; pass `weights`")
    if weights is not None and model is None and name not in MODEL_NAMES:
        name = None  # a custom architecture: its config.json decides
    generator = load_generator(name, class_, truncation, weights, device, **kwargs)
    recorded = metadata.get("weights_fingerprint")
    found = generator.weights_fingerprint if isinstance(generator, Fingerprinted) else ""
    if recorded and found and recorded != found:
        where = generator.weights.folder if isinstance(generator, BigGANGenerator) and generator.weights else weights
        message = (
            f"the weights in {where} are not the ones {source} was learned with (fingerprint {found}, "
            f"recorded {recorded})"
        )
        if implicit:
            raise UsageError(f"{message}; pass `weights` with the original folder, or this one to use it anyway")
        warnings.warn(f"{message}; using them as you asked", HpdirsWarning, stacklevel=2)
    return generator


def available_models() -> list[tuple[str, str, str]]:
    """(name for --model, where it comes from, what it is) of every model hpdirs can load here:
    the built-in families' (BigGAN-deep first), the installed plug-ins, your own."""
    ordered = sorted(FAMILIES, key=lambda family: family.name != "biggan")
    models = [(name, "built-in", what) for family in ordered for name, what in family.listed]
    models += [(name, "plug-in", spec) for name, spec in sorted(installed_plugins().items())]
    models.append(("module.path:factory", "any", "your own factory returning a Generator (--model-arg key=value)"))
    return models

"""Generators hpdirs can learn directions for (anything satisfying the Generator protocol), and
the one place that turns what a user asked for (model, class, truncation, weights, device) into one."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from direction_finder.errors import HpdirsWarning, UsageError
from direction_finder.generators.base import (
    Checkpointable,
    ClassConditional,
    Described,
    Factorisable,
    Fingerprinted,
    Generator,
    KnownTruth,
    Layered,
    LayerwiseLatent,
    ZLayered,
    describe,
    display_name,
    resolve_device,
    sefa,
    sefa_all,
    sefa_of,
    working_dtype,
)
from direction_finder.generators.biggan import DEFAULT_MODEL, BigGANGenerator, load_biggan
from direction_finder.generators.imagenet import ImageNetClass, resolve_class, search_classes
from direction_finder.generators.plugins import (
    installed_plugins,
    is_plugin,
    load_plugin,
    parse_model_args,
    parse_output_range,
    refuse_recorded_factory,
)
from direction_finder.generators.synthetic import SyntheticGenerator, parse_synthetic
from direction_finder.generators.truth import DEFAULTS, PREFIX, TRUTH_ABOUT, is_truth_model, parse_truth
from direction_finder.generators.weights import MODEL_NAMES, ProgressCallback

DEFAULT_CLASS = "golden_retriever"
DEFAULT_TRUNCATION = 0.4


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
) -> Any:
    """A generator by model name: biggan-deep-128/-256/-512 (see load_biggan),
    `synthetic[:z_dim=..,factors=..,size=..,seed=..]` (known true directions; ignores class), or
    a plug-in: `module.path:factory` or an installed `hpdirs.generators` entry point, called with
    model_args (see plugins)."""
    if model is not None and model.split(":", 1)[0] == "synthetic":
        return parse_synthetic(model, resolve_device(device))
    if is_truth_model(model):
        assert model is not None
        return parse_truth(model, resolve_device(device))
    if is_plugin(model):
        assert model is not None
        return load_plugin(model, model_args, device, output_range)
    if model_args or output_range:
        raise UsageError("`model_args` and `output_range` are for plug-in generators (`model` module:factory)")
    if class_ is None:
        raise UsageError("no class given; pass `class_` (a name, index or WordNet id)")
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

    A file whose metadata lacks the model or class needs them given (UsageError says so). A file
    is data: a `module:factory` it records is imported only when the caller names it again as
    `model` (built-in models and installed plug-ins need no such word).
    """
    name = model or metadata.get("model") or None
    if model is None and isinstance(name, str):
        refuse_recorded_factory(name, source)
    if is_plugin(name):  # a plug-in: its recorded arguments and range, unless given again
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
    synthetic = name.split(":", 1)[0] == "synthetic" or is_truth_model(name)  # built in, classless, weightless
    if model is None and not synthetic and not re.fullmatch(r"biggan-deep-\d+", name):
        raise UsageError(f"{source} names the model {name!r}, which hpdirs does not know; pass `model`")
    if class_ is None and not synthetic:
        index = metadata.get("class_index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise UsageError(f"{source} does not say which class it was learned for; pass `class_`")
        class_ = index
    if truncation is None:
        stored = metadata.get("truncation") or DEFAULT_TRUNCATION
        if isinstance(stored, bool) or not isinstance(stored, (int, float)):
            raise UsageError(f"{source} records truncation {stored!r}, which is not a number; pass `truncation`")
        truncation = float(stored)
    implicit = weights is None and bool(metadata.get("weights")) and not synthetic
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


def class_slug(generator: Any) -> str:
    """The folder name runs of this generator go under: OUT/<slug>/<run>/ (its class name)."""
    name = str(describe(generator).get("class_name") or "")
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "custom"


def available_models() -> list[tuple[str, str, str]]:
    """(name for --model, where it comes from, what it is) of every model hpdirs can load here."""
    models = [
        (name, "built-in", "BigGAN-deep, published weights (cache, download or --weights)") for name in MODEL_NAMES
    ]
    models.append(("synthetic[:z_dim=8,factors=4,size=8,seed=0]", "built-in", "known true directions, offline"))
    models += [
        (f"{PREFIX}{kind}[:z_dim={DEFAULTS[kind][0]},seed=0]", "built-in", f"known factors: {about}")
        for kind, about in TRUTH_ABOUT.items()
    ]
    models += [(name, "plug-in", spec) for name, spec in sorted(installed_plugins().items())]
    models.append(("module.path:factory", "any", "your own factory returning a Generator (--model-arg key=value)"))
    return models


@dataclass(frozen=True, kw_only=True)
class GeneratorChoice:
    """What a user asked for. A field left None means the default for a new run, or what a
    directions file or run records when one is opened. Built by keyword only: eight fields of
    similar types must not shift when one is added."""

    model: str | None = None
    class_: str | int | None = None
    truncation: float | None = None
    weights: str | os.PathLike | None = None
    device: str | torch.device = "auto"
    offline: bool | None = None  # None: $HPDIRS_OFFLINE decides
    model_args: Mapping[str, Any] | None = None  # a plug-in's factory arguments (None: as recorded)
    output_range: tuple[float, float] | None = None  # a plug-in's output range, mapped to [-1, 1]

    @classmethod
    def parsed(
        cls,
        *,
        model: str | None = None,
        class_: str | int | None = None,
        truncation: float | None = None,
        weights: str | os.PathLike | None = None,
        device: str | torch.device = "auto",
        offline: bool = False,
        model_args: Iterable[str] | None = None,
        output_range: str | None = None,
    ) -> GeneratorChoice:
        """The choice from command-line text: `key=value` plug-in arguments and a `low,high`
        output range parsed; `offline` False leaves it to $HPDIRS_OFFLINE."""
        return cls(
            model=model,
            class_=class_,
            truncation=truncation,
            weights=weights,
            device=device,
            offline=offline or None,
            model_args=parse_model_args(model_args) if model_args else None,
            output_range=parse_output_range(output_range),
        )

    def _plugin(self) -> dict[str, Any]:
        given = {"model_args": self.model_args, "output_range": self.output_range}
        return {k: v for k, v in given.items() if v is not None}

    def load(self, progress: ProgressCallback | None = None) -> Any:
        """The generator for a new run: the defaults filled in."""
        if is_plugin(self.model):
            return load_generator(self.model, None, 1.0, None, self.device, **self._plugin())
        return load_generator(
            self.model,
            self.class_ if self.class_ is not None else DEFAULT_CLASS,
            self.truncation if self.truncation is not None else DEFAULT_TRUNCATION,
            self.weights,
            self.device,
            offline=self.offline,
            progress=progress,
            **self._plugin(),
        )

    def for_metadata(self, metadata: dict[str, Any], source: str, progress: ProgressCallback | None = None) -> Any:
        """The generator a file or run records, with what is set here taking precedence."""
        return generator_for_metadata(
            metadata,
            model=self.model,
            class_=self.class_,
            truncation=self.truncation,
            weights=self.weights,
            device=self.device,
            source=source,
            offline=self.offline,
            progress=progress,
            **self._plugin(),
        )


__all__ = [
    "DEFAULT_CLASS",
    "DEFAULT_MODEL",
    "DEFAULT_TRUNCATION",
    "BigGANGenerator",
    "Checkpointable",
    "ClassConditional",
    "Described",
    "Factorisable",
    "Fingerprinted",
    "Generator",
    "GeneratorChoice",
    "ImageNetClass",
    "KnownTruth",
    "Layered",
    "LayerwiseLatent",
    "ProgressCallback",
    "SyntheticGenerator",
    "ZLayered",
    "class_slug",
    "describe",
    "display_name",
    "generator_for_metadata",
    "load_biggan",
    "load_generator",
    "resolve_class",
    "resolve_device",
    "search_classes",
    "sefa",
    "sefa_all",
    "sefa_of",
    "working_dtype",
]

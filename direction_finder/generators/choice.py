"""What a user asked for (model, class, truncation, weights, device) as one value, turned into a
generator for a new run or for what a file records. Light on purpose (no torch at import): every
command's options build one before anything heavy is imported."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from direction_finder.generators.catalogue import DEFAULT_CLASS, DEFAULT_TRUNCATION
from direction_finder.generators.families import generator_for_metadata, load_generator

if TYPE_CHECKING:
    import torch

    from direction_finder.generators.base import Generator
    from direction_finder.generators.weights import ProgressCallback


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
        from direction_finder.generators.plugins import parse_model_args, parse_output_range

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

    def load(self, progress: ProgressCallback | None = None) -> Generator:
        """The generator for a new run: the defaults filled in."""
        from direction_finder.generators.families import family_of
        from direction_finder.generators.plugins import is_plugin

        if family_of(self.model) is None and is_plugin(self.model):
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

    def for_metadata(
        self, metadata: dict[str, Any], source: str, progress: ProgressCallback | None = None
    ) -> Generator:
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


def class_slug(generator: Generator) -> str:
    """The folder name runs of this generator go under: OUT/<slug>/<run>/ (its class name)."""
    from direction_finder.generators.base import describe

    name = str(describe(generator).get("class_name") or "")
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "custom"

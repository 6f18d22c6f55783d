"""The published folder format of BigGAN-deep weights, read strictly: config.json's fields of
the types the architecture needs, and pytorch_model.bin as a state dict of exactly that
architecture's tensors (loaded with weights_only=True: nothing in a file can run code)."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from direction_finder.errors import WeightsError
from direction_finder.files import read_json

# config.json of a BigGAN-deep: each field and the types it may have (bool is not an int here)
CONFIG_FIELDS: dict[str, tuple[type, ...]] = {
    "output_dim": (int,), "z_dim": (int,), "class_embed_dim": (int,), "channel_width": (int,),
    "num_classes": (int,), "layers": (list,), "attention_layer_position": (int,), "eps": (float, int),
    "n_stats": (int,),
}  # fmt: skip


def check_config(config: Any, source: str) -> dict[str, Any]:
    """A BigGAN-deep config.json's object, every field of the type the architecture needs (a
    WeightsError naming the first that is not); fields it lacks take the package's defaults."""
    if not isinstance(config, dict):
        raise WeightsError(f"{source} is not a BigGAN config (expected a JSON object); pass the right `weights`")
    for key, kinds in CONFIG_FIELDS.items():
        if key not in config:
            continue
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            kind = {int: "an integer", float: "a number", list: "a list"}[kinds[0]]
            raise WeightsError(f"{source}: {key} is {value!r}, not {kind}; pass the right `weights`")
        if isinstance(value, int) and key not in ("attention_layer_position", "eps") and value < 1:
            raise WeightsError(f"{source}: {key} is {value!r}, not a positive integer; pass the right `weights`")
    layers = config.get("layers", [])
    for layer in layers:
        if (not isinstance(layer, list) or len(layer) != 3 or not isinstance(layer[0], bool)
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in layer[1:])):  # fmt: skip
            raise WeightsError(
                f"{source}: layers holds {layer!r}, not [upsample (bool), in (int), out (int)]; "
                "pass the right `weights`"
            )
    return config


def read_config(path: Path) -> dict[str, Any]:
    """config.json, parsed and checked (check_config)."""
    try:
        config = read_json(path, "config.json of a generator")
    except (OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:160]
        raise WeightsError(f"{path} is not valid JSON ({detail}); re-download it or pass the right `weights`") from None
    return check_config(config, str(path))


def build_biggan(config: Mapping[str, Any], source: str = "config") -> Any:
    """A BigGAN-deep (pytorch-pretrained-biggan's module) with the architecture of `config`."""
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    try:
        return BigGAN(BigGANConfig.from_dict(dict(config)))
    except Exception as exc:  # a config the architecture cannot be built from
        raise WeightsError(f"{source} does not describe a BigGAN-deep ({type(exc).__name__}: {exc})") from None


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """torch.load with weights_only=True: nothing in the file can execute code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path} is damaged, truncated or not a weights file ({first}); delete it and "
            "download again, or pass `weights` FOLDER"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors; pass the right `weights`")
    return state


def load_exactly(model: Any, state: dict[str, Tensor], path: Path) -> None:
    """Load `state` into `model`: exactly its keys, each of its shape (a WeightsError otherwise)."""
    expected, given = set(model.state_dict()), set(state)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:

        def names(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

        parts = ([f"missing keys: {names(missing)}"] if missing else []) + (
            [f"unexpected keys: {names(unexpected)}"] if unexpected else []
        )
        raise WeightsError(f"{path} does not match its config.json ({'; '.join(parts)}); pass the right `weights`")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise WeightsError(f"{path} does not match its config.json ({detail[:300]})") from None

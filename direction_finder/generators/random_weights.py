"""Random BigGAN-deep models in the published folder format (config.json + pytorch_model.bin):
what the tests, the benchmarks and an offline demo load instead of the published weights, which
are never downloaded by them. Every file goes through the same loading code as real weights.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from direction_finder.generators.imagenet import NUM_CLASSES
from direction_finder.generators.published import build_biggan
from direction_finder.generators.weights import CONFIG_NAME, WEIGHTS_NAME


def tiny_config(z_dim: int = 16, channel_width: int = 4, resolution: int = 32) -> dict[str, Any]:
    """A BigGAN-deep config small enough for unit tests (resolution 16, 32 or 64 px).

    Consecutive block widths halve or stay equal (the residual drops half the channels), from
    16 * channel_width at 4x4 down to channel_width before the RGB layer.
    """
    ups = {16: 2, 32: 3, 64: 4}[resolution]
    widths = [16, 8, 4, 2, 1]
    layers = [[i < ups, widths[i], widths[i + 1]] for i in range(4)]
    return {
        "output_dim": resolution,
        "z_dim": z_dim,
        "class_embed_dim": z_dim,
        "channel_width": channel_width,
        "num_classes": NUM_CLASSES,
        "layers": layers,
        "attention_layer_position": 2,
        "eps": 1e-4,
        "n_stats": 51,
    }


def full_config(resolution: int = 128) -> dict[str, Any]:
    """The architecture of the published biggan-deep-{128,256,512} (package defaults + resolution)."""
    from pytorch_pretrained_biggan import BigGANConfig

    config = BigGANConfig().to_dict()
    if resolution in (256, 512):
        config["layers"] = [
            [False, 16, 16],
            [True, 16, 16],
            [False, 16, 16],
            [True, 16, 8],
            [False, 8, 8],
            [True, 8, 8],
            [False, 8, 4],
            [True, 4, 4],
            [False, 4, 2],
            [True, 2, 2],
            [False, 2, 1],
            [True, 1, 1],
        ]
        if resolution == 512:
            # one more block pair at 1 x channel_width, as the 256 px pattern continues (BigGAN-deep,
            # Brock et al. 2019, Table 9); not checked against the published config.json, which no
            # machine here can download: memory and time measured on it are the architecture's
            config["layers"] += [[False, 1, 1], [True, 1, 1]]
        config["attention_layer_position"] = 8  # self-attention at 64 x 64
    elif resolution != 128:
        raise ValueError("full_config knows 128, 256 and 512 px")
    config["output_dim"] = resolution
    config["layers"] = [list(layer) for layer in config["layers"]]
    return config


@torch.no_grad()
def random_biggan_state(config: Mapping[str, Any], seed: int = 0) -> dict[str, Tensor]:
    """A random state dict that loads and generates finite images.

    Fixes what a freshly constructed package model gets wrong: the final BatchNorm weight/bias
    are uninitialised memory, and random spectral-norm u, v can make u^T W v ~ 0 (inf/NaN
    outputs); here u, v are W's top singular pair (randomised SVD), as in converged published weights. Every
    truncation grid index gets distinct BatchNorm statistics, so selecting the wrong one shows.
    """
    torch.manual_seed(seed)
    model = build_biggan(config)
    g = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if hasattr(module, "weight_orig"):
            w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)  # (out, in * kh * kw)
            u, _, v = torch.svd_lowrank(w, q=6, niter=8)  # randomised: an exact SVD is slow at 128 px
            module.weight_u.copy_(u[:, 0])
            module.weight_v.copy_(v[:, 0])
        if hasattr(module, "running_means"):
            module.running_means.copy_(0.1 * torch.randn(module.running_means.shape, generator=g))
            module.running_vars.copy_(0.75 + 0.5 * torch.rand(module.running_vars.shape, generator=g))
            if not module.conditional:
                module.weight.copy_(1 + 0.1 * torch.randn(module.weight.shape, generator=g))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=g))
        if hasattr(module, "gamma"):
            module.gamma.fill_(0.5)
    return model.state_dict()


def save_random_biggan(folder: str | os.PathLike, config: Mapping[str, Any] | None = None, seed: int = 0) -> Path:
    """Write a random BigGAN-deep as config.json + pytorch_model.bin (the published format)."""
    config = dict(config or tiny_config())
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=2))
    torch.save(random_biggan_state(config, seed), folder / WEIGHTS_NAME)
    return folder

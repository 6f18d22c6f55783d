"""BigGAN-deep as a Generator: frozen, in eval mode, exact, with one class and truncation bound in.

Works around the traps of pytorch-pretrained-biggan 0.1.1: the model is loaded
from config.json + pytorch_model.bin ourselves with strict key checking, put in eval mode, its
spectral norms are folded into plain weights once (no power iteration at call time), and the
BatchNorm statistics of the truncation are selected by nearest grid index instead of the
package's float `modf`, which picks the neighbouring statistics for 0.14, 0.28, 0.56, 0.58, 0.94.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from direction_finder.errors import HpdirsWarning, UsageError, WeightsError
from direction_finder.generators.base import resolve_device, sefa
from direction_finder.generators.catalogue import DEFAULT_MODEL, MODEL_NAMES
from direction_finder.generators.imagenet import NUM_CLASSES, ImageNetClass, resolve_class
from direction_finder.generators.published import build_biggan, load_exactly, read_config, read_state_dict
from direction_finder.generators.weights import (
    Fetch,
    ProgressCallback,
    WeightsFiles,
    check_model_name,
    discard_cached,
    resolve_weights,
)

# pytorch-pretrained-biggan's BigGAN: an nn.Module whose submodules (generator, gen_z, layers,
# embeddings, config) the package leaves untyped.
BigGANModule = Any
GRID_TOLERANCE = 1e-6  # |truncation * steps - nearest integer| below this counts as on the grid


def truncation_grid(truncation: float, n_stats: int = 51) -> tuple[int, float]:
    """Validate a truncation in (0, 1] and return (index of its BatchNorm statistics, value used).

    The statistics exist on a grid of step 1 / (n_stats - 1) (0.02 for the published models).
    Off-grid values are snapped to the nearest grid value (never 0) with an HpdirsWarning: the
    statistics between grid points were never measured.
    """
    if isinstance(truncation, bool) or not isinstance(truncation, (int, float)) or not math.isfinite(truncation):
        raise UsageError(f"truncation must be a number in (0, 1], got {truncation!r}")
    if not 0 < truncation <= 1:
        raise UsageError(f"truncation must be in (0, 1], got {truncation}; 0.4 is a common choice")
    steps = n_stats - 1
    position = truncation * steps
    index = min(max(round(position), 1), steps)
    used = round(index / steps, 12)
    if abs(position - index) > GRID_TOLERANCE:
        warnings.warn(
            f"truncation {truncation} is off the {1 / steps:g} grid of BigGAN's BatchNorm statistics; using {used:g}",
            HpdirsWarning,
            stacklevel=2,
        )
    return index, used


class SelectedStatsBatchNorm(nn.Module):
    """A BigGANBatchNorm with the statistics of one truncation grid index selected once."""

    mean: Tensor  # (C,), a buffer
    var: Tensor  # (C,), a buffer

    def __init__(self, source: Any, index: int) -> None:
        super().__init__()
        self.conditional = bool(source.conditional)
        self.eps = float(source.eps)
        self.register_buffer("mean", source.running_means[index].clone())  # (C,)
        self.register_buffer("var", source.running_vars[index].clone())  # (C,)
        if self.conditional:
            self.scale, self.offset = source.scale, source.offset  # Linear(cond_dim -> C)
        else:
            self.weight, self.bias = source.weight, source.bias  # (C,)

    def forward(self, x: Tensor, truncation: float | None = None, condition_vector: Tensor | None = None) -> Tensor:
        # x: (n, C, H, W); condition_vector: (n, 2 * z_dim)
        if not self.conditional:
            return F.batch_norm(x, self.mean, self.var, self.weight, self.bias, False, 0.0, self.eps)
        mean = self.mean[None, :, None, None]
        std = torch.sqrt(self.var + self.eps)[None, :, None, None]
        gain = 1 + self.scale(condition_vector)[:, :, None, None]  # (n, C, 1, 1)
        shift = self.offset(condition_vector)[:, :, None, None]
        return (x - mean) / std * gain + shift


def _select_statistics(module: nn.Module, index: int) -> None:
    from pytorch_pretrained_biggan.model import BigGANBatchNorm

    for name, child in list(module.named_children()):
        if isinstance(child, BigGANBatchNorm):
            setattr(module, name, SelectedStatsBatchNorm(child, index))
        else:
            _select_statistics(child, index)


def _fold_spectral_norms(model: nn.Module) -> None:
    """Replace each spectral-norm hook by the plain weight W / (u^T W v) it computes in eval mode."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, SpectralNorm):
                torch.nn.utils.remove_spectral_norm(module, name=hook.name)


class BigGANGenerator:
    """A frozen BigGAN-deep bound to one ImageNet class and truncation (the Generator protocol)."""

    def __init__(
        self,
        model: BigGANModule,
        *,
        name: str,
        class_info: ImageNetClass,
        truncation: float,
        weights: WeightsFiles | None,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.model = model
        self.name = name
        self.class_info = class_info
        self.truncation = truncation
        self.weights = weights
        self.device = device
        self.dtype = dtype  # float32; float64 only to study rounding (tests), at several times the cost
        self.checkpointing = False  # activation checkpointing under autograd (set_checkpointing)
        self.weights_fingerprint = weights.fingerprint() if weights is not None else ""
        self.z_dim = int(model.config.z_dim)
        self.resolution = int(model.config.output_dim)
        # the layers z conditions: the first linear layer (gen_z), then every GenBlock
        self.latent_layers = 1 + sum(1 for m in model.generator.layers if hasattr(m, "bn_0"))
        # The class embedding: one_hot(class) @ W^T is exactly column `index` of W (z_dim, 1000).
        self._embedding = model.embeddings.weight[:, class_info.index].detach().clone()  # (z_dim,)

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """truncation * truncated-normal(-2, 2) latents (n, z_dim), drawn on the CPU for
        reproducibility across devices, then moved to self.device."""
        z = torch.empty(n, self.z_dim)
        torch.nn.init.trunc_normal_(z, 0.0, 1.0, -2.0, 2.0, generator=generator)
        return (self.truncation * z).to(self.device)

    def __call__(self, z: Tensor) -> Tensor:
        # z: (n, z_dim) -> images (n, 3, R, R) in [-1, 1]
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (n, {self.z_dim}), got {tuple(z.shape)}")
        z = z.to(self.device, self.dtype)
        condition = torch.cat([z, self._embedding.expand(z.shape[0], -1)], dim=1)  # (n, 2 z_dim)
        if not (self.checkpointing and torch.is_grad_enabled()):
            return self.model.generator(condition, self.truncation)
        h = self._blocks(condition)  # (n, ch, R, R)
        return checkpoint(self._head, h, use_reentrant=False)

    def layerwise(self, zs: Tensor) -> Tensor:
        """zs (n, latent_layers, z_dim) -> images (n, 3, R, R): zs[:, 0] enters the first linear
        layer (gen_z), zs[:, b + 1] conditions GenBlock b (its conditional BatchNorms, with the
        class embedding). The same latent on every layer is the plain forward, bitwise."""
        if zs.dim() != 3 or zs.shape[1:] != (self.latent_layers, self.z_dim):
            raise ValueError(f"zs must have shape (n, {self.latent_layers}, {self.z_dim}), got {tuple(zs.shape)}")
        zs = zs.to(self.device, self.dtype)
        embedding = self._embedding.expand(zs.shape[0], -1)
        conditions = [torch.cat([zs[:, layer], embedding], dim=1) for layer in range(self.latent_layers)]
        h = self._blocks(conditions[0], per_block=conditions[1:])  # (n, ch, R, R)
        return self._head(h)

    def set_checkpointing(self, on: bool) -> None:
        """Keep only each block's input for the backward and recompute the rest (activation
        checkpointing): the same values and gradients for about one more forward."""
        self.checkpointing = bool(on)

    def _head(self, h: Tensor) -> Tensor:
        """The package's last steps after the blocks: BN, ReLU, conv to RGB, tanh."""
        gen = self.model.generator
        h = gen.conv_to_rgb(gen.relu(gen.bn(h, self.truncation)))
        return gen.tanh(h[:, :3, ...])

    def _blocks(self, condition: Tensor, last: int | None = None, per_block: list[Tensor] | None = None) -> Tensor:
        """The package's forward from the latent through GenBlock `last` (all blocks if None),
        each block (and self-attention) checkpointed when self.checkpointing and grad are on.
        condition (n, 2 z_dim) -> (n, ch, r, r); with `per_block`, GenBlock b is conditioned on
        per_block[b] instead (layer-wise edits)."""
        gen = self.model.generator
        save = self.checkpointing and torch.is_grad_enabled()
        h = gen.gen_z(condition).view(-1, 4, 4, 16 * self.model.config.channel_width)
        h = h.permute(0, 3, 1, 2).contiguous()  # (n, 16 ch, 4, 4)
        block = -1
        for module in gen.layers:
            if hasattr(module, "bn_0"):  # a GenBlock, conditioned on the class and the latent
                block += 1
                seen = condition if per_block is None else per_block[block]
                if save:
                    h = checkpoint(module, h, seen, self.truncation, use_reentrant=False)
                else:
                    h = module(h, seen, self.truncation)
                if block == last:
                    break
            else:  # self-attention
                h = checkpoint(module, h, use_reentrant=False) if save else module(h)
        return h

    def first_linear(self, z: Tensor) -> Tensor:
        """The first linear layer's output (generator.gen_z), (n, 4 * 4 * 16 ch): where GANSpace
        reads BigGAN's activations for its PCA."""
        z = z.to(self.device, self.dtype)
        return self.model.generator.gen_z(torch.cat([z, self._embedding.expand(z.shape[0], -1)], dim=1))

    def layers(self) -> dict[str, tuple[int, int, int]]:
        """The named intermediate layers for `features`: block{i} -> (channels, height, width)."""
        config = self.model.config
        out, resolution = {}, 4
        for i, (up, _, width) in enumerate(config.layers):
            resolution *= 2 if up else 1
            out[f"block{i}"] = (int(width * config.channel_width), resolution, resolution)
        return out

    def features(self, z: Tensor, layer: str) -> Tensor:
        """The activation after GenBlock i (layer `block{i}`), normalised by the BatchNorm that
        follows it in the network (the next block's first BN, or the final BN): a partial forward
        that stops there. The paper (appendix A.3) penalises normalised activations so that
        shrinking a filter cannot lower the penalty."""
        names = self.layers()
        if layer not in names:
            raise ValueError(f"unknown layer {layer!r}; choose from {', '.join(names)}")
        target = int(layer[len("block") :])
        gen = self.model.generator
        z = z.to(self.device, self.dtype)
        condition = torch.cat([z, self._embedding.expand(z.shape[0], -1)], dim=1)  # (n, 2 z_dim)
        h = self._blocks(condition, last=target)
        blocks = [m for m in gen.layers if hasattr(m, "bn_0")]
        if target + 1 < len(blocks):
            return blocks[target + 1].bn_0(h, self.truncation, condition)
        return gen.bn(h, self.truncation)

    def sefa_directions(self, n: int) -> Tensor:
        """SeFa's closed-form directions (Shen & Zhou, CVPR 2021) for BigGAN-deep.

        W = the columns of the first linear layer (generator.gen_z, after spectral normalisation)
        that act on z: gen_z.weight[:, :z_dim], shape (4*4*16*ch, z_dim). The directions are the
        eigenvectors of W^T W with the n largest eigenvalues (rows, (n, z_dim)), each signed so
        its largest-magnitude entry is positive. z also reaches every conditional BatchNorm
        through the condition vector: `z_weights` gives them all, for SeFa of every layer.
        """
        return sefa(self.model.generator.gen_z.weight[:, : self.z_dim], n)

    def z_weights(self) -> list[Tensor]:
        """The weights acting on z of every layer it enters, in forward order: gen_z's z-columns
        (4*4*16*ch, z_dim), then for each conditional BatchNorm its gain and its bias projection's
        z-columns (C, z_dim) each. The condition vector is (z, class embedding): z is its first
        z_dim entries everywhere. Spectral norms are folded, so these are the weights applied."""
        weights = [self.model.generator.gen_z.weight[:, : self.z_dim]]
        for module in self.model.generator.modules():
            if isinstance(module, SelectedStatsBatchNorm) and module.conditional:
                weights += [module.scale.weight[:, : self.z_dim], module.offset.weight[:, : self.z_dim]]
        return [w.detach() for w in weights]

    def with_class(self, class_: str | int) -> BigGANGenerator:
        """The same model, device and truncation, bound to another ImageNet class."""
        return BigGANGenerator(
            self.model,
            name=self.name,
            class_info=resolve_class(class_),
            truncation=self.truncation,
            weights=self.weights,
            device=self.device,
            dtype=self.dtype,
        )

    def describe(self) -> dict[str, Any]:
        """What to record in artifacts so others can regenerate the same images."""
        return {
            "model": self.name,
            "class_index": self.class_info.index,
            "class_name": self.class_info.name,
            "truncation": self.truncation,
            "resolution": self.resolution,  # pixels a side (what `--compile auto` weighs)
            # resolved: a relative path would name another folder when run from elsewhere
            "weights": str(self.weights.folder.resolve()) if self.weights and self.weights.source == "path" else "",
            "weights_fingerprint": self.weights_fingerprint,
        }


def load_biggan(
    name: str | None = None,
    class_: str | int = "golden_retriever",
    truncation: float = 0.4,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    *,
    offline: bool | None = None,
    fetch: Fetch | None = None,
    progress: ProgressCallback | None = None,
    dtype: torch.dtype = torch.float32,
) -> BigGANGenerator:
    """Load a frozen BigGAN-deep for one class and truncation.

    name: biggan-deep-128/-256/-512 (default 128; with `weights`, taken from its config.json).
    weights: a folder (or either file) in the published format; else the cache, else a download.
    """
    if name is not None:
        check_model_name(name)
    class_info = resolve_class(class_)
    dev = resolve_device(device)
    files = resolve_weights(name or DEFAULT_MODEL, weights, offline=offline, fetch=fetch, progress=progress)
    config = read_config(files.config)
    resolution = config.get("output_dim")
    if files.source == "path" and name is not None and resolution != int(name.rsplit("-", 1)[1]):
        fix = (
            f"pass `model` biggan-deep-{resolution}"
            if f"biggan-deep-{resolution}" in MODEL_NAMES
            else "omit `model` (the weights' config.json decides)"
        )
        raise WeightsError(
            f"the weights in {files.folder} are for {resolution} px but the model is {name}; "
            f"{fix} or give other `weights`"
        )
    label = name or (f"biggan-deep-{resolution}" if files.source == "path" else DEFAULT_MODEL)
    if config.get("num_classes", NUM_CLASSES) != NUM_CLASSES:
        raise WeightsError(
            f"{files.config} has num_classes={config.get('num_classes')}; hpdirs needs the 1000 ImageNet classes"
        )
    model = build_biggan(config, str(files.config))
    try:
        load_exactly(model, read_state_dict(files.weights), files.weights)
    except WeightsError:
        if files.source != "cache":
            raise
        discard_cached(files.folder)  # our own cache entry: a damaged one must not stand
        raise WeightsError(
            f"the cached {files.weights} was damaged and has been removed; run again to download it"
        ) from None
    index, used = truncation_grid(truncation, int(model.config.n_stats))
    model.eval()  # before folding: the folded weights are the ones eval mode computes
    _fold_spectral_norms(model)
    _select_statistics(model.generator, index)
    model.eval()  # again, for the modules that replaced the BatchNorms
    model.requires_grad_(False)
    model.to(device=dev, dtype=dtype)
    return BigGANGenerator(
        model, name=label, class_info=class_info, truncation=used, weights=files, device=dev, dtype=dtype
    )


__all__ = [
    "DEFAULT_MODEL",
    "MODEL_NAMES",
    "BigGANGenerator",
    "build_biggan",
    "load_biggan",
    "truncation_grid",
]

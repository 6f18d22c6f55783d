"""Sweeps along one direction: z moved along a direction (as the method edits, z + eta q) and
the images of a sweep, frame by frame; what render, compare's measures and the explorer draw."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from direction_finder.generators.base import LayerwiseLatent

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator


def move(z: Tensor, direction: Tensor, eta: Tensor | float, align: bool) -> Tensor:
    """z (n, z_dim) moved to eta along a unit direction (z_dim,).

    align=False: z + eta d. align=True (paper Fig. 7d): the component of z along d is removed
    first, so every sample sits at the same coordinate eta along d.
    """
    d = direction.to(z.device, z.dtype)
    if align:
        z = z - (z @ d)[:, None] * d[None, :]
    return z + torch.as_tensor(eta, dtype=z.dtype, device=z.device).reshape(-1, 1) * d[None, :]


def sweep(
    generator: Generator,
    direction: Tensor,
    z: Tensor,
    etas: Tensor,
    *,
    align: bool = True,
    batch_size: int = 16,
    layers: range | None = None,
) -> Iterator[Tensor]:
    """Yield one frame per eta: the images (S, C, H, W) of all S samples at that eta.

    Latents of consecutive frames are batched together, batch_size images per generator call.
    With `layers`, only those of the generator's latent layers see the move (layer_edit), and
    frames come from generator.layerwise.
    """
    samples = z.shape[0]
    forward: Callable[[Tensor], Tensor]  # latents -> images
    if layers is None:
        latents = torch.cat([move(z, direction, e, align) for e in etas])  # (F * S, z_dim)
        forward = generator
    else:
        assert isinstance(generator, LayerwiseLatent)  # RenderSettings.layer_range and the explorer checked it
        count = int(generator.latent_layers)
        latents = torch.cat([layer_edit(z, move(z, direction, e, align), layers, count) for e in etas])  # (F*S, L, z)
        forward = generator.layerwise
    pending: list[Tensor] = []
    buffered = 0
    with torch.no_grad():
        for start in range(0, latents.shape[0], batch_size):
            images = forward(latents[start : start + batch_size]).float()
            pending.append(images)
            buffered += images.shape[0]
            while buffered >= samples:
                stacked = torch.cat(pending)
                yield stacked[:samples]
                rest = stacked[samples:]
                pending, buffered = ([rest] if rest.shape[0] else []), rest.shape[0]


def layer_edit(z: Tensor, edited: Tensor, layers: range, latent_layers: int) -> Tensor:
    """Per-layer latents: `edited` on the layers of `layers`, `z` on every other.
    z, edited (..., z_dim) -> (..., latent_layers, z_dim)."""
    if not 0 <= layers.start <= layers.stop <= latent_layers or layers.step != 1:
        raise ValueError(f"layers {layers.start}-{layers.stop - 1} is not a range of 0-{latent_layers - 1}")
    mask = torch.zeros(latent_layers, 1, dtype=torch.bool, device=z.device)  # (L, 1)
    mask[layers.start : layers.stop] = True
    return torch.where(mask, edited.unsqueeze(-2), z.unsqueeze(-2))  # (..., L, z_dim)

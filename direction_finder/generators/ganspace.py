"""What GANSpace's PCA reads from a generator, and the directions it yields: BigGAN-deep's first
linear layer's output (`gen_z`, the layer GANSpace's own tools use for BigGAN) by default, or a
block by name; a plug-in's named layers; the images of a generator that names none."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from direction_finder.errors import UsageError
from direction_finder.generators.base import Layered
from direction_finder.generators.biggan import BigGANGenerator
from direction_finder.method.pca import Features, pca_directions

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

FIRST_LINEAR = "gen_z"
IMAGES = "images"  # what the PCA reads from a generator that names no layers
CPU_SAMPLES = 4_096  # latents the PCA reads on a CPU: seconds at gen_z for biggan-deep-128
ACCELERATOR_SAMPLES = 100_000  # on a GPU, where a forward to gen_z costs next to nothing


def default_samples(device: torch.device | str) -> int:
    return CPU_SAMPLES if torch.device(device).type == "cpu" else ACCELERATOR_SAMPLES


def pca_features(generator: Generator, layer: str | None = None) -> tuple[str, Features]:
    """The layer GANSpace's PCA reads (its name) and the function z -> its activations."""
    if isinstance(generator, BigGANGenerator) and layer in (None, FIRST_LINEAR):
        return FIRST_LINEAR, generator.first_linear
    if isinstance(generator, Layered):
        names = list(generator.layers())
        chosen = layer if layer is not None else names[0]
        if chosen not in names:
            extra = f"{FIRST_LINEAR}, " if isinstance(generator, BigGANGenerator) else ""
            raise UsageError(
                f"`ganspace_layer` {chosen!r} is not a layer of this generator; choose {extra}{', '.join(names)}"
            )
        return chosen, lambda z: generator.features(z, chosen)
    if layer is not None:
        raise UsageError("`ganspace_layer`: this generator names no layers; leave it out (its images are used)")
    return IMAGES, generator


def ganspace_directions(
    generator: Generator, n: int, *, layer: str | None = None, samples: int | None = None, seed: int = 0
) -> Tensor:
    """GANSpace's n directions (n, z_dim) for `generator` (see method/pca.py), orthonormal rows,
    the component of most variance first; `samples` latents (default by device), seeded."""
    _, features = pca_features(generator, layer)
    count = samples if samples is not None else default_samples(generator.device)
    directions, _ = pca_directions(features, generator.sample_z, n, count, seed=seed)
    return directions

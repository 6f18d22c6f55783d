"""GANSpace's directions (Härkönen et al., NeurIPS 2020): the principal components of a layer's
activations over sampled latents, mapped back to z by least squares, then orthonormalised.

The activations of a layer can be far wider than memory allows a covariance of (BigGAN-deep's
first linear layer: 32,768 values per sample), so the PCA is computed in streaming form: the
samples are drawn again from the same seed on every pass, each pass adds up a few products in
float64, and nothing grows with the number of samples. Passes: one for the mean; `iterations`
of block power iteration on the covariance (a random start of n + `oversample` columns), the last
one followed by Rayleigh-Ritz within the block; one for the regression of z on the components'
coordinates. With the gaps between the top eigenvalues that real layers have, three iterations
leave the subspace error far below the sampling error of the covariance itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from direction_finder.method.orthonormal import gram_schmidt

Features = Callable[[Tensor], Tensor]  # z (b, z_dim) -> activations (b, ...)
SampleZ = Callable[[int, torch.Generator], Tensor]  # (count, rng) -> z (count, z_dim)


def _batches(sample_z: SampleZ, samples: int, batch_size: int, seed: int) -> Iterator[Tensor]:
    """The same latents on every pass: drawn in order from one generator seeded by `seed`."""
    rng = torch.Generator().manual_seed(seed)
    for start in range(0, samples, batch_size):
        yield sample_z(min(batch_size, samples - start), rng)


def passes(iterations: int = 3) -> int:
    """Passes over the samples pca_directions makes: the mean, the iterations, the regression."""
    return iterations + 2


def pca_directions(
    features: Features,
    sample_z: SampleZ,
    n: int,
    samples: int,
    *,
    seed: int = 0,
    batch_size: int = 64,
    iterations: int = 3,
    oversample: int = 8,
) -> tuple[Tensor, Tensor]:
    """The n GANSpace directions (n, z_dim), orthonormal rows in the order of the components they
    come from (most variance first), and those components' variances (n,).

    For component k with unit vector v_k in activation space, the coordinates of sample j are
    x_jk = v_k . (y_j - mean); z is regressed on x by least squares over the samples (z_j ~ U x_j)
    and U's columns, the latent change per unit of each component, are orthonormalised in order.
    """
    if samples < n + 1:
        raise ValueError(f"PCA of {n} components needs more than {n} samples, got {samples}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")

    def activations(z: Tensor) -> Tensor:
        with torch.no_grad():
            return features(z).reshape(z.shape[0], -1).double().cpu()  # (b, D)

    total, mean = 0, None
    for z in _batches(sample_z, samples, batch_size, seed):
        y = activations(z)
        mean = y.sum(0) if mean is None else mean + y.sum(0)
        total += y.shape[0]
    assert mean is not None
    mean = mean / total  # (D,)
    width = min(n + oversample, mean.shape[0])
    if n > width:
        raise ValueError(f"the layer has {mean.shape[0]} values per sample: fewer than {n} components")
    start = torch.randn(mean.shape[0], width, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    basis = torch.linalg.qr(start).Q  # (D, w)

    def covariance_times(block: Tensor) -> Tensor:  # C @ block (D, w), C the covariance: one pass
        product = torch.zeros_like(block)
        for z in _batches(sample_z, samples, batch_size, seed):
            centred = activations(z) - mean  # (b, D)
            product += centred.T @ (centred @ block)
        return product / (total - 1)

    product = covariance_times(basis)
    for _ in range(iterations - 1):
        basis = torch.linalg.qr(product).Q
        product = covariance_times(basis)
    ritz = basis.T @ product  # (w, w): C within the last block
    values, vectors = torch.linalg.eigh((ritz + ritz.T) / 2)  # ascending
    components, variances = (basis @ vectors.flip(1))[:, :n], values.flip(0)  # (D, n), (w,)
    gram, cross = torch.zeros(n, n, dtype=torch.float64), None
    for z in _batches(sample_z, samples, batch_size, seed):
        x = (activations(z) - mean) @ components  # (b, n)
        zd = z.detach().double().cpu()  # (b, z_dim)
        gram += x.T @ x
        cross = x.T @ zd if cross is None else cross + x.T @ zd
    assert cross is not None
    latent = torch.linalg.solve(gram, cross)  # (n, z_dim): row k, the z change per unit of component k
    return gram_schmidt(latent).float(), variances[:n].float()


SPREAD_Z = 1.96  # two-sided 95%


def near_degenerate_groups(values: Tensor, samples: int) -> list[tuple[int, int]]:
    """Runs (first, last) of neighbouring eigenvalues (largest first) that `samples` latents
    could not tell apart: the gap between neighbours is within 1.96 times the standard error of
    their difference, sqrt(2 / samples) * sqrt(l_i^2 + l_j^2) (a sample eigenvalue's standard
    error is l * sqrt(2 / samples) for Gaussian data). Inside such a group, second-order methods
    (SeFa, GANSpace) have nothing to order the directions by and return an arbitrary rotation;
    a criterion of higher order, like the Hessian Penalty, can still tell them apart."""
    values = values.double()
    spread = SPREAD_Z * (2.0 / samples) ** 0.5 * torch.sqrt(values[:-1] ** 2 + values[1:] ** 2)  # (z_dim - 1,)
    close = (values[:-1] - values[1:]).abs() <= spread
    groups, start = [], None
    for i, near in enumerate(close.tolist()):
        if near and start is None:
            start = i
        if not near and start is not None:
            groups.append((start, i))
            start = None
    if start is not None:
        groups.append((start, len(values) - 1))
    return groups

"""compare's measurements, one value per held-out sample so that their spread can be told.

- penalty: the training objective at w0 = eta e_n for given (sample, direction) pairs, mean over
  output elements: one value per pair;
- sweep activeness: per direction and sample, the variance of G over an aligned sweep of the
  coordinate along the direction from -eta to eta, mean over output elements (paper sec. 4.2);
- local activeness: per direction and sample, |J q|^2 averaged over output elements, J the
  output Jacobian w.r.t. z at the sample: from one Jacobian, every set's directions at once;
- Hessians w.r.t. w at each sample for a few directions, and their diagonal dominance per sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from direction_finder.config import default_chunk_size
from direction_finder.learning.objective import Batch, outputs, penalty_of, strict_fp32
from direction_finder.method.penalty import finite_difference_hessian
from direction_finder.method.sweeps import move, sweep

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

Progress = Callable[[int], None]  # told how many more images were generated


def penalties(
    generator: Generator,
    Q: Tensor,
    z: Tensor,
    index: Tensor,
    eta: Tensor,
    vectors: Tensor,
    *,
    k: int,
    epsilon: float,
    batch_size: int,
    layer: str | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """The penalty of direction index[s] at sample s, for each s: (S,) float64, in generator
    calls of at most batch_size images (at least one sample's perturbed batch).

    Q (N, z_dim); z (S, z_dim); index (S,) long; eta (S,); vectors (k, S, N).
    """
    values = []
    samples, draws = z.shape[0], Batch(z, index, eta, vectors)
    Q = Q.to(generator.device)
    # samples per group, so that a call (a group's perturbed batches, chunked) holds at most
    # batch_size images: on an accelerator all 2k perturbed batches of a group go in one call
    group = max(1, batch_size // default_chunk_size(generator.device, k, batch_size, layer))
    with torch.no_grad():
        for s in range(0, samples, group):
            part = slice(s, s + group)
            count = z[part].shape[0]
            chunk = default_chunk_size(generator.device, k, count, layer)
            per_element = penalty_of(
                generator, Q, draws, part, k=k, epsilon=epsilon, reduction="none", chunk_size=chunk, layer=layer
            )  # (count, ...)
            values.append(per_element.reshape(count, -1).double().mean(dim=1).cpu())
            if progress:
                progress(2 * k * count)
    return torch.cat(values)


def sweep_activeness(
    generator: Generator,
    Q: Tensor,
    z: Tensor,
    eta: float,
    steps: int,
    *,
    batch_size: int,
    layer: str | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """(S, N): per sample and direction, the variance over the aligned sweep, mean over elements."""
    etas = torch.linspace(-eta, eta, steps)
    out = []
    with torch.no_grad():
        for n in range(Q.shape[0]):
            direction = Q[n].to(generator.device)
            if layer is None:
                frames = [f.double() for f in sweep(generator, direction, z, etas, align=True, batch_size=batch_size)]
            else:
                frames = [outputs(generator, move(z, direction, e, True), layer).double() for e in etas]
            stacked = torch.stack(frames)  # (T, S, ...)
            out.append(stacked.var(dim=0, unbiased=False).reshape(z.shape[0], -1).mean(dim=1).cpu())
            if progress:
                progress(steps * z.shape[0])
    return torch.stack(out, dim=1)


def centres(
    generator: Generator, z: Tensor, *, batch_size: int, layer: str | None = None, progress: Progress | None = None
) -> Tensor:
    """f at each latent z (S, z_dim): (S, ...). The Hessians' middle point and the Jacobian's base,
    computed once per sample for every set."""
    with torch.no_grad(), strict_fp32():
        out = []
        for s in range(0, z.shape[0], batch_size):
            out.append(outputs(generator, z[s : s + batch_size].to(generator.device), layer))
            if progress:
                progress(out[-1].shape[0])
    return torch.cat(out)


def jacobian_gram(
    generator: Generator,
    z: Tensor,
    centre: Tensor,
    epsilon: float,
    *,
    batch_size: int,
    layer: str | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """J^T J / P at one latent z (1, z_dim): (z_dim, z_dim) float64, J (P, z_dim) the Jacobian of
    the P output elements by forward differences from centre = f(z) (1, ...): column j is
    (f(z + eps e_j) - f(z)) / eps, z_dim images.

    q^T (J^T J / P) q is the local activeness of a unit direction q: the mean over output elements
    of the squared derivative along q. Forward differences carry an O(eps) error, immaterial for
    ranking directions, at half the images of central ones.
    """
    z_dim = z.shape[1]
    steps = torch.eye(z_dim, dtype=z.dtype, device=generator.device) * epsilon
    points = z.to(generator.device) + steps  # (z_dim, z_dim): one step along each axis
    base = centre.reshape(1, -1).float()
    with torch.no_grad(), strict_fp32():
        columns = []
        for s in range(0, z_dim, batch_size):
            y = outputs(generator, points[s : s + batch_size], layer)
            columns.append(((y.reshape(y.shape[0], -1).float() - base) / epsilon).double().cpu())
            if progress:
                progress(y.shape[0])
    jt = torch.cat(columns)  # (z_dim, P) = J^T
    return (jt @ jt.T) / jt.shape[1]


def local_activeness(grams: Sequence[Tensor], Q: Tensor) -> Tensor:
    """(J, N): q_n^T G_j q_n for each Gram matrix G_j (z_dim, z_dim) and direction q_n."""
    q = Q.double().cpu()  # (N, z_dim)
    return torch.stack([((q @ g) * q).sum(dim=1) for g in grams])


def hessians(
    generator: Generator,
    Q: Tensor,
    indices: Sequence[int],
    z: Tensor,
    epsilon: float,
    *,
    centre: Tensor | None = None,
    batch_size: int,
    layer: str | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Finite-difference Hessians w.r.t. w of every output element at each latent z (S, z_dim),
    for the directions `indices`: (S, *output, len, len) float64. centre (S, ...): f at each z,
    shared by every set (computed here when not given)."""
    sub = Q[list(indices)].to(generator.device)  # (N', z_dim)
    out = []
    for s in range(z.shape[0]):
        base = z[s : s + 1].to(generator.device)

        def f(w: Tensor, base: Tensor = base) -> Tensor:  # (m, N') -> (m, ...)
            return outputs(generator, base + w @ sub, layer)

        with strict_fp32():
            origin = torch.zeros(len(indices), device=sub.device)
            middle = None if centre is None else centre[s : s + 1]
            out.append(finite_difference_hessian(f, origin, epsilon, batch_size, middle).double().cpu())
        if progress:
            m = len(indices)
            progress(2 * m * m + (centre is None))
    return torch.stack(out)


def dominance_per_sample(hessian: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per sample of Hessians (S, ..., M, M): the % of elements whose largest |entry| is on the
    diagonal (ties count as diagonal), the mean |diagonal entry| and the mean |off-diagonal entry|.
    Every sample has as many elements, so means of these are the pooled D% and D_R's terms."""
    m = hessian.shape[-1]
    flat = hessian.abs().reshape(hessian.shape[0], -1, m, m)  # (S, E, M, M)
    eye = torch.eye(m, dtype=torch.bool)
    diagonal = flat[:, :, eye]  # (S, E, M)
    off = flat[:, :, ~eye]  # (S, E, M(M-1))
    off_max = off.max(dim=2).values if m > 1 else torch.zeros_like(diagonal[:, :, 0])
    share = 100.0 * (diagonal.max(dim=2).values >= off_max).double().mean(dim=1)
    off_mean = off.mean(dim=(1, 2)) if m > 1 else torch.zeros(hessian.shape[0], dtype=torch.float64)
    return share, diagonal.mean(dim=(1, 2)), off_mean


def diagonal_dominance(hessian: Tensor) -> tuple[float, float]:
    """(D%, D_R) of Hessians (S, ..., M, M) pooled over samples: the share of elements whose largest
    |entry| is on the diagonal, and mean |diagonal| / mean |off-diagonal| (paper Table 2)."""
    share, diagonal, off = dominance_per_sample(hessian)
    off_mean = float(off.mean())
    return float(share.mean()), float(diagonal.mean()) / off_mean if off_mean > 0 else math.inf


def matching(Q: Tensor, partner: Tensor | None = None) -> tuple[list[int], list[float]]:
    """For each direction, the row of `partner` (default: the axes of z) with the largest |cosine|,
    and that |cosine|."""
    cosines = Q.abs() if partner is None else (Q.double() @ partner.double().T).abs()
    values, rows = cosines.max(dim=1)
    return rows.tolist(), values.float().tolist()

"""A closed-form-style warm start for learning: the rotation that makes the tanh curvature diagonal.

Why it fits the Hessian Penalty: a generator that ends in tanh, y = tanh(a(z)), has at each
output element p the Hessian H_p = tanh''(a_p) g_p g_p^T + tanh'(a_p) d2a_p, with g_p = da_p/dz.
The first term is rank one. In a direction basis Q (orthonormal rows) its off-diagonal energy is
c_p (|Q g_p|^4 - sum_i (q_i . g_p)^4), c_p = tanh''(a_p)^2, and |Q g_p| does not depend on Q when
N = z_dim. So minimising that part of the penalty is maximising

    F(Q) = sum_p c_p sum_i (q_i . g_p)^4,

a weighted fourth-moment (kurtosis) rotation of the output Jacobian's rows, as in ICA. No layer of
the generator needs to be known: the Jacobian of y is found by central differences, and since
dy/dz = (1 - y^2) g and tanh''(a) = -2 y (1 - y^2), c_p |Q g_p|^4 = (2 y_p / (1 - y_p^2))^2 |Q dy_p/dz|^4.

F is convex in Q, so the iteration Q <- polar(dF/dQ) increases it monotonically on the set of
orthonormal frames. It starts from the eigenvectors of sum_p c_p |dy_p|^2 dy_p dy_p^T (FOBI).
The second term (for a ReLU generator, the kinks that finite differences see) is left to the
penalty itself: the warm start is refined by `learn`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from direction_finder.generators.base import Generator

SATURATION = 1 - 1e-6  # |y| is clamped below this where the curvature weight is formed
SAMPLES = 8  # latents whose Jacobians enter the warm start: 2 z_dim images each


def tanh_curvature_weights(y: Tensor) -> Tensor:
    """c_p = tanh''(a_p)^2 / tanh'(a_p)^4 = (2 y / (1 - y^2))^2 for outputs y = tanh(a): the
    weight that turns |q . dy/dz|^4 into tanh''(a)^2 |q . da/dz|^4. Same shape as y."""
    y = y.clamp(-SATURATION, SATURATION)
    return (2 * y / (1 - y * y)) ** 2


def output_jacobian(
    generator: Generator, z: Tensor, step: float = 1e-2, batch_size: int = 32, elements: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The output y = G(z) of one latent (1, z_dim) and its Jacobian dy/dz by central
    differences, in float64 on the CPU: (P,), (P, z_dim), P the number of output elements, or
    only the flat output indices `elements` (P',) of them."""
    z_dim = int(generator.z_dim)
    eye = torch.eye(z_dim, device=z.device)
    per_call = max(1, batch_size // 2)

    def flat(images: Tensor) -> Tensor:  # (m, ...) -> (m, P') float64 on the CPU (MPS has no float64)
        out = images.flatten(1)
        return (out if elements is None else out[:, elements.to(out.device)]).cpu().double()

    with torch.no_grad():
        y = flat(generator(z))[0]  # (P',)
        columns = []
        for start in range(0, z_dim, per_call):
            e = eye[start : start + per_call] * step  # (m, z_dim)
            out = flat(generator(torch.cat([z + e, z - e])))  # (2m, P')
            m = e.shape[0]
            columns.append((out[:m] - out[m:]) / (2 * step))  # (m, P')
    return y, torch.cat(columns).T  # (P',), (P', z_dim)


def kurtosis_rotation(rows: Tensor, weights: Tensor, n: int, iterations: int = 50, tolerance: float = 1e-4) -> Tensor:
    """n orthonormal rows Q maximising sum_p weights_p sum_i (q_i . rows_p)^4.

    rows (M, D), weights (M,) >= 0; returns (n, D) in float64. Stops when an iteration gains less
    than `tolerance` (relative): the starts tried (FOBI, SeFa, the axes) reach the same objective
    well within the default iterations (docs/performance.md). The large products run in float32,
    which is several times faster on a CPU, the frames in float64.
    """
    x, c = rows.float(), weights.float()
    moment = x.T.double() @ ((c * (x * x).sum(1))[:, None] * x).double()  # (D, D), the FOBI matrix
    values, vectors = torch.linalg.eigh(moment)
    Q = vectors[:, torch.argsort(values, descending=True)[:n]].T  # (n, D)
    previous = -torch.inf
    for _ in range(iterations):
        projections = x @ Q.T.float()  # (M, n)
        objective = float((c[:, None] * projections**4).sum(dtype=torch.float64))
        if objective - previous <= tolerance * abs(objective):
            break
        previous = objective
        gradient = ((c[:, None] * projections**3).T @ x).double()  # (n, D), = dF/dQ / 4
        u, _, vh = torch.linalg.svd(gradient, full_matrices=False)
        Q = u @ vh  # the orthonormal frame nearest the gradient (polar factor)
    return Q


def curvature_directions(
    generator: Generator,
    n: int,
    *,
    samples: int = SAMPLES,
    seed: int = 0,
    elements_per_sample: int = 16384,
    step: float = 1e-2,
    batch_size: int = 32,
    on_sample: Callable[[int, int], None] | None = None,
) -> Tensor:
    """The warm start (n, z_dim): kurtosis_rotation of tanh-curvature-weighted output Jacobians
    at `samples` seeded latents (a random subset of elements_per_sample output elements each).

    Rows are ordered by how much they change the image (sum_p (q . dy_p/dz)^2, largest first)
    and signed so that each row's largest-magnitude entry is positive. Cost: 2 z_dim images per
    sample.
    """
    z_dim = int(generator.z_dim)
    if not 1 <= n <= z_dim:
        raise ValueError(f"n must be in 1..{z_dim}, got {n}")
    rng = torch.Generator().manual_seed(seed)
    z = generator.sample_z(samples, rng)  # (S, z_dim)
    rows, weights = [], []
    with torch.no_grad():
        size = generator(z[:1]).numel()  # P, output elements per image
    for s in range(samples):
        keep = torch.randperm(size, generator=rng)[:elements_per_sample]  # (P',)
        y, jacobian = output_jacobian(generator, z[s : s + 1], step, batch_size, keep)  # (P',), (P', z_dim)
        rows.append(jacobian)
        weights.append(tanh_curvature_weights(y))
        if on_sample:
            on_sample(s + 1, samples)
    x, c = torch.cat(rows), torch.cat(weights)  # (S*P', z_dim), (S*P',)
    Q = kurtosis_rotation(x, c, n)  # (n, z_dim)
    energy = ((x @ Q.T) ** 2).sum(0)  # (n,)
    Q = Q[torch.argsort(energy, descending=True)]
    signs = torch.sign(Q.gather(1, Q.abs().argmax(dim=1, keepdim=True)))
    return (Q * signs).float()

"""The Hessian Penalty (Peebles et al., ECCV 2020) and exact-Hessian helpers.

The estimator: for k Rademacher vectors v_j and a step epsilon, the central second difference
s_j = (f(x + eps v_j) - 2 f(x) + f(x - eps v_j)) / eps^2 equals v_j^T H v_j for a quadratic f,
and the unbiased variance of s_j over j is an unbiased estimate of 2 * sum_{i != j} H_ij^2
(Hutchinson; Theorem 3.1 of the paper). The variance is shift-invariant, so the -2 f(x) term
cancels and only the 2k perturbed points are evaluated, never the centre.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

Reduction = Literal["mean", "max", "none"]
Outputs = Tensor | Sequence[Tensor]
REDUCTIONS: tuple[str, ...] = ("mean", "max", "none")


def rademacher(
    shape: Sequence[int],
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Independent +1/-1 entries with probability 1/2 each."""
    bits = torch.randint(0, 2, tuple(shape), generator=generator, device=device)
    return (bits * 2 - 1).to(dtype)


def check_estimator_args(k: int, epsilon: float, reduction: str) -> None:
    """Raise a clear ValueError for settings under which the estimator is undefined."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an integer >= 2 (a variance needs two samples), got {k!r}")
    if not (isinstance(epsilon, (int, float)) and epsilon > 0 and epsilon != float("inf")):
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def _as_list(y: Outputs) -> list[Tensor]:
    return [y] if isinstance(y, Tensor) else list(y)


def _evaluate(f: Callable[[Tensor], Outputs], points: Tensor, rows_per_call: int) -> tuple[list[Tensor], bool]:
    """f on (P, D) points in calls of at most rows_per_call rows.

    Returns the outputs concatenated per output tensor, and whether f returned a single tensor.
    """
    pieces: list[list[Tensor]] = []
    single = True
    for start in range(0, points.shape[0], rows_per_call):
        y = f(points[start : start + rows_per_call])
        single = isinstance(y, Tensor)
        pieces.append(_as_list(y))
    if len(pieces) == 1:
        return pieces[0], single
    return [torch.cat(layer, dim=0) for layer in zip(*pieces, strict=True)], single


def _reduce(per_element: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_element.mean()
    if reduction == "max":
        return per_element.max()
    return per_element


def hessian_penalty(
    f: Callable[[Tensor], Outputs],
    x: Tensor,
    k: int = 2,
    epsilon: float = 0.1,
    reduction: Reduction | str = "mean",
    *,
    vectors: Tensor | None = None,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
) -> Tensor | list[Tensor]:
    """Hessian Penalty of f w.r.t. x, from 2k evaluations of f.

    f maps an (m*B, D) tensor to a tensor (m*B, ...) or a list of such tensors; a list is
    penalised jointly (sum of the per-output penalties). f sees m stacked copies of the batch,
    so row r of its input belongs to sample r mod B (pair per-sample inputs such as latents with
    `z.repeat(m, 1)`). `vectors` (k, B, D) fixes the Rademacher draws
    (common random numbers); otherwise they are drawn with `generator`. `chunk_size` is how many of
    the 2k perturbed batches go into one call of f (None: all 2k in one call; 1: sequential).
    reduction "mean"/"max" reduce over every output element and sample; "none" returns the
    per-element variance (B, ...) (a list of them when f returns a list).
    """
    check_estimator_args(k if vectors is None else int(vectors.shape[0]), epsilon, reduction)
    if x.dim() != 2:
        raise ValueError(f"x must be a (B, D) tensor, got shape {tuple(x.shape)}")
    batch, dim = x.shape
    if vectors is None:
        vectors = rademacher((k, batch, dim), generator=generator, device=x.device, dtype=x.dtype)
    elif vectors.shape[1:] != x.shape:
        raise ValueError(f"vectors must have shape (k, {batch}, {dim}), got {tuple(vectors.shape)}")
    k = int(vectors.shape[0])
    if chunk_size is None:
        chunk_size = 2 * k
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

    step = epsilon * vectors.to(x.dtype)  # (k, B, D)
    points = torch.cat([x + step, x - step], dim=0)  # (2k, B, D): the k "+" points, then the k "-"
    outputs, single = _evaluate(f, points.reshape(2 * k * batch, dim), chunk_size * batch)

    per_output: list[Tensor] = []
    for y in outputs:  # y: (2k * B, ...)
        y = y.reshape(2, k, batch, *y.shape[1:])
        pair_sums = (y[0] + y[1]) / epsilon**2  # (k, B, ...): s_j + 2 f(x) / eps^2
        per_output.append(pair_sums.var(dim=0, unbiased=True))  # (B, ...)
    if reduction == "none":
        return per_output[0] if single else per_output
    return torch.stack([_reduce(v, reduction) for v in per_output]).sum()


def hessian_penalty_reference(
    f: Callable[[Tensor], Outputs],
    x: Tensor,
    k: int = 2,
    epsilon: float = 0.1,
    reduction: Reduction | str = "mean",
    *,
    vectors: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The estimator laid out as the paper's reference code does: 2k+1 sequential calls.

    The centre f(x) is evaluated and subtracted in each second difference. Kept as the
    independent form the 2k-call estimator is tested against, and as the baseline of the bench.
    """
    check_estimator_args(k if vectors is None else int(vectors.shape[0]), epsilon, reduction)
    if reduction == "none":
        raise ValueError("the reference form supports reduction 'mean' or 'max' only")
    if vectors is None:
        vectors = rademacher((k, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    centre = _as_list(f(x))
    second_differences: list[list[Tensor]] = []
    for v in vectors:  # v: (B, D)
        plus, minus = _as_list(f(x + epsilon * v)), _as_list(f(x - epsilon * v))
        second_differences.append([(p - 2 * c + m) / epsilon**2 for p, c, m in zip(plus, centre, minus, strict=True)])
    total = x.new_zeros(())
    for layer in zip(*second_differences, strict=True):
        variance = torch.stack(layer).var(dim=0, unbiased=True)  # (B, ...)
        total = total + _reduce(variance, reduction)
    return total


def offdiagonal_energy(hessian: Tensor) -> Tensor:
    """2 * sum_{i != j} H_ij^2 over the last two dims: the estimator's expectation (Thm 3.1)."""
    diagonal = torch.diagonal(hessian, dim1=-2, dim2=-1)
    return 2 * (hessian.square().sum(dim=(-2, -1)) - diagonal.square().sum(dim=-1))


def autograd_hessian(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Exact Hessian of every output element of a smooth f at one point x (D,).

    f maps (n, D) to (n, ...); returns (..., D, D). For piecewise-linear f (ReLU networks) the
    autograd Hessian is zero almost everywhere: use finite_difference_hessian instead.
    """

    def single(u: Tensor) -> Tensor:
        return f(u.unsqueeze(0))[0]

    return torch.func.jacrev(torch.func.jacrev(single))(x)


def finite_difference_hessian(
    f: Callable[[Tensor], Tensor],
    x: Tensor,
    epsilon: float = 0.1,
    batch_size: int = 64,
    centre: Tensor | None = None,
) -> Tensor:
    """Central finite-difference Hessian of every output element of f at x (D,) -> (..., D, D).

    H_ij = [f(x+e_i+e_j) - f(x+e_i-e_j) - f(x-e_i+e_j) + f(x-e_i-e_j)] / (4 eps^2), with the
    steps e scaled by epsilon; exact for cubic f, and the natural Hessian of a piecewise-linear
    network at the scale epsilon on which the penalty itself looks. On the diagonal the middle
    two points are both x: f(x) is evaluated once (or taken from `centre`, f(x) as (1, ...), when
    the caller shares it), so D(D-1)/2 pairs cost 4 images each and the D diagonals 2 each.
    """
    dim = x.shape[0]
    eye = torch.eye(dim, dtype=x.dtype, device=x.device) * epsilon
    rows, cols = torch.triu_indices(dim, dim, offset=1, device=x.device)  # (P,) pairs with i < j
    ei, ej = eye[rows], eye[cols]  # (P, D)
    points = [x + ei + ej, x + ei - ej, x - ei + ej, x - ei - ej, x + 2 * eye, x - 2 * eye]
    if centre is None:
        points.append(x[None])
    flat = torch.cat(points)  # (4P + 2D [+ 1], D)
    with torch.no_grad():
        y = torch.cat([f(flat[s : s + batch_size]) for s in range(0, flat.shape[0], batch_size)])
    pairs = rows.shape[0]
    crossed = y[: 4 * pairs].reshape(4, pairs, *y.shape[1:])  # (4, P, ...)
    plus, minus = y[4 * pairs : 4 * pairs + dim], y[4 * pairs + dim : 4 * pairs + 2 * dim]  # (D, ...)
    middle = y[-1:] if centre is None else centre.to(y.dtype)  # (1, ...)
    upper = ((crossed[0] - crossed[1] - crossed[2] + crossed[3]) / (4 * epsilon**2)).movedim(0, -1)  # (..., P)
    diagonal = ((plus - 2 * middle + minus) / (4 * epsilon**2)).movedim(0, -1)  # (..., D)
    hessian = upper.new_zeros(*upper.shape[:-1], dim, dim)
    hessian[..., rows, cols] = upper
    hessian[..., cols, rows] = upper
    index = torch.arange(dim, device=hessian.device)
    hessian[..., index, index] = diagonal
    return hessian

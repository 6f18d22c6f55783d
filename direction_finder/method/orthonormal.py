"""Orthonormal directions from the learned parameters: Gram-Schmidt (one QR, recomputed in every
forward pass), the oriented complement that makes N = z_dim well posed, and the canonical sign a
saved direction carries."""

from __future__ import annotations

import torch
from torch import Tensor


def gram_schmidt(A: Tensor, *, check: bool = True) -> Tensor:
    """Orthonormalise the rows of A (N, D) -> Q (N, D), exactly as classical Gram-Schmidt.

    Row n of Q is A[n] minus its projection on rows 0..n-1, normalised. Computed as one reduced
    QR of A^T with the sign of R's diagonal made positive, which is the unique factorisation
    that classical Gram-Schmidt produces: vectorised, differentiable, and continuous in A
    (a tiny change in A gives a tiny change in Q). With `check`, rows that are linearly
    dependent (residual below rounding noise) raise ValueError naming the first such row.
    """
    if A.dim() != 2:
        raise ValueError(f"A must be a 2-D (N, D) matrix, got shape {tuple(A.shape)}")
    n, d = A.shape
    if n == 0 or n > d:
        raise ValueError(f"cannot make {n} orthonormal rows in {d} dimensions; need 1 <= N <= D")
    q, r = torch.linalg.qr(A.transpose(0, 1), mode="reduced")  # q: (D, N), r: (N, N)
    diag = torch.diagonal(r)  # (N,): the length of each row's residual
    if check:
        norms = A.detach().norm(dim=1)  # (N,)
        tol = 4 * max(n, d) * torch.finfo(A.dtype).eps
        bad = ~(diag.detach().abs() > tol * norms)  # also catches NaN/inf
        if bool(bad.any()):
            row = int(torch.nonzero(bad)[0])
            raise ValueError(
                f"rows of A are linearly dependent (row {row} lies in the span of rows before it, "
                "or A is not finite); re-initialise the directions"
            )
    signs = torch.where(diag < 0, -1.0, 1.0).to(q.dtype)  # (N,)
    return (q * signs).transpose(0, 1).contiguous()  # (N, D)


def orthonormal_directions(A: Tensor) -> Tensor:
    """The directions Q (N, D) that the parameters A (N, D) stand for, in every forward pass.

    For N < D this is gram_schmidt(A). For N = D the last row of GS(A) is fixed, up to sign, by
    the rows before it: its gradient w.r.t. A's last row is zero in exact arithmetic and float
    noise in practice, and Adam moves such an entry by +-lr whatever its size. That flips the last
    direction's sign at random (so runs on other thread counts, ranks or CPUs part ways) and lets
    the row wander into the span of the others (a crash). So for N = D the last row of A carries
    no parameter: Q's last row is the unit vector orthogonal to the other N - 1 rows, oriented so
    that det(Q) = +1. The objective is the same function of the other rows (the penalty does not
    depend on a direction's sign in expectation), and its gradient reaches them through this row.
    """
    if A.dim() != 2 or A.shape[0] != A.shape[1]:
        return gram_schmidt(A)  # N < D, or a shape gram_schmidt rejects with its own message
    if A.shape[0] == 1:
        return A * 0 + 1  # (1, 1): the one orientation with det +1, still a function of A
    head = gram_schmidt(A[:-1])  # (D - 1, D)
    return torch.cat([head, oriented_complement(head)[None]])  # (D, D)


def oriented_complement(head: Tensor) -> Tensor:
    """The unit vector u (D,) orthogonal to the D - 1 orthonormal rows of head, with
    det([head; u]) = +1; differentiable in head.

    u is found once without gradients (a complete QR in float64 on the CPU, where every device
    has float64, then the sign from the determinant, which is +-1 to rounding, so the sign never
    hangs on noise); then u = P c / |P c| with P = I - head^T head and c that value: the same
    vector, and a formula whose derivative is the derivative of the complement as head moves.
    """
    with torch.no_grad():
        rows = head.detach().to("cpu", torch.float64)  # (D - 1, D)
        q, _ = torch.linalg.qr(rows.T, mode="complete")  # (D, D); last column spans the complement
        c = q[:, -1]  # (D,)
        c = c * torch.sign(torch.linalg.det(torch.cat([rows, c[None]])))
        c = c.to(head.device, head.dtype)
    residual = c - head.T @ (head @ c)  # (D,)
    return residual / residual.norm()


def canonical_signs(Q: Tensor) -> Tensor:
    """Q (N, D) with each row's sign chosen so that its entries sum to a positive number.

    A direction and its negative are the same direction (the penalty and a sweep from -eta to
    +eta do not tell them apart), so saved files fix the sign and files written on different
    machines compare row by row. The sum is the rule whose tie is least likely to be crossed by
    rounding: it is ~N(0, 1) for a unit row, against a top-two gap of ~0.03 for "largest entry
    positive" at z_dim 128.
    """
    total = Q.sum(dim=1, keepdim=True)  # (N, 1)
    return Q * torch.where(total < 0, -1.0, 1.0).to(Q.dtype)

"""Direction matrices: Gram-Schmidt orthonormalisation (and, later, the directions file)."""

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

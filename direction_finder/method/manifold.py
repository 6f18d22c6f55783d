"""Adam on the manifold of orthonormal direction sets (the Stiefel manifold), for `--optimizer riemannian`.

The paper's optimiser is Adam on an unconstrained A, with Q = Gram-Schmidt(A) in every forward:
A's rows drift in length and mix with each other, so the same Adam step moves Q by different
amounts over a run, and a step along a direction Gram-Schmidt ignores is wasted. Here A stays
orthonormal itself (A = Q), and each step moves Q along the manifold (Bécigneul & Ganea,
"Riemannian Adaptive Optimization Methods", ICLR 2019, for a product of manifolds; here
element-wise moments, as the geoopt library does for the Stiefel manifold):

    g  = P_A(grad)                          the gradient projected on the tangent space at A
    m  = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  d = P_A(m_hat / (sqrt(v_hat) + eps))
    A' = Cayley(A, -lr d)                   a rotation of z-space, so A' is orthonormal again
    m  = P_A'(m)                            the momentum carried to the new tangent space

with P_A(G) = G - (G A^T + A G^T) A / 2 for orthonormal rows, and the Cayley retraction of Wen &
Yin (2013): W = M - M^T with M = (I - A^T A / 2) d^T A (D x D, skew), A'^T = (I + W/2)^-1 (I - W/2) A^T
for a step -d. The forward pass still computes Q = Gram-Schmidt(A) (the identity here, to
rounding), so the objective is exactly the paper's. After each step A is put through the same
orthonormalisation, which keeps it orthonormal to float precision over any number of steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from direction_finder.method.orthonormal import orthonormal_directions


def tangent(A: Tensor, G: Tensor) -> Tensor:
    """G (N, D) projected on the tangent space of the orthonormal rows A (N, D) at A."""
    sym = G @ A.T  # (N, N)
    return G - 0.5 * (sym + sym.T) @ A


def cayley_step(A: Tensor, d: Tensor, lr: float) -> Tensor:
    """A (N, D) orthonormal rows moved by -lr along the tangent vector d (N, D); orthonormal."""
    D = A.shape[1]
    X, xi = A.T, d.T  # (D, N): columns, as Wen & Yin write it
    M = (torch.eye(D, dtype=A.dtype, device=A.device) - 0.5 * X @ X.T) @ xi @ X.T  # (D, D)
    W = M - M.T  # skew: W X = xi for a tangent xi
    eye = torch.eye(D, dtype=A.dtype, device=A.device)
    moved = torch.linalg.solve(eye + 0.5 * lr * W, (eye - 0.5 * lr * W) @ X)  # (D, N)
    return moved.T


class RiemannianAdam(torch.optim.Optimizer):
    """Adam whose one parameter, A (N, D), stays a set of orthonormal rows (see the module).

    The state has Adam's keys (step, exp_avg, exp_avg_sq), so a checkpoint stores and restores it
    the same way."""

    def __init__(
        self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})
        for group in self.param_groups:
            for A in group["params"]:
                with torch.no_grad():
                    A.copy_(orthonormal_directions(A))  # the same Q; A itself now on the manifold

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for A in group["params"]:
                if A.grad is None:
                    continue
                state = self.state[A]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(A)
                    state["exp_avg_sq"] = torch.zeros_like(A)
                state["step"] += 1
                t = float(state["step"])
                g = tangent(A, A.grad)  # (N, D)
                state["exp_avg"].mul_(b1).add_(g, alpha=1 - b1)
                state["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
                m_hat = state["exp_avg"] / (1 - b1**t)
                v_hat = state["exp_avg_sq"] / (1 - b2**t)
                d = tangent(A, m_hat / (v_hat.sqrt() + group["eps"]))
                moved = orthonormal_directions(cayley_step(A, d, group["lr"]))
                A.copy_(moved)
                state["exp_avg"].copy_(tangent(moved, state["exp_avg"]))
        return loss


def make_optimizer(name: str, A: Tensor, lr: float) -> torch.optim.Optimizer:
    """The optimiser a config names, for the parameter A."""
    if name == "riemannian":
        return RiemannianAdam([A], lr=lr)
    return torch.optim.Adam([A], lr=lr)

"""The Hessian Penalty estimator against independent expectations (paper Thm 3.1)."""

import itertools
import math

import pytest
import torch
from tolerances import assert_close_to_scale, second_difference_error

from direction_finder import (
    autograd_hessian,
    finite_difference_hessian,
    gram_schmidt,
    hessian_penalty,
    hessian_penalty_reference,
    offdiagonal_energy,
    rademacher,
)


def quadratic(dim: int, outputs: int, seed: int):
    """f(x)_o = x^T M_o x / 2 + b_o^T x with symmetric M_o: the Hessian of output o is M_o."""
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(outputs, dim, dim, generator=g, dtype=torch.float64)
    m = (m + m.transpose(1, 2)) / 2  # (O, D, D)
    b = torch.randn(outputs, dim, generator=g, dtype=torch.float64)

    def f(x):  # (n, D) -> (n, O)
        return 0.5 * torch.einsum("nd,ode,ne->no", x, m, x) + x @ b.T

    return f, m


def all_pairs(dim: int, dtype=torch.float64):
    """Every (v1, v2) pair of Rademacher vectors in `dim` dims: vectors (2, 4^dim, dim)."""
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=dim)), dtype=dtype)
    v1 = signs.repeat_interleave(signs.shape[0], dim=0)
    v2 = signs.repeat(signs.shape[0], 1)
    return torch.stack([v1, v2])


def test_exact_expectation_by_enumeration_of_all_rademacher_pairs():
    # Averaging the k=2 estimator over every possible pair of Rademacher vectors gives its exact
    # expectation, which Theorem 3.1 says is 2 * sum_{i != j} H_ij^2 for each output element.
    dim = 5
    f, m = quadratic(dim, outputs=3, seed=0)
    vectors = all_pairs(dim)
    x = torch.randn(1, dim, dtype=torch.float64).expand(vectors.shape[1], dim)
    per_element = hessian_penalty(f, x, vectors=vectors, reduction="none")  # (4^D, O)
    expected = offdiagonal_energy(m)  # (O,)
    torch.testing.assert_close(per_element.mean(0), expected, rtol=1e-10, atol=1e-10)


def test_monte_carlo_mean_within_five_standard_errors():
    # The k=2 estimate is (X1 - X2)^2 / 2 with X = v^T H v - tr H; its variance is
    # (E[X^4] + sigma^4) / 2, with E[X^4] and sigma^2 computed exactly by enumerating v.
    dim, draws = 6, 20000
    f, m = quadratic(dim, outputs=2, seed=1)
    signs = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=dim)), dtype=torch.float64)
    quad = torch.einsum("vd,ode,ve->vo", signs, m, signs)  # (2^D, O)
    centred = quad - torch.einsum("odd->o", m)
    sigma2, m4 = centred.pow(2).mean(0), centred.pow(4).mean(0)
    torch.testing.assert_close(sigma2, offdiagonal_energy(m))
    std_error = torch.sqrt((m4 + sigma2**2) / 2 / draws)

    x = torch.randn(1, dim, dtype=torch.float64).expand(draws, dim)
    per_element = hessian_penalty(f, x, reduction="none", generator=torch.Generator().manual_seed(7))
    z = (per_element.mean(0) - sigma2) / std_error
    print("z-scores of the Monte-Carlo mean:", z.tolist())
    assert z.abs().max() < 5


def test_paper_example_x0x1_and_x0sq_x1():
    # f = [x0 x1, x0^2 x1]: expected penalties [4, 16 x0^2]. Both are cubic at most, so the
    # central second difference is exact and the enumeration over v gives the exact mean.
    def f(x):
        return torch.stack([x[:, 0] * x[:, 1], x[:, 0] ** 2 * x[:, 1]], dim=1)

    vectors = all_pairs(2)
    for x0, x1 in [(1.5, -2.0), (-0.7, 3.0), (0.0, 1.0)]:
        x = torch.tensor([[x0, x1]], dtype=torch.float64).expand(vectors.shape[1], 2)
        mean = hessian_penalty(f, x, vectors=vectors, reduction="none").mean(0)
        torch.testing.assert_close(mean, torch.tensor([4.0, 16 * x0**2], dtype=torch.float64))


def test_two_k_form_equals_reference_two_k_plus_one_form_in_fp32():
    g = torch.Generator().manual_seed(3)
    w1, w2 = torch.randn(8, 32, generator=g), torch.randn(32, 3 * 4 * 4, generator=g)

    def f(x):  # a smooth small network (n, 8) -> (n, 3, 4, 4) in [-1, 1]
        return torch.tanh(torch.tanh(x @ w1) @ w2).reshape(-1, 3, 4, 4)

    x = torch.randn(5, 8, generator=g)
    for k in (2, 3, 4):
        vectors = rademacher((k, 5, 8), generator=g)
        for reduction in ("mean", "max"):
            ours = hessian_penalty(f, x, vectors=vectors, reduction=reduction)
            reference = hessian_penalty_reference(f, x, vectors=vectors, reduction=reduction)
            # the 2k and 2k+1 forms differ only in rounding: |f| <= 1 (tanh), so each second
            # difference moves by at most second_difference_error; the penalty is a variance of
            # such O(1) values, compared against its own size
            rel = second_difference_error(0.1)
            assert_close_to_scale(ours, reference, rel, f"k={k} {reduction}")
            for chunk in range(1, 2 * k + 1):  # every evaluation layout gives the same numbers
                chunked = hessian_penalty(f, x, vectors=vectors, reduction=reduction, chunk_size=chunk)
                assert_close_to_scale(chunked, ours, rel, f"k={k} {reduction} chunk {chunk}")


def test_list_outputs_are_penalised_jointly_as_a_sum():
    def f(x):
        return [x[:, :1] * x[:, 1:2], (x[:, 0] ** 2 * x[:, 1]).unsqueeze(1)]

    x = torch.randn(4, 2, dtype=torch.float64)
    vectors = rademacher((2, 4, 2), dtype=torch.float64)
    joint = hessian_penalty(f, x, vectors=vectors)
    parts = [hessian_penalty(lambda u, i=i: f(u)[i], x, vectors=vectors) for i in range(2)]
    torch.testing.assert_close(joint, parts[0] + parts[1])
    assert len(hessian_penalty(f, x, vectors=vectors, reduction="none")) == 2


def test_zero_for_diagonal_hessians():
    coeffs = torch.randn(3, 6, 4, dtype=torch.float64)

    def f(x):  # a sum of per-coordinate cubics: every Hessian is diagonal
        return (coeffs[0] * x.unsqueeze(-1) + coeffs[1] * x.unsqueeze(-1) ** 2
                + coeffs[2] * x.unsqueeze(-1) ** 3).sum(1)

    x = torch.randn(16, 6, dtype=torch.float64)
    assert hessian_penalty(f, x, k=4).abs() < 1e-8
    assert hessian_penalty(f, x, k=4, reduction="max").abs() < 1e-8


def test_max_reduction_is_the_largest_element():
    f, m = quadratic(4, outputs=3, seed=2)
    x = torch.randn(6, 4, dtype=torch.float64)
    vectors = rademacher((2, 6, 4), dtype=torch.float64)
    per_element = hessian_penalty(f, x, vectors=vectors, reduction="none")
    assert hessian_penalty(f, x, vectors=vectors, reduction="max") == per_element.max()
    torch.testing.assert_close(hessian_penalty(f, x, vectors=vectors), per_element.mean())


def test_gradient_through_gram_schmidt_matches_finite_differences():
    # The learning objective in miniature: penalty of g(z + w Q) w.r.t. w, with Q = GS(A).
    g = torch.Generator().manual_seed(4)
    w1 = torch.randn(5, 7, generator=g, dtype=torch.float64)
    z = torch.randn(3, 5, generator=g, dtype=torch.float64)
    w0 = torch.randn(3, 3, generator=g, dtype=torch.float64)
    vectors = rademacher((2, 3, 3), generator=g, dtype=torch.float64)

    def objective(a):
        q = gram_schmidt(a)  # (3, 5)
        # f sees stacked copies of the batch: row r belongs to sample r mod B.
        def f(w):
            return torch.tanh((z.repeat(w.shape[0] // 3, 1) + w @ q) @ w1)

        return hessian_penalty(f, w0, vectors=vectors)

    a = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(objective(a), a)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert torch.autograd.gradcheck(objective, (a,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_exact_hessian_helpers_agree_on_a_cubic():
    f, _ = quadratic(4, outputs=2, seed=5)

    def cubic(x):
        return torch.cat([f(x), (x[:, :1] ** 2 * x[:, 1:2]) * x[:, 2:3]], dim=1)

    x = torch.randn(4, dtype=torch.float64)
    exact = autograd_hessian(cubic, x)  # (3, 4, 4)
    torch.testing.assert_close(finite_difference_hessian(cubic, x, epsilon=0.1, batch_size=7), exact)
    assert exact.shape == (3, 4, 4)


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 1}, "k must be an integer >= 2"),
    ({"k": 0}, "k must be an integer >= 2"),
    ({"epsilon": 0.0}, "epsilon must be a finite number > 0"),
    ({"epsilon": -0.1}, "epsilon must be a finite number > 0"),
    ({"epsilon": math.nan}, "epsilon must be a finite number > 0"),
    ({"reduction": "sum"}, "reduction must be one of"),
])
def test_bad_settings_are_rejected_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        hessian_penalty(lambda x: x, torch.zeros(2, 3), **kwargs)

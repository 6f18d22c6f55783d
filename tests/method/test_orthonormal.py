"""method/orthonormal.py: gram_schmidt against the classical sequential procedure, written
independently here; the oriented complement that carries no parameter; canonical signs."""

import pytest
import torch
from tolerances import FLOAT32_EPS, FLOAT64_EPS

from direction_finder import gram_schmidt, orthonormal_directions
from direction_finder.method.orthonormal import canonical_signs


def classical_gram_schmidt(a: torch.Tensor) -> torch.Tensor:
    rows = []
    for vector in a:
        residual = vector.clone()
        for q in rows:
            residual = residual - (vector @ q) * q
        rows.append(residual / residual.norm())
    return torch.stack(rows)


@pytest.mark.parametrize("n, d", [(1, 4), (5, 5), (8, 128), (128, 128)])
def test_orthonormal_and_equal_to_sequential(n, d):
    a = torch.randn(n, d, generator=torch.Generator().manual_seed(n * d))
    q = gram_schmidt(a)
    # Householder QR keeps Q orthonormal to a few eps times the dimension, whatever A's condition;
    # its rows differ from exact Gram-Schmidt by at most ~ cond(A) * eps (perturbation theory of QR).
    torch.testing.assert_close(q @ q.T, torch.eye(n), atol=4 * d * FLOAT32_EPS, rtol=0)
    expected = classical_gram_schmidt(a.double()).float()
    cond = float(torch.linalg.cond(a.double()))
    torch.testing.assert_close(q, expected, atol=8 * cond * FLOAT32_EPS, rtol=0)
    assert q.dtype == a.dtype and q.shape == (n, d)


def test_float64_equality_is_tight():
    a = torch.randn(16, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    # float64: the same bound as above, cond(A) * eps, with eps = 2.2e-16 (cond ~ 10 here)
    cond = float(torch.linalg.cond(a))
    torch.testing.assert_close(gram_schmidt(a), classical_gram_schmidt(a), atol=64 * cond * FLOAT64_EPS, rtol=0)


def test_sign_convention_is_stable():
    # A tiny change in A gives a tiny change in Q: no row flips sign.
    g = torch.Generator().manual_seed(2)
    a = torch.randn(32, 64, generator=g, dtype=torch.float64)
    for _ in range(20):
        delta = 1e-6 * torch.randn(32, 64, generator=g, dtype=torch.float64)
        # continuity: |dQ| <= ~cond(A) |dA| / |A| (cond ~ 5 for this 32 x 64 A); a flipped row is O(1)
        assert (gram_schmidt(a + delta) - gram_schmidt(a)).abs().max() < 1e-4
    # Each row keeps a positive component along its own input row.
    assert ((gram_schmidt(a) * a).sum(1) > 0).all()


def test_first_row_is_the_normalised_first_input_row():
    a = torch.randn(4, 9)
    torch.testing.assert_close(gram_schmidt(a)[0], a[0] / a[0].norm())


def test_dependent_rows_raise_a_clear_error():
    a = torch.randn(3, 6)
    a[2] = 2 * a[0] - a[1]
    with pytest.raises(ValueError, match="row 2 lies in the span"):
        gram_schmidt(a)
    with pytest.raises(ValueError, match="cannot make 7 orthonormal rows in 6 dimensions"):
        gram_schmidt(torch.randn(7, 6))
    with pytest.raises(ValueError, match="linearly dependent"):
        gram_schmidt(torch.full((2, 3), float("nan")))


def test_differentiable():
    a = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: gram_schmidt(x).sin().sum(), (a,))


def test_the_last_row_is_the_oriented_complement_and_has_no_parameter():
    A = torch.randn(6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    A[-1] = A[0]  # a last row in the span of the others: plain Gram-Schmidt refuses it
    with pytest.raises(ValueError, match="row 5 lies in the span"):
        gram_schmidt(A)
    A.requires_grad_(True)
    Q = orthonormal_directions(A)
    torch.testing.assert_close(Q @ Q.T, torch.eye(6, dtype=torch.float64), atol=1e-12, rtol=0)
    assert float(torch.linalg.det(Q.detach())) == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(Q[:-1], gram_schmidt(A[:-1].detach()), atol=1e-12, rtol=0)
    weights = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (Q * weights).sum().backward()
    assert torch.count_nonzero(A.grad[-1]) == 0  # no parameter: Adam never moves it
    # The gradient reaches the other rows through the complement: an independent computation,
    # plain Gram-Schmidt of A with the last row replaced by the (fixed) complement, agrees.
    B = A.detach().clone()
    B[-1] = Q[-1].detach() * 3.0
    B.requires_grad_(True)
    (gram_schmidt(B) * weights).sum().backward()
    torch.testing.assert_close(A.grad[:-1], B.grad[:-1], atol=1e-10, rtol=0)



def test_fewer_directions_than_z_dim_is_plain_gram_schmidt():
    A = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(orthonormal_directions(A), gram_schmidt(A))



def test_saved_signs_are_canonical():
    Q = gram_schmidt(torch.randn(7, 9, generator=torch.Generator().manual_seed(3)))
    flipped = Q * torch.tensor([1.0, -1, 1, -1, -1, 1, 1])[:, None]
    assert torch.equal(canonical_signs(flipped), canonical_signs(Q))
    assert (canonical_signs(Q).sum(dim=1) > 0).all()

"""Adam on the manifold of orthonormal directions (--optimizer riemannian): its geometry, that Q
stays orthonormal, that a resume is bitwise, and that it finds the synthetic truth."""

import pytest
import torch
from tolerances import FLOAT32_EPS, FLOAT64_EPS

from direction_finder import LearnConfig, SyntheticGenerator
from direction_finder.errors import UsageError
from direction_finder.generators.synthetic import recovery_score
from direction_finder.learning.learn import LearnInterrupted, learn
from direction_finder.method.manifold import RiemannianAdam, cayley_step, tangent
from direction_finder.method.orthonormal import gram_schmidt


def _orthonormal(n, d, seed):
    return gram_schmidt(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))


def test_the_projection_is_onto_the_tangent_space():
    A, G = _orthonormal(5, 9, 0), torch.randn(5, 9, dtype=torch.float64)
    xi = tangent(A, G)
    assert torch.allclose(A @ xi.T + xi @ A.T, torch.zeros(5, 5, dtype=torch.float64), atol=50 * FLOAT64_EPS)
    assert torch.allclose(tangent(A, xi), xi, atol=50 * FLOAT64_EPS)  # a projection: twice is once
    # and the orthogonal one: what it removes is orthogonal (Frobenius) to every tangent vector
    other = tangent(A, torch.randn(5, 9, dtype=torch.float64))
    assert abs(float(((G - xi) * other).sum())) < 100 * FLOAT64_EPS * float(G.norm() * other.norm())


@pytest.mark.parametrize("n", [4, 9])
def test_a_cayley_step_stays_orthonormal_and_moves_along_minus_the_step(n):
    A = _orthonormal(n, 9, 1)
    d = tangent(A, torch.randn(n, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(2)))
    for lr in (1e-1, 1.0):
        moved = cayley_step(A, d, lr)
        assert torch.allclose(moved @ moved.T, torch.eye(n, dtype=torch.float64), atol=100 * FLOAT64_EPS)
    # first order: (A(lr) - A) / lr -> -d, with an error of order lr
    for lr in (1e-3, 1e-4):
        slope = (cayley_step(A, d, lr) - A) / lr
        assert float((slope + d).abs().max()) <= 2 * lr * float(d.abs().max()) ** 2 * 9


def test_q_stays_orthonormal_to_float_precision_over_many_steps():
    for n in (6, 10):  # fewer directions than z_dim, and a whole rotation (last row from the others)
        A = torch.randn(n, 10, generator=torch.Generator().manual_seed(n)).requires_grad_()
        optimizer = RiemannianAdam([A], lr=0.05)
        with torch.no_grad():
            assert torch.allclose(A @ A.T, torch.eye(n), atol=20 * FLOAT32_EPS)  # made orthonormal at once
        for step in range(100):
            A.grad = torch.randn(n, 10, generator=torch.Generator().manual_seed(step))
            optimizer.step()
        error = float((A.detach().double() @ A.detach().double().T - torch.eye(n, dtype=torch.float64)).abs().max())
        assert error <= 4 * n * FLOAT32_EPS, error  # one orthonormalisation's rounding, not 100 steps' drift


def test_a_resumed_riemannian_run_is_bitwise_the_uninterrupted_one(tmp_path):
    g = SyntheticGenerator(z_dim=8, factors=3, size=4)
    config = LearnConfig(steps=12, batch_size=2, seed=1, checkpoint_every=5, eval_every=4, eval_samples=2,
                         optimizer="riemannian")  # fmt: skip
    whole = learn(g, config, out_dir=tmp_path / "whole")

    def stop(info):
        if info.step == 7:
            raise KeyboardInterrupt

    with pytest.raises(LearnInterrupted):
        learn(g, config, out_dir=tmp_path / "cut", on_step=stop)
    resumed = learn(g, config, out_dir=tmp_path / "cut", resume=True)
    assert torch.equal(whole.matrix, resumed.matrix) and torch.equal(whole.raw, resumed.raw)
    assert not torch.equal(whole.matrix, learn(g, LearnConfig(steps=12, batch_size=2, seed=1, eval_every=0)).matrix)


def test_the_riemannian_optimiser_recovers_the_synthetic_truth():
    g = SyntheticGenerator(z_dim=12, factors=4, size=8, seed=3)
    directions = learn(g, LearnConfig(steps=400, batch_size=8, seed=0, eval_every=0, optimizer="riemannian"))
    assert recovery_score(directions.matrix, g.true_directions) >= 0.98


def test_an_unknown_optimiser_is_one_line():
    with pytest.raises(UsageError, match="`optimizer`"):
        LearnConfig(optimizer="sgd")

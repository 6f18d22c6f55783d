"""The curvature warm start: its identity, its optimiser, and what learn does with it."""

import dataclasses
import time

import pytest
import torch
from tolerances import FLOAT32_EPS, FLOAT64_EPS

from direction_finder.config import LearnConfig
from direction_finder.generators.synthetic import SyntheticGenerator, recovery_score
from direction_finder.learning.learn import learn
from direction_finder.method.orthonormal import canonical_signs, gram_schmidt, orthonormal_directions
from direction_finder.method.warmstart import (
    curvature_directions,
    kurtosis_rotation,
    output_jacobian,
    tanh_curvature_weights,
)
from direction_finder.starts import STARTS, WARMSTART_SEED_OFFSET


class TanhGenerator:
    """y = tanh(M z + b) as a (n, 3, 4, 4) image: pre-activation a and its gradient are known."""

    z_dim = 6

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(3)
        self.M = torch.randn(48, self.z_dim, generator=g, dtype=torch.float64) * 0.5
        self.b = torch.randn(48, generator=g, dtype=torch.float64) * 0.5
        self.device = torch.device("cpu")

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z.double() @ self.M.T + self.b).reshape(-1, 3, 4, 4)


def test_output_jacobian_matches_autograd():
    g = TanhGenerator()
    z = torch.randn(1, g.z_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y, jacobian = output_jacobian(g, z, step=1e-4, batch_size=4)  # (48,), (48, 6)
    expected = torch.autograd.functional.jacobian(lambda v: g(v[None]).flatten(), z[0])  # (48, 6)
    torch.testing.assert_close(y, g(z).flatten())
    # central differences with step h = 1e-4 in float64: truncation ~h^2 |f'''| ~ 1e-8 (entries of M
    # are O(1)), rounding ~eps64 / h ~ 2e-12
    torch.testing.assert_close(jacobian, expected, atol=1e-7, rtol=0)


def test_weights_turn_output_gradients_into_the_tanh_curvature_term():
    # Independent form: with a = M z + b, tanh''(a)^2 (q . da/dz)^4 per element, from M directly.
    g = TanhGenerator()
    z = torch.randn(1, g.z_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    q = gram_schmidt(torch.randn(3, g.z_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(4)))
    y, jacobian = output_jacobian(g, z, step=1e-4)
    ours = (tanh_curvature_weights(y)[:, None] * (jacobian @ q.T) ** 4).sum()
    a = z[0] @ g.M.T + g.b  # (48,)
    t = torch.tanh(a)
    second = -2 * t * (1 - t * t)  # tanh''(a)
    direct = (second[:, None] ** 2 * (g.M @ q.T) ** 4).sum()
    # the Jacobian's error above (~1e-8 relative), raised to the 4th power: ~4e-8 relative
    torch.testing.assert_close(ours, direct, rtol=1e-6, atol=0)


def test_kurtosis_rotation_finds_a_planted_basis():
    # Every row lies along one vector of a hidden orthonormal basis B: F is largest at B (up to
    # signs and order), since sum_i (q_i . b)^4 <= 1 with equality only when b is a q_i.
    gen = torch.Generator().manual_seed(0)
    d, m = 7, 700
    basis = gram_schmidt(torch.randn(d, d, generator=gen, dtype=torch.float64))
    owner = torch.randint(0, d, (m,), generator=gen)
    rows = torch.randn(m, 1, generator=gen, dtype=torch.float64) * basis[owner]  # (m, d)
    weights = torch.rand(m, generator=gen, dtype=torch.float64) + 0.1
    Q = kurtosis_rotation(rows, weights, d, iterations=200, tolerance=1e-12)
    overlap = (Q @ basis.T).abs()  # a permutation matrix when recovered
    # stopped at a step change of 1e-12: recovery to far better than 1e-5, orthonormal to float64
    assert torch.allclose(overlap.max(dim=1).values, torch.ones(d, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(Q @ Q.T, torch.eye(d, dtype=torch.float64), atol=64 * d * FLOAT64_EPS)


def test_kurtosis_rotation_never_decreases_the_objective():
    gen = torch.Generator().manual_seed(1)
    rows = torch.randn(500, 9, generator=gen, dtype=torch.float64) ** 3  # heavy-tailed, no planted answer
    weights = torch.rand(500, generator=gen, dtype=torch.float64)

    def objective(Q: torch.Tensor) -> float:
        return float((weights[:, None] * (rows @ Q.T) ** 4).sum())

    values = [objective(kurtosis_rotation(rows, weights, 4, iterations=t, tolerance=0)) for t in range(8)]
    assert all(b >= a * (1 - 1e-6) for a, b in zip(values, values[1:]))
    assert values[-1] > values[0]


def test_curvature_directions_recover_the_synthetic_truth():
    g = SyntheticGenerator(z_dim=8, factors=4, size=8, seed=5)
    Q = curvature_directions(g, 8, samples=4, seed=0)  # (8, 8)
    assert torch.allclose(Q @ Q.T, torch.eye(8), atol=4 * 8 * FLOAT32_EPS, rtol=0)  # float32 QR
    assert recovery_score(Q[:4], g.true_directions) > 0.999  # the 4 factors come first, by image change
    signs = Q.gather(1, Q.abs().argmax(dim=1, keepdim=True))
    assert (signs > 0).all()


def test_learn_starts_from_the_warm_start_and_resume_does_not_recompute_it(tmp_path, monkeypatch):
    g = SyntheticGenerator(z_dim=8, factors=4, size=8, seed=5)
    expected = curvature_directions(g, 8, seed=WARMSTART_SEED_OFFSET)
    config = LearnConfig(steps=1, batch_size=1, eval_every=0, init="curvature", lr=1e-12)
    real = STARTS["curvature"].make  # learn finds every start in the table

    def slow(*args, **kwargs):  # a warm start that takes at least 0.5 s
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setitem(STARTS, "curvature", dataclasses.replace(STARTS["curvature"], make=slow))
    seen = []
    directions = learn(g, config, out_dir=tmp_path / "run", on_step=seen.append)
    # lr 1e-12 leaves A where it started: the same matrix, rounded to float32 unit vectors
    torch.testing.assert_close(directions.matrix, canonical_signs(orthonormal_directions(expected)),
                               atol=64 * FLOAT32_EPS, rtol=0)
    assert seen[0].elapsed >= 0.5  # the warm start's time counts as learning time (--time-limit)

    def refuse(*args, **kwargs):
        raise AssertionError("the warm start was computed again on resume")

    monkeypatch.setitem(STARTS, "curvature", dataclasses.replace(STARTS["curvature"], make=refuse))
    resumed = learn(g, LearnConfig(steps=2, batch_size=1, eval_every=0, init="curvature", lr=1e-12),
                    out_dir=tmp_path / "run", resume=True, on_step=seen.append)
    torch.testing.assert_close(resumed.matrix, directions.matrix, atol=64 * FLOAT32_EPS, rtol=0)  # one more 1e-12 step


@pytest.mark.parametrize("n", [0, 9])
def test_curvature_directions_refuse_a_bad_count(n):
    with pytest.raises(ValueError, match="n must be in 1..8"):
        curvature_directions(SyntheticGenerator(z_dim=8), n)


def test_the_curvature_recipe_still_recovers_the_synthetic_truth():
    # The same generator and budget as the paper recipe's recovery test in test_learn.py.
    g = SyntheticGenerator(z_dim=12, factors=4, size=8, seed=3)
    directions = learn(g, LearnConfig.from_recipe("curvature", steps=400, batch_size=8, seed=0, eval_every=0))
    assert recovery_score(directions.matrix, g.true_directions) >= 0.99


def test_curvature_warm_start_runs_on_biggan(tiny_biggan):
    Q = curvature_directions(tiny_biggan, 4, samples=2, seed=0)  # (4, z_dim)
    assert Q.shape == (4, tiny_biggan.z_dim) and torch.isfinite(Q).all()
    assert torch.allclose(Q @ Q.T, torch.eye(4), atol=4 * 8 * FLOAT32_EPS, rtol=0)  # float32 QR

"""evaluation/probes.py: the held-out data's intervals cover the true expected penalty at about
the nominal rate, in both modes."""

import pytest
import torch

from direction_finder import SyntheticGenerator, gram_schmidt
from direction_finder.evaluation.compare import CompareSettings, compare_sets
from direction_finder.learning.objective import direction_penalty


@pytest.mark.parametrize("mode", [{"budget": "1500"}, {"samples": 8, "top": 2, "sweep_steps": 2}])
def test_intervals_cover_the_true_mean_penalty_at_about_the_nominal_rate(mode):
    g = SyntheticGenerator(z_dim=8, factors=4, size=8, seed=0)
    Q = gram_schmidt(torch.randn(8, 8, generator=torch.Generator().manual_seed(5)))
    truth = true_mean_penalty(g, Q)
    covered = 0
    for seed in range(50):
        results = compare_sets(g, Q, baselines=[], settings=CompareSettings(seed=seed, **mode))
        low, high = results.reports[0].metrics["heldout_penalty"].interval()
        covered += low <= truth <= high
    assert 45 <= covered <= 50  # 90-100% of 50 nominal-95% intervals


def true_mean_penalty(g, Q, samples=20000):
    """The objective's expectation (z, i uniform, eta, vectors), by brute force on independent draws."""
    rng = torch.Generator().manual_seed(12345)
    z = g.sample_z(samples, rng)
    index = torch.randint(0, Q.shape[0], (samples,), generator=rng)
    eta = (torch.rand(samples, generator=rng) * 2 - 1) * 5
    values = direction_penalty(g, Q, z, index, eta, k=2, epsilon=0.1, reduction="none", rng=rng)
    return float(values.reshape(samples, -1).double().mean())  # se ~0.5% of it, far below an interval

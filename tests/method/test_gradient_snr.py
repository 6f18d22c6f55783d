"""The statistics behind benchmarks/gradient_snr.py's claim that learning's gradient is mostly noise.

The benchmark estimates the squared norm of an expected gradient from M noisy batch gradients.
The plain |mean|^2 overshoots it by tr(Sigma)/M, which at M = 600 and the measured noise is ten
times the quantity itself, so the estimate must be the unbiased one, and its interval must hold.
Checked here on Gaussian rows whose mean is known.
"""

import importlib.util
from pathlib import Path

import torch

MODULE = Path(__file__).resolve().parents[2] / "benchmarks" / "gradient_snr.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("gradient_snr", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gaussian_rows(rng: torch.Generator, m: int, p: int, mean_norm2: float) -> torch.Tensor:
    """M rows (M, P) of N(mu, I) with |mu|^2 = mean_norm2."""
    mu = torch.full((p,), (mean_norm2 / p) ** 0.5, dtype=torch.float64)
    return mu + torch.randn(m, p, generator=rng, dtype=torch.float64)


def test_the_signal_estimate_is_unbiased_where_the_plain_one_is_not():
    snr = load_benchmark()
    rng = torch.Generator().manual_seed(0)
    m, p, truth, reps = 20, 50, 0.5, 2000
    estimates, plain = [], []
    for _ in range(reps):
        y = gaussian_rows(rng, m, p, truth)
        estimates.append(snr.signal_squared(y))
        plain.append(float(y.mean(0).pow(2).sum()))
    estimates = torch.tensor(estimates)
    # sd of one estimate: sqrt(2 tr(Sigma^2) / (M (M - 1)) + 4 mu' Sigma mu / M) = sqrt(0.26 + 0.1) = 0.6
    se = float(estimates.std()) / reps**0.5  # ~0.013
    assert abs(float(estimates.mean()) - truth) < 4 * se
    # the plain estimate carries tr(Sigma) / M = 2.5 of bias
    assert abs(sum(plain) / reps - (truth + p / m)) < 0.1


def test_the_jackknife_interval_covers_the_truth_about_95_percent_of_the_time():
    snr = load_benchmark()
    rng = torch.Generator().manual_seed(1)
    m, p, truth, reps = 40, 30, 1.0, 400
    covered = 0
    for _ in range(reps):
        y = gaussian_rows(rng, m, p, truth)
        value, half_width = snr.jackknife(y, snr.signal_squared)
        covered += abs(value - truth) <= half_width
    # 95% nominal; the binomial sd over 400 repetitions is 0.011, the jackknife is approximate at M = 40
    assert 0.88 <= covered / reps <= 0.99, covered / reps

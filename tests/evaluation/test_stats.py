"""evaluation/stats.py: intervals against textbook t intervals and an independent jackknife, and
paired differences that pair."""

import numpy as np

from direction_finder.evaluation.stats import Statistic


def test_mean_interval_is_the_textbook_t_interval():
    s = Statistic.mean([1.0, 2.0, 3.0, 4.0, 5.0])
    # sd = sqrt(2.5) = 1.5811, se = 0.70711, t(0.975, 4) = 2.7764 (any table)
    assert s.value == 3.0 and abs(s.se - 0.70711) < 1e-5
    low, high = s.interval()
    assert abs(low - (3 - 2.7764 * 0.70711)) < 1e-4 and abs(high - (3 + 2.7764 * 0.70711)) < 1e-4
    one = Statistic.mean([2.0])
    assert np.isnan(one.se) and all(np.isnan(one.interval()))  # one sample: no spread to tell



def test_ratio_error_agrees_with_an_independent_jackknife_and_paired_differences_pair():
    rng = np.random.default_rng(0)
    shared = rng.gamma(2.0, size=400)  # what a sample does to every set alike
    x, y = shared * 3 + rng.normal(0, 0.3, 400), shared + rng.normal(0, 0.2, 400) + 1
    ours = Statistic.ratio(x, y)
    leave_one_out = np.array([np.delete(x, i).mean() / np.delete(y, i).mean() for i in range(400)])
    jackknife = np.sqrt(399 / 400 * np.sum((leave_one_out - leave_one_out.mean()) ** 2))
    assert abs(ours.value - x.mean() / y.mean()) < 1e-12
    assert abs(ours.se - jackknife) < 0.02 * jackknife  # both first-order: equal up to O(1/S)
    a, b = Statistic.mean(shared + rng.normal(0, 0.1, 400)), Statistic.mean(shared)
    paired = a - b
    # the paired error is that of the per-sample differences, far below either set's own
    assert abs(paired.se - np.std(a.influence - b.influence, ddof=1) / 20) < 1e-12
    assert paired.se < 0.2 * b.se

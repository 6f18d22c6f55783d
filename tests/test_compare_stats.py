"""compare's statistics: intervals against textbook values and an independent jackknife, their
coverage of a known expectation, the budget's plan, local activeness, and `compare A B`."""

import json
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from direction_finder import SyntheticGenerator, gram_schmidt
from direction_finder.errors import HpdirsWarning, UsageError
from direction_finder.evaluation.budget import costs, parse_budget, plan
from direction_finder.evaluation.compare import CompareSettings, compare_sets
from direction_finder.evaluation.measures import jacobian_gram, local_activeness
from direction_finder.evaluation.stats import Statistic
from direction_finder.learning.objective import direction_penalty
from hpdirs_cli.main import app

runner = CliRunner()


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


def test_budget_text_and_the_plan_of_the_default_compare_on_biggan_deep_128():
    assert parse_budget("10m").seconds == 600 and parse_budget("90s").seconds == 90
    assert parse_budget("1.5h").seconds == 5400 and parse_budget("3300").images == 3300
    for bad in ("ten minutes", "0", "5x", "-3m"):
        with pytest.raises(UsageError, match="`budget`"):
            parse_budget(bad)
    # 4 sets of 128 directions, z_dim 128, k 2, top 8, the side-by-side GIFs (288 images)
    chosen = plan(3300, sets=4, n=128, z_dim=128, k=2, top=8, gif_images=288)
    unit = costs(4, 128, 128, 2, 8)
    assert chosen.total <= 3300 and chosen.images["gifs"] == 288
    # per Hessian sample: 4 sets x 2 x 8^2 images, and the image at the sample, shared
    assert chosen.images["hessians"] == chosen.hessian_samples * unit["hessians"] == chosen.hessian_samples * 513
    assert chosen.images["jacobians"] == chosen.jacobian_samples * 128  # forward differences, one per axis
    assert chosen.images["penalty"] == chosen.penalty_samples * 16
    assert chosen.hessian_samples >= 4 and chosen.penalty_samples >= 40 and chosen.jacobian_samples >= 1
    assert 3300 - chosen.total < unit["penalty"]  # nothing left that would buy another evaluation
    with pytest.raises(UsageError, match="at least 1,.* are needed"):
        plan(1000, sets=4, n=128, z_dim=128, k=2, top=8)


class Counting(SyntheticGenerator):
    """Counts the images it generates."""

    images = 0

    def __call__(self, z):
        self.images += z.shape[0]
        return super().__call__(z)


@pytest.mark.parametrize("settings", [CompareSettings(budget="5000"), CompareSettings(samples=3, top=4)])
def test_the_images_generated_are_the_images_planned(settings):
    g = Counting(z_dim=8, factors=4, size=8, seed=0)
    totals = []
    results = compare_sets(g, torch.eye(8), baselines=["axes", "random"], settings=settings,
                      on_images=lambda done, total: totals.append(total))  # fmt: skip
    assert g.images == results.measured["images"] == totals[-1]
    if settings.budget:
        assert results.measured["images"] <= 5000


def test_local_activeness_is_the_squared_derivative_of_a_linear_generator():
    w = torch.randn(12, 5, generator=torch.Generator().manual_seed(0))

    class Linear:  # G(z) = W z: J = W at every z
        z_dim, device = 5, torch.device("cpu")

        def __call__(self, z):
            return (z @ w.T).reshape(-1, 1, 3, 4)

    z = torch.randn(1, 5)
    gram = jacobian_gram(Linear(), z, Linear()(z), 0.1, batch_size=4)
    q = gram_schmidt(torch.randn(3, 5, generator=torch.Generator().manual_seed(1)))
    exact = ((q.double() @ w.double().T) ** 2).mean(dim=1)  # mean over the 12 outputs of (W q)^2
    # differences of a linear map are exact but for float32 rounding of |Wz| ~ 5, over eps 0.1
    np.testing.assert_allclose(local_activeness([gram], q)[0].numpy(), exact.numpy(), rtol=1e-4)


def true_mean_penalty(g, Q, samples=20000):
    """The objective's expectation (z, i uniform, eta, vectors), by brute force on independent draws."""
    rng = torch.Generator().manual_seed(12345)
    z = g.sample_z(samples, rng)
    index = torch.randint(0, Q.shape[0], (samples,), generator=rng)
    eta = (torch.rand(samples, generator=rng) * 2 - 1) * 5
    values = direction_penalty(g, Q, z, index, eta, k=2, epsilon=0.1, reduction="none", rng=rng)
    return float(values.reshape(samples, -1).double().mean())  # se ~0.5% of it, far below an interval


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


def test_default_budget_on_synthetic_tells_truth_from_random_but_not_axes_from_random():
    g = SyntheticGenerator(z_dim=8, factors=4, size=8, seed=0)
    results = compare_sets(g, torch.eye(8), baselines=["random"], settings=CompareSettings(budget="3000"))
    verdicts = {(d.other, d.metric): d.verdict for d in results.differences}  # axes - each set
    assert [r.name for r in results.reports] == ["learned", "random", "truth"]
    assert results.measured["mode"] == "budget" and results.measured["images"] <= 3000
    # the penalty: the axes and a random rotation are equal in expectation over rotations
    assert verdicts[("random", "heldout_penalty")] == "not significant"
    for metric in ("heldout_penalty", "D_R"):
        assert verdicts[("truth", metric)] == "worse"
    # (D_R of these smooth sines barely varies between samples: its interval is narrow enough to
    # tell one particular rotation from the axes, a real difference of those two sets)


def learn_synthetic(tmp_path, name, extra=()):
    result = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=8,factors=4,size=8", "--steps", "300",
                                 "--batch-size", "8", "--eval-every", "0", "--out", str(tmp_path), "--name", name,
                                 *extra])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return next(tmp_path.glob(f"*/{name}"))


def test_compare_a_b_pairs_two_runs_and_writes_beside_the_first(tmp_path):
    a = learn_synthetic(tmp_path, "a")
    b = learn_synthetic(tmp_path, "b", ["--steps", "1", "--lr", "1e-9"])  # hardly moved from its random start
    result = runner.invoke(app, ["compare", str(a), str(b), "--budget", "2000", "--no-gifs"])
    assert result.exit_code == 0, result.stderr
    report = json.loads((a / "compare-vs-b" / "report.json").read_text())
    assert list(report["sets"]) == ["a", "b", "truth"]  # no baseline unless asked for; truth is known here
    verdict = {(d["other"], d["metric"]): d["verdict"] for d in report["differences"]}
    assert verdict[("b", "heldout_penalty")] == "better" and verdict[("b", "D_R")] == "better"
    assert "a − set" in result.stdout and "better" in result.stdout
    with_axes = runner.invoke(app, ["compare", str(a), str(b), "--budget", "3000", "--baselines", "axes",
                                    "--no-gifs", "--out", str(tmp_path / "ab")])  # fmt: skip
    assert with_axes.exit_code == 0, with_axes.stderr
    assert list(json.loads((tmp_path / "ab" / "report.json").read_text())["sets"]) == ["a", "b", "axes", "truth"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "10x"], "--budget '10x' is not a budget; give a time (10m, 90s, 1h) or a number of images"),
        (["--budget", "5m", "--samples", "4"], "--budget and --samples (or --precise, --latents) exclude each other"),
        (["--budget", "100"], "--budget of 100 images is too small"),
    ],
)
def test_bad_budgets_are_one_line_errors(tmp_path, args, message):
    run = learn_synthetic(tmp_path, "r", ["--steps", "2"])
    result = runner.invoke(app, ["compare", str(run), "--no-gifs", *args])
    assert result.exit_code == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_time_budget_too_short_for_a_slow_generator_measures_the_fewest_images_and_says_so():
    class Slow(SyntheticGenerator):  # >= 1 ms per image: a 1 s budget buys < 1,000 images, too few here
        def __call__(self, z):
            time.sleep(1e-3 * z.shape[0])
            return super().__call__(z)

    g = Slow(z_dim=8, factors=4, size=8, seed=0)
    with pytest.warns(HpdirsWarning, match=r"`budget` 1 s buys about \d+ images at the .* images/s measured; "
                                           r"measuring the fewest that give intervals, 1,066 images"):  # fmt: skip
        results = compare_sets(g, torch.eye(8), settings=CompareSettings(budget="1s"))
    # 2 Hessian samples (2 x (4 sets x 2 x 8^2 + 1)), one Jacobian (8), 2 penalty samples (2 x 4 sets x 4)
    assert results.measured["images"] == 1066 and results.measured["hessian_samples"] == 2


def test_compare_a_b_refuses_two_different_generators(tmp_path):
    a = learn_synthetic(tmp_path, "a", ["--steps", "2"])
    other = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=8,factors=3,size=8", "--steps", "2",
                                "--eval-every", "0", "--out", str(tmp_path / "o"), "--name", "b"])  # fmt: skip
    assert other.exit_code == 0, other.stderr
    b = next((tmp_path / "o").glob("*/b"))
    result = runner.invoke(app, ["compare", str(a), str(b), "--no-gifs"])
    assert result.exit_code == 1 and "different generators (model" in result.stderr
    assert "pass --model, --class and --truncation" in result.stderr

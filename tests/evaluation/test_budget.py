"""evaluation/budget.py: `--budget` text and the plan (samples per metric for a number of images), the
images generated against the images planned, and a budget too short for the generator."""

import time

import pytest
import torch
from helpers import Counting, learn_synthetic, runner

from direction_finder import SyntheticGenerator
from direction_finder.errors import HpdirsWarning, UsageError
from direction_finder.evaluation.budget import costs, parse_budget, plan
from direction_finder.evaluation.compare import CompareSettings, compare_sets
from hpdirs_cli.main import app


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



@pytest.mark.parametrize("settings", [CompareSettings(budget="5000"), CompareSettings(samples=3, top=4)])
def test_the_images_generated_are_the_images_planned(settings):
    g = Counting(z_dim=8, factors=4, size=8, seed=0)
    totals = []
    results = compare_sets(g, torch.eye(8), baselines=["axes", "random"], settings=settings,
                      on_images=lambda done, total: totals.append(total))  # fmt: skip
    assert g.images == results.measured["images"] == totals[-1]
    if settings.budget:
        assert results.measured["images"] <= 5000



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


class Counting(SyntheticGenerator):
    """Counts the images it generates."""

    images = 0

    def __call__(self, z):
        self.images += z.shape[0]
        return super().__call__(z)

"""learning/learn.py: ground-truth recovery, determinism, resume, time limits, a non-finite loss."""

import dataclasses
import math

import pytest
import torch
from tolerances import FLOAT32_EPS

from direction_finder.artifacts.directions import load_directions
from direction_finder.config import LearnConfig
from direction_finder.errors import UsageError
from direction_finder.generators.synthetic import SyntheticGenerator, recovery_score
from direction_finder.learning.learn import LearnInterrupted, NonFiniteLoss, learn
from direction_finder.learning.objective import HeldOut, heldout_penalty
from direction_finder.method.orthonormal import canonical_signs, gram_schmidt, orthonormal_directions


def test_synthetic_ground_truth_is_recovered_and_baselines_are_not():
    g = SyntheticGenerator(z_dim=12, factors=4, size=8, seed=3)
    directions = learn(g, LearnConfig(steps=400, batch_size=8, seed=0, eval_every=0))
    learned = recovery_score(directions.matrix, g.true_directions)
    axes = recovery_score(torch.eye(12), g.true_directions)
    random = recovery_score(gram_schmidt(torch.randn(12, 12, generator=torch.Generator().manual_seed(1))),
                            g.true_directions)
    print(f"recovery: learned {learned:.4f}, axes {axes:.4f}, random {random:.4f}")
    assert learned >= 0.95
    assert axes < 0.8 and random < 0.8


def test_true_directions_have_zero_penalty_and_random_ones_do_not():
    g = SyntheticGenerator(z_dim=8, factors=4, size=8, seed=0)
    config = LearnConfig(batch_size=8).resolved(g)
    heldout = HeldOut.draw(g, 8, 32, 2, 5.0, seed=1)
    truth = heldout_penalty(g, g.basis, heldout, config)
    random = heldout_penalty(g, gram_schmidt(torch.randn(8, 8)), heldout, config)
    assert truth < 1e-6 < random


def test_same_seed_gives_bitwise_identical_directions():
    g = SyntheticGenerator(z_dim=8, factors=3, size=4)
    config = LearnConfig(steps=30, batch_size=4, seed=5, eval_every=10)
    a, b = learn(g, config), learn(g, config)
    assert torch.equal(a.matrix, b.matrix)
    assert not torch.equal(a.matrix, learn(g, LearnConfig(steps=30, batch_size=4, seed=6, eval_every=10)).matrix)


class StopAt:
    def __init__(self, step):
        self.step = step

    def __call__(self, info):
        if info.step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize("which", ["synthetic", "biggan"])
def test_resume_after_an_interruption_is_bitwise_identical(which, tiny_biggan, tmp_path):
    g = SyntheticGenerator(z_dim=8, factors=3, size=4) if which == "synthetic" else tiny_biggan
    config = LearnConfig(steps=12, batch_size=2, seed=1, checkpoint_every=5, eval_every=4, eval_samples=2)
    whole = learn(g, config, out_dir=tmp_path / "whole")
    with pytest.raises(LearnInterrupted) as info:
        learn(g, config, out_dir=tmp_path / "cut", on_step=StopAt(7))
    assert info.value.step == 7  # checkpoint written on Ctrl-C, at the last completed step
    resumed = learn(g, config, out_dir=tmp_path / "cut", resume=True)
    assert torch.equal(whole.matrix, resumed.matrix) and torch.equal(whole.raw, resumed.raw)
    for name in ("directions.safetensors", "directions_best.safetensors"):
        assert torch.equal(load_directions(tmp_path / "whole" / name).matrix,
                           load_directions(tmp_path / "cut" / name).matrix)
    rows = (tmp_path / "cut" / "loss.csv").read_text().splitlines()
    whole_rows = (tmp_path / "whole" / "loss.csv").read_text().splitlines()
    assert [r.split(",")[:2] for r in rows] == [r.split(",")[:2] for r in whole_rows]




class NaNAfter:
    """A synthetic generator that starts returning NaN after a number of calls."""

    def __init__(self, calls):
        self.inner, self.calls = SyntheticGenerator(z_dim=8, factors=3, size=4), calls
        self.z_dim, self.device = 8, torch.device("cpu")

    def sample_z(self, n, generator=None):
        return self.inner.sample_z(n, generator)

    def __call__(self, z):
        self.calls -= 1
        out = self.inner(z)
        return out * math.nan if self.calls < 0 else out


def test_a_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    g = NaNAfter(calls=4 * 7 + 1)  # 4 generator calls per step (sequential layout): step 8 breaks
    config = LearnConfig(steps=20, batch_size=2, checkpoint_every=3, eval_every=0, chunk_size=1)
    with pytest.raises(NonFiniteLoss, match="the loss became nan at step 8; the last good checkpoint"):
        learn(g, config, out_dir=tmp_path)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 6 and torch.isfinite(checkpoint["A"]).all()
    assert load_directions(tmp_path / "directions.safetensors").metadata["step"] == 6












def test_time_limit_stops_and_resume_continues_the_same_path(tmp_path):
    g = SyntheticGenerator(z_dim=8, factors=3, size=4)
    config = LearnConfig(steps=10**6, batch_size=2, eval_every=0, checkpoint_every=10**6)
    short = learn(g, config, out_dir=tmp_path, time_limit_s=0.2)
    steps = short.metadata["step"]
    assert 0 < steps < 10**6
    again = learn(g, config, out_dir=tmp_path, resume=True, time_limit_s=0.4)
    assert again.metadata["step"] > steps
    same = learn(g, dataclasses.replace(config, steps=again.metadata["step"]))
    assert torch.equal(same.matrix, again.matrix)


@pytest.mark.parametrize("init", ["sefa", "sefa-first"])
def test_sefa_warm_start_begins_at_the_closed_form_directions(tiny_biggan, init):
    from direction_finder.generators import sefa_of

    sefa = sefa_of(tiny_biggan, 16, init)  # every layer z enters, or the first only
    config = LearnConfig(steps=1, batch_size=1, eval_every=0, init=init, lr=1e-12)
    # lr 1e-12 leaves A where it started, to float32 rounding of unit vectors
    torch.testing.assert_close(learn(tiny_biggan, config).matrix, canonical_signs(orthonormal_directions(sefa)),
                               atol=64 * FLOAT32_EPS, rtol=0)
    with pytest.raises(UsageError, match="`init` sefa: this generator has no first linear layer"):
        LearnConfig(init="sefa").resolved(SyntheticGenerator(z_dim=8))


def test_learning_runs_on_every_device(device, tmp_path):
    """The device path: the generator, A, the step and the files, on the device the user names."""
    generator = SyntheticGenerator(z_dim=6, factors=2, size=4, device=device)
    directions = learn(generator, LearnConfig(steps=3, batch_size=2, eval_every=2, checkpoint_every=2),
                       out_dir=tmp_path / "run")  # fmt: skip
    assert directions.matrix.shape == (6, 6) and directions.matrix.device.type == "cpu"
    assert torch.isfinite(directions.matrix).all() and (tmp_path / "run" / "checkpoint.pt").is_file()

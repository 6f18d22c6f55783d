"""learn(): the exact objective, ground-truth recovery, determinism, resume, files."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from tolerances import FLOAT32_EPS, assert_close_to_scale, second_difference_error

from direction_finder.artifacts.directions import load_directions
from direction_finder.artifacts.runs import new_run_dir
from direction_finder.config import LearnConfig
from direction_finder.errors import UsageError
from direction_finder.generators.synthetic import SyntheticGenerator, recovery_score
from direction_finder.learning.learn import LearnInterrupted, NonFiniteLoss, learn
from direction_finder.learning.objective import HeldOut, direction_penalty, draw_batch, heldout_penalty
from direction_finder.method.orthonormal import canonical_signs, gram_schmidt, orthonormal_directions


def test_objective_matches_a_direct_per_sample_computation(tiny_biggan):
    # Independent form: per sample, evaluate f_b(w) = G(z_b + w Q) at w0 and w0 +- eps v_j,
    # take (f+ - 2 f0 + f-)/eps^2, the unbiased variance over j, then the mean over everything.
    g, n, batch, k, eps = tiny_biggan, 16, 3, 2, 0.1
    rng = torch.Generator().manual_seed(0)
    Q = gram_schmidt(torch.randn(n, g.z_dim, generator=rng))
    z = g.sample_z(batch, rng)
    index, eta = torch.tensor([3, 0, 15]), torch.tensor([4.5, -2.0, 0.3])
    vectors = torch.randint(0, 2, (k, batch, n), generator=rng).float() * 2 - 1
    per_sample = []
    for b in range(batch):
        w0 = torch.zeros(n)
        w0[index[b]] = eta[b]
        f = lambda w: g((z[b] + w @ Q).unsqueeze(0))[0]  # noqa: E731
        s = torch.stack([(f(w0 + eps * v[b]) - 2 * f(w0) + f(w0 - eps * v[b])) / eps**2 for v in vectors])
        per_sample.append(s.var(dim=0, unbiased=True))
    expected = torch.stack(per_sample).mean()
    for chunk in (1, 2, 4):
        ours = direction_penalty(g, Q, z, index, eta, k=k, epsilon=eps, vectors=vectors, chunk_size=chunk)
        # the direct form computes the centre and subtracts it, ours drops it: the same second
        # differences up to their rounding, compared against the penalty's size
        assert_close_to_scale(ours, expected, second_difference_error(eps), f"chunk {chunk}")


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


def test_resume_with_a_different_config_is_refused_naming_the_fields(tmp_path):
    g = SyntheticGenerator(z_dim=8, factors=3, size=4)
    learn(g, LearnConfig(steps=3, batch_size=2, eval_every=0), out_dir=tmp_path)
    with pytest.raises(UsageError, match=r"different config \(batch_size: 2 -> 3; lr: 0.01 -> 0.02"):
        learn(g, LearnConfig(steps=3, batch_size=3, lr=0.02, eval_every=0), out_dir=tmp_path, resume=True)
    # More steps is allowed: it continues the same path.
    more = learn(g, LearnConfig(steps=5, batch_size=2, eval_every=0), out_dir=tmp_path, resume=True)
    assert torch.equal(more.matrix, learn(g, LearnConfig(steps=5, batch_size=2, eval_every=0)).matrix)
    with pytest.raises(UsageError, match="already holds a run"):
        learn(g, LearnConfig(steps=3, batch_size=2, eval_every=0), out_dir=tmp_path)


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


def test_run_files_and_the_directions_file_format(tiny_biggan, tmp_path):
    config = LearnConfig(steps=4, batch_size=2, eval_every=2, eval_samples=2, checkpoint_every=2)
    learn(tiny_biggan, config, out_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["README.md", "checkpoint.pt", "config.json", "directions.safetensors",
                     "directions_best.safetensors", "loss.csv", "loss.png"]
    d = load_directions(tmp_path / "directions.safetensors")
    # Householder QR in float32: orthonormal to ~4 * z_dim * eps
    torch.testing.assert_close(d.matrix @ d.matrix.T, torch.eye(16), atol=4 * 16 * FLOAT32_EPS, rtol=0)
    m = d.metadata
    assert (m["format"], m["model"], m["class_index"], m["class_name"], m["truncation"], m["step"]) == (
        "hpdirs.directions/1", "biggan-deep-32", 207, "golden retriever", 0.4, 4)
    assert m["config"]["num_directions"] == 16 and m["config"]["lr"] == 0.01 and "torch" in m["versions"]
    assert np.array_equal(load_file(str(tmp_path / "directions.safetensors"))["directions"], d.matrix.numpy())
    assert torch.equal(d.matrix, canonical_signs(orthonormal_directions(d.raw)))
    assert (d.matrix.sum(dim=1) > 0).all()  # the documented canonical sign
    z = torch.zeros(3, 16)
    torch.testing.assert_close(d.apply(z, 5, torch.tensor([1.0, 2.0, -1.0]))[1], 2 * d.matrix[5])
    assert json.loads((tmp_path / "config.json").read_text())["generator"]["class_index"] == 207
    lines = (tmp_path / "loss.csv").read_text().splitlines()
    assert lines[0] == "step,loss,smoothed_loss,heldout,elapsed_s,sample_steps_per_s" and len(lines) == 5
    assert not any(p.grad is not None for p in tiny_biggan.model.parameters())


def test_a_gradient_step_lowers_the_penalty_as_predicted_on_a_tiny_random_biggan(tiny_biggan):
    """The gradient through the real generator, Gram-Schmidt and the oriented last row points
    downhill by the amount it claims: a step of length t |g| along -g lowers the penalty of the
    same draws by t |g|^2 to first order. (Whether 150 steps lower a held-out estimate on a random
    BigGAN depends on the instruction set: the k=2 path is chaotic; the synthetic test above
    checks learning end to end.)"""
    config = LearnConfig(batch_size=4).resolved(tiny_biggan)
    batch = draw_batch(tiny_biggan, config, torch.Generator().manual_seed(0))
    A = torch.nn.init.kaiming_normal_(torch.empty(16, 16), generator=torch.Generator().manual_seed(0))

    def penalty(a: torch.Tensor) -> torch.Tensor:
        return direction_penalty(tiny_biggan, orthonormal_directions(a), batch.z, batch.index, batch.eta,
                                 vectors=batch.vectors, chunk_size=config.chunk_size)

    a = A.clone().requires_grad_(True)
    before = penalty(a)
    (grad,) = torch.autograd.grad(before, a)
    predicted = 0.01 * float(before.detach())  # a 1% decrease: far above float32 noise (~1e-5), still first order
    t = predicted / float(grad.norm()) ** 2
    with torch.no_grad():
        actual = float(before.detach()) - float(penalty(A - t * grad))
    print(f"predicted decrease {predicted:.4g}, actual {actual:.4g}")
    assert 0.8 * predicted < actual < 1.2 * predicted


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "`steps` must be an integer from 1 to 1,000,000,000"),
    ({"batch_size": -1}, "`batch_size` must be an integer from 1 to 65,536"),
    ({"num_directions": 0}, "`num_directions` must be an integer from 1"),
    ({"eta": 0.0}, "`eta` must be a finite number > 0"),
    ({"epsilon": -0.1}, "`epsilon` must be a finite number > 0"),
    ({"lr": float("nan")}, "`lr` must be a finite number > 0"),
    ({"k": 1}, "`k` must be an integer from 2 to 1,024"),
    ({"lr": 1e300}, r"`lr` must be at most 10, got 1e\+300"),
    ({"seed": 2**64}, "`seed` must be an integer from 0 to 4,294,967,295"),
    ({"init": "zeros"}, "`init` must be random, axes, sefa or curvature"),
    ({"reduction": "none"}, "`reduction` must be mean or max"),
])
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(UsageError, match=message):
        LearnConfig(**kwargs)


def test_too_many_directions_and_unsupported_layers_are_refused():
    g = SyntheticGenerator(z_dim=8)
    with pytest.raises(UsageError, match="`num_directions` 9 is more than z_dim 8"):
        LearnConfig(num_directions=9).resolved(g)
    with pytest.raises(UsageError, match="exposes no intermediate layers"):
        LearnConfig(layer="block3").resolved(g)


def test_run_folders_are_exclusive(tmp_path):
    first = new_run_dir(tmp_path, "golden_retriever", "run")
    assert first == tmp_path / "golden_retriever" / "run"
    with pytest.raises(UsageError, match="already exists"):
        new_run_dir(tmp_path, "golden_retriever", "run")
    a, b = new_run_dir(tmp_path, "x"), new_run_dir(tmp_path, "x")
    assert a != b and a.is_dir() and b.is_dir()


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


def test_sefa_warm_start_begins_at_the_closed_form_directions(tiny_biggan):
    sefa = tiny_biggan.sefa_directions(16)
    config = LearnConfig(steps=1, batch_size=1, eval_every=0, init="sefa", lr=1e-12)
    # lr 1e-12 leaves A where it started, to float32 rounding of unit vectors
    torch.testing.assert_close(learn(tiny_biggan, config).matrix, canonical_signs(orthonormal_directions(sefa)),
                               atol=64 * FLOAT32_EPS, rtol=0)
    with pytest.raises(UsageError, match="`init` sefa: this generator has no first linear layer"):
        LearnConfig(init="sefa").resolved(SyntheticGenerator(z_dim=8))

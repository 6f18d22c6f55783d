"""compiled.py: the generator's forward through torch.compile gives the learning step's loss and
gradient to rounding, does not recompile for every batch size, falls back to eager with one line
where compiling fails, and `auto` compiles only where the job wins the compile time back."""

import dataclasses

import pytest
import torch
from tolerances import assert_close_to_scale, second_difference_error

from direction_finder.compiled import CompiledGenerator, maybe_compiled, pays
from direction_finder.config import LearnConfig
from direction_finder.errors import HpdirsWarning
from direction_finder.generators.synthetic import SyntheticGenerator
from direction_finder.learning.learn import learn
from direction_finder.learning.objective import direction_penalty, draw_batch
from direction_finder.method.orthonormal import orthonormal_directions


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Counters from zero (the session's inductor cache: conftest)."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    yield
    torch._dynamo.reset()


def _loss_and_gradient(generator, config, batch, A):
    a = A.clone().requires_grad_(True)
    loss = direction_penalty(generator, orthonormal_directions(a), batch.z, batch.index, batch.eta,
                             vectors=batch.vectors, chunk_size=config.chunk_size)  # fmt: skip
    (grad,) = torch.autograd.grad(loss, a)
    return loss.detach(), grad


@pytest.mark.long_compile  # in make test-numerics (on the scalar kernels), which CI runs after make test
def test_the_compiled_step_has_the_eager_loss_and_gradient(tiny_biggan):
    config = LearnConfig(batch_size=2, chunk_size=4).resolved(tiny_biggan)
    A = torch.randn(16, 16, generator=torch.Generator().manual_seed(1))
    compiled = CompiledGenerator(tiny_biggan)
    batch = draw_batch(tiny_biggan, config, torch.Generator().manual_seed(0))
    eager = _loss_and_gradient(tiny_biggan, config, batch, A)
    fast = _loss_and_gradient(compiled, config, batch, A)
    assert compiled.compiled
    # fused kernels sum in another order: each image moves by a few ulps, and the second
    # differences by second_difference_error relative to their size (as between layouts)
    rel = second_difference_error(config.epsilon)
    assert_close_to_scale(fast[0], eager[0], rel, "loss")
    assert_close_to_scale(fast[1], eager[1], rel, "gradient")


def test_batch_sizes_that_change_do_not_recompile_every_call():
    generator = SyntheticGenerator(z_dim=6, factors=2, size=8)
    config = LearnConfig(batch_size=2, chunk_size=4).resolved(generator)
    A = torch.randn(6, 6, generator=torch.Generator().manual_seed(1))
    compiled = CompiledGenerator(generator)
    rng = torch.Generator().manual_seed(0)
    sizes = (2, 3, 5, 4, 7, 2, 6)  # a run's last batch, micro-batches and chunks: calls of many sizes
    for batch_size in sizes:
        batch = draw_batch(generator, dataclasses.replace(config, batch_size=batch_size), rng)
        fast = _loss_and_gradient(compiled, config, batch, A)
        eager = _loss_and_gradient(generator, config, batch, A)
        assert_close_to_scale(fast[1], eager[1], second_difference_error(config.epsilon), "gradient")
    assert compiled.compiled
    # the first size, then one graph with a symbolic batch for every later size
    frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert frames <= 2, frames


def test_a_machine_that_cannot_compile_runs_eagerly_with_one_warning():
    import torch._inductor.config as inductor

    generator = SyntheticGenerator(z_dim=4, factors=2, size=4)
    z = generator.sample_z(3, torch.Generator().manual_seed(0))
    compiled = CompiledGenerator(generator)
    with (inductor.patch({"cpp.cxx": ("/nonexistent/c++",)}),
          pytest.warns(HpdirsWarning, match=r"^cannot compile the generator \(.*\); running it eagerly$") as seen):
        out = compiled(z)
    assert len(seen) == 1 and not compiled.compiled and torch.equal(out, generator(z))
    assert torch.equal(compiled(z), generator(z))  # eager from then on, without another warning


def test_auto_compiles_where_the_job_wins_the_compile_time_back(tiny_biggan):
    class Large:  # what auto reads of a full-size biggan-deep-128 on a CPU
        z_dim, device = 128, torch.device("cpu")

        def describe(self):
            return {"model": "biggan-deep-128", "resolution": 128}

        def sample_z(self, n, generator=None):
            return torch.randn(n, 128, generator=generator)

        def __call__(self, z):
            return z

    large = Large()
    assert pays("on", tiny_biggan, 1) and not pays("off", large, 10**9)
    assert not pays("auto", tiny_biggan, 10**9)  # 32 px: compiling never pays
    assert not pays("auto", large, 16)  # a short job: 16 images do not win 70 s back
    assert pays("auto", large, 1000 * 4 * 4)  # learn's default run: 1000 steps x batch 4 x 2k
    assert LearnConfig().resolved(large).compile == "on"
    assert LearnConfig(steps=5).resolved(large).compile == "off"
    assert LearnConfig().resolved(tiny_biggan).compile == "off"
    assert maybe_compiled(tiny_biggan, "off", 10**9) is tiny_biggan
    with pytest.raises(Exception, match="`compile` must be auto, on or off"):
        LearnConfig(compile="yes")


def test_a_compiled_run_records_it_and_a_resume_keeps_it_bitwise(tmp_path):
    generator = SyntheticGenerator(z_dim=6, factors=2, size=4)
    config = LearnConfig(steps=4, batch_size=2, eval_every=0, checkpoint_every=2, compile="on")
    whole = learn(generator, config, out_dir=tmp_path / "whole")
    learn(generator, dataclasses.replace(config, steps=2), out_dir=tmp_path / "cut")
    resumed = learn(generator, dataclasses.replace(config, steps=4), out_dir=tmp_path / "cut", resume=True)
    assert torch.equal(whole.matrix, resumed.matrix)
    assert whole.metadata["config"]["compile"] == "on"
    with pytest.raises(Exception, match="compile: 'on' -> 'off'"):
        learn(generator, dataclasses.replace(config, steps=6, compile="off"), out_dir=tmp_path / "cut", resume=True)


def test_compiled_and_eager_agree_on_every_device(device):
    generator = SyntheticGenerator(z_dim=6, factors=2, size=8, device=device)
    config = LearnConfig(batch_size=3, chunk_size=4).resolved(generator)
    A = torch.randn(6, 6, generator=torch.Generator().manual_seed(1)).to(device)
    batch = draw_batch(generator, config, torch.Generator().manual_seed(0))
    eager = _loss_and_gradient(generator, config, batch, A)
    fast = _loss_and_gradient(CompiledGenerator(generator), config, batch, A)
    rel = second_difference_error(config.epsilon)
    assert_close_to_scale(fast[0], eager[0], rel, "loss")
    assert_close_to_scale(fast[1], eager[1], rel, "gradient")

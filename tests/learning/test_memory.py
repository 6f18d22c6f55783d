"""Activation checkpointing: the same loss and gradient as the plain backward, and the option's
path from the command line to the generator."""

import dataclasses
import json

import pytest
import torch
from helpers import runner
from tolerances import assert_close_to_scale, second_difference_error

from direction_finder import LearnConfig, SyntheticGenerator
from direction_finder.errors import UsageError
from direction_finder.learning.objective import direction_penalty
from direction_finder.method.orthonormal import orthonormal_directions
from hpdirs_cli.main import app


def _plain_and_checkpointed(generator, layer=None):
    """(loss, gradient of A) of one penalty, without and with activation checkpointing."""
    rng = torch.Generator().manual_seed(0)
    A = torch.randn(6, 16, generator=rng).to(generator.device)
    z = generator.sample_z(2, rng)
    index, eta = torch.tensor([1, 4]), torch.tensor([2.0, -3.0])
    vectors = (torch.randint(0, 2, (2, 2, 6), generator=rng) * 2 - 1).float()
    results = []
    for on in (False, True):
        generator.set_checkpointing(on)
        leaf = A.clone().requires_grad_()
        loss = direction_penalty(generator, orthonormal_directions(leaf), z, index, eta, vectors=vectors,
                                 layer=layer)  # fmt: skip
        loss.backward()
        results.append((loss.detach(), leaf.grad))
    generator.set_checkpointing(False)
    return results


@pytest.mark.parametrize("layer", [None, "block1"])
def test_checkpointed_and_plain_backward_give_the_same_loss_and_gradient(tiny_biggan, layer):
    (plain_loss, plain_grad), (saved_loss, saved_grad) = _plain_and_checkpointed(tiny_biggan, layer)
    # The recomputed forward runs the same kernels on the same inputs; whatever a kernel might
    # reorder stays within the penalty's own rounding: a second difference of |f| <= 1 over eps^2
    bound = second_difference_error(0.1)
    assert_close_to_scale(saved_loss, plain_loss, bound, "loss")
    assert_close_to_scale(saved_grad, plain_grad, bound, "gradient")
    assert float(plain_grad.abs().max()) > 0  # a case that can tell right from wrong


def test_checkpointing_does_not_touch_inference(tiny_biggan):
    z = tiny_biggan.sample_z(3, torch.Generator().manual_seed(1))
    plain = tiny_biggan(z)
    tiny_biggan.set_checkpointing(True)
    with torch.no_grad():
        again = tiny_biggan(z)
    tiny_biggan.set_checkpointing(False)
    assert torch.equal(plain, again)  # under no_grad the package's own forward runs, as before


def test_the_option_reaches_the_generator_and_is_refused_where_there_are_no_blocks(tiny_weights, tmp_path):
    with pytest.raises(UsageError, match="`checkpoint_activations`: this generator has no blocks"):
        LearnConfig(checkpoint_activations=True).resolved(SyntheticGenerator(z_dim=8, factors=4, size=8))
    result = runner.invoke(app, ["learn", "--weights", str(tiny_weights), "--class", "207", "--steps", "2",
                                 "--batch-size", "1", "--eval-every", "0", "--out", str(tmp_path), "--name", "c",
                                 "--checkpoint-activations", "--num-directions", "4"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "golden_retriever" / "c"
    card = (run / "README.md").read_text()
    assert "--checkpoint-activations" in card  # the reproducing command keeps it
    resumed = runner.invoke(app, ["learn", "--resume", str(run), "--steps", "3", "--no-checkpoint-activations"])
    assert resumed.exit_code == 0, resumed.stderr  # the same numbers either way: a resumable change
    bad = runner.invoke(app, ["learn", "--model", "synthetic", "--steps", "1", "--checkpoint-activations",
                              "--out", str(tmp_path)])  # fmt: skip
    assert bad.exit_code == 1 and "--checkpoint-activations: this generator has no blocks" in bad.stderr


def test_a_memory_measurement_runs_in_its_own_process_and_reports_the_step(tiny_weights, tmp_path):
    from direction_finder.measuring.memory import measure_in_child

    row = measure_in_child({"weights": str(tiny_weights), "batch_size": 1, "chunk_size": 4, "checkpoint": True})
    # a fresh process: torch and the weights (the baseline) below the peak of two steps
    assert 0 < row["baseline_mb"] <= row["peak_mb"] and row["step_mb"] == row["peak_mb"] - row["baseline_mb"]
    assert row["step_s"] > 0
    failed = measure_in_child({"weights": str(tmp_path / "none"), "batch_size": 1, "chunk_size": 4,
                               "checkpoint": False})  # fmt: skip
    assert list(failed) == ["error"] and "\n" not in failed["error"]


def test_bench_memory_takes_only_published_resolutions():
    result = runner.invoke(app, ["bench", "--model", "synthetic", "--memory", "128,300"])
    assert result.exit_code == 1 and "--memory 300: BigGAN-deep comes in 128, 256 and 512 px" in result.stderr


class Tight(SyntheticGenerator):
    """Raises the allocator's out-of-memory error for calls of more than `rows` images, as a device
    whose memory holds that many would (a CUDA device; this machine has none)."""

    rows = 4

    def __call__(self, z):
        if z.shape[0] > self.rows:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate for {z.shape[0]} images")
        return super().__call__(z)


def test_out_of_memory_halves_the_layout_and_takes_the_same_step(tmp_path):
    from direction_finder import learn
    from direction_finder.errors import HpdirsWarning

    config = LearnConfig(steps=6, batch_size=2, chunk_size=4, eval_every=0)  # all 4 perturbed batches: 8 rows
    tight = Tight(z_dim=8, factors=4, size=8, seed=0)
    tight.rows = 2  # 8 rows -> 4 -> 2 per call: two back-offs in the first step, none after
    with pytest.warns(HpdirsWarning) as said:
        backed = learn(tight, config, out_dir=tmp_path / "run")
    messages = [str(w.message) for w in said]
    assert messages == ["out of memory at step 1: `chunk_size` 4 -> 2, and the step taken again",
                        "out of memory at step 1: `chunk_size` 2 -> 1, and the step taken again"]  # fmt: skip
    free = SyntheticGenerator(z_dim=8, factors=4, size=8, seed=0)
    # the same steps as a run that used one perturbed batch per call from the start ...
    assert torch.equal(backed.matrix, learn(free, dataclasses.replace(config, chunk_size=1)).matrix)
    # ... and, but for the order of float32 sums, as the un-chunked run the memory could not hold:
    # each of the 6 steps' penalties carries a second difference's rounding (measured: 1.5e-5)
    unchunked = learn(free, config).matrix
    assert_close_to_scale(backed.matrix, unchunked, 6 * second_difference_error(0.1), "directions")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["chunk_size"] == 4  # as asked
    tight.rows = 1  # one perturbed batch of 2 samples is already too many: one sample per pass next
    with pytest.warns(HpdirsWarning) as said:
        split = learn(tight, config)
    assert [str(w.message).split(": ", 1)[1] for w in said][-1] == "`micro_batch` 2 -> 1, and the step taken again"
    assert torch.equal(split.matrix, learn(free, dataclasses.replace(config, chunk_size=1, micro_batch=1)).matrix)
    assert_close_to_scale(split.matrix, unchunked, 6 * second_difference_error(0.1), "directions")
    tight.rows = 0  # not even one image fits, and this generator cannot checkpoint
    with pytest.raises(torch.OutOfMemoryError), pytest.warns(HpdirsWarning):
        learn(tight, config)

def test_checkpointing_gives_the_same_step_on_every_device(device, tiny_weights):
    from direction_finder.generators.biggan import load_biggan

    generator = load_biggan(class_="golden_retriever", weights=tiny_weights, device=device)
    results = _plain_and_checkpointed(generator)
    bound = second_difference_error(0.1)
    assert_close_to_scale(results[1][0], results[0][0], bound, "loss")
    assert_close_to_scale(results[1][1], results[0][1], bound, "gradient")

"""Fitting learning into a memory budget: passes of fewer samples give the same step, the layout
chosen for a budget, the calibration, and --max-memory from the command line."""

import dataclasses
import json

import pytest
import torch
from helpers import Counting, runner
from tolerances import assert_close_to_scale, second_difference_error

from direction_finder import LearnConfig, SyntheticGenerator
from direction_finder.errors import HpdirsNote, UsageError
from direction_finder.learning.layout import StepMemory, calibrate, choose_layout
from direction_finder.memory import SAFETY, inference_batch
from direction_finder.learning.objective import draw_batch, train_step
from direction_finder.validation import parse_memory
from hpdirs_cli.main import app


@pytest.mark.parametrize("micro", [1, 2])
def test_passes_of_fewer_samples_give_the_whole_batch_step(tiny_biggan, micro):
    config = LearnConfig(batch_size=3, num_directions=6, chunk_size=4).resolved(tiny_biggan)
    batch = draw_batch(tiny_biggan, config, torch.Generator().manual_seed(3))  # 3 samples: passes of 2 and 1
    results = []
    for layout in (config, dataclasses.replace(config, micro_batch=micro)):
        A = torch.randn(6, 16, generator=torch.Generator().manual_seed(4)).requires_grad_()
        loss = train_step(tiny_biggan, A, torch.optim.SGD([A], lr=0.0), layout, batch)
        results.append((loss, A.grad))
    (whole_loss, whole_grad), (split_loss, split_grad) = results
    # each pass's penalty carries a second difference's rounding; the shares sum it back up
    bound = second_difference_error(0.1)
    assert_close_to_scale(split_loss, whole_loss, bound, "loss")
    assert_close_to_scale(split_grad, whole_grad, bound, "gradient")
    assert float(whole_grad.abs().max()) > 0


def test_passes_need_the_mean_reduction():
    with pytest.raises(UsageError, match="`micro_batch` needs `reduction` mean"):
        LearnConfig(batch_size=4, micro_batch=2, reduction="max")


@pytest.mark.parametrize(
    ("text", "mib"),
    [("8GiB", 8192), ("8G", 8192), ("8 gib", 8192), ("16GB", 16e9 / 2**20), ("512MiB", 512), ("512", 512),
     ("1.5T", 1.5 * 2**20)],  # fmt: skip
)
def test_memory_sizes(text, mib):
    assert parse_memory(text) == pytest.approx(mib)


@pytest.mark.parametrize("text", ["8 gigs", "8Gi", "8B", "-1G", "", "1KiB", "2PiB"])
def test_bad_memory_sizes_are_one_line(text):
    with pytest.raises(UsageError, match="`max_memory`"):
        parse_memory(text)


# base 500 MiB; per image of a pass 100 kept plus 50 per image of a call (30 and 60 checkpointed)
PLAIN, SAVED = StepMemory(500, 100, 50, False), StepMemory(500, 30, 60, True)


@pytest.mark.parametrize(
    ("budget", "chunk", "micro", "checkpointed"),
    [  # needed: 500 + SAFETY (1.5) * the step
        (7700, 4, 8, False),  # 8 * (4*100 + 4*50) = 4800: the whole layout, exactly
        (7699, 4, 4, False),  # 16 images per call: 4 samples per pass (2400) costs less than 2 batches of 8
        (4000, 4, 2, False),  # 8 per call: 2 * 600 = 1200
        (1200, 1, 1, False),  # 450: one image per call, still no recomputing
        (1100, 4, 1, True),  # nothing plain fits; 4*30 + 4*60 = 360
        (1000, 2, 1, True),  # 4*30 + 2*60 = 240
        (800, 1, 1, True),  # 180
    ],
)
def test_a_smaller_budget_picks_a_smaller_layout(budget, chunk, micro, checkpointed):
    config = LearnConfig(batch_size=8, k=2, max_memory="8GiB")
    chosen = choose_layout([PLAIN, SAVED], budget, config)
    assert chosen is not None
    assert (chosen.chunk_size, chosen.micro_batch, chosen.checkpoint_activations) == (chunk, micro, checkpointed)
    model = SAVED if checkpointed else PLAIN
    assert model.base + SAFETY * model.step(2, micro, chunk) <= budget
    assert chosen.max_memory is None and chosen.batch_size == 8  # a layout, the batch unchanged


def test_no_layout_below_the_smallest_and_no_passes_under_max():
    assert choose_layout([PLAIN, SAVED], 769, LearnConfig(batch_size=8)) is None
    # a maximum is not a sum over passes: all 8 samples in one, 500 + 1.5 * 8 * 450 = 5900 at the least
    chosen = choose_layout([PLAIN], 5900, LearnConfig(batch_size=8, reduction="max"))
    assert chosen is not None and (chosen.micro_batch, chosen.chunk_size) == (8, 1)
    assert choose_layout([PLAIN], 5899, LearnConfig(batch_size=8, reduction="max")) is None


LEARN = ["learn", "--class", "207", "--steps", "2", "--batch-size", "2", "--eval-every", "1", "--eval-samples", "2",
         "--num-directions", "4", "--name", "m"]  # fmt: skip


def test_max_memory_from_the_command_line(tiny_weights, tmp_path):
    args = [*LEARN, "--weights", str(tiny_weights), "--out", str(tmp_path)]
    result = runner.invoke(app, [*args, "--max-memory", "64GiB"])
    assert result.exit_code == 0, result.stderr
    # a tiny generator fits whole: every perturbed batch in one call, both samples in one pass
    assert ("note: --max-memory 64GiB: 4 perturbed batches per call, 2 of 2 samples per pass, activation "
            "checkpointing off") in " ".join(result.stderr.split())  # fmt: skip
    run = tmp_path / "golden_retriever" / "m"
    saved = json.loads((run / "config.json").read_text())["config"]
    assert saved["max_memory"] == "64GiB" and saved["chunk_size"] is None  # what was asked, not what was chosen
    assert "--max-memory 64GiB" in (run / "README.md").read_text()  # the reproducing command keeps it
    resumed = runner.invoke(app, ["learn", "--resume", str(run), "--steps", "3"])
    assert resumed.exit_code == 0, resumed.stderr
    # below what torch and the weights already hold: nothing fits, one line, no run left behind
    small = runner.invoke(app, [*args, "--name", "small", "--max-memory", "64MiB"])
    assert small.exit_code == 1 and small.stderr.count("\n") == 1, small.stderr
    assert "--max-memory 64MiB: even one sample per pass and one perturbed batch per call needs about" in small.stderr
    assert not (tmp_path / "golden_retriever" / "small").exists()
    both = runner.invoke(app, [*args, "--name", "both", "--max-memory", "8GiB", "--chunk-size", "2"])
    assert both.exit_code == 1 and "--max-memory chooses --chunk-size and --micro-batch itself" in both.stderr
    bad = runner.invoke(app, [*args, "--name", "bad", "--max-memory", "lots"])
    assert bad.exit_code == 1 and "--max-memory 'lots' is not a memory size; write e.g. 8GiB" in bad.stderr


def test_a_generator_without_blocks_fits_without_checkpointing(recwarn):
    from direction_finder import learn

    generator = SyntheticGenerator(z_dim=8, factors=4, size=8, seed=0)
    config = LearnConfig(steps=2, batch_size=4, eval_every=0, max_memory="64GiB")
    learned = learn(generator, config)
    assert torch.equal(learned.matrix, learn(generator, dataclasses.replace(config, max_memory=None,
                                                                              chunk_size=4)).matrix)  # fmt: skip
    assert any(issubclass(w.category, HpdirsNote) for w in recwarn)


def test_images_per_call_fit_a_budget(tiny_biggan):
    assert inference_batch(tiny_biggan, 4, None) == 4  # a CPU without a budget: the default
    assert inference_batch(tiny_biggan, 4, 2**30) == 4  # a budget far above: never more than the default
    assert inference_batch(tiny_biggan, 4, 16) == 1  # below what is already in use: one image at a time


@pytest.mark.slow
def test_the_calibrated_model_bounds_a_step_measured_in_a_fresh_process(full_weights):
    """The model, fitted from steps of one sample, against layouts of more: within SAFETY above
    and not far below what a fresh process measures (biggan-deep-128, full size)."""
    from direction_finder.generators import load_biggan
    from direction_finder.measuring.memory import measure_in_child

    generator = load_biggan(None, 207, truncation=0.4, weights=full_weights, device="cpu")
    config = LearnConfig(batch_size=2, max_memory="64GiB").resolved(generator)
    for checkpointed in (False, True):
        model = calibrate(generator, config, checkpointed)
        for micro, chunk in ((1, 4), (2, 4), (2, 1)):
            measured = measure_in_child({"weights": str(full_weights), "batch_size": micro, "chunk_size": chunk,
                                         "checkpoint": checkpointed})["step_mb"]  # fmt: skip
            modelled = model.step(2, micro, chunk)
            assert 0.5 * modelled <= measured <= SAFETY * modelled, (checkpointed, micro, chunk, measured, modelled)


def test_render_takes_fewer_images_per_call_under_a_small_budget(tmp_path):
    from direction_finder.outputs.render import RenderSettings, render

    generator = Counting(z_dim=8, factors=4, size=8, seed=0)
    settings = RenderSettings(directions="0-1", samples=6, frames=4, formats=["png"], label=False)
    render(generator, torch.eye(8), settings, tmp_path / "default")
    assert max(generator.calls) == 4  # a CPU's default
    generator.calls.clear()
    render(generator, torch.eye(8), dataclasses.replace(settings, max_memory="16MiB"), tmp_path / "small")
    assert set(generator.calls[2:]) == {1}  # after the two measuring calls, one image at a time
    with pytest.raises(UsageError, match="`max_memory` 'lots' is not a memory size"):
        RenderSettings(max_memory="lots")

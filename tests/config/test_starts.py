"""The table of ways to start or compare directions: every row does what it says, and a new way is
one function and one row that `learn --init`, compare's baselines and the help take at once."""

import dataclasses

import pytest
import torch
from helpers import invoke
from tolerances import FLOAT32_EPS

from direction_finder.config import LearnConfig
from direction_finder.errors import UsageError
from direction_finder.evaluation.compare import baseline_sets
from direction_finder.generators.base import CAPABILITIES
from direction_finder.generators.synthetic import SyntheticGenerator
from direction_finder.learning.learn import learn
from direction_finder.starts import STARTS, Start, start_named, starting_directions, supported


@pytest.mark.parametrize("name", list(STARTS))
def test_every_start_gives_n_directions_orthonormal_where_it_says(name, tiny_biggan):
    start = STARTS[name]
    assert all(need in CAPABILITIES for need in start.needs), start.needs
    assert supported(start, tiny_biggan)
    A = starting_directions(start, tiny_biggan, 5, seed=3)  # (5, z_dim)
    assert A.shape == (5, tiny_biggan.z_dim) and A.dtype == torch.float32 and A.device.type == "cpu"
    gram = A.double() @ A.double().T
    if start.orthonormal:  # rows of unit length, at right angles, to float32 rounding over z_dim terms
        torch.testing.assert_close(gram, torch.eye(5, dtype=torch.float64), atol=8 * tiny_biggan.z_dim * FLOAT32_EPS,
                                   rtol=0)
    again = starting_directions(start, tiny_biggan, 5, seed=3)
    assert torch.equal(A, again)  # seeded: the same start twice


def test_a_start_the_generator_cannot_take_is_an_error_for_learn_and_a_note_for_compare():
    synthetic = SyntheticGenerator(z_dim=8)
    assert not supported(STARTS["sefa"], synthetic)
    with pytest.raises(UsageError, match="`init` sefa: this generator has no first linear layer to factorise"):
        LearnConfig(init="sefa").resolved(synthetic)
    with pytest.raises(UsageError, match="`init` 'zeros' is not a way to start; choose from random, axes"):
        start_named("zeros")
    with pytest.raises(UsageError, match="`init` must be random, axes, sefa, sefa-first, curvature or ganspace"):
        LearnConfig(init="zeros")
    sets, notes = baseline_sets(synthetic, 4, ["axes", "sefa"])
    assert [s.name for s in sets] == ["axes", "truth"] and notes == [
        "sefa skipped: synthetic has no first linear layer to factorise"]


def test_a_new_start_is_one_function_and_one_row(monkeypatch, tmp_path):
    """What a contributor adds: the row below and its function. learn begins from it, compare
    measures it, the help lists it; nothing else is edited."""

    def reversed_axes(generator, n, draws):  # the last n axes, last first
        return torch.eye(int(generator.z_dim)).flip(0)[:n]

    monkeypatch.setitem(STARTS, "reversed", Start("reversed", "the axes, last first", reversed_axes))
    g = SyntheticGenerator(z_dim=6, factors=2, size=4)
    directions = learn(g, LearnConfig(init="reversed", steps=1, eval_every=0, lr=1e-12), out_dir=tmp_path / "run")
    torch.testing.assert_close(directions.matrix.abs(), torch.eye(6).flip(0), atol=1e-6, rtol=0)
    sets, _ = baseline_sets(g, 3, ["reversed"])
    assert sets[0].name == "reversed" and torch.equal(sets[0].matrix, torch.eye(6).flip(0)[:3])


def test_the_help_lists_every_start_from_the_table():
    learn_help = invoke(["help", "learn"]).stdout
    compare_help = invoke(["help", "compare"]).stdout
    for start in STARTS.values():
        assert f"{start.name}:" in " ".join(learn_help.split()) and f"{start.name}:" in " ".join(compare_help.split())


def test_the_dry_run_counts_each_start_in_its_own_units(tiny_weights, tmp_path):
    common = ["learn", "--weights", tiny_weights, "--device", "cpu", "--dry-run", "--out", tmp_path, "--steps", "1"]
    curvature = " ".join(invoke([*common, "--init", "curvature"]).stdout.split())
    ganspace = " ".join(invoke([*common, "--init", "ganspace"]).stdout.split())
    assert "warm start 256" in curvature  # 2 * 8 samples * z_dim 16 images
    assert "warm start 0" in ganspace and "--init ganspace: 20,480 forwards to gen_z" in ganspace


def test_a_row_replaced_in_the_table_is_what_learn_uses(monkeypatch, tmp_path):
    calls = []
    real = STARTS["axes"]
    monkeypatch.setitem(STARTS, "axes", dataclasses.replace(real, make=lambda g, n, d: calls.append(n) or real.make(g, n, d)))
    learn(SyntheticGenerator(z_dim=4), LearnConfig(init="axes", steps=1, eval_every=0), out_dir=tmp_path / "r")
    assert calls == [4]


@pytest.mark.parametrize("init", ["sefa", "ganspace"])
def test_a_closed_form_becomes_a_directions_file_without_learning(init, tiny_weights, tiny_biggan, tmp_path):
    """`learn --steps 0 --init NAME`: the start itself, with a run's metadata, so render, explore,
    label and compare take it like any learned set."""
    result = invoke(["learn", "--weights", tiny_weights, "--class", "golden_retriever", "--steps", "0", "--init", init,
                     "--out", tmp_path, "--name", init])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "golden_retriever" / init
    assert f"wrote the start (--init {init}) without learning: {run}/directions.safetensors" in " ".join(
        result.stdout.split())
    from direction_finder.artifacts.directions import load_directions
    from direction_finder.method.orthonormal import canonical_signs, orthonormal_directions

    saved = load_directions(run)
    expected = canonical_signs(orthonormal_directions(starting_directions(STARTS[init], tiny_biggan, 16, seed=0)))
    torch.testing.assert_close(saved.matrix, expected, atol=64 * FLOAT32_EPS, rtol=0)
    assert saved.metadata["step"] == 0 and saved.metadata["config"]["init"] == init
    rendered = invoke(["render", run, "--directions", "0-1", "--samples", "1", "--frames", "2", "--format", "png",
                       "--device", "cpu", "--offline"])  # fmt: skip
    assert rendered.exit_code == 0, rendered.stderr

"""artifacts/runs.py: a run folder's files and the directions file format they hold; two runs never
share a folder."""

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from tolerances import FLOAT32_EPS

from direction_finder import learn, load_directions, orthonormal_directions
from direction_finder.artifacts.runs import new_run_dir
from direction_finder.config import LearnConfig
from direction_finder.errors import UsageError
from direction_finder.method.orthonormal import canonical_signs


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



def test_run_folders_are_exclusive(tmp_path):
    first = new_run_dir(tmp_path, "golden_retriever", "run")
    assert first == tmp_path / "golden_retriever" / "run"
    with pytest.raises(UsageError, match="already exists"):
        new_run_dir(tmp_path, "golden_retriever", "run")
    a, b = new_run_dir(tmp_path, "x"), new_run_dir(tmp_path, "x")
    assert a != b and a.is_dir() and b.is_dir()


def test_the_dry_run_names_the_folder_the_run_then_takes(tmp_path, monkeypatch):
    import datetime as real

    from direction_finder.artifacts import runs

    class Frozen(real.datetime):
        @classmethod
        def now(cls, tz=None):
            return real.datetime(2026, 1, 2, 3, 4, 5, tzinfo=tz)

    monkeypatch.setattr(runs, "datetime", Frozen)
    planned = runs.free_run_dir(tmp_path, "cls")
    assert planned == runs.new_run_dir(tmp_path, "cls") == tmp_path / "cls" / "20260102-030405"
    planned = runs.free_run_dir(tmp_path, "cls")  # the first is taken now: the same next name for both
    assert planned == runs.new_run_dir(tmp_path, "cls") == tmp_path / "cls" / "20260102-030405-2"
    for make in (runs.free_run_dir, runs.new_run_dir):
        with pytest.raises(UsageError, match=r"run .*20260102-030405-2 already exists; choose another `name`"):
            make(tmp_path, "cls", "20260102-030405-2")


def test_the_last_directions_record_the_held_out_penalty_of_their_step(tmp_path):
    from helpers import learned_run

    run = learned_run(tmp_path, "r", "--checkpoint-every", "2", eval_every=2)
    last_row = (run / "loss.csv").read_text().splitlines()[-1].split(",")
    assert last_row[0] == "4" and last_row[3]  # evaluated at the last step
    assert load_directions(run / "directions.safetensors").metadata["heldout"] == float(last_row[3])
    never = learned_run(tmp_path, "never", eval_every=0)
    assert load_directions(never / "directions.safetensors").metadata["heldout"] is None  # none was evaluated


def test_the_run_card_names_a_hub_model_only_for_the_published_weights(tmp_path):
    from direction_finder.artifacts.card import write_run_card

    def card(weights: str) -> str:
        run = tmp_path / (weights.strip("/").replace("/", "-") or "published")
        run.mkdir()
        body = {"config": {"steps": 1}, "generator": {"model": "biggan-deep-128", "class_index": 207,
                                                       "truncation": 0.4, "weights": weights}}  # fmt: skip
        (run / "config.json").write_text(json.dumps(body))
        (run / "loss.csv").write_text("step,loss,smoothed_loss,heldout,elapsed_s,sample_steps_per_s\n")
        return write_run_card(run).read_text()

    assert "base_model: osanseviero/BigGAN-deep-128" in card("")  # from the cache or a download
    assert "base_model" not in card("/data/my-random-weights")  # a folder of the user's: maybe not those

"""evaluation/compare.py: learned sets against the baselines and the truth, `compare A B`, the CLI end
to end."""

import json
import math

import torch
from helpers import learn_synthetic, runner

from direction_finder import LearnConfig, SyntheticGenerator, learn
from direction_finder.evaluation.compare import CompareSettings, compare_sets
from hpdirs_cli.main import app


def test_on_synthetic_learned_beats_baselines_and_truth_is_best():
    g = SyntheticGenerator(z_dim=8, factors=4, size=8, seed=0)
    learned = learn(g, LearnConfig(steps=400, batch_size=8, eval_every=0)).matrix
    results = compare_sets(g, learned, settings=CompareSettings(samples=8, seed=1))
    notes = results.notes
    by = {r.name: r.summary() for r in results.reports}
    for name, s in by.items():
        print(f"{name:8s} held-out {s['heldout_penalty']:.3g}  D% {s['D_percent']:.1f}  D_R {s['D_R']:.3g}  "
              f"recovery {s['recovery']:.3f}")
    assert notes == ["sefa skipped: synthetic has no first linear layer to factorise"]
    for baseline in ("axes", "random"):
        assert by["learned"]["heldout_penalty"] < by[baseline]["heldout_penalty"] / 100
        assert by["learned"]["D_R"] > 10 * by[baseline]["D_R"]
    assert by["truth"]["heldout_penalty"] <= min(s["heldout_penalty"] for s in by.values())
    assert by["truth"]["D_R"] >= max(s["D_R"] for s in by.values())
    assert by["truth"]["recovery"] == 1.0


def test_curvature_baseline_is_measured_when_asked_for_and_finds_the_synthetic_truth():
    g = SyntheticGenerator(z_dim=8, factors=4, size=8, seed=0)
    results = compare_sets(g, torch.eye(8), baselines=["curvature"], settings=CompareSettings(samples=4, seed=1))
    by = {r.name: r.summary() for r in results.reports}
    assert set(by) == {"learned", "curvature", "truth"}
    assert by["curvature"]["recovery"] > 0.999










def test_cli_compare_end_to_end_on_a_tiny_biggan_run(tiny_weights, tmp_path):
    learned = runner.invoke(app, ["learn", "--weights", str(tiny_weights), "--class", "207", "--steps", "2",
                                  "--batch-size", "1", "--eval-every", "0", "--out", str(tmp_path), "--name", "r",
                                  "--num-directions", "6"])
    assert learned.exit_code == 0, learned.stderr
    run = tmp_path / "golden_retriever" / "r"
    result = runner.invoke(app, ["compare", str(run), "--samples", "2", "--top", "3", "--sweep-steps", "3"])
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in (run / "compare").iterdir())
    assert [n for n in names if not n.startswith("pair_")] == [
        "compare.html", "differences.csv", "report.csv", "report.json"]
    assert len([n for n in names if n.startswith("pair_")]) == 3
    report = json.loads((run / "compare" / "report.json").read_text())
    assert set(report["sets"]) == {"learned", "axes", "random", "sefa"}
    for values in report["sets"].values():
        for key in ("heldout_penalty", "D_percent", "D_R", "top_activeness", "mean_activeness",
                    "mean_match_cosine", "per_direction_penalty", "activeness", "top", "match_axis", "match_cosine"):
            assert key in values
        assert len(values["per_direction_penalty"]) == 6 and len(values["top"]) == 3
        low, high = values["intervals"]["heldout_penalty"]["ci95"]
        assert low <= values["heldout_penalty"] <= high and values["intervals"]["heldout_penalty"]["samples"] == 2
    assert report["measured"]["mode"] == "precise" and report["measured"]["samples"] == 2
    assert {(d["other"], d["metric"]) for d in report["differences"]} == {
        (o, m) for o in ("axes", "random", "sefa") for m in ("heldout_penalty", "D_percent", "D_R")}
    assert "learned − set" in result.stdout and "±" in result.stdout
    assert (run / "compare" / "report.csv").read_text().splitlines()[0].startswith("set,heldout_penalty,D_percent,D_R")
    bad = runner.invoke(app, ["compare", str(run), "--baselines", "axes,pca"])
    assert bad.exit_code == 1 and "unknown pca" in bad.stderr


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



def test_compare_a_b_refuses_two_different_generators(tmp_path):
    a = learn_synthetic(tmp_path, "a", ["--steps", "2"])
    other = runner.invoke(app, ["learn", "--model", "synthetic:z_dim=8,factors=3,size=8", "--steps", "2",
                                "--eval-every", "0", "--out", str(tmp_path / "o"), "--name", "b"])  # fmt: skip
    assert other.exit_code == 0, other.stderr
    b = next((tmp_path / "o").glob("*/b"))
    result = runner.invoke(app, ["compare", str(a), str(b), "--no-gifs"])
    assert result.exit_code == 1 and "different generators (model" in result.stderr
    assert "pass --model, --class and --truncation" in result.stderr


def test_both_sefa_variants_are_baselines_and_a_generator_without_a_layer_is_a_note(tiny_biggan):
    from direction_finder.evaluation.compare import baseline_sets
    from direction_finder.generators import sefa_all

    sets, notes = baseline_sets(tiny_biggan, 4, ["sefa", "sefa-first"])
    assert [s.name for s in sets] == ["sefa", "sefa-first"] and notes == []
    # every z-layer together (checked against measured responses in test_biggan), and the first layer alone
    assert torch.equal(sets[0].matrix, sefa_all(tiny_biggan.z_weights(), 4))
    assert torch.equal(sets[1].matrix, tiny_biggan.sefa_directions(4))
    sets, notes = baseline_sets(SyntheticGenerator(z_dim=8), 4, ["sefa-first"])
    assert [s.name for s in sets] == ["truth"] and notes[0].startswith("sefa-first skipped")


def test_compare_runs_on_every_device(device):
    generator = SyntheticGenerator(z_dim=6, factors=2, size=4, device=device)
    results = compare_sets(generator, generator.basis, settings=CompareSettings(samples=2, top=2, sweep_steps=3))
    assert [r.name for r in results.reports][:2] == ["learned", "axes"]
    assert all(math.isfinite(float(r.metrics["heldout_penalty"].value)) for r in results.reports)


def test_the_comparison_table_cuts_no_head_at_80_columns(tmp_path):
    from helpers import invoke, learned_run

    run = learned_run(tmp_path, "r", model="synthetic:z_dim=6,factors=2,size=4")
    result = invoke(["compare", run, "--budget", "1000", "--no-gifs"], COLUMNS="80")
    assert result.exit_code == 0, result.stderr
    table = [line for line in result.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and "…" not in "".join(table) and max(map(len, table)) <= 80, result.stdout

"""Compare: metrics against independent expectations, baselines, the CLI end to end."""

import json

import numpy as np
import torch
from tolerances import FLOAT32_EPS
from typer.testing import CliRunner

from direction_finder import LearnConfig, SyntheticGenerator, gram_schmidt, learn
from direction_finder.evaluation.compare import CompareSettings, Probe, compare_sets
from direction_finder.evaluation.measures import diagonal_dominance, hessians, matching
from hpdirs_cli.main import app

runner = CliRunner()


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


class Quadratic:
    """G(z)_p = z^T M_p z / 2: the Hessian of pixel p w.r.t. z is M_p (known)."""

    def __init__(self, z_dim=6, pixels=12, seed=0):
        g = torch.Generator().manual_seed(seed)
        m = torch.randn(pixels, z_dim, z_dim, generator=g, dtype=torch.float64)
        self.m = (m + m.transpose(1, 2)) / 2
        self.m[::3] = torch.diag_embed(torch.randn(pixels // 3 + (pixels % 3 > 0), z_dim, generator=g,
                                                   dtype=torch.float64) * 3)
        self.z_dim, self.device = z_dim, torch.device("cpu")

    def sample_z(self, n, generator=None):
        return torch.randn(n, self.z_dim, generator=generator)

    def __call__(self, z):
        z = z.double()
        return (0.5 * torch.einsum("nd,pde,ne->np", z, self.m, z)).float().reshape(-1, 1, 3, 4)


def test_diagonal_dominance_matches_a_direct_computation_from_the_known_hessian():
    g = Quadratic()
    Q = gram_schmidt(torch.randn(6, 6, generator=torch.Generator().manual_seed(1)))
    top = [4, 1, 2]
    probe = Probe.draw(g, 6, CompareSettings(samples=2))
    fd = hessians(g, Q, top, probe.z, 0.5, batch_size=16)  # (S, 1, 3, 4, 3, 3)
    # Independent: the Hessian w.r.t. w of z + w Q_top is Q_top M_p Q_top^T, the same at every z.
    sub = Q[top].double().numpy()
    exact = np.einsum("ad,pde,be->pab", sub, g.m.numpy(), sub)  # (P, 3, 3)
    # central differences of a quadratic are exact but for rounding: each entry carries
    # ~4 eps32 |f| / eps^2 (|f| <= ~10 here, eps 0.5: ~2e-5); 1e-3 is far above that and far
    # below the entries themselves (O(1))
    np.testing.assert_allclose(fd[0].reshape(12, 3, 3).numpy(), exact, rtol=1e-3, atol=1e-3)
    eye = np.eye(3, dtype=bool)
    absolute = np.abs(exact)
    d_percent = 100 * np.mean([a[eye].max() >= a[~eye].max() for a in absolute])
    d_ratio = absolute[:, eye].mean() / absolute[:, ~eye].mean()
    ours = diagonal_dominance(fd)
    # D% counts the same comparisons (exact unless an entry sits within rounding of a tie); D_R is
    # a ratio of means of entries that each carry the error above
    assert abs(ours[0] - d_percent) < 1e-9 and abs(ours[1] - d_ratio) < 1e-3 * d_ratio
    assert 0 < d_percent < 100  # a case that can tell right from wrong


def test_matching_picks_the_largest_cosine_axis():
    Q = gram_schmidt(torch.tensor([[0.1, -3.0, 0.2], [1.0, 0.0, 0.5]]))
    axes, cosines = matching(Q)
    # a float32 unit vector's entry: within a few eps32 (1.2e-7) of the exact cosine
    assert axes == [1, 0] and abs(cosines[0] - 3.0 / np.linalg.norm([0.1, 3.0, 0.2])) < 8 * FLOAT32_EPS


def test_sefa_directions_are_the_top_right_singular_vectors_of_the_z_columns(tiny_biggan):
    w = tiny_biggan.model.generator.gen_z.weight.detach().double()[:, :16].numpy()
    _, singular, vt = np.linalg.svd(w)
    ours = tiny_biggan.sefa_directions(5).double().numpy()
    # ours are float64 eigenvectors rounded to float32: |cos| and orthonormality to ~z_dim * eps32
    np.testing.assert_allclose(np.abs(np.sum(ours * vt[:5], axis=1)), 1.0, atol=4 * 16 * FLOAT32_EPS)
    np.testing.assert_allclose(ours @ ours.T, np.eye(5), atol=4 * 16 * FLOAT32_EPS)


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

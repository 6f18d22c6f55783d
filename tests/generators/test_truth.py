"""The known-truth generators: each is what its theory says (where SeFa and GANSpace are blind,
where they are exact, where the penalty is zero), checked by independent computations."""

import pytest
import torch
from helpers import invoke
from tolerances import FLOAT32_EPS

from direction_finder import LearnConfig
from direction_finder.errors import UsageError
from direction_finder.generators import load_generator, sefa_of
from direction_finder.generators.ganspace import ganspace_directions
from direction_finder.generators.truth import KnownFactorGenerator, matched_recovery, parse_truth
from direction_finder.learning.objective import HeldOut, heldout_penalty


def penalty(g, Q, samples=32):
    config = LearnConfig(batch_size=8, num_directions=Q.shape[0]).resolved(g)
    return heldout_penalty(g, Q, HeldOut.draw(g, Q.shape[0], samples, config.k, config.eta, seed=5), config)


def test_one_to_one_recovery_counts_a_direction_for_one_factor_only():
    truth = torch.eye(3, 4)
    assert matched_recovery(truth[[2, 0, 1]], truth) == pytest.approx(1.0)  # any order, any sign
    assert matched_recovery(-truth, truth) == pytest.approx(1.0)
    both = torch.tensor([[1.0, 1.0, 0, 0], [0, 0, 0, 1.0], [0, 0, 1.0, 0]]) / torch.tensor([[2**0.5], [1], [1]])
    # row 0 is 0.71 of factors 0 and 1 alike: it stands for one of them, the other is matched to nothing better
    assert matched_recovery(both, truth) == pytest.approx((2**-0.5 + 0 + 1) / 3)


@pytest.mark.parametrize("kind", ["flat", "layers", "shapes"])
def test_the_true_directions_leave_no_cross_curvature_where_theory_says_so(kind):
    """flat and layers: the pixel Hessian is diagonal in the true basis (the first layer of
    truth-layers adds linearly), so the penalty there is rounding only; shapes: factors meet in
    the same pixels (edges move with position, size and rotation), so it is not zero: below a
    random rotation's (measured: 0.77 against 1.34)."""
    g = load_generator(f"truth-{kind}", device="cpu")
    rotation = torch.linalg.qr(torch.randn(g.z_dim, g.z_dim, generator=torch.Generator().manual_seed(1)))[0].T
    at_truth, random = penalty(g, g.basis), penalty(g, rotation)
    if kind == "shapes":
        assert 0 < at_truth < random
    else:  # the central second differences of |f| <= 1.5 carry ~eps/epsilon^2 of rounding
        assert at_truth < 1e-6 and random > 1e-3, (at_truth, random)


def test_flat_the_closed_forms_have_nothing_to_go_by():
    """truth-flat: W^T W of the first layer is the identity and so is the covariance of its output,
    so any rotation is an eigenbasis: SeFa's and GANSpace's answers are arbitrary."""
    g = load_generator("truth-flat", device="cpu")
    W = g.z_weights()[0].double()
    torch.testing.assert_close(W.T @ W, torch.eye(g.z_dim, dtype=torch.float64), atol=64 * FLOAT32_EPS, rtol=0)
    h = g.features(g.sample_z(4096, torch.Generator().manual_seed(0)), "linear0").flatten(1).double()
    spread = torch.linalg.eigvalsh(torch.cov(h.T))
    assert spread.max() / spread.min() < 1.5  # sampling noise around the identity, nothing more


def test_aligned_the_closed_forms_are_exact():
    g = load_generator("truth-aligned:seed=3", device="cpu")
    for variant in ("sefa", "sefa-first"):
        assert matched_recovery(sefa_of(g, g.z_dim, variant), g.true_directions) > 1 - 1e-5
    assert matched_recovery(ganspace_directions(g, g.z_dim, samples=4096, seed=0), g.true_directions) > 0.97


def test_layers_the_closed_forms_find_the_first_layers_directions():
    """truth-layers: SeFa (every layer, or the first) and GANSpace read the first layer, whose
    directions have nothing to do with the factors: their eigenvectors are its singular vectors."""
    g = load_generator("truth-layers", device="cpu")
    decoy, factors = g.z_weights()
    _, _, vh = torch.linalg.svd(decoy.double())
    assert len(g.z_weights()) == 2 and torch.equal(factors, g.true_directions)
    assert matched_recovery(sefa_of(g, g.z_dim, "sefa-first"), vh) > 1 - 1e-5
    assert matched_recovery(sefa_of(g, g.z_dim, "sefa"), g.true_directions) < 0.8
    assert matched_recovery(ganspace_directions(g, g.z_dim, samples=4096, seed=0), vh) > 0.95


def test_names_options_and_errors():
    g = parse_truth("truth-shapes:z_dim=9,seed=4")
    assert (g.z_dim, g.factors, g.seed, g.size) == (9, 5, 4, 24) and g.describe()["model"] == g.spec
    assert parse_truth(g.spec).basis.equal(g.basis)
    for bad, message in [("truth-round", "not a known-truth model"), ("truth-flat:size=3", "bad option"),
                         ("truth-flat:z_dim=0", "z_dim must be from 1"),
                         ("truth-shapes:z_dim=4", "z_dim must be at least 5")]:  # fmt: skip
        with pytest.raises(UsageError, match=message):
            parse_truth(bad)
    with pytest.raises(UsageError, match="unknown known-truth kind"):
        KnownFactorGenerator("round")


def test_a_known_truth_model_is_learned_compared_and_listed_from_the_cli(tmp_path):
    learned = invoke(["learn", "--model", "truth-layers:z_dim=4", "--steps", "3", "--batch-size", "2",
                      "--eval-every", "0", "--out", tmp_path, "--name", "t"])  # fmt: skip
    assert learned.exit_code == 0, learned.stderr
    run = tmp_path / "truth_layers" / "t"
    compared = invoke(["compare", run, "--samples", "2", "--top", "2", "--baselines", "sefa,sefa-first", "--no-gifs",
                       "--json"])  # fmt: skip
    assert compared.exit_code == 0, compared.stderr
    assert "truth-flat[:z_dim=12,seed=0]" in invoke(["models"]).stdout


def test_the_quality_pages_table_is_the_benchmarks_result():
    """The Quality page's known-truth table is what benchmarks/known_truth.py makes of the committed JSON."""
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("known_truth", root / "benchmarks" / "known_truth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = json.loads((root / "benchmarks" / "results" / "known-truth.json").read_text())
    assert results["seeds"] >= 5 and set(results["generators"]) == {"flat", "aligned", "layers", "shapes"}
    assert module.table(results) in (root / "docs" / "quality.md").read_text()
    assert module.table(results) == (root / "benchmarks" / "results" / "known-truth.md").read_text().strip()


def test_the_spectrum_says_where_the_closed_forms_are_blind():
    """near_degenerate_groups on SeFa's eigenvalues: truth-flat is one group (every eigenvalue 1),
    truth-aligned none (strengths 2 down to 0.5: relative gaps of 13% and more, above the 6% that
    4,096 samples resolve), and compare says so in a note and in report.json's spectrum."""
    from direction_finder.evaluation.compare import spectrum_of

    flat, aligned = load_generator("truth-flat", device="cpu"), load_generator("truth-aligned", device="cpu")
    assert spectrum_of(flat, 12)["groups"] == [[0, 11]]
    assert spectrum_of(aligned, 12)["groups"] == []
    torch.testing.assert_close(torch.tensor(spectrum_of(aligned, 12)["values"], dtype=torch.float64),
                               torch.linspace(2.0, 0.5, 12, dtype=torch.float64) ** 2, atol=1e-5, rtol=0)  # fmt: skip


def test_near_degenerate_groups_are_runs_within_the_sampling_spread():
    from direction_finder.method.pca import near_degenerate_groups

    # at 20,000 samples the spread of a difference of neighbours near 1 is 1.96 * 0.01 * 1.41 = 2.8%
    values = torch.tensor([5.0, 2.0, 1.99, 1.985, 1.0, 0.5, 0.49, 0.1])
    assert near_degenerate_groups(values, 20_000) == [(1, 3), (5, 6)]
    assert near_degenerate_groups(values, 10**9) == []
    assert near_degenerate_groups(torch.ones(4), 100) == [(0, 3)]

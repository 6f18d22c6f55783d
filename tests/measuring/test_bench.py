"""Performance plumbing: layouts agree, the layer fast mode is the same estimator, bench runs."""

import json

import pytest
import torch
from helpers import runner
from tolerances import FLOAT32_EPS, IMAGE_ULPS, assert_close_to_scale, second_difference_error

from direction_finder import gram_schmidt, hessian_penalty, orthonormal_directions
from direction_finder.config import LearnConfig
from direction_finder.errors import UsageError
from direction_finder.learning.objective import direction_penalty, draw_batch, train_step
from direction_finder.measuring.bench import reference_step, sequential_gram_schmidt
from hpdirs_cli.main import app


def test_every_layout_gives_the_same_loss_and_gradient(tiny_biggan):
    config = LearnConfig(batch_size=3).resolved(tiny_biggan)
    batch = draw_batch(tiny_biggan, config, torch.Generator().manual_seed(0))
    A = torch.randn(16, 16, generator=torch.Generator().manual_seed(1))
    results = []
    for chunk in (1, 2, 3, 4):
        a = A.clone().requires_grad_(True)
        loss = direction_penalty(tiny_biggan, orthonormal_directions(a), batch.z, batch.index, batch.eta,
                                 vectors=batch.vectors, chunk_size=chunk)
        (grad,) = torch.autograd.grad(loss, a)
        results.append((loss.detach(), grad))
    # The layouts batch the same images differently, so only the kernels' summation order differs:
    # each second difference moves by at most second_difference_error, and the loss and its
    # gradient by that much relative to their own size (the second differences are O(1) here).
    rel = second_difference_error(config.epsilon)
    for loss, grad in results[1:]:
        assert_close_to_scale(loss, results[0][0], rel, "loss")
        assert_close_to_scale(grad, results[0][1], rel, "gradient")


def test_reference_step_takes_the_same_step_as_ours(tiny_biggan):
    config = LearnConfig(batch_size=2, chunk_size=4).resolved(tiny_biggan)
    batch = draw_batch(tiny_biggan, config, torch.Generator().manual_seed(0))
    start = torch.randn(16, 16, generator=torch.Generator().manual_seed(2))
    # With N = z_dim our last row is the oriented complement of the others (no parameter); give
    # the reference, which Gram-Schmidts every row, a last row that points the same way.
    start[-1] = orthonormal_directions(start)[-1] * start[-1].norm()
    # Classical Gram-Schmidt loses orthogonality by ~ z_dim * eps per row, against QR's eps.
    torch.testing.assert_close(sequential_gram_schmidt(start), orthonormal_directions(start),
                               atol=64 * 16 * FLOAT32_EPS, rtol=0)
    outcomes = []
    for step in (train_step, reference_step):
        a = start.clone().requires_grad_(True)
        optimizer = torch.optim.SGD([a], lr=1.0)  # the step is the gradient (Adam's first step is its sign)
        loss = step(tiny_biggan, a, optimizer, config, batch)
        outcomes.append((loss, a.detach() - start))
    # The reference evaluates the centre and subtracts it, we drop it (the variance is
    # shift-invariant): the same second differences up to rounding. The last row of our
    # gradient is exactly zero and the reference's is rounding noise, so compare the others.
    rel = second_difference_error(config.epsilon)
    assert_close_to_scale(outcomes[0][0], outcomes[1][0], rel, "loss")
    assert_close_to_scale(outcomes[0][1][:-1], outcomes[1][1][:-1], rel, "step")
    assert torch.count_nonzero(outcomes[0][1][-1]) == 0


def test_layer_mode_is_the_same_estimator_applied_to_the_activation(tiny_biggan):
    g = tiny_biggan
    assert list(g.layers()) == ["block0", "block1", "block2", "block3"]
    Q = gram_schmidt(torch.randn(16, 16, generator=torch.Generator().manual_seed(3)))
    z = g.sample_z(2, torch.Generator().manual_seed(4))
    index, eta = torch.tensor([1, 7]), torch.tensor([2.0, -4.0])
    vectors = torch.randint(0, 2, (2, 2, 16), generator=torch.Generator().manual_seed(5)).float() * 2 - 1
    ours = direction_penalty(g, Q, z, index, eta, vectors=vectors, layer="block1")
    w0 = torch.zeros(2, 16)
    w0[[0, 1], index] = eta
    direct = hessian_penalty(lambda w: g.features(z.repeat(w.shape[0] // 2, 1) + w @ Q, "block1"), w0,
                             vectors=vectors)
    torch.testing.assert_close(ours, direct)
    assert g.features(z, "block1").shape == (2, *g.layers()["block1"])


def test_the_last_layer_feeds_the_image(tiny_biggan):
    g = tiny_biggan
    z = g.sample_z(2, torch.Generator().manual_seed(6))
    gen = g.model.generator
    image = torch.tanh(gen.conv_to_rgb(torch.relu(g.features(z, "block3")))[:, :3])
    torch.testing.assert_close(image, g(z), atol=IMAGE_ULPS * FLOAT32_EPS, rtol=0)  # the same ops, re-associated


def test_learning_at_a_layer_and_bad_layer_names(tiny_biggan, tmp_path):
    from direction_finder import learn

    d = learn(tiny_biggan, LearnConfig(steps=2, batch_size=1, eval_every=1, eval_samples=1, layer="block2"))
    assert d.metadata["config"]["layer"] == "block2"
    with pytest.raises(UsageError, match="unknown layer 'block9'; choose from block0, block1, block2, block3"):
        LearnConfig(layer="block9").resolved(tiny_biggan)


def test_cli_bench_writes_every_field(tiny_weights, tmp_path):
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "--weights", str(tiny_weights), "--steps", "1", "--batch-size", "1,2",
                                 "--out", str(out), "--device", "cpu", "--no-compiled"])  # compiled: below
    assert result.exit_code == 0, result.stderr
    r = json.loads(out.read_text())
    for key in ("model", "device", "threads", "matmul_peak_gflops", "forward_images_per_s", "learn",
                "flops_per_sample_step", "flops_per_forward_image", "layer", "render", "peak_memory_mb"):
        assert key in r
    for b in ("1", "2"):
        row = r["learn"][b]
        for key in ("batched", "chunks", "sequential", "reference", "ours", "ratio_vs_reference", "achieved_gflops",
                    "mfu", "default_layout", "best_layout"):
            assert key in row and row[key] is not None
        assert r["layer"][b]["sample_steps_per_s"] > 0
    assert r["flops_per_sample_step"] > 4 * r["flops_per_forward_image"]
    assert r["render"]["images_per_s"] > 0 and "ours (default layout) / reference" in result.stdout
    for count in ("1", "4"):  # the explorer, measured through its HTTP server
        e = r["explore"][count]
        assert e["new_position_ms"] > 0 and e["forward_ms"] > 0 and e["cached_ms"] > 0
        assert e["overhead_ms"] >= 0  # how it compares with the forward is the benchmark's to say, not a test's
    assert "explore, 4 sample(s): new position" in result.stdout
    bad = runner.invoke(app, ["bench", "--weights", str(tiny_weights), "--batch-size", "0"])
    assert bad.exit_code == 1 and "every batch size must be >= 1" in bad.stderr


def test_bench_times_the_compiled_step_beside_eager_with_its_compile_times(tmp_path):
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "--model", "synthetic:z_dim=6,factors=2,size=8", "--steps", "1",
                                 "--batch-size", "2", "--no-explore", "--layer", "none",
                                 "--out", str(out)], env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.stderr
    r = json.loads(out.read_text())
    row = r["learn"]["2"]
    assert row["compiled"] > 0 and row["compile_s"] > 0 and 0 < row["compiled_mfu"]
    assert r["warm_compile_s"] > 0
    assert "sample-steps/s, compiled" in result.stdout and "compiled again from the cache" in result.stdout
    assert r["render_compiled"]["images"] == r["render"]["images"] and r["render_compiled"]["images_per_s"] > 0
    assert "render, compiled" in result.stdout and "x eager render" in result.stdout


def test_doctor_reports_what_a_bug_report_needs(tmp_path, tiny_weights):
    import os
    import shutil
    import sys

    import direction_finder

    cached = tmp_path / "cache" / "biggan-deep-128"  # HPDIRS_CACHE is tmp_path/cache in every test
    shutil.copytree(tiny_weights, cached)
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["hpdirs"] == direction_finder.__version__ and report["torch"] == torch.__version__
    assert report["python"] == sys.version.split()[0] and report["threads"] == torch.get_num_threads()
    assert report["torch_build"] == ("CPU" if torch.version.cuda is None else f"CUDA {torch.version.cuda}")
    assert report["cache"] == os.environ["HPDIRS_CACHE"] and report["cached_models"] == {"biggan-deep-128": str(cached)}
    held = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*") if p.is_file()) / 2**20
    assert abs(report["cache_mb"] - held) <= 0.05  # what the cache holds, rounded to 0.1 MiB
    assert report["cxx_compiler"] == (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++"))
    table = runner.invoke(app, ["doctor"], env={"COLUMNS": "120"}).stdout
    assert "torch build" in table and "cached models" in table and "biggan-deep-128" in table

"""method/pca.py and generators/ganspace.py: GANSpace's directions. On a generator whose first layer
is linear with known singular vectors, the streaming PCA equals a dense PCA of the same samples to
float precision, and both recover the true principal directions to within the sampling error."""

import math

import pytest
import torch

from direction_finder.generators.ganspace import FIRST_LINEAR, ganspace_directions, pca_features
from direction_finder.method.pca import pca_directions

Z_DIM, WIDTH = 8, 20
SCALES = torch.tensor([5.0, 3.0, 2.0, 1.4, 1.0, 0.7, 0.5, 0.3], dtype=torch.float64)  # distinct: unique PCs


def linear_layer(seed=0):
    """W = P diag(s) R^T (D x z_dim): the activations' principal directions are P's columns with
    variances s^2, and the latent direction of component k is R's column k."""
    g = torch.Generator().manual_seed(seed)
    P = torch.linalg.qr(torch.randn(WIDTH, Z_DIM, generator=g, dtype=torch.float64)).Q
    R = torch.linalg.qr(torch.randn(Z_DIM, Z_DIM, generator=g, dtype=torch.float64)).Q
    return P @ torch.diag(SCALES) @ R.T, R


def sample_z(count, rng):
    return torch.randn(count, Z_DIM, generator=rng, dtype=torch.float64)


def test_streaming_pca_equals_a_dense_pca_of_the_same_samples():
    W, _ = linear_layer()
    samples, n = 3000, 4
    directions, variances = pca_directions(lambda z: z @ W.T, sample_z, n, samples, seed=5, batch_size=256)
    z = sample_z(samples, torch.Generator().manual_seed(5))  # the same draws, in one piece
    y = z @ W.T
    values, vectors = torch.linalg.eigh(torch.cov(y.T))  # dense, ascending
    top = vectors.flip(1)[:, :n]  # (D, n)
    x = (y - y.mean(0)) @ top
    latent = torch.linalg.lstsq(x, z).solution  # (n, z_dim)
    expected = torch.linalg.qr(latent.T).Q.T  # Gram-Schmidt of the rows, up to each row's sign
    cosines = (directions.double() * expected).sum(1).abs()
    assert torch.allclose(cosines, torch.ones(n, dtype=torch.float64), atol=1e-5)
    torch.testing.assert_close(variances.double(), values.flip(0)[:n], rtol=1e-5, atol=0)


def test_the_true_principal_directions_are_recovered_within_the_sampling_error():
    W, R = linear_layer(seed=1)
    samples, n = 4000, 4
    directions, _ = pca_directions(lambda z: z @ W.T, sample_z, n, samples, seed=2)
    s2 = SCALES**2
    for k in range(n):
        # first-order perturbation of eigenvector k of a sample covariance of N Gaussian samples:
        # its squared sine to the truth has expectation sum_j s_j^2 s_k^2 / (N (s_k^2 - s_j^2)^2)
        spread = sum(float(s2[j] * s2[k] / (s2[k] - s2[j]) ** 2) for j in range(Z_DIM) if j != k) / samples
        sine = math.sqrt(max(0.0, 1 - float((directions[k].double() @ R[:, k]) ** 2)))
        assert sine < 4 * math.sqrt(spread) + 1e-6, (k, sine, math.sqrt(spread))


def test_bigan_reads_the_first_linear_layer_and_other_generators_their_layers_or_images(tiny_biggan):
    from direction_finder import SyntheticGenerator
    from direction_finder.errors import UsageError

    name, features = pca_features(tiny_biggan)
    z = tiny_biggan.sample_z(2, torch.Generator().manual_seed(0))
    assert name == FIRST_LINEAR and features(z).shape == (2, tiny_biggan.model.generator.gen_z.out_features)
    assert pca_features(tiny_biggan, "block1")[0] == "block1"
    with pytest.raises(UsageError, match="not a layer of this generator; choose gen_z, block0"):
        pca_features(tiny_biggan, "block9")
    synthetic = SyntheticGenerator(z_dim=8, factors=4, size=8)
    assert pca_features(synthetic)[0] == "images"
    first = ganspace_directions(synthetic, 4, samples=600, seed=3)
    assert torch.allclose(first @ first.T, torch.eye(4), atol=1e-5)
    assert torch.equal(first, ganspace_directions(synthetic, 4, samples=600, seed=3))  # seeded
    directions = ganspace_directions(tiny_biggan, 5, samples=200, seed=0)
    assert directions.shape == (5, tiny_biggan.z_dim)


def test_learn_starts_from_ganspace_and_compare_measures_it(tmp_path):
    import json

    from helpers import invoke

    from direction_finder import load_directions
    from direction_finder.starts import GANSPACE_SEED_OFFSET
    from direction_finder.generators import load_generator

    model = "synthetic:z_dim=8,factors=4,size=8"
    learned = invoke(["learn", "--model", model, "--init", "ganspace", "--lr", "1e-12", "--steps", "1",
                      "--eval-every", "0", "--out", tmp_path, "--name", "g"])
    assert learned.exit_code == 0, learned.stderr
    expected = ganspace_directions(load_generator(model), 8, seed=GANSPACE_SEED_OFFSET)
    matrix = load_directions(tmp_path / "synthetic" / "g").matrix
    # lr 1e-12 leaves A where it started; saved rows carry a canonical sign
    assert torch.allclose((matrix * expected).sum(1).abs(), torch.ones(8), atol=1e-4)
    compared = invoke(["compare", tmp_path / "synthetic" / "g", "--baselines", "axes,ganspace", "--samples", "2",
                       "--top", "2", "--no-gifs"])
    assert compared.exit_code == 0, compared.stderr
    sets = json.loads((tmp_path / "synthetic" / "g" / "compare" / "report.json").read_text())["sets"]
    assert list(sets)[:3] == ["learned", "axes", "ganspace"]
    planned = invoke(["learn", "--model", model, "--init", "ganspace", "--dry-run", "--out", tmp_path])
    assert "warm start 20,480" in " ".join(planned.stdout.split())  # 5 passes x 4,096 latents on a CPU

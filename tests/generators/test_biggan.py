"""The BigGAN-deep wrapper: exact loading, frozen and deterministic, correct truncation statistics."""

import pickle
import shutil
import warnings

import numpy as np
import pytest
import torch
from pytorch_pretrained_biggan import BigGAN, BigGANConfig
from tolerances import FLOAT32_EPS, IMAGE_ULPS

from helpers import Exploit
from direction_finder.errors import HpdirsWarning, UsageError, WeightsError
from direction_finder.generators.base import Generator
from direction_finder.generators.biggan import load_biggan, read_config, truncation_grid
from direction_finder.generators.random_weights import tiny_config


def package_model(folder):
    """pytorch-pretrained-biggan's own model, loaded independently, in eval mode."""
    model = BigGAN(BigGANConfig.from_json_file(str(folder / "config.json")))
    model.load_state_dict(torch.load(folder / "pytorch_model.bin", weights_only=True))
    return model.eval()


def one_hot(index, n):
    y = torch.zeros(n, 1000)
    y[:, index] = 1
    return y


def test_full_size_random_biggan_deep_128_loads_through_the_published_format(full_weights):
    state = torch.load(full_weights / "pytorch_model.bin", weights_only=True)
    assert len(state) == 506
    g = load_biggan("biggan-deep-128", class_="golden_retriever", weights=full_weights, device="cpu")
    assert (g.name, g.z_dim, g.resolution) == ("biggan-deep-128", 128, 128)
    from direction_finder.config import LearnConfig

    # `--compile auto` on the real architecture: learn's default run compiles, a short one does not
    assert LearnConfig().resolved(g).compile == "on" and LearnConfig(steps=5).resolved(g).compile == "off"
    x = g(g.sample_z(1, torch.Generator().manual_seed(0)))
    assert x.shape == (1, 3, 128, 128) and torch.isfinite(x).all()
    assert sum(p.numel() for p in g.model.parameters()) == pytest.approx(50.4e6, rel=0.01)


def test_protocol_determinism_frozen_eval_and_input_gradients(tiny_biggan):
    g = tiny_biggan
    assert isinstance(g, Generator)
    assert not any(m.training for m in g.model.modules())
    assert not any(p.requires_grad for p in g.model.parameters())
    z = g.sample_z(4, torch.Generator().manual_seed(1))
    x = g(z)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert x.abs().max() <= 1
    assert torch.equal(x, g(z)) and torch.equal(x, g(z.clone()))
    z.requires_grad_(True)
    (grad,) = torch.autograd.grad(g(z).sum(), z)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_equals_the_package_model_in_eval_mode(tiny_weights, tiny_biggan):
    reference = package_model(tiny_weights)
    z = tiny_biggan.sample_z(3, torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = reference(z, one_hot(207, 3), 0.4)
    # the same operations in another order (spectral norms folded once): images in [-1, 1] that
    # differ by a few ulps at most
    torch.testing.assert_close(tiny_biggan(z), expected, atol=IMAGE_ULPS * FLOAT32_EPS, rtol=0)


def test_every_truncation_grid_value_selects_its_own_statistics(tiny_weights):
    # Independent expectation: the package's forward at (i + 1 - 1e-6) / 50 weights statistics
    # i by 1 - 1e-6 (its swapped interpolation), i.e. it uses grid index i to within 1e-6.
    reference = package_model(tiny_weights)
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(3)).clamp(-2, 2) * 0.5
    wrong_in_package = []
    for i in range(1, 51):
        typed = round(i * 0.02, 2)  # what a user types: 0.02, 0.04, ..., 1.0
        assert truncation_grid(typed) == (i, typed)
        g = load_biggan(class_=207, truncation=typed, weights=tiny_weights, device="cpu")
        ours = g(z)
        with torch.no_grad():
            if i < 50:
                expected = reference(z, one_hot(207, 2), (i + 1 - 1e-6) / 50)
            else:
                expected = reference(z, one_hot(207, 2), 1.0)
            # 1e-5 separates the two outcomes: the same statistics differ by rounding only
            # (IMAGE_ULPS * eps = 1.9e-6), a neighbouring grid index by ~1e-2
            torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
            if not torch.allclose(ours, reference(z, one_hot(207, 2), typed), atol=1e-5, rtol=0):
                wrong_in_package.append(typed)
    # pytorch-pretrained-biggan picks the statistics with a float modf, which lands on the
    # neighbouring grid index for exactly these truncations: its own selection is wrong here.
    assert wrong_in_package == [0.14, 0.28, 0.56, 0.58, 0.94]


def test_off_grid_truncation_snaps_with_a_warning_and_bad_values_are_refused():
    with pytest.warns(HpdirsWarning, match="off the 0.02 grid.*using 0.42"):
        assert truncation_grid(0.413) == (21, 0.42)
    with pytest.warns(HpdirsWarning):
        assert truncation_grid(0.001) == (1, 0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert truncation_grid(0.4) == (20, 0.4) and truncation_grid(1) == (50, 1.0)
    for bad in (0, -0.1, 1.5, float("nan"), float("inf"), True, "0.4"):
        with pytest.raises(UsageError, match="truncation must be"):
            truncation_grid(bad)


def test_sample_z_is_seeded_truncated_and_scaled(tiny_biggan):
    a = tiny_biggan.sample_z(1000, torch.Generator().manual_seed(5))
    b = tiny_biggan.sample_z(1000, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (1000, 16)
    assert a.abs().max() <= 2 * 0.4
    assert a.std().item() == pytest.approx(0.4 * 0.88, rel=0.05)  # std of N(0,1) cut at +-2 is 0.880


def test_class_and_truncation_are_recorded(tiny_weights):
    g = load_biggan(class_="tench", truncation=0.5, weights=tiny_weights, device="cpu")
    import hashlib

    described = g.describe()
    fingerprint = described.pop("weights_fingerprint")
    assert described == {"model": "biggan-deep-32", "class_index": 0, "class_name": "tench",
                         "truncation": 0.5, "resolution": 32, "weights": str(tiny_weights.resolve())}
    # an independent computation of the documented fingerprint: config.json, size, first and last MiB
    data = (tiny_weights / "pytorch_model.bin").read_bytes()
    digest = hashlib.sha256((tiny_weights / "config.json").read_bytes())
    for part in (str(len(data)).encode(), data[: 2**20], data[max(0, len(data) - 2**20):]):
        digest.update(part)
    assert fingerprint == digest.hexdigest()[:16]


def test_renamed_and_missing_keys_are_named(tiny_weights, tmp_path):
    state = torch.load(tiny_weights / "pytorch_model.bin", weights_only=True)
    state["generator.renamed.weight"] = state.pop("generator.gen_z.bias")
    shutil.copy(tiny_weights / "config.json", tmp_path / "config.json")
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(WeightsError) as info:
        load_biggan(class_=207, weights=tmp_path, device="cpu")
    assert "missing keys: generator.gen_z.bias" in str(info.value)
    assert "unexpected keys: generator.renamed.weight" in str(info.value)


def test_weights_for_another_resolution_or_shape_are_refused(tiny_weights, tmp_path):
    with pytest.raises(WeightsError, match="are for 32 px but the model is biggan-deep-128"):
        load_biggan("biggan-deep-128", class_=207, weights=tiny_weights, device="cpu")
    config = read_config(tiny_weights / "config.json")
    (tmp_path / "config.json").write_text(__import__("json").dumps({**config, "z_dim": 8}))
    shutil.copy(tiny_weights / "pytorch_model.bin", tmp_path / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="does not match its config.json.*size mismatch"):
        load_biggan(class_=207, weights=tmp_path, device="cpu")


@pytest.mark.parametrize("damage, message", [
    ("half", "damaged, truncated or not a weights file"),
    ("empty", "damaged, truncated or not a weights file"),
    ("text", "damaged, truncated or not a weights file"),
    ("bad-json", "is not valid JSON"),
    ("no-config", "has no config.json"),
])
def test_damaged_files_are_refused_clearly(tiny_weights, tmp_path, damage, message):
    shutil.copytree(tiny_weights, tmp_path / "w")
    folder = tmp_path / "w"
    weights = folder / "pytorch_model.bin"
    if damage == "half":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "empty":
        weights.write_bytes(b"")
    elif damage == "text":
        weights.write_text("not a checkpoint")
    elif damage == "bad-json":
        (folder / "config.json").write_text("{not json")
    else:
        (folder / "config.json").unlink()
    with pytest.raises(WeightsError, match=message):
        load_biggan(class_=207, weights=folder, device="cpu")


def test_weights_that_would_run_code_are_refused_and_nothing_runs(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_weights / "config.json", tmp_path / "config.json")
    with open(tmp_path / "pytorch_model.bin", "wb") as f:
        pickle.dump({"generator.gen_z.bias": Exploit()}, f)
    torch.save({"x": Exploit()}, tmp_path / "zipped.bin")
    with pytest.raises(WeightsError, match="damaged, truncated or not a weights file"):
        load_biggan(class_=207, weights=tmp_path, device="cpu")
    (tmp_path / "zipped.bin").replace(tmp_path / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="damaged, truncated or not a weights file"):
        load_biggan(class_=207, weights=tmp_path, device="cpu")
    assert not (tmp_path / "PWNED").exists()


def test_weights_path_forms(tiny_weights, tmp_path):
    for form in (tiny_weights, tiny_weights / "config.json", tiny_weights / "pytorch_model.bin"):
        assert load_biggan(class_=1, weights=form, device="cpu").z_dim == 16
    with pytest.raises(WeightsError, match="does not exist"):
        load_biggan(class_=1, weights=tmp_path / "nope", device="cpu")
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(WeightsError, match="neither config.json nor pytorch_model.bin"):
        load_biggan(class_=1, weights=tmp_path / "other.txt", device="cpu")


def test_names_and_devices_are_validated(tiny_weights):
    with pytest.raises(UsageError, match="unknown model 'biggan-128'.*biggan-deep-128, biggan-deep-256, biggan-deep-512"):
        load_biggan("biggan-128", class_=1, weights=tiny_weights)
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            load_biggan(class_=1, weights=tiny_weights, device="cuda")
    with pytest.raises(UsageError, match="unknown device"):
        load_biggan(class_=1, weights=tiny_weights, device="gpu0")
    assert tiny_config(resolution=16)["layers"][0] == [True, 16, 8]


def test_sefa_directions_are_the_top_right_singular_vectors_of_the_z_columns(tiny_biggan):
    w = tiny_biggan.model.generator.gen_z.weight.detach().double()[:, :16].numpy()
    _, singular, vt = np.linalg.svd(w)
    ours = tiny_biggan.sefa_directions(5).double().numpy()
    # ours are float64 eigenvectors rounded to float32: |cos| and orthonormality to ~z_dim * eps32
    np.testing.assert_allclose(np.abs(np.sum(ours * vt[:5], axis=1)), 1.0, atol=4 * 16 * FLOAT32_EPS)
    np.testing.assert_allclose(ours @ ours.T, np.eye(5), atol=4 * 16 * FLOAT32_EPS)


def test_all_layer_sefa_factorises_every_layer_z_enters_measured_from_outside(tiny_biggan):
    """SeFa of every layer z enters (its authors' `layer_idx='all'`), against an independent
    computation: each layer's response to z measured by running the generator at z = 0 and at
    z = e_j with hooks on gen_z and on every conditional BatchNorm's gain and bias projections
    (all linear in z, so the differences are exactly their z-columns), each output unit's row
    scaled to unit length as the authors' release does, eigenvectors by numpy."""
    from direction_finder.generators import sefa_of
    from direction_finder.generators.biggan import SelectedStatsBatchNorm

    g = tiny_biggan
    gen = g.model.generator
    linears = [gen.gen_z] + [p for m in gen.modules() if isinstance(m, SelectedStatsBatchNorm) and m.conditional
                             for p in (m.scale, m.offset)]  # fmt: skip
    seen: list = []
    hooks = [layer.register_forward_hook(lambda mod, args, out: seen.append(out.detach().double())) for layer in linears]
    try:
        responses = []
        for z in torch.cat([torch.zeros(1, g.z_dim), torch.eye(g.z_dim)]):
            seen.clear()
            with torch.no_grad():
                g(z[None].to(g.device))
            responses.append(torch.cat([out.reshape(-1) for out in seen]))  # every unit of every z-layer
    finally:
        for hook in hooks:
            hook.remove()
    w = (torch.stack(responses[1:]) - responses[0]).T.numpy()  # (units, z_dim): column j = response to e_j
    assert len(linears) > 2 and w.shape[0] == sum(layer.weight.shape[0] for layer in linears)
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(w.T @ w)
    expected = vectors[:, np.argsort(values)[::-1][:5]].T  # (5, z_dim)
    ours = sefa_of(g, 5).double().numpy()
    # the measured columns carry float32 rounding of the forward (~1e-6 relative); the top
    # eigenvalues of the tiny model are apart by far more, so the directions agree to ~1e-4
    np.testing.assert_allclose(np.abs(np.sum(ours * expected, axis=1)), 1.0, atol=1e-4)
    first = sefa_of(g, 5, "sefa-first")
    assert torch.equal(first, g.sefa_directions(5))  # the first layer alone: exactly what sefa always was
    assert np.abs(np.sum(first.double().numpy() * ours, axis=1)).min() < 0.99  # and not the same directions


def test_with_one_z_layer_sefa_is_exactly_the_first_layers(tiny_biggan):
    """A generator whose latent enters one layer (declared, or only a first layer) gets exactly
    the first-layer directions hpdirs has always given, from either variant."""
    from direction_finder.generators import sefa, sefa_of

    weight = tiny_biggan.model.generator.gen_z.weight[:, :16].detach()

    class OneLayer:
        z_dim, device = 16, torch.device("cpu")

        def sample_z(self, n, generator=None):
            return torch.randn(n, 16, generator=generator)

        def __call__(self, z):
            return torch.tanh(z @ weight.T).reshape(-1, 1, 1, weight.shape[0])

        def z_weights(self):
            return [weight]

    for variant in ("sefa", "sefa-first"):
        assert torch.equal(sefa_of(OneLayer(), 6, variant), sefa(weight, 6))
    assert sefa_of(object(), 6) is None


def test_layerwise_edits_reach_only_their_layers(tiny_biggan):
    """GANSpace's layer-wise edits: on every layer the plain edit, on none the unedited image
    (both bitwise), and on a range exactly the blocks of that range see the edited latent."""
    from direction_finder.artifacts.directions import Directions
    from direction_finder.method.orthonormal import gram_schmidt

    g, L = tiny_biggan, tiny_biggan.latent_layers
    assert L == 1 + len(g.layers())  # gen_z, then one per GenBlock
    d = Directions(gram_schmidt(torch.randn(3, g.z_dim, generator=torch.Generator().manual_seed(0))), {})
    z = g.sample_z(2, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(g.layerwise(d.apply(z, 1, 2.0, range(0, L), L)), g(d.apply(z, 1, 2.0)))
        assert torch.equal(g.layerwise(d.apply(z, 1, 2.0, range(0, 0), L)), g(z))
        seen = []
        blocks = [m for m in g.model.generator.layers if hasattr(m, "bn_0")]
        hooks = [b.register_forward_pre_hook(lambda module, args: seen.append(args[1].clone())) for b in blocks]
        hooks.append(g.model.generator.gen_z.register_forward_pre_hook(lambda m, args: seen.insert(0, args[0].clone())))
        try:
            g.layerwise(d.apply(z, 1, 2.0, range(2, 4), L))
        finally:
            for hook in hooks:
                hook.remove()
    embedding = g._embedding.expand(2, -1)
    plain, edited = torch.cat([z, embedding], 1), torch.cat([d.apply(z, 1, 2.0), embedding], 1)
    assert len(seen) == L
    for layer, condition in enumerate(seen):  # layer 0 enters gen_z, layer b + 1 conditions GenBlock b
        assert torch.equal(condition, edited if layer in (2, 3) else plain), layer
    with pytest.raises(ValueError, match="zs must have shape"):
        g.layerwise(z)

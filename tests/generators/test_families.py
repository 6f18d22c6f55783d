"""generators/families.py: the table of built-in generator families. Every row claims its own
names and builds them, and a new family is one function and one row that learn, render and
`hpdirs models` take at once."""

import pytest
import torch
from helpers import invoke

from direction_finder.errors import UsageError
from direction_finder.generators import families
from direction_finder.generators.choice import GeneratorChoice
from direction_finder.generators.families import FAMILIES, Family, available_models, family_of, load_generator
from direction_finder.generators.synthetic import SyntheticGenerator


def test_every_family_claims_its_own_names_and_builds_them():
    assert family_of(None).name == "biggan" and family_of("biggan-deep-256").name == "biggan"
    assert family_of("synthetic:z_dim=4").name == "synthetic" and family_of("truth-flat").name == "truth"
    assert family_of("tests_plugin:make") is None and family_of("unknown") is None
    assert isinstance(load_generator("synthetic:z_dim=4", device="cpu"), SyntheticGenerator)
    assert load_generator("truth-aligned:z_dim=6", device="cpu").z_dim == 6
    with pytest.raises(UsageError, match="unknown model 'unknown'; choose one of biggan-deep-128"):
        load_generator("unknown", device="cpu", offline=True)
    listed = [name for name, _, _ in available_models()]
    assert listed[:3] == ["biggan-deep-128", "biggan-deep-256", "biggan-deep-512"] and listed[-1] == "module.path:factory"


def test_a_new_family_is_one_function_and_one_row(monkeypatch, tmp_path):
    def build(model, class_, truncation, weights, device, **kwargs):  # `tiny[:z_dim]`: a synthetic generator
        return SyntheticGenerator(z_dim=int(model.partition(":")[2] or 4), factors=2, size=4)

    row = Family("tiny", lambda model: (model or "").startswith("tiny"), (("tiny[:z_dim]", "a small one"),), build,
                 self_contained=True)  # fmt: skip
    monkeypatch.setattr(families, "FAMILIES", (row, *FAMILIES))
    assert GeneratorChoice(model="tiny:5", device="cpu").load().z_dim == 5
    assert ("tiny[:z_dim]", "built-in", "a small one") in available_models()
    result = invoke(["learn", "--model", "tiny:3", "--steps", "2", "--eval-every", "0", "--out", tmp_path, "--name", "r"])
    assert result.exit_code == 0, result.stderr
    rendered = invoke(["render", tmp_path / "synthetic" / "r", "--frames", "2", "--samples", "1", "--format", "gif"])
    assert rendered.exit_code == 0, rendered.stderr  # found again from what the file records: model tiny:3
    assert torch.is_tensor(GeneratorChoice(device="cpu").for_metadata({"model": "tiny:3"}, "a file").basis)

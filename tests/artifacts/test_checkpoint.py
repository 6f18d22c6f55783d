"""artifacts/checkpoint.py: what a resume accepts; a resume with another config is refused naming
the fields that differ."""

import pytest
import torch

from direction_finder import SyntheticGenerator, learn
from direction_finder.config import LearnConfig
from direction_finder.errors import UsageError


def test_resume_with_a_different_config_is_refused_naming_the_fields(tmp_path):
    g = SyntheticGenerator(z_dim=8, factors=3, size=4)
    learn(g, LearnConfig(steps=3, batch_size=2, eval_every=0), out_dir=tmp_path)
    with pytest.raises(UsageError, match=r"different config \(batch_size: 2 -> 3; lr: 0.01 -> 0.02"):
        learn(g, LearnConfig(steps=3, batch_size=3, lr=0.02, eval_every=0), out_dir=tmp_path, resume=True)
    # More steps is allowed: it continues the same path.
    more = learn(g, LearnConfig(steps=5, batch_size=2, eval_every=0), out_dir=tmp_path, resume=True)
    assert torch.equal(more.matrix, learn(g, LearnConfig(steps=5, batch_size=2, eval_every=0)).matrix)
    with pytest.raises(UsageError, match="already holds a run"):
        learn(g, LearnConfig(steps=3, batch_size=2, eval_every=0), out_dir=tmp_path)

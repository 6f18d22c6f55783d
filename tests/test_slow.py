"""Full-size runs, too slow for CI (`make test-slow`): the real architecture end to end."""

import pytest
import torch
from helpers import runner

from direction_finder import load_directions
from hpdirs_cli.main import app

pytestmark = pytest.mark.slow


def test_full_size_biggan_deep_128_learn_and_render_from_the_cli(full_weights, tmp_path):
    learned = runner.invoke(app, ["learn", "--weights", str(full_weights), "--model", "biggan-deep-128",
                                  "--class", "golden_retriever", "--steps", "2", "--batch-size", "1",
                                  "--eval-every", "2", "--eval-samples", "1", "--out", str(tmp_path), "--name", "full"])
    assert learned.exit_code == 0, learned.stderr
    run = tmp_path / "golden_retriever" / "full"
    d = load_directions(run)
    assert d.matrix.shape == (128, 128) and d.metadata["model"] == "biggan-deep-128"
    torch.testing.assert_close(d.matrix @ d.matrix.T, torch.eye(128), atol=1e-4, rtol=0)
    rendered = runner.invoke(app, ["render", str(run), "--directions", "0-1", "--samples", "2", "--frames", "3"])
    assert rendered.exit_code == 0, rendered.stderr
    assert (run / "render" / "index.html").is_file() and (run / "render" / "sheet.png").is_file()

"""loss.png: values on the log axis, a legend drawn with lines (no glyph the font lacks)."""

import numpy as np
import pytest
from PIL import Image

from direction_finder.artifacts.plot import log_ticks, loss_curve


@pytest.mark.parametrize("low, high, expected", [
    (2.98, 4.99, [3.0, 4.0]),  # within a decade: every digit
    (0.05, 3.0, [0.05, 0.1, 0.2, 0.5, 1.0, 2.0]),  # within two: 1, 2, 5
    (0.001, 50.0, [0.001, 0.01, 0.1, 1.0, 10.0]),  # wider: decades
    (4.1, 4.3, [4.1, 4.3]),  # no round value inside: the ends
])
def test_log_ticks(low, high, expected):
    assert log_ticks(low, high) == pytest.approx(expected)


def test_the_legend_is_a_line_of_each_series_colour_above_the_plot(tmp_path):
    path = tmp_path / "loss.png"
    loss_curve({"training": [(i, 5.0 - 0.01 * i) for i in range(1, 100)],
                "held-out": [(i, 0.5) for i in range(10, 100, 10)]}, path, title="t")  # fmt: skip
    pixels = np.asarray(Image.open(path).convert("RGB"))
    margin = pixels[:40]  # above the plot's frame
    for colour in [(31, 119, 180), (214, 39, 40)]:
        assert (margin == colour).all(axis=2).sum() >= 18  # an 18-px line per entry, not a text box

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


def test_a_single_held_out_point_is_drawn_whole_inside_the_frame_with_its_value(tmp_path):
    frame = (64, 40, 640 - 16, 360 - 40)  # left, top, right, bottom of the plot (the chart's margins)

    def reds(series):  # where the chart is reddish (the dot, and the text's anti-aliased strokes)
        loss_curve(series, tmp_path / "loss.png", title="t")
        pixels = np.asarray(Image.open(tmp_path / "loss.png").convert("RGB")).astype(int)
        ys, xs = np.nonzero((pixels[..., 0] - pixels[..., 1] > 60) & (pixels[..., 0] - pixels[..., 2] > 60))
        plot = ys >= frame[1]  # below the legend's margin
        return xs[plot], ys[plot]

    # the held-out penalty evaluated once, at the last step, at the highest value: the frame's corner
    xs, ys = reds({"training": [(1, 0.5), (2, 0.4)], "held-out": [(2, 0.6)]})
    assert xs.min() > frame[0] and xs.max() < frame[2] and ys.min() > frame[1] and ys.max() < frame[3]
    # beside the dot its value, in the series' colour: red strokes reaching 15+ px left of a 5-px dot
    assert xs.max() - xs.min() > 15, (len(xs), xs.min(), xs.max())
    xs2, _ = reds({"training": [(1, 0.5), (2, 0.4)], "held-out": [(1, 0.6), (2, 0.6)]})
    assert xs2.max() - xs2.min() > 400  # two points: a line between them

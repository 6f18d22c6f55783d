"""outputs/media.py: how frames become files (the ping-pong loop of a sweep)."""

from direction_finder.outputs.media import ping_pong


def test_ping_pong_is_a_seamless_loop():
    assert ping_pong(4) == [0, 1, 2, 3, 2, 1]
    assert ping_pong(2) == [0, 1]

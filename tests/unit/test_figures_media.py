"""The media figure: one trace per stream and panel, values as given, long streams thinned for drawing."""

import polars as pl

from flowviz.figures.media import MAX_POINTS, create_media_plots


def test_one_trace_per_stream_and_panel_with_the_values():
    series = pl.DataFrame({"stream_id": ["a", "a", "b"], "t_s": [0.0, 0.02, 0.0], "jitter_ms": [0.0, 0.5, 0.1],
                           "delta_ms": [0.0, 20.0, 0.0], "lost": [0, 0, 1]})
    fig = create_media_plots(series, {"a": "UA1 -> UA2", "b": "UA2 -> UA1"})
    assert [(t.name, t.yaxis) for t in fig.data] == [
        ("UA1 -> UA2", "y"), ("UA1 -> UA2", "y2"), ("UA1 -> UA2", "y3"),
        ("UA2 -> UA1", "y"), ("UA2 -> UA1", "y2"), ("UA2 -> UA1", "y3")]
    assert list(fig.data[0].y) == [0.0, 0.5] and list(fig.data[1].y) == [0.0, 20.0] and list(fig.data[5].y) == [1]


def test_long_streams_are_thinned_for_drawing_only():
    n = MAX_POINTS * 4
    series = pl.DataFrame({"stream_id": ["a"] * n, "t_s": [i * 0.02 for i in range(n)], "jitter_ms": [0.1] * n,
                           "delta_ms": [20.0] * n, "lost": [0] * n})
    fig = create_media_plots(series, {})
    assert len(fig.data[0].x) == MAX_POINTS

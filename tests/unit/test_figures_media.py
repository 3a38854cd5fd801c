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


def test_the_dark_theme_draws_paper_grid_and_lines_in_its_own_colours():
    from flowviz.figures.theme import DARK, LIGHT

    series = pl.DataFrame({"stream_id": ["a", "b"], "t_s": [0.0, 0.0], "jitter_ms": [0.1, 0.2],
                           "delta_ms": [20.0, 20.0], "lost": [0, 0]})
    for theme in (LIGHT, DARK):
        fig = create_media_plots(series, {}, theme=theme)
        assert (fig.layout.paper_bgcolor, fig.layout.font.color) == (theme.paper, theme.text)
        assert fig.layout.yaxis.gridcolor == fig.layout.xaxis3.gridcolor == theme.grid
        assert [t.line.color for t in fig.data[::3]] == list(theme.series[:2])  # one colour per stream
    assert DARK.series[0] != LIGHT.series[0] and DARK.grid != LIGHT.grid

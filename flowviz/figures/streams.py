"""Streams overview: one point per RTP stream of a capture, loss % against max jitter, coloured by MOS.

Bad audio stands out away from the origin and in red, however many streams there are: the figure is one
trace of markers (no lines, no per-stream legend), so thousands of streams stay quick to draw. Each point
carries its call's page address (customdata) for the web page to open on click.
"""

from __future__ import annotations

import plotly.graph_objects as go

from flowviz.figures.theme import LIGHT, Theme

MOS_RANGE = (1.0, 4.5)  # G.107's scale; 4.5 is about the best narrowband codecs reach


def create_streams_overview(rows: list[dict], *, theme: Theme = LIGHT) -> go.Figure:
    """rows: dicts with stream_id, flow, call (shown), call_href (None: bound to no call), lost_pct,
    max_jitter_ms and mos (None: not scored). Bound and unbound streams are two traces (circle, cross)."""
    scale = [[0.0, theme.severities["error"]], [0.5, theme.severities["warning"]], [1.0, theme.classes["2xx"]]]
    fig = go.Figure()
    for bound, symbol, name in ((True, "circle", "bound to a call"), (False, "x", "unbound")):
        part = [r for r in rows if (r["call_href"] is not None) == bound]
        if not part:
            continue
        fig.add_trace(go.Scatter(
            x=[r["max_jitter_ms"] for r in part], y=[r["lost_pct"] for r in part], mode="markers", name=name,
            customdata=[[r["call_href"] or "", r["stream_id"], r["flow"], r["call"] if bound else "unbound",
                         "-" if r["mos"] is None else f"{r['mos']:.2f}"] for r in part],
            marker={"symbol": symbol, "size": 8, "opacity": 0.75, "line": {"width": 0.5, "color": theme.paper},
                    "color": [MOS_RANGE[0] if r["mos"] is None else r["mos"] for r in part],
                    "colorscale": scale, "cmin": MOS_RANGE[0], "cmax": MOS_RANGE[1],
                    "showscale": not fig.data,  # one colour bar for both traces
                    "colorbar": {"title": {"text": "MOS"}, "thickness": 12, "len": 0.9}},
            hovertemplate=("stream %{customdata[1]}<br>%{customdata[2]}<br>call %{customdata[3]}<br>"
                           "MOS %{customdata[4]}, lost %{y:.2f} %, max jitter %{x:.2f} ms<extra></extra>")))
    highest_loss = max([r["lost_pct"] or 0 for r in rows] + [1.0])  # no loss at all: 0-1 %, points on the floor
    fig.update_layout(height=300, margin={"l": 60, "r": 20, "t": 30, "b": 45}, paper_bgcolor=theme.paper,
                      plot_bgcolor=theme.plot, font={"family": theme.font_family, "size": theme.font_size,
                                                     "color": theme.text},
                      legend={"orientation": "h", "y": 1.12, "x": 0}, showlegend=True, hovermode="closest",
                      clickmode="event")
    fig.update_xaxes(title_text="max jitter ms", rangemode="tozero", gridcolor=theme.grid,
                     zerolinecolor=theme.grid)
    fig.update_yaxes(title_text="lost %", range=[-highest_loss * 0.05, highest_loss * 1.1],
                     gridcolor=theme.grid, zerolinecolor=theme.grid)
    return fig

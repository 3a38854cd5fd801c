"""Media figures: jitter, inter-packet delta and cumulative loss over time, one line per RTP stream.

Values are flowviz.media.stats.packet_series (Wireshark's per-packet RTP analysis); streams of more than
MAX_POINTS packets are thinned to every n-th packet for drawing only (the tables keep the exact figures).
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from flowviz.figures.theme import LIGHT, Theme

MAX_POINTS = 3_000  # per stream and panel; SVG lines stay smooth in the browser
PANELS = (("jitter_ms", "jitter ms"), ("delta_ms", "delta ms"), ("lost", "lost (cumulative)"))


def create_media_plots(series: pl.DataFrame, labels: dict[str, str], *, theme: Theme = LIGHT) -> go.Figure:
    """Three stacked panels sharing the time axis; one trace per stream and panel, named by `labels`."""
    fig = make_subplots(rows=len(PANELS), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[title for _, title in PANELS])
    palette = theme.series
    for i, (sid, part) in enumerate(series.partition_by("stream_id", as_dict=True, maintain_order=True).items()):
        sid = sid[0] if isinstance(sid, tuple) else sid
        step = max(1, len(part) // MAX_POINTS)
        part = part.gather_every(step)
        for row, (column, _) in enumerate(PANELS, start=1):
            fig.add_trace(go.Scatter(
                x=part["t_s"].to_list(), y=part[column].to_list(), mode="lines", name=labels.get(sid, sid),
                legendgroup=sid, showlegend=row == 1, line={"width": 1.2, "color": palette[i % len(palette)]},
                hovertemplate=f"%{{x:.3f}} s<br>%{{y:.3f}}<extra>{labels.get(sid, sid)}</extra>"), row=row, col=1)
    fig.update_layout(height=520, margin={"l": 60, "r": 20, "t": 40, "b": 40}, paper_bgcolor=theme.paper,
                      plot_bgcolor=theme.plot, font={"family": theme.font_family, "size": theme.font_size,
                                                     "color": theme.text},
                      legend={"orientation": "h", "y": 1.08, "x": 0}, hovermode="x unified")
    fig.update_xaxes(title_text="capture time s", row=len(PANELS), col=1)
    fig.update_xaxes(gridcolor=theme.grid, zerolinecolor=theme.grid)
    fig.update_yaxes(gridcolor=theme.grid, zerolinecolor=theme.grid, rangemode="tozero")
    return fig

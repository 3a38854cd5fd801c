"""Ladder figure: a plotly sequence diagram of one call, drawn from flowviz.ladder.Ladder.

Arrows are Scatter traces (one per message class, segments separated by None, the head a triangle
marker on the segment's end), not annotations, so 1,000 messages still export in seconds. The label
trace carries the hover text and, in `customdata`, each arrow's seq (the HTML export shows the raw
message of the clicked arrow from it). Rows are message order, top to bottom; times are written left.
"""

from __future__ import annotations

import plotly.graph_objects as go

from flowviz.figures.theme import LIGHT, Theme
from flowviz.ladder import CLASSES, Ladder

ROW_PX = 30
COLUMN_PX = 230
HEAD_PX = 11


def create_ladder(ladder: Ladder, *, theme: Theme = LIGHT, title: str | None = None,
                  window: tuple[int, int] | None = None, spacing: str = "even") -> go.Figure:
    """Traces: 'lifelines', one per message class present ('request', '1xx'...), 'rtp' bands and
    arrows, 'dtmf' arrows, 'labels' (text, hover, customdata=seq), 'media labels', 'event labels',
    'diagnostics' (findings as '!n' diamonds), 'times', 'columns' (header).

    window: (first, end) of the ladder's rows to draw (a page of a long call; findings about the whole
    call are listed under the last page only); spacing: 'even' (one row per message) or 'time' (rows placed
    in proportion to their time, over the same height)."""
    columns = ladder.columns.to_dicts()
    every = ladder.rows()
    first, end = window or (0, len(every))
    rows = every[first:end]
    n_rows = max(len(rows), 1)
    ys = _positions(rows, spacing)
    fig = go.Figure()
    fig.add_trace(_lifelines(len(columns), n_rows, theme))
    sip = [(y, r) for y, r in zip(ys, rows) if r["kind"] == "sip"]
    rtp = [(y, r) for y, r in zip(ys, rows) if r["kind"] == "rtp"]
    dtmf = [(y, r) for y, r in zip(ys, rows) if r["kind"] == "dtmf"]
    for klass in CLASSES:
        mine = [(y, r) for y, r in sip if r["klass"] == klass]
        if mine:
            fig.add_trace(_arrows(mine, klass, theme.classes[klass], theme))
    if rtp:
        fig.add_trace(_bands(rtp, theme))
        fig.add_trace(_arrows(rtp, "rtp", theme.media, theme))
    if dtmf:
        fig.add_trace(_arrows(dtmf, "dtmf", theme.dtmf, theme))
    fig.add_trace(_labels(sip, "labels", [theme.classes[r["klass"]] for _, r in sip], theme))
    if rtp:
        fig.add_trace(_labels(rtp, "media labels", [theme.media] * len(rtp), theme))
    if dtmf:
        fig.add_trace(_labels(dtmf, "event labels", [theme.dtmf] * len(dtmf), theme))
    last_page = end >= len(every)
    loose = ladder.markers.filter(ladder.markers["seq"].is_null()).to_dicts() if last_page else []
    if not ladder.markers.is_empty():
        fig.add_trace(_markers(ladder, {r["seq"]: y for y, r in sip}, n_rows, theme, last_page))
    fig.add_trace(go.Scatter(
        name="times", x=[-0.55] * len(rows), y=ys, mode="text", hoverinfo="skip",
        text=[f"{r['t_ms'] / 1e3:.3f} s" + (f"  +{r['delta_ms']:.1f} ms" if r["kind"] == "sip" else "")
              for r in rows],
        textposition="middle left", textfont={"color": theme.text, "size": theme.font_size - 2}, showlegend=False))
    fig.add_trace(go.Scatter(
        name="columns", x=[c["col"] for c in columns], y=[-1.0] * len(columns), mode="text", hoverinfo="text",
        text=[f"<b>{c['name']}</b><br>{c['key']}" for c in columns], hovertext=[c["role"] for c in columns],
        textposition="middle center", textfont={"color": theme.text, "size": theme.font_size}, showlegend=False))
    width = 260 + COLUMN_PX * max(len(columns) - 1, 1)
    n_rows += len(loose)  # findings about the whole call are listed under the last row
    fig.update_layout(
        title={"text": title} if title else None, width=width, height=140 + ROW_PX * n_rows,
        paper_bgcolor=theme.paper, plot_bgcolor=theme.plot, showlegend=False, hovermode="closest",
        font={"family": theme.font_family, "size": theme.font_size, "color": theme.text},
        margin={"l": 20, "r": 20, "t": 40 if title else 10, "b": 10},
        xaxis={"visible": False, "range": [-1.25, max(len(columns) - 1, 1) + 0.5], "fixedrange": False},
        yaxis={"visible": False, "range": [n_rows, -1.7]},
    )
    return fig


def _positions(rows: list[dict], spacing: str) -> list[float]:
    """Each row's y: its index, or with spacing 'time' its time scaled onto the same span of rows."""
    if spacing != "time" or len(rows) < 2:
        return list(range(len(rows)))
    t0, t1 = rows[0]["t_ms"], rows[-1]["t_ms"]
    if t1 <= t0:
        return list(range(len(rows)))
    return [(r["t_ms"] - t0) / (t1 - t0) * (len(rows) - 1) for r in rows]


def _markers(ladder: Ladder, row_of_seq: dict[int, float], n_rows: int, theme: Theme,
             loose_too: bool = True) -> go.Scatter:
    """'!n' diamonds right of the arrow a finding points at (when drawn); findings without one under the
    last row (`loose_too`)."""
    xs, ys, text, hover, colours = [], [], [], [], []
    arrows = {a["seq"]: a for a in ladder.arrows.to_dicts()}
    loose = 0
    for m in ladder.markers.to_dicts():
        if (m["seq"] is not None and m["seq"] not in row_of_seq) or (m["seq"] is None and not loose_too):
            continue
        if m["seq"] is not None:
            a = arrows[m["seq"]]
            xs.append(max(a["src_col"], a["dst_col"]) + 0.08)
            ys.append(row_of_seq[m["seq"]])
            text.append(f"!{m['number']}")
        else:
            xs.append(0)
            ys.append(n_rows + loose)
            loose += 1
            text.append(f"!{m['number']} {m['severity']}: {m['title']}")
        hover.append(f"{m['severity']}: {m['title']}<br>{m['explanation'] or ''}<br>{m['rule']}")
        colours.append(theme.severities.get(m["severity"], theme.text))
    return go.Scatter(name="diagnostics", x=xs, y=ys, mode="markers+text", text=text, hovertext=hover,
                      hoverinfo="text", textposition="middle right", showlegend=False, customdata=[-1] * len(xs),
                      textfont={"color": colours, "size": theme.font_size - 1},
                      marker={"symbol": "diamond", "size": 9, "color": colours})


def _lifelines(n_columns: int, n_rows: int, theme: Theme) -> go.Scatter:
    xs, ys = [], []
    for col in range(n_columns):
        xs += [col, col, None]
        ys += [-0.6, n_rows - 0.4, None]
    return go.Scatter(name="lifelines", x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                      line={"color": theme.lifeline, "width": 1, "dash": "dot"})


def _arrows(items: list[tuple[int, dict]], name: str, colour: str, theme: Theme) -> go.Scatter:
    """Segments src -> dst at their row; the head is a triangle marker on the end point only."""
    xs, ys, symbols, sizes = [], [], [], []
    for y, r in items:
        a, b = r["src_col"], r["dst_col"]
        xs += [a, b, None]
        ys += [y, y, None]
        symbols += ["circle", "triangle-right" if b >= a else "triangle-left", "circle"]
        sizes += [0, HEAD_PX, 0]
    dash = "dash" if name == "1xx" else "dot" if name == "dtmf" else "solid"
    return go.Scatter(name=name, x=xs, y=ys, mode="lines+markers", hoverinfo="skip", showlegend=False,
                      line={"color": colour, "width": 1.6, "dash": dash},
                      marker={"symbol": symbols, "size": sizes, "color": colour, "line": {"width": 0}})


def _bands(items: list[tuple[int, dict]], theme: Theme) -> go.Scatter:
    xs, ys = [], []
    for y, r in items:
        lo, hi = sorted((r["src_col"], r["dst_col"]))
        xs += [lo, hi, hi, lo, lo, None]
        ys += [y - 0.42, y - 0.42, y + 0.32, y + 0.32, y - 0.42, None]
    return go.Scatter(name="rtp bands", x=xs, y=ys, mode="lines", fill="toself", fillcolor=theme.media_fill,
                      line={"width": 0}, hoverinfo="skip", showlegend=False)


def _labels(items: list[tuple[int, dict]], name: str, colours: list[str], theme: Theme) -> go.Scatter:
    """Label above each arrow's middle; an invisible marker there makes hover and click easy."""
    text = [(r["text"] if r["kind"] == "sip" else r["label"]) for _, r in items]
    hover = [r["summary"] if r["kind"] == "sip" else r["text"] for _, r in items]
    return go.Scatter(
        name=name, x=[(r["src_col"] + r["dst_col"]) / 2 for _, r in items], y=[y - 0.28 for y, _ in items],
        mode="markers+text", text=text, hovertext=hover, hoverinfo="text", textposition="middle center",
        customdata=[r.get("seq", -1) for _, r in items], showlegend=False,
        textfont={"color": colours, "size": theme.font_size - 1},
        marker={"size": 16, "opacity": 0, "color": theme.paper})

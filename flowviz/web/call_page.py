"""Call page: one call's summary, ladder figure (click a label for its raw SIP message) and message table."""

from __future__ import annotations

from dash import dash_table, dcc, html

from flowviz.figures.theme import LIGHT, Theme
from flowviz.web.exports import FORMATS
from flowviz.web.pages import TABLE_STYLE
from flowviz.web.thresholds import describe

MESSAGE_COLUMNS = [
    {"name": "#", "id": "seq", "type": "numeric"}, {"name": "frame", "id": "frame", "type": "numeric"},
    {"name": "time s", "id": "t_s", "type": "numeric"},
    {"name": "+ms", "id": "delta_ms", "type": "numeric"}, {"name": "from", "id": "src"}, {"name": "to", "id": "dst"},
    {"name": "message", "id": "label"}, {"name": "CSeq", "id": "cseq"}, {"name": "SDP", "id": "sdp"},
    {"name": "Call-ID", "id": "call_id"},
]


def call_layout(cid: str, capture_name: str, details: dict, problems: list[dict] | None = None, *,
                fresh: bool = True, overrides: dict | None = None, theme: Theme = LIGHT) -> html.Div:
    """`problems` are the call's findings; not `fresh` when the session's thresholds changed and the rules have
    not run again yet (then the diagnostics section polls until they have). The figures are drawn in `theme`."""
    call, ladder = details["call"], details["ladder"]
    gid = call["call_group_id"]
    arrows = ladder.arrows.to_dicts()
    figure, header, shown, n_pages = ladder_view(ladder, theme, 0, "even")
    party = f"{call['from_user'] or call['from_uri']} \u2192 {call['to_user'] or call['to_uri']}"
    facts = [("state", call["state"]), ("final", f"{call['final_status'] or '-'} {call['final_reason'] or ''}"),
             ("SRD", _ms(call["srd_ms"])), ("setup", _ms(call["setup_ms"])),
             ("duration", "-" if call["duration_s"] is None else f"{call['duration_s']:.2f} s"),
             ("messages", str(call["messages"])), ("hosts", str(len(call["hosts"]))),
             ("Call-IDs", ", ".join(call["call_ids"]))]
    return html.Div([
        dcc.Link(f"< {capture_name}", href=f"/capture/{cid}", className="back"),
        html.H1([f"Call {gid}", html.Span(party, className="subtitle")]),
        html.Dl([item for k, v in facts for item in (html.Dt(k), html.Dd(v, id=f"fact-{k.lower().replace('-', '')}"))],
                className="facts"),
        html.Div([html.Span("Download: ", className="hint")] + [
            html.A(label, href=f"/capture/{cid}/call/{gid}/export/{fmt}", download=f"call-{gid}{suffix}",
                   className="button", id=f"export-{fmt}") for fmt, (suffix, _, label) in FORMATS.items()] + [
            html.A("WAV audio", href=f"/capture/{cid}/call/{gid}/audio.wav?download=1", download=f"call-{gid}.wav",
                   className="button", id="export-wav", title="both directions: caller left, callee right")
            if not ladder.media.is_empty() else None,
            dcc.Checklist(id="redact", options=[{"label": " redacted (pseudonyms for addresses, users, names)",
                                                 "value": "1"}], value=[], inline=True)],
            className="exports"),
        html.H2("Diagnostics"),
        thresholds_note(cid, overrides or {}),
        html.Div(problems_section(problems or [], fresh), id="call-diagnostics"),
        dcc.Interval(id="call-diagnostics-poll", interval=700, disabled=fresh),
        html.H2("Ladder"),
        html.P("Click a message label to see its raw SIP text below the ladder; drag up or down to zoom, "
               "double-click to reset. Long calls are shown in pages of "
               f"{LADDER_ROWS} rows; the downloads hold the whole ladder.", className="hint"),
        html.Div([
            dcc.RadioItems(id="ladder-spacing", options=[{"label": " evenly spaced", "value": "even"},
                                                          {"label": " time-proportional", "value": "time"}],
                           value="even", inline=True, className="state-filter"),
            html.Div([html.Button("‹ previous", id="ladder-prev", n_clicks=0, disabled=True, className="small"),
                      html.Span(shown, id="ladder-range", role="status"),
                      html.Button("next ›", id="ladder-next", n_clicks=0, disabled=n_pages <= 1,
                                  className="small")], className="ladder-pager", hidden=n_pages <= 1),
            dcc.Store(id="ladder-page", data=0),
        ], className="filters ladder-tools"),
        html.Div([html.Div(header, id="ladder-head"),
                  dcc.Graph(id="ladder", figure=figure, config={"displaylogo": False, "scrollZoom": False})],
                 className="ladder", id="ladder-box"),
        _points_legend(ladder),
        html.Pre("", id="raw-message", className="raw", **{"data-call": gid}),
        html.H2("Path and legs"),
        _path(call),
        html.H2("Media"),
        _media(ladder.media.to_dicts()),
        # drawn by a callback once the page shows: on a big capture the series take most of the page's time
        html.Div(id="media-plots-box"), dcc.Store(id="media-request", data=gid),
        _audio(cid, gid, details),
        html.H2("Messages"),
        html.Div([dcc.Input(id="message-search", type="search", debounce=True, className="search",
                            placeholder="search the messages: any header or body text (e.g. User-Agent, a tag)"),
                  html.Span(f"{len(arrows)} messages", id="message-search-status", className="hint",
                            role="status")], className="filters"),
        dash_table.DataTable(id="messages-table", columns=MESSAGE_COLUMNS + (SEEN_COLUMNS if ladder.points else []),
                             data=[_row(a) for a in arrows],
                             page_action="native", page_size=MESSAGES_PAGE, sort_action="native", **TABLE_STYLE),
    ])


SEEN_COLUMNS = [{"name": "points", "id": "points"}, {"name": "seen at (capture#frame)", "id": "seen_at"}]


def _points_legend(ladder):
    """For a capture set: which capture each point number is (the ladder's hover and the message table's
    'seen at' say where each message was seen)."""
    if not ladder.points:
        return None
    return html.P(["Seen at (hover a message for its captures and frames): "] + [
        item for i, name in enumerate(ladder.points, 1)
        for item in ((", " if i > 1 else ""), html.B(str(i)), f" = {name}")], className="hint", id="ladder-points")


LADDER_ROWS = 200  # rows of the ladder drawn at once: a 2,000-message call opens quickly, paged
MESSAGES_PAGE = 200
HIGHLIGHT = "rgba(255, 196, 0, 0.28)"  # the selected arrow's band, readable under both themes' text


def ladder_view(ladder, theme: Theme, page: int, spacing: str):
    """(figure, column header, 'rows a-b of n', number of pages) of one page of the ladder. The column header
    is HTML above the figure (it stays in view while the page scrolls: style.css), so the figure's own header
    trace is left out and the x axis is fixed (zoom is vertical only) to keep the two aligned."""
    from flowviz.figures.ladder import ROW_PX, create_ladder

    n = len(ladder.rows())
    n_pages = max(1, -(-n // LADDER_ROWS))
    page = min(max(page or 0, 0), n_pages - 1)
    window = (page * LADDER_ROWS, min(n, (page + 1) * LADDER_ROWS))
    figure = create_ladder(ladder, theme=theme, window=window, spacing=spacing)
    figure.data = [t for t in figure.data if t.name != "columns"]
    bottom, top = figure.layout.yaxis.range  # the header's rows at the top are not needed
    figure.update_layout(height=figure.layout.height - (-0.8 - top) * ROW_PX, yaxis_range=[bottom, -0.8])
    figure.update_xaxes(fixedrange=True)
    if ladder.points:
        _point_marks(ladder, figure, theme)
    shown = f"rows {window[0] + 1:,}-{window[1]:,} of {n:,}" if n_pages > 1 else f"{n:,} rows"
    return figure, column_header(ladder, figure), shown, n_pages


def _point_marks(ladder, figure, theme: Theme) -> None:
    """A capture set's ladder: '@1,2' at the right end of each message's row (the points that saw it, numbered
    as in the legend under the ladder), hover for the captures and frames."""
    import plotly.graph_objects as go

    labels = next((t for t in figure.data if t.name == "labels"), None)
    if labels is None or labels.customdata is None:
        return
    arrows = {a["seq"]: a for a in ladder.arrows.select("seq", "points", "seen_at").to_dicts()}
    rows = [(arrows[seq], y + 0.28) for seq, y in zip(labels.customdata, labels.y) if arrows.get(seq, {}).get("points")]
    x = figure.layout.xaxis.range[1] - 0.05
    figure.add_trace(go.Scatter(
        x=[x] * len(rows), y=[y for _, y in rows], mode="text", name="points", showlegend=False,
        text=[f"@{a['points']}" for a, _ in rows], textposition="middle left",
        textfont={"size": 10, "color": theme.lifeline}, hovertext=[f"seen at {a['seen_at']}" for a, _ in rows],
        hoverinfo="text"))


def column_header(ladder, figure) -> html.Div:
    """The ladder's column names placed over their lifelines (the figure's x range and margins give where)."""
    layout = figure.layout
    x0, x1 = layout.xaxis.range
    left, right, width = layout.margin.l, layout.margin.r, layout.width

    def px(col: float) -> float:
        return left + (col - x0) / (x1 - x0) * (width - left - right)

    cells = [html.Div([html.B(c["name"]), html.Br(), html.Span(c["key"], className="hint")],
                      className="ladder-col", style={"left": f"{px(c['col']):.0f}px"}, title=c["role"] or "")
             for c in ladder.columns.to_dicts()]
    return html.Div(cells, className="ladder-head", style={"width": f"{width}px"})


def highlight(point: dict) -> list[dict]:
    """The band shape behind the clicked message's row (its label sits 0.28 above the arrow)."""
    row = float(point.get("y", 0)) + 0.28
    return [{"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": row - 0.55, "y1": row + 0.25,
             "fillcolor": HIGHLIGHT, "line": {"width": 0}, "layer": "below"}]


MEDIA_COLUMNS = [
    {"name": "stream", "id": "stream_id"}, {"name": "from", "id": "src"}, {"name": "to", "id": "dst"},
    {"name": "SSRC", "id": "ssrc"}, {"name": "codec", "id": "codec"}, {"name": "packets", "id": "packets", "type": "numeric"},
    {"name": "lost", "id": "lost", "type": "numeric"}, {"name": "loss %", "id": "lost_pct", "type": "numeric"},
    {"name": "jitter mean ms", "id": "mean_jitter_ms", "type": "numeric"},
    {"name": "jitter max ms", "id": "max_jitter_ms", "type": "numeric"}, {"name": "MOS", "id": "mos", "type": "numeric"},
]


def _media(streams: list[dict]):
    if not streams:
        return html.P("No RTP stream of this call in the capture.", className="hint", id="media-table")
    rows = [{c["id"]: (round(s[c["id"]], 2) if isinstance(s.get(c["id"]), float) else s.get(c["id"]))
             for c in MEDIA_COLUMNS} for s in streams]
    return dash_table.DataTable(id="media-table", columns=MEDIA_COLUMNS, data=rows, page_action="none", **TABLE_STYLE)


def _audio(cid: str, gid: str, details: dict):
    """Players (the call, both directions; each stream) over WAV files served by GET routes, and the box its
    waveform is drawn into by a callback once the page shows (decoding takes a moment)."""
    from flowviz.web.player import start_s

    media = details["ladder"].media.to_dicts()
    if not media:
        return None
    base = f"/capture/{cid}/call/{gid}"

    def player(src: str, t0, element_id: str, label):
        # data-t0: where the audio's sample 0 is on the waveform's axis, for the cursor (assets/audio.js)
        return html.Div([html.Audio(src=src, controls=True, preload="metadata", id=element_id,
                                    className="flowviz-audio", **{"data-t0": f"{t0 or 0:.6f}"}),
                         html.Span(label, className="hint")], className="player")

    players = [player(f"{base}/audio.wav", start_s(details), "call-audio",
                      " the call: caller left, callee right")]
    players += [player(f"{base}/stream/{m['stream_id']}/audio.wav", start_s(details, m["stream_id"]),
                       f"stream-audio-{m['stream_id']}", f" stream {m['stream_id']}: {m['src']} \u2192 {m['dst']}")
                for m in media]
    return html.Div([
        html.H2("Audio"),
        html.P("Decoded from the capture (docs/audio.md). The waveform shares the media plots' time axis; lost "
               "packets are red, late ones orange, DTMF a labelled line; the red cursor follows the player.",
               className="hint"),
        html.Div(players, className="players"),
        html.Div(id="waveform-box"),
    ], id="audio-section")


def waveform_box(details: dict, theme: Theme):
    from flowviz.errors import FlowvizError
    from flowviz.web.player import waveform_figure

    try:
        figure = waveform_figure(details, theme)
    except FlowvizError as exc:  # nothing decodable: say why where the waveform would be
        return html.P(f"No audio: {exc.message}", className="hint", id="waveform-none")
    return html.Div(dcc.Graph(id="waveform", figure=figure, config={"displaylogo": False}), className="ladder plots")


def media_plots(details: dict, theme: Theme):
    figure = media_figure(details, theme)
    if figure is None:
        return None
    return html.Div(dcc.Graph(id="media-plots", figure=figure, config={"displaylogo": False}), className="ladder plots")


def media_figure(details: dict, theme: Theme):
    """Jitter, delta and loss over time of the call's streams; None when the capture has no packet of them."""
    from flowviz.figures.media import create_media_plots
    from flowviz.web.media_series import media_series

    series = media_series(details)
    if series.is_empty():
        return None
    labels = {m["stream_id"]: f"{m['src']} → {m['dst']}" for m in details["ladder"].media.to_dicts()}
    return create_media_plots(series, labels, theme=theme)


def raw_message(details: dict, seq: int) -> list:
    """Where and when the message was captured (frame, time, source -> destination), then its text, its SDP
    body (after the blank line) in its own highlighted span."""
    for a in details["ladder"].arrows.iter_rows(named=True):
        if a["seq"] == seq:
            where = html.Span(f"frame {a['frame']}  ·  {a['t_ms'] / 1e3:.3f} s (+{a['delta_ms']:.1f} ms)  ·  "
                              f"{a['src']} -> {a['dst']}\n\n", className="raw-head", id="raw-head")
            text = (a["raw"] or a["summary"] or "").replace("\r\n", "\n")
            head, blank, body = text.partition("\n\n")
            if a["sdp"] and body:
                return [where, html.Span(head + blank), html.Span(body, className="sdp", title="SDP body")]
            return [where, html.Span(text)]
    return []


def thresholds_note(cid: str, overrides: dict):
    """Says when the findings below use thresholds other than the defaults, and where to change them."""
    if not overrides:
        return None
    return html.P(["Thresholds changed in this browser session: ", describe(overrides), ". ",
                   dcc.Link("Change them on the capture page.", href=f"/capture/{cid}")],
                  id="thresholds-note", className="changed")


def problems_section(problems: list[dict], fresh: bool, error: str | None = None):
    if error:
        return html.P(f"The diagnostics rules could not run again: {error}", className="error", id="problems")
    if not fresh:
        return html.P("Running the diagnostics rules again with the new thresholds...", className="hint",
                      id="problems-pending")
    return _problems(problems)


def _problems(problems: list[dict]) -> html.Div:
    """Each finding: severity, title, explanation, the frames that show it and what to check."""
    if not problems:
        return html.P("No problems found by the diagnostics rules (docs/diagnostics.md).", className="hint",
                      id="problems")
    items = [html.Li([html.Span(p["severity"], className=f"severity {p['severity']}"), " ",
                      html.B(p["title"]), ": ", p["explanation"],
                      html.Div(f"frames {', '.join(map(str, (p.get('evidence') or {}).get('frames') or []))}"
                               + (f" — {p['hint']}" if p.get("hint") else ""), className="hint")])
             for p in problems]
    return html.Ul(items, id="problems", className="problems")


def _path(call: dict) -> html.Div:
    """Hosts in path order with role, name and the delay of the hop to the next one; the call's legs."""
    hosts, delays = call["hosts"], call.get("hop_delays_ms") or []
    roles, names = call.get("host_roles") or [], call.get("host_names") or []
    rows = [html.Tr([html.Td(h), html.Td(roles[i] if i < len(roles) else ""),
                     html.Td(names[i] if i < len(names) and names[i] else ""),
                     html.Td("" if i >= len(delays) or delays[i] is None else f"{delays[i]:.3f} ms")])
            for i, h in enumerate(hosts)]
    legs = [html.Tr([html.Td(leg["call_id"]), html.Td(leg.get("link_kind") or ""), html.Td(leg.get("evidence") or "")])
            for leg in call.get("legs") or []]
    return html.Div([
        html.Table([html.Thead(html.Tr([html.Th(h) for h in ("host", "role", "name", "hop delay to next host")])),
                    html.Tbody(rows)], className="list", id="path-table"),
        html.Table([html.Thead(html.Tr([html.Th(h) for h in ("leg Call-ID", "joined as", "evidence")])),
                    html.Tbody(legs)], className="list", id="legs-table"),
    ])


def message_rows(arrows, needle: str) -> list[dict]:
    """The message table's rows whose raw text (start line, headers, body) or label holds `needle`, case
    ignored; every row without one."""
    needle = (needle or "").strip().lower()
    return [_row(a) for a in arrows.iter_rows(named=True)
            if not needle or needle in (a["raw"] or "").lower() or needle in (a["label"] or "").lower()]


def _row(a: dict) -> dict:
    return {"seq": a["seq"], "frame": a["frame"], "t_s": round(a["t_ms"] / 1e3, 3), "delta_ms": round(a["delta_ms"], 1), "src": a["src"],
            "dst": a["dst"], "label": a["label"] + (" (retransmission)" if a["is_retransmission"] else ""),
            "cseq": a["cseq"], "sdp": a["sdp"] or "", "call_id": a["call_id"], "points": a.get("points") or "",
            "seen_at": a.get("seen_at") or ""}


def _ms(value) -> str:
    return "-" if value is None else f"{value:.1f} ms"

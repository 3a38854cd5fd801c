"""Pages: the layouts of the captures page, a capture's call list and a call, built from stored results."""

from __future__ import annotations

import json

from dash import dash_table, dcc, html

from flowviz.analysis.diagnose import THRESHOLD_NOTES
from flowviz.web.notices import capture_notices, for_browser
from flowviz.web.paging import PAGE_SIZE, page_of, sort_rows
from flowviz.web.store import human_bytes
from flowviz.web.thresholds import DEFAULTS, describe, number

KPI_SHOWN = ("SRD", "SDT", "SER", "SEER", "SCR", "ISA")
TABLE_STYLE = {
    "style_table": {"overflowX": "auto"},
    # colours are style.css variables, so the tables follow the light / dark theme
    "style_cell": {"fontFamily": "inherit", "fontSize": "13px", "padding": "4px 8px", "textAlign": "left",
                   "maxWidth": "260px", "overflow": "hidden", "textOverflow": "ellipsis",
                   "backgroundColor": "var(--surface)", "color": "var(--text)", "border": "1px solid var(--line)"},
    "style_header": {"fontWeight": "600", "backgroundColor": "var(--head)"},
    "style_data_conditional": [{"if": {"row_index": "odd"}, "backgroundColor": "var(--surface-alt)"}],
    "css": [{"selector": ".dash-cell-value p", "rule": "margin: 0"},
            {"selector": ".dash-cell-value a", "rule": "color: var(--link)"}],
}


def home(max_bytes: int, samples: list[str]) -> html.Div:
    return html.Div([
        html.H1("Captures"),
        html.Div(id="drop-zone", className="drop-zone", **{"data-max-bytes": str(max_bytes)}, children=[
            html.Span("Drop pcap / pcapng (.gz) files here, or "),
            html.Button("choose files", id="choose-files", className="primary", n_clicks=0),
            html.Div(f"Up to {human_bytes(max_bytes)} per file; files stay on this server, visible to this "
                     "browser session only.", className="hint"),
            html.Label(["Extra SIP ports ",
                        dcc.Input(id="sip-ports", type="text", placeholder="e.g. 5080, 5070", size="16",
                                  className="ports", inputMode="numeric"),
                        html.Span(" read as SIP besides 5060 and 5061, for the files uploaded next", className="hint")],
                       className="ports-label"),
            # read by assets/upload.js: sent with each capture uploaded next, kept beside it for its analyses
            html.Div(["TLS key log ",
                      html.Button("choose key log", id="choose-keylog", n_clicks=0),
                      html.Span("", id="keylog-name", className="keylog-name"),
                      html.Span(" optional: the NSS key log (SSLKEYLOGFILE) that decrypts SIP over TLS in the files "
                                "uploaded next", className="hint")],
                     className="ports-label"),
            # read by assets/upload.js: the files chosen together go in one request, stored as one capture set
            dcc.Checklist(id="as-set", options=[{
                "label": " these captures are the same calls seen at several points: analyse them as one set "
                         "(clock offsets corrected, copies dropped)", "value": "1"}], value=[], className="as-set"),
        ]),
        html.Div(id="upload-status", className="upload-status", role="status", **{"aria-live": "polite"}),
        html.Div([html.Span("Bundled samples: ", className="hint")] + [
            html.Button(name, id={"type": "sample", "name": name}, className="sample", n_clicks=0) for name in samples
        ], className="samples"),
        html.Div(id="sample-status", className="hint"),
        dcc.Interval(id="captures-poll", interval=700),
        html.Button(id="refresh-captures", n_clicks=0, hidden=True, tabIndex="-1"),  # clicked after an upload
        dcc.Store(id="captures-signature"),
        html.Div(id="captures-list", className="captures"),
    ])


def captures_list(captures: list[dict]) -> html.Div:
    if not captures:
        return html.P("No captures yet: upload one or pick a sample.", className="hint")
    header = html.Tr([html.Th(h) for h in ("capture", "size", "status", "calls", "")])
    rows = []
    for c in captures:
        cid, state = c["id"], c.get("state")
        name = dcc.Link(c.get("name"), href=f"/capture/{cid}") if state == "done" else html.Span(c.get("name"))
        if state in ("error", "cancelled"):
            status = html.Span(for_browser(c.get("error") or ""), className="error")
        elif state == "done" and c.get("notices"):  # analysed, but the results need a word of warning
            status = html.Span(["analysed: ", html.Span("; ".join(c["notices"]), className="warning-text")],
                               className="notices", title="open the capture for what this means and what to try")
        elif state == "done":
            status = html.Span("analysed", className="ok")
        else:
            fraction = float(c.get("fraction") or 0)
            status = html.Div([html.Progress(value=str(fraction), max="1"),
                               html.Span(f" {c.get('stage')} {fraction * 100:.0f}%")], className="progress")
        rows.append(html.Tr([
            html.Td(name, className="capture-name"), html.Td(human_bytes(c.get("size") or 0)), html.Td(status),
            html.Td(str(c["calls"]) if c.get("calls") is not None else "-"),
            html.Td([html.Button("cancel", id={"type": "cancel", "id": cid}, className="small", n_clicks=0)
                     if state in ("queued", "running") else None,
                     html.Button("run again", id={"type": "retry", "id": cid}, className="small", n_clicks=0)
                     if state in ("error", "cancelled") else None,
                     html.Button("delete", id={"type": "delete", "id": cid}, className="small", n_clicks=0)]),
        ], **{"data-capture": cid, "data-state": state or ""}))
    return html.Table([html.Thead(header), html.Tbody(rows)], className="list")


def capture_page(cid: str, overrides: dict, fresh: bool) -> html.Div:
    """The capture's page; the thresholds panel sits outside capture-body, which polling re-renders, so
    what is being typed into it stays."""
    return html.Div([
        dcc.Link("< all captures", href="/", className="back"),
        thresholds_panel(overrides),
        html.Div(id="diagnostics-note", className="hint", role="status"),
        dcc.Interval(id="capture-poll", interval=700),
        html.Div(id="capture-body", **{"data-capture": cid}),
        # the findings shown are checked against the session's thresholds until they match (then the
        # call list is refreshed through diagnostics-version)
        dcc.Interval(id="diagnostics-poll", interval=700, disabled=fresh),
        dcc.Store(id="diagnostics-version", data=diagnostics_version(overrides) if fresh else None),
    ])


def diagnostics_version(overrides: dict) -> str:
    return json.dumps(overrides, sort_keys=True)


def thresholds_badge(overrides: dict) -> str:
    if not overrides:
        return "defaults"
    return f"{len(overrides)} changed: {describe(overrides)}"


def thresholds_panel(overrides: dict) -> html.Details:
    """Every diagnostics threshold with its unit, default and meaning, editable for this browser session."""
    rows = []
    for name, default in DEFAULTS.items():
        note = THRESHOLD_NOTES[name]
        value = overrides.get(name, default)
        rows.append(html.Tr([
            # the label holds the field: the name labels it (pattern-matching ids are not usable as `for`)
            html.Td(html.Label([html.Code(name), " ",
                                dcc.Input(id={"type": "threshold", "name": name}, name=name, type="text",
                                          inputMode="decimal", value=number(value), size="8", className="threshold")])),
            html.Td(note.unit), html.Td(number(default)),
            html.Td([note.meaning, html.Span(f" ({note.rules})", className="hint")]),
        ]))
    return html.Details([
        html.Summary(["Diagnostics thresholds: ", html.Span(thresholds_badge(overrides), id="thresholds-badge",
                                                             className="changed" if overrides else "hint")]),
        html.P("Limits of the diagnostics rules (docs/diagnostics.md) for this browser session only. Apply runs "
               "the rules again on this session's captures; the captures are not decoded again.", className="hint"),
        html.Table([html.Thead(html.Tr([html.Th(h) for h in ("threshold", "unit", "default", "a finding when")])),
                    html.Tbody(rows)], className="list thresholds"),
        html.Div([html.Button("Apply", id="thresholds-apply", className="primary", n_clicks=0),
                  html.Button("Reset to defaults", id="thresholds-reset", n_clicks=0),
                  html.Span(id="thresholds-status", role="status", **{"aria-live": "polite"})],
                 className="threshold-buttons"),
    ], id="thresholds-panel", className="thresholds-panel")


def capture_body(cid: str, meta: dict, result: dict | None) -> list:
    title = html.H1(meta.get("name", "capture"))
    if meta.get("state") in ("error", "cancelled"):
        return [title, html.P(for_browser(meta.get("error") or ""), className="error"),
                html.Div([html.Button("run again", id="run-again", className="small", n_clicks=0),
                          html.Span(" analyse this capture again (after a server problem, or a cancel)",
                                    className="hint"),
                          html.Div(id="run-again-status", role="status")], className="run-again"),
                points_section(cid, None, meta.get("state"))]
    if result is None:
        fraction = float(meta.get("fraction") or 0)
        return [title, html.Div([html.Progress(value=str(fraction), max="1"),
                                 html.Span(f" {meta.get('stage')} {fraction * 100:.0f}%")], className="progress")]
    calls = result["calls"]
    states: dict[str, int] = {}
    for c in calls:
        states[c["state"]] = states.get(c["state"], 0) + 1
    options = [{"label": f"all ({len(calls)})", "value": ""}] + [
        {"label": f"{s} ({n})", "value": s} for s, n in sorted(states.items(), key=lambda kv: -kv[1])]
    methods = _counts(c.get("method") or "" for c in calls)
    codes = _counts(str(c["final_status"]) if c.get("final_status") else "none" for c in calls)
    info = result.get("info") or {}
    return [
        title,
        notices_box(capture_notices(result), meta.get("sip_ports") or []),
        html.Div([_card("calls", f"{len(calls):,}"), _card("SIP messages", f"{info.get('sip_messages') or 0:,}"),
                  _card("RTP streams", f"{info.get('rtp_streams') or 0:,}")]
                 + [_kpi_card(k) for k in result["kpis"] if k["kpi"] in KPI_SHOWN], className="kpis"),
        points_section(cid, info.get("capture_set"), meta.get("state")),
        _streams_link(cid, result),
        html.Div([
            dcc.RadioItems(id="state-filter", options=options, value="", inline=True, className="state-filter"),
            html.Label(["method ", dcc.Dropdown(
                id="method-filter", options=[{"label": "any", "value": ""}] + [
                    {"label": f"{m or '(none)'} ({n})", "value": m or "none"} for m, n in methods],
                value="", clearable=False, searchable=False, className="small-dropdown")], className="number"),
            html.Label(["final response ", dcc.Dropdown(
                id="code-filter", options=[{"label": "any", "value": ""}] + [
                    {"label": f"{c} ({n})", "value": c} for c, n in codes],
                value="", clearable=False, searchable=False, className="small-dropdown")], className="number"),
            dcc.Input(id="call-search", type="search", placeholder="search Call-ID, user, URI, host",
                      debounce=True, className="search"),
        ], className="filters"),
        dash_table.DataTable(
            id="calls-table", columns=CALL_COLUMNS, data=[], sort_action="custom", sort_mode="single", sort_by=[],
            page_action="custom", page_current=0, page_size=PAGE_SIZE, page_count=1,
            markdown_options={"link_target": "_self"}, **TABLE_STYLE),
    ]


CALL_COLUMNS = [
    {"name": "call", "id": "link", "presentation": "markdown"}, {"name": "start (UTC)", "id": "start"},
    {"name": "Call-ID", "id": "call_id"}, {"name": "method", "id": "method"},
    {"name": "from", "id": "from"}, {"name": "to", "id": "to"}, {"name": "state", "id": "state"},
    {"name": "code", "id": "final_status", "type": "numeric"}, {"name": "SRD ms", "id": "srd_ms", "type": "numeric"},
    {"name": "setup ms", "id": "setup_ms", "type": "numeric"},
    {"name": "duration s", "id": "duration_s", "type": "numeric"}, {"name": "msgs", "id": "messages", "type": "numeric"},
    {"name": "hosts", "id": "n_hosts", "type": "numeric"}, {"name": "legs", "id": "legs_n", "type": "numeric"},
    {"name": "MOS (worst stream)", "id": "mos", "type": "numeric"}, {"name": "problems", "id": "problems"},
]
SEVERITY_ORDER = ("error", "warning", "info")
PROBLEMS_PENDING = "(re-checking)"


def problems_text(problems: list[dict]) -> str:
    """'warning: Call rejected (+1)': the worst finding first, then how many more; '' without findings."""
    if not problems:
        return ""
    worst = min(problems, key=lambda p: SEVERITY_ORDER.index(p["severity"]) if p["severity"] in SEVERITY_ORDER else 9)
    more = f" (+{len(problems) - 1})" if len(problems) > 1 else ""
    return f"{worst['severity']}: {worst['title']}{more}"


def call_page_rows(cid: str, calls: list[dict], state: str, search: str, sort_by: list[dict] | None,
                   page: int, problems_fresh: bool = True, method: str = "", code: str = "") -> tuple[list[dict], int]:
    """Server-side filter, sort and paging: (the page's rows, number of pages); 10,000 calls stay quick.
    Without `problems_fresh` (thresholds changed, rules not run again yet) no finding is shown."""
    rows = sort_rows(call_rows(cid, calls, state, search, problems_fresh, method, code), sort_by,
                     {"link": "call_id_sort", "start": "start_sort"})
    shown, pages, _ = page_of(rows, page)
    return shown, pages


def call_rows(cid: str, calls: list[dict], state: str, search: str, problems_fresh: bool = True,
              method: str = "", code: str = "") -> list[dict]:
    """`method`: the call's first request ('none' for calls without one); `code`: the final response code
    ('none' for calls without a final response)."""
    needle = (search or "").strip().lower()
    rows = []
    for c in calls:
        if state and c["state"] != state:
            continue
        if method and (c.get("method") or "none") != method:
            continue
        if code and (str(c["final_status"]) if c.get("final_status") else "none") != code:
            continue
        if needle and not any(needle in str(v).lower() for v in [*c["call_ids"], c["from_user"], c["to_user"],
                                                                  c["from_uri"], c["to_uri"], *c["hosts"]] if v):
            continue
        gid = c["call_group_id"]
        rows.append({
            "link": f"[{gid}](/capture/{cid}/call/{gid})", "start": _date_time(c.get("start_ts")),
            "start_sort": c.get("start_ts") or "", "method": c.get("method") or "",
            "call_id": c["call_ids"][0] + (f" (+{len(c['call_ids']) - 1})" if len(c["call_ids"]) > 1 else "")
            if c["call_ids"] else "",
            "from": c["from_user"] or c["from_uri"], "to": c["to_user"] or c["to_uri"], "state": c["state"],
            "final_status": c["final_status"], "srd_ms": _round(c["srd_ms"], 1), "setup_ms": _round(c["setup_ms"], 1),
            "duration_s": _round(c["duration_s"], 2), "messages": c["messages"], "n_hosts": len(c["hosts"]),
            "legs_n": len(c["call_ids"]), "mos": c.get("mos_worst"), "call_id_sort": gid,
            "problems": problems_text(c.get("problems") or []) if problems_fresh else PROBLEMS_PENDING,
        })
    return rows


def notices_box(notices: list[dict], ports: list[int]):
    """The capture's warnings in browser words, each with what it means and what to try."""
    if not notices:
        return None
    items = [html.Li([html.B(n["title"]), ": ", n["text"],
                      html.Div(n["advice"], className="hint") if n["advice"] else None],
                     className=f"notice {n['kind']}", **{"data-kind": n["kind"]}) for n in notices]
    used = f"Analysed with SIP on ports 5060, 5061 and {', '.join(map(str, ports))}." if ports else None
    return html.Div([html.Ul(items), html.P(used, className="hint") if used else None],
                    id="capture-notices", className="notices-box", role="note")


def points_section(cid: str, capture_set: dict | None, state: str | None) -> html.Div:
    """A capture set's points (clock offset against the first, how it was found, copies dropped) and the
    button that uploads one more point of the same calls (assets/upload.js; the set is analysed again)."""
    parts = []
    if capture_set:
        rows = [html.Tr([html.Td(str(i)), html.Td(p["capture"], className="point-name"), html.Td(f"{p['packets']:,}"),
                         html.Td(_offset(p), className="point-offset"), html.Td(p.get("method") or ""),
                         html.Td(p.get("evidence") or "", className="hint"),
                         html.Td(f"{p.get('duplicates_dropped') or 0:,}")], **{"data-point": p["capture"]})
                for i, p in enumerate(capture_set["points"], 1)]
        parts += [html.H2("Capture points"),
                  html.P(f"{len(rows)} captures of the same calls read as one timeline: clocks corrected against "
                         f"{capture_set['reference']}, {capture_set.get('duplicates_dropped') or 0:,} copies dropped, "
                         f"{capture_set.get('lost_between_points') or 0:,} packets lost between points "
                         "(docs/capture-sets.md).", className="hint"),
                  html.Table([html.Thead(html.Tr([html.Th(h) for h in (
                      "#", "capture", "packets", "clock offset", "found by", "evidence", "copies dropped")])),
                      html.Tbody(rows)], className="list", id="points-table")]
    if state not in ("queued", "running"):
        parts.append(html.Div([
            html.Button("add a capture point", id="add-point", className="small", n_clicks=0,
                        **{"data-capture": cid}),
            html.Span(" upload another capture of the same calls, taken at another point: the set is analysed "
                      "again as one timeline", className="hint"),
            html.Div(id="add-point-status", role="status", **{"aria-live": "polite"})], className="add-point"))
    return html.Div(parts, id="capture-points")


def _offset(point: dict) -> str:
    """'+250.0 ms ± 0.1 ms' (its clock ahead of the first capture's); 'not corrected' without evidence."""
    if point.get("method") == "none":
        return "not corrected"
    text = f"{point['offset_s'] * 1e3:+.1f} ms"
    if point.get("uncertainty_s"):
        text += f" \u00b1 {point['uncertainty_s'] * 1e3:.1f} ms"
    return text


def _streams_link(cid: str, result: dict):
    """To the capture's stream list (which calls have bad audio), when the capture has RTP."""
    streams = result.get("streams")
    if not streams:
        return None
    return html.P(dcc.Link(f"Media of all {len(streams):,} RTP streams: loss, jitter, MOS, worst first ›",
                           href=f"/capture/{cid}/streams", id="streams-link"), className="streams-link")


def _date_time(ts: str | None) -> str:
    """'2026-11-25T20:54:32.635870+00:00' -> '2026-11-25 20:54:32.635' (UTC, milliseconds)."""
    return (ts or "")[:23].replace("T", " ")


def _counts(values) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _round(value, digits: int):
    return None if value is None else round(value, digits)


def _card(label: str, value: str, title: str | None = None) -> html.Div:
    return html.Div([html.Div(value, className="kpi-value"), html.Div(label, className="kpi-label")],
                    className="kpi", title=title)


def _kpi_card(k: dict) -> html.Div:
    if k["value"] is None:
        value = "-"
    elif k["kind"] == "ratio":
        value = f"{k['value']:.1f} %"
    else:
        value = f"{k['value']:.1f} {k['unit']}"
    return _card(k["kpi"], value, title=f"{k['description']} (n={k['count']})")

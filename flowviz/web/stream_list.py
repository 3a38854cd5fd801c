"""Stream list: every RTP stream of a capture on one page, to find the calls with bad audio.

The rows come from result.json's `streams` (flowviz.web.analysis.stream_rows, computed once when the
capture is analysed); filtering, sorting and paging run on the server like the call list's.
"""

from __future__ import annotations

from dataclasses import dataclass

from dash import dash_table, dcc, html

from flowviz.errors import FlowvizError
from flowviz.web.pages import TABLE_STYLE
from flowviz.web.paging import PAGE_SIZE, page_of, sort_rows
from flowviz.web.thresholds import NUMBER_RE

STREAM_COLUMNS = [
    {"name": "stream", "id": "stream_id"}, {"name": "call", "id": "call", "presentation": "markdown"},
    {"name": "src \u2192 dst", "id": "flow"}, {"name": "SSRC", "id": "ssrc"}, {"name": "codec", "id": "codec"},
    {"name": "packets", "id": "packets", "type": "numeric"}, {"name": "lost", "id": "lost", "type": "numeric"},
    {"name": "lost %", "id": "lost_pct", "type": "numeric"},
    {"name": "max jitter ms", "id": "max_jitter_ms", "type": "numeric"},
    {"name": "max delta ms", "id": "max_delta_ms", "type": "numeric"}, {"name": "MOS", "id": "mos", "type": "numeric"},
    {"name": "SDP match", "id": "sdp_match"},
]
# the worst audio first: what the page is for
DEFAULT_SORT = [{"column_id": "mos", "direction": "asc"}]
UNBOUND = "unbound"


class FilterError(FlowvizError):
    """A filter field that is not a usable number; the message names the field, on one line."""


@dataclass(frozen=True)
class StreamFilter:
    mos_below: float | None = None  # streams whose MOS is below this (streams without a MOS are left out)
    loss_above: float | None = None  # streams whose loss % is above this
    unbound_only: bool = False  # streams no call's SDP announced
    search: str = ""  # in the stream id, Call-IDs, addresses, SSRC and codec

    def active(self) -> bool:
        return self != StreamFilter()


def parse_filter(mos_below: str | None, loss_above: str | None, unbound_only: bool, search: str | None) -> StreamFilter:
    """The page's filter fields -> a StreamFilter; FilterError names each bad field on one line."""
    values, problems = {}, []
    fields = (("mos_below", "MOS below", mos_below, 5), ("loss_above", "loss % above", loss_above, 100))
    for key, label, raw, most in fields:
        text = (raw or "").strip()
        if not text:
            continue
        if not NUMBER_RE.match(text) or len(text) > 15:
            problems.append(f"{label}: {_quoted(text)} is not a number (write it like 3.6)")
        elif float(text) < 0 or float(text) > most:
            problems.append(f"{label}: must be between 0 and {most} (got {text})")
        else:
            values[key] = float(text)
    if problems:
        raise FilterError("Filter not applied: " + "; ".join(problems))
    return StreamFilter(**values, unbound_only=bool(unbound_only), search=(search or "").strip())


def _quoted(text: str) -> str:
    return repr(text if len(text) <= 20 else text[:20] + "...")


def ssrc_hex(ssrc: int | None) -> str:
    """439041101 -> '0x1A2B3C4D', as Wireshark writes an SSRC."""
    return "" if ssrc is None else f"0x{ssrc:08X}"


def filtered_rows(cid: str, streams: list[dict], calls: list[dict], wanted: StreamFilter) -> list[dict]:
    """The table rows of the streams that pass the filter, in capture order."""
    call_ids = {c["call_group_id"]: c["call_ids"] for c in calls}
    needle = wanted.search.lower()
    rows = []
    for s in streams:
        gid = s.get("call_group_id")
        if wanted.unbound_only and gid is not None:
            continue
        if wanted.mos_below is not None and (s["mos"] is None or s["mos"] >= wanted.mos_below):
            continue
        if wanted.loss_above is not None and (s["lost_pct"] is None or s["lost_pct"] <= wanted.loss_above):
            continue
        flow = f"{_address(s['src_ip'], s['src_port'])} \u2192 {_address(s['dst_ip'], s['dst_port'])}"
        ssrc = ssrc_hex(s["ssrc"])
        if needle and not any(needle in str(v).lower() for v in [s["stream_id"], flow, ssrc, s["codec"],
                                                                  *call_ids.get(gid, [])] if v):
            continue
        rows.append({
            "stream_id": s["stream_id"], "call": f"[{gid}]({call_href(cid, gid)})" if gid else UNBOUND,
            "call_sort": gid, "call_href": call_href(cid, gid) if gid else None, "flow": flow, "ssrc": ssrc,
            "codec": s["codec"], "packets": s["packets"], "lost": s["lost"], "lost_pct": _round(s["lost_pct"], 2),
            "max_jitter_ms": _round(s["max_jitter_ms"], 2), "max_delta_ms": _round(s["max_delta_ms"], 2),
            "mos": s["mos"], "sdp_match": {True: "yes", False: "no"}.get(s["sdp_match"], ""),
        })
    return rows


def stream_page_rows(rows: list[dict], sort_by: list[dict] | None, page: int | None) -> tuple[list[dict], int, int]:
    """(the page's rows, number of pages, the page shown) of the filtered rows, sorted as the table asks."""
    return page_of(sort_rows(rows, sort_by, {"call": "call_sort"}), page)


def call_href(cid: str, gid: str) -> str:
    return f"/capture/{cid}/call/{gid}"


def _address(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _round(value, digits: int):
    return None if value is None else round(value, digits)


def streams_layout(cid: str, name: str, result: dict) -> html.Div:
    """The page: filters, the overview figure of the filtered streams, then their table (filled by callbacks)."""
    back = dcc.Link(f"< {name}", href=f"/capture/{cid}", className="back")
    title = html.H1(["RTP streams", html.Span(name, className="subtitle")])
    if "streams" not in result:  # analysed by an older flowviz: the stream rows were not kept
        return html.Div([back, title, html.P("This capture was analysed before the stream list existed: delete it "
                                             "and add it again to see its streams.", className="hint")])
    return html.Div([
        back, title,
        html.P("Every RTP stream of the capture, the worst MOS first. Click a point of the figure or a call in the "
               "table to open the call.", className="hint"),
        html.Div([
            html.Label(["MOS below ", dcc.Input(id="stream-mos-below", type="text", inputMode="decimal", size="5",
                                                debounce=True, placeholder="e.g. 4")], className="number"),
            html.Label(["loss % above ", dcc.Input(id="stream-loss-above", type="text", inputMode="decimal", size="5",
                                                   debounce=True, placeholder="e.g. 1")], className="number"),
            dcc.Checklist(id="stream-unbound", options=[{"label": " unbound only", "value": "1"}], value=[],
                          inline=True),
            dcc.Input(id="stream-search", type="search", placeholder="search stream, Call-ID, address, SSRC, codec",
                      debounce=True, className="search"),
        ], className="filters"),
        html.Div(id="streams-status", role="status", **{"aria-live": "polite"}),
        html.Div(dcc.Graph(id="streams-figure", config={"displaylogo": False}), className="ladder plots"),
        dash_table.DataTable(
            id="streams-table", columns=STREAM_COLUMNS, data=[], sort_action="custom", sort_mode="single",
            sort_by=DEFAULT_SORT, page_action="custom", page_current=0, page_size=PAGE_SIZE, page_count=1,
            markdown_options={"link_target": "_self"}, **TABLE_STYLE,
            style_cell_conditional=[{"if": {"column_id": "flow"}, "maxWidth": "400px"}]),  # two IPv4 addresses
    ])


def status_text(shown: int, total: int, wanted: StreamFilter) -> str:
    if not total:
        return "No RTP stream in this capture."
    noun = "stream" if total == 1 else "streams"
    return f"{shown:,} of {total:,} {noun}" if wanted.active() else f"{total:,} {noun}"

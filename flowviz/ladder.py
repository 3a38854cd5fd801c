"""Ladder model: one call group as columns (hosts in path order) and rows (SIP arrows, RTP bands).

Pure: built from the correlator's message frame, the call's summary and the streams report; no I/O.
Every export (figure, SVG, HTML, text, Mermaid, PlantUML) draws from this one model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from flowviz.media.codecs import STATIC, parse_rtpmap

CLASSES = ("request", "1xx", "2xx", "3xx", "4xx-6xx")
COLUMN_SCHEMA = {"col": pl.Int32, "key": pl.Utf8, "name": pl.Utf8, "role": pl.Utf8}
ARROW_SCHEMA = {
    "seq": pl.Int32, "msg_id": pl.UInt32, "frame": pl.UInt32, "ts_ns": pl.Int64, "t_ms": pl.Float64,
    "delta_ms": pl.Float64, "src_col": pl.Int32, "dst_col": pl.Int32, "src": pl.Utf8, "dst": pl.Utf8,
    "is_request": pl.Boolean, "label": pl.Utf8, "sdp": pl.Utf8, "klass": pl.Utf8, "is_retransmission": pl.Boolean,
    "text": pl.Utf8, "summary": pl.Utf8, "call_id": pl.Utf8, "cseq": pl.Utf8, "raw": pl.Utf8, "seen_at": pl.Utf8,
    "points": pl.Utf8,
}
MEDIA_SCHEMA = {
    "stream_id": pl.Utf8, "ts_ns": pl.Int64, "t_ms": pl.Float64, "end_ms": pl.Float64, "src_col": pl.Int32,
    "dst_col": pl.Int32, "src": pl.Utf8, "dst": pl.Utf8, "ssrc": pl.Utf8, "codec": pl.Utf8, "packets": pl.Int64,
    "lost": pl.Int64, "lost_pct": pl.Float64, "mean_jitter_ms": pl.Float64, "max_jitter_ms": pl.Float64,
    "mos": pl.Float64, "rtcp": pl.Utf8, "label": pl.Utf8, "text": pl.Utf8,
}
MARKER_SCHEMA = {
    "number": pl.Int32, "seq": pl.Int32, "rule": pl.Utf8, "severity": pl.Utf8, "title": pl.Utf8,
    "explanation": pl.Utf8, "frames": pl.List(pl.UInt32),
}
EVENT_SCHEMA = {
    "ts_ns": pl.Int64, "t_ms": pl.Float64, "src_col": pl.Int32, "dst_col": pl.Int32, "src": pl.Utf8, "dst": pl.Utf8,
    "digit": pl.Utf8, "source": pl.Utf8, "label": pl.Utf8, "text": pl.Utf8,
}


@dataclass(frozen=True)
class Ladder:
    """columns: col, key (ip:port, or ip with merged ports), name, role; arrows: one row per SIP message in
    time order; media: one band per RTP stream between its real endpoints (drawn once, not per packet);
    events: DTMF digits (RFC 4733 in the call's streams, SIP INFO in its dialogs); markers: diagnostics
    findings of the call, numbered from 1, on the arrow (seq) of their first SIP evidence frame, else
    with seq null (about the call as a whole or its media)."""

    call_group_id: str
    start_ns: int
    columns: pl.DataFrame
    arrows: pl.DataFrame
    media: pl.DataFrame
    events: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=EVENT_SCHEMA))
    markers: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=MARKER_SCHEMA))
    points: tuple[str, ...] = ()  # a capture set's captures (arrows' `points` number them from 1)

    def markers_of(self) -> dict[int, list[dict]]:
        """seq -> the markers on that arrow."""
        out: dict[int, list[dict]] = {}
        for m in self.markers.filter(pl.col("seq").is_not_null()).to_dicts():
            out.setdefault(m["seq"], []).append(m)
        return out

    def rows(self) -> list[dict]:
        """Arrows, media bands and DTMF events merged in time order, with kind 'sip', 'rtp' or 'dtmf'."""
        items = [{"kind": "sip", **a} for a in self.arrows.to_dicts()]
        items += [{"kind": "rtp", **m} for m in self.media.to_dicts()]
        items += [{"kind": "dtmf", **e} for e in self.events.to_dicts()]
        order = {"sip": 0, "rtp": 1, "dtmf": 2}
        return sorted(items, key=lambda r: (r["ts_ns"], order[r["kind"]]))


def endpoint_ip(endpoint: str) -> str:
    """'1.2.3.4:5060' -> '1.2.3.4'; '[2001:db8::1]:5060' -> '2001:db8::1'."""
    if endpoint.startswith("["):
        return endpoint[1:endpoint.index("]")]
    return endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint


def parse_aliases(text: str) -> dict[str, str]:
    """Alias file: one 'ip[:port] name' or 'ip[:port]=name' per line; '#' starts a comment."""
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, name = line.partition("=") if "=" in line else line.partition(" ")
        if key.strip() and name.strip():
            out[key.strip()] = name.strip()
    return out


def message_label(row: dict) -> str:
    """'INVITE' for a request, '180 Ringing' for a response."""
    if row["is_request"]:
        return row["method"] or "?"
    return f"{row['status_code']} {row['reason'] or ''}".strip()


def message_class(row: dict) -> str:
    if row["is_request"]:
        return "request"
    code = row["status_code"] or 0
    return "1xx" if code < 200 else "2xx" if code < 300 else "3xx" if code < 400 else "4xx-6xx"


def sdp_codec(sdp_media: list[dict] | None) -> str | None:
    """Codec of the first active m= line: first rtpmap ('PCMA/8000'), else the static name of its first PT."""
    for m in sdp_media or []:
        if m.get("port") == 0:
            continue
        for value in m.get("rtpmap") or []:
            parsed = parse_rtpmap(value)
            if parsed and parsed[0] == (m.get("payload_types") or [parsed[0]])[0]:
                return f"{parsed[1]}/{parsed[2]}" if parsed[2] else parsed[1]
        pts = m.get("payload_types") or []
        if pts:
            name = STATIC.get(pts[0])
            return f"{name[0]}/{name[1]}" if name else f"PT {pts[0]}"
    return None


def build_ladder(messages: pl.DataFrame, call: dict, streams: pl.DataFrame | None = None, *,
                 dtmf: pl.DataFrame | None = None, findings: list[dict] | None = None,
                 aliases: dict[str, str] | None = None, merge_ports: bool = False,
                 seen_at: dict[int, list[str]] | None = None, points: list[str] | None = None) -> Ladder:
    """The ladder of one call group.

    messages: the correlator's frame (Correlation.messages: src/dst 'ip:port', is_retransmission...);
    call: its summary (call_group_id, call_ids, hosts, host_roles, host_names); streams: the streams
    report (stream_id, call_group_id, src_ip...), only the call's streams are drawn; dtmf: DTMF events
    (flowviz.media.dtmf.DTMF_EVENTS), only those of the call's Call-IDs or streams are drawn; findings:
    diagnostics (flowviz.analysis.diagnose: call_group_id, rule, severity, title, explanation,
    evidence.frames), only the call's are kept; seen_at: for a capture set, frame -> where the message was
    seen ('<capture>#<frame>', flowviz.captureset.CaptureSet.seen_at), and points: the set's capture
    names, numbered from 1 in the arrows' `points` column ('1,2': seen at the first and second capture).
    """
    points = list(points or [])
    aliases = aliases or {}
    rows = (messages.filter(pl.col("call_id").is_in(call["call_ids"])).sort(["ts_ns", "msg_id"]).to_dicts())
    key = endpoint_ip if merge_ports else (lambda e: e)
    columns = _columns(call, rows, key, aliases)
    index = {c["key"]: c["col"] for c in columns}
    start = rows[0]["ts_ns"] if rows else 0
    arrows = []
    previous = start
    for seq, r in enumerate(rows):
        label, codec = message_label(r), sdp_codec(r["sdp_media"]) if r["has_sdp"] else None
        sdp = None if not r["has_sdp"] else f"SDP {codec}" if codec else "SDP"
        text = label + (f" ({sdp})" if sdp else "") + (" [retransmission]" if r["is_retransmission"] else "")
        seen = (seen_at or {}).get(r["frame"])
        numbers = ",".join(str(points.index(p) + 1) for p in dict.fromkeys(s.rsplit("#", 1)[0] for s in seen)
                           if p in points) if seen else None
        t_ms, delta_ms = (r["ts_ns"] - start) / 1e6, (r["ts_ns"] - previous) / 1e6
        previous = r["ts_ns"]
        cseq = f"{r['cseq_num']} {r['cseq_method']}"
        arrows.append({
            "seq": seq, "msg_id": r["msg_id"], "frame": r["frame"], "ts_ns": r["ts_ns"], "t_ms": t_ms,
            "delta_ms": delta_ms, "src_col": index[key(r["src"])], "dst_col": index[key(r["dst"])],
            "src": r["src"], "dst": r["dst"], "is_request": r["is_request"], "label": label, "sdp": sdp,
            "klass": message_class(r), "is_retransmission": r["is_retransmission"], "text": text,
            "summary": (f"{text}<br>{r['src']} -> {r['dst']} ({r['transport']})<br>CSeq {cseq}<br>"
                        f"frame {r['frame']}, t={t_ms / 1e3:.3f} s, +{delta_ms:.3f} ms"
                        + (f"<br>seen at {', '.join(seen)}" if seen else "")),
            "call_id": r["call_id"], "cseq": cseq, "raw": r["raw"], "seen_at": ", ".join(seen) if seen else None,
            "points": numbers,
        })
    media = _media(call["call_group_id"], streams, columns, start) if streams is not None else []
    events = _dtmf(dtmf, call["call_ids"], {m["stream_id"] for m in media}, columns, key, start)
    return Ladder(call["call_group_id"], start, pl.DataFrame(columns, schema=COLUMN_SCHEMA, orient="row"),
                  pl.DataFrame(arrows, schema=ARROW_SCHEMA, orient="row"),
                  pl.DataFrame(media, schema=MEDIA_SCHEMA, orient="row"),
                  pl.DataFrame(events, schema=EVENT_SCHEMA, orient="row"),
                  pl.DataFrame(_markers(findings, call["call_group_id"], arrows), schema=MARKER_SCHEMA, orient="row"),
                  tuple(points))


def _markers(findings: list[dict] | None, group: str, arrows: list[dict]) -> list[dict]:
    seq_of_frame: dict[int, int] = {}
    for a in arrows:
        seq_of_frame.setdefault(a["frame"], a["seq"])
    out = []
    for f in findings or []:
        if f.get("call_group_id") != group:
            continue
        frames = list((f.get("evidence") or {}).get("frames") or [])
        seq = next((seq_of_frame[fr] for fr in frames if fr in seq_of_frame), None)
        out.append({"number": len(out) + 1, "seq": seq, "rule": f["rule"], "severity": f["severity"],
                    "title": f["title"], "explanation": f.get("explanation"), "frames": frames})
    return out


def _dtmf(dtmf: pl.DataFrame | None, call_ids: list[str], stream_ids: set[str], columns: list[dict], key,
          start: int) -> list[dict]:
    if dtmf is None or dtmf.is_empty():
        return []
    mine = dtmf.filter(pl.col("call_id").is_in(call_ids) | pl.col("stream_id").is_in(list(stream_ids)))
    out = []
    for e in mine.sort("ts_ns").to_dicts():
        cols = [_column_of(ep, columns, key) for ep in (e["src"], e["dst"])]
        ms = f", {e['duration_ms']:.0f} ms" if e.get("duration_ms") is not None else ""
        label = f"DTMF {e['digit'] or '?'} ({e['source']}{ms})"
        out.append({"ts_ns": e["ts_ns"], "t_ms": (e["ts_ns"] - start) / 1e6, "src_col": cols[0], "dst_col": cols[1],
                    "src": e["src"], "dst": e["dst"], "digit": e["digit"], "source": e["source"], "label": label,
                    "text": f"{label} {e['src']} -> {e['dst']}, frame {e['frame']}"})
    return out


def _columns(call: dict, rows: list[dict], key, aliases: dict[str, str]) -> list[dict]:
    """Path hosts first (correlator order), then any other endpoint in order of first appearance."""
    found: dict[str, dict] = {}
    hosts = call.get("hosts") or []
    roles = call.get("host_roles") or [None] * len(hosts)
    names = call.get("host_names") or [None] * len(hosts)
    for host, role, name in zip(hosts, roles, names):
        found.setdefault(key(host), {"endpoint": host, "role": role or "host", "agent": name})
    for r in rows:
        for ep in (r["src"], r["dst"]):
            found.setdefault(key(ep), {"endpoint": ep, "role": "host", "agent": None})
    out = []
    for col, (k, info) in enumerate(found.items()):
        alias = aliases.get(k) or aliases.get(info["endpoint"]) or aliases.get(endpoint_ip(info["endpoint"]))
        base = (info["agent"] or "").split(" ")[0].split("/")[0] or info["role"]
        out.append({"col": col, "key": k, "name": alias, "role": info["role"], "_base": base})
    bases = [c["_base"] for c in out if c["name"] is None]
    seen: dict[str, int] = {}
    for c in out:
        base = c.pop("_base")
        if c["name"] is None:
            seen[base] = seen.get(base, 0) + 1
            c["name"] = f"{base}-{seen[base]}" if bases.count(base) > 1 else base
    return out


def _media(group: str, streams: pl.DataFrame, columns: list[dict], start: int) -> list[dict]:
    if streams.is_empty() or "call_group_id" not in streams.columns:
        return []
    out = []
    for s in streams.filter(pl.col("call_group_id") == group).sort("start_ts_ns").to_dicts():
        src, dst = _ep(s["src_ip"], s["src_port"]), _ep(s["dst_ip"], s["dst_port"])
        src_col, dst_col = _media_column(src, columns), _media_column(dst, columns)
        mos = f", MOS {s['mos']:.2f}" if s.get("mos") is not None else ""
        jitter = f"{s['mean_jitter_ms']:.2f}/{s['max_jitter_ms']:.2f} ms" if s.get("max_jitter_ms") is not None else "-"
        loss = "loss unmeasurable" if s["lost_pct"] is None else f"{s['lost_pct']:.1f}%"
        text = (f"RTP {s.get('codec') or '?'} {src} -> {dst}: {s['packets']} pkts, lost {s['lost']} "
                f"({loss}), jitter mean/max {jitter}{mos}")
        rtcp = None
        if s.get("rtcp_blocks"):
            parts = [f"{s['rtcp_blocks']} RTCP report blocks"]
            if s.get("rtcp_fraction_lost_pct") is not None:
                parts.append(f"fraction lost {s['rtcp_fraction_lost_pct']:.1f}% (last report)")
            if s.get("rtcp_max_jitter_ms") is not None:
                parts.append(f"max jitter {s['rtcp_max_jitter_ms']:.2f} ms")
            if s.get("rtt_ms") is not None:
                parts.append(f"RTT {s['rtt_ms']:.1f} ms")
            rtcp = ", ".join(parts)
            text += f"; RTCP: {rtcp}"
        out.append({
            "stream_id": s["stream_id"], "rtcp": rtcp, "ts_ns": s["start_ts_ns"], "t_ms": (s["start_ts_ns"] - start) / 1e6,
            "end_ms": (s["end_ts_ns"] - start) / 1e6, "src_col": src_col, "dst_col": dst_col, "src": src, "dst": dst,
            "ssrc": f"0x{s['ssrc']:08X}", "codec": s.get("codec"), "packets": s["packets"], "lost": s["lost"],
            "lost_pct": s["lost_pct"], "mean_jitter_ms": s.get("mean_jitter_ms"),
            "max_jitter_ms": s.get("max_jitter_ms"), "mos": s.get("mos"), "text": text,
            "label": (f"RTP {s.get('codec') or '?'}: {s['packets']} pkts, "
                      + ("loss unmeasurable" if s["lost_pct"] is None else f"loss {s['lost_pct']:.1f}%")
                      + (f", jitter {s['mean_jitter_ms']:.2f} ms" if s.get("mean_jitter_ms") is not None else "")
                      + mos),
        })
    return out


def _column_of(endpoint: str, columns: list[dict], key) -> int:
    """A SIP endpoint's own column (SIP INFO digits), else the media rule's column."""
    found = next((c["col"] for c in columns if c["key"] == key(endpoint)), None)
    return found if found is not None else _media_column(endpoint, columns)


def _media_column(endpoint: str, columns: list[dict]) -> int:
    """The column of the host with the media address's IP (the first in path order); else a new column."""
    ip = endpoint_ip(endpoint)
    for c in columns:
        if endpoint_ip(c["key"]) == ip or c["key"] == ip:
            return c["col"]
    n = sum(1 for c in columns if c["role"] == "media") + 1
    columns.append({"col": len(columns), "key": endpoint, "name": "media" if n == 1 else f"media-{n}", "role": "media"})
    return columns[-1]["col"]


def _ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"

"""DTMF: RFC 4733 telephone-event digits from RTP, and digits sent in SIP INFO bodies.

RFC 4733 2.3: the payload is event (8 bits), E (end) bit, R bit, volume (6 bits, -dBm0), duration
(16 bits, timestamp units since the event's RTP timestamp). All packets of one event carry the same
RTP timestamp (2.5.1.3), so an event is (stream, RTP timestamp); its duration is the largest
duration field over its clock rate. SIP INFO: `application/dtmf-relay` (`Signal=5`, `Duration=160`
ms) and `application/dtmf` (the digit as the body).
"""

from __future__ import annotations

import re

import polars as pl

from flowviz.media.streams import STREAM_KEY, stream_keys

EVENT_NAMES = "0123456789*#ABCD"  # event codes 0-15 (RFC 4733 3.2); 16 is flash
DEFAULT_EVENT_PT = 101  # Wireshark's rtpevent payload type preference when no SDP names one
DEFAULT_EVENT_CLOCK = 8000

DTMF_EVENTS = pl.Schema({
    "source": pl.Utf8, "stream_id": pl.Utf8, "call_id": pl.Utf8, "frame": pl.UInt32, "ts_ns": pl.Int64,
    "digit": pl.Utf8, "event": pl.Int64, "duration_ms": pl.Float64, "volume_dbm0": pl.Int64, "end_seen": pl.Boolean,
    "packets": pl.Int64, "src": pl.Utf8, "dst": pl.Utf8,
})


def event_name(code: int | None) -> str | None:
    if code is None:
        return None
    if 0 <= code < len(EVENT_NAMES):
        return EVENT_NAMES[code]
    return "flash" if code == 16 else f"event {code}"


def event_packets(rtp: pl.DataFrame, payload_map: pl.DataFrame | None = None) -> pl.DataFrame:
    """The RTP packets that carry telephone-event: the PT an SDP rtpmap names telephone-event for the
    stream's destination (or source), else PT 101 when no SDP maps it. Adds stream_id and clock_rate."""
    keys = stream_keys(rtp)
    events: dict[tuple[str, int], tuple[int, int]] = {}  # (ip, port) -> (pt, clock)
    named: set[tuple[str, int, int]] = set()
    if payload_map is not None:
        for ip, port, pt, enc, rate in payload_map.iter_rows():
            named.add((ip, port, pt))
            if enc and enc.lower().startswith("telephone-event"):
                events[(ip, port)] = (pt, rate or DEFAULT_EVENT_CLOCK)
    rows = []
    for si, sp, di, dp, ssrc, _, sid in keys.iter_rows():
        found = events.get((di, dp)) or events.get((si, sp))
        if found:
            rows.append((sid, found[0], found[1]))
        elif (di, dp, DEFAULT_EVENT_PT) not in named and (si, sp, DEFAULT_EVENT_PT) not in named:
            rows.append((sid, DEFAULT_EVENT_PT, DEFAULT_EVENT_CLOCK))
    te = pl.DataFrame(rows, orient="row", schema={"stream_id": pl.Utf8, "payload_type": pl.UInt8, "clock_rate": pl.Int64})
    return (rtp.join(keys.select([*STREAM_KEY, "stream_id"]), on=STREAM_KEY, how="left")
            .join(te, on=["stream_id", "payload_type"], how="inner"))


def rfc4733_events(packets: pl.DataFrame) -> pl.DataFrame:
    """One row per event from event_packets() plus `event_word` (the first 4 payload bytes, big-endian
    UInt32; null when unknown: then only the timing is reported)."""
    if packets.is_empty():
        return pl.DataFrame(schema=DTMF_EVENTS)
    word = pl.col("event_word").cast(pl.Int64)
    decoded = packets.sort("frame").with_columns(
        event=word // 2**24, end_bit=(word // 2**23) % 2 == 1, volume=(word // 2**16) % 64, duration=word % 2**16,
        src=pl.format("{}:{}", "src_ip", "src_port"), dst=pl.format("{}:{}", "dst_ip", "dst_port"))
    ev = decoded.group_by(["stream_id", "rtp_ts"], maintain_order=True).agg(
        frame=pl.col("frame").first(), ts_ns=pl.col("ts_ns").first(), event=pl.col("event").drop_nulls().first(),
        duration=pl.col("duration").max(), volume=pl.col("volume").drop_nulls().first(),
        end_seen=pl.col("end_bit").any(), packets=pl.len().cast(pl.Int64), clock_rate=pl.col("clock_rate").first(),
        src=pl.col("src").first(), dst=pl.col("dst").first(),
    )
    out = ev.with_columns(
        source=pl.lit("rfc4733"), call_id=pl.lit(None, pl.Utf8),
        digit=pl.col("event").map_elements(event_name, return_dtype=pl.Utf8),
        duration_ms=pl.col("duration") * 1000.0 / pl.col("clock_rate"),
        volume_dbm0=-pl.col("volume"),
    )
    return out.select(list(DTMF_EVENTS)).cast(DTMF_EVENTS)


_SIGNAL = re.compile(r"^\s*Signal\s*=\s*(\S+)", re.I | re.M)
_DURATION = re.compile(r"^\s*Duration\s*=\s*(\d+)", re.I | re.M)


def sip_info_digits(sip: pl.DataFrame) -> pl.DataFrame:
    """One row per SIP INFO request carrying a digit (retransmissions of the same CSeq counted once)."""
    if sip.is_empty():
        return pl.DataFrame(schema=DTMF_EVENTS)
    info = (sip.filter((pl.col("method") == "INFO") & pl.col("content_type").is_not_null())
            .unique(["call_id", "cseq_num"], keep="first", maintain_order=True))
    rows = []
    for r in info.iter_rows(named=True):
        ctype = r["content_type"].lower()
        body = (r["raw"] or "").split("\r\n\r\n", 1)[-1] if "\r\n\r\n" in (r["raw"] or "") else \
            (r["raw"] or "").split("\n\n", 1)[-1]
        digit, duration = None, None
        if "dtmf-relay" in ctype:
            m = _SIGNAL.search(body)
            digit = m[1] if m else None
            d = _DURATION.search(body)
            duration = float(d[1]) if d else None
        elif "application/dtmf" in ctype:
            digit = body.strip()[:1] or None
        if digit is None:
            continue
        rows.append({"source": "sip-info", "stream_id": None, "call_id": r["call_id"], "frame": r["frame"],
                     "ts_ns": r["ts_ns"], "digit": digit, "event": None, "duration_ms": duration, "volume_dbm0": None,
                     "end_seen": None, "packets": 1, "src": f"{r['src_ip']}:{r['src_port']}",
                     "dst": f"{r['dst_ip']}:{r['dst_port']}"})
    return pl.DataFrame(rows, schema=DTMF_EVENTS)

"""Binding: RTP streams -> call groups through the SDP of their calls (then by latching), sdp_match flag.

A stream belongs to the call group whose SDP announced its destination (c= address, m= port) —
that side asked to receive there — or, failing that, its source (symmetric RTP). When several SDPs
announced the same address and port (port reuse, re-INVITE), the latest one at or before the stream's
first packet wins. `sdp_match` is true when both ends are the addresses the group's SDP announced;
false when only one end is (latching: e.g. media from behind a NAT to the announced port), with the
addresses the group's SDP announced in `sdp_announced`; null for streams no SDP announced (found by the heuristic).
"""

from __future__ import annotations

import polars as pl

BINDING = pl.Schema({"stream_id": pl.Utf8, "call_group_id": pl.Utf8, "sdp_match": pl.Boolean,
                     "bound_by": pl.Utf8, "sdp_announced": pl.Utf8})


def sdp_endpoints(sip: pl.DataFrame, group_of_call_id: pl.DataFrame) -> pl.DataFrame:
    """(ip, port, call_group_id, ts_ns) for every audio/video m= line with a port, in capture order."""
    schema = {"ip": pl.Utf8, "port": pl.UInt16, "call_group_id": pl.Utf8, "ts_ns": pl.Int64}
    if sip.is_empty() or "sdp_media" not in sip.columns:
        return pl.DataFrame(schema=schema)
    media = (
        sip.filter(pl.col("has_sdp").fill_null(False))
        .select(["call_id", "ts_ns", "sdp_media"])
        .explode("sdp_media")
        .unnest("sdp_media")
        .filter(pl.col("port").is_not_null() & (pl.col("port") > 0) & pl.col("connection").is_not_null())
        .join(group_of_call_id, on="call_id", how="inner")
    )
    return media.select(pl.col("connection").alias("ip"), "port", "call_group_id", "ts_ns").cast(schema)


def bind_streams(stats: pl.DataFrame, endpoints: pl.DataFrame) -> pl.DataFrame:
    """One row per stream of stream_stats(): call_group_id (null if unbound), sdp_match, bound_by."""
    announced: dict[tuple[str, int], list[tuple[int, str]]] = {}
    for ip, port, group, ts in endpoints.iter_rows():
        announced.setdefault((ip, port), []).append((ts, group))
    by_group: dict[str, set[tuple[str, int]]] = {}
    for (ip, port), items in announced.items():
        for _, group in items:
            by_group.setdefault(group, set()).add((ip, port))
    rows = []
    cols = ["stream_id", "src_ip", "src_port", "dst_ip", "dst_port", "start_ts_ns"]
    for sid, sip_, sport, dip, dport, start in stats.select(cols).iter_rows():
        src, dst = (sip_, sport), (dip, dport)
        group = _latest(announced.get(dst), start)
        by = "sdp_destination"
        if group is None:
            group, by = _latest(announced.get(src), start), "sdp_source"
        if group is None:
            rows.append((sid, None, None, "unbound", None))
            continue
        own = by_group[group]
        match = src in own and dst in own
        if not match:
            by = "latching"
        rows.append((sid, group, match, by, None if match else ", ".join(_ep(e) for e in sorted(own))))
    return pl.DataFrame(rows, schema=BINDING, orient="row")


def _latest(items: list[tuple[int, str]] | None, start: int) -> str | None:
    if not items:
        return None
    before = [i for i in items if i[0] <= start]
    return (max(before) if before else min(items))[1]


def _ep(ep: tuple[str, int]) -> str:
    ip, port = ep
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"

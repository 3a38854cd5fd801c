"""Sides: which of a call's RTP streams carries the caller's voice and which the callee's.

A stream goes to the address an SDP announced (c= and m= port, RFC 4566): the side that wrote that SDP
receives it, so the other side sent it. Who wrote an SDP follows from the message: a request from the caller
(its From tag is the tag of the dialog's first INVITE) or a response to the callee's request was written by the
caller; the rest by the callee (RFC 3261 12.1: From and To stay as the dialog's initiator set them). When no
SDP announced the destination, the source is tried (symmetric RTP, RFC 4961); failing that, a stream sent
from the address the first INVITE came from is the caller's.
"""

from __future__ import annotations

import polars as pl

CALLER, CALLEE = "caller", "callee"


def stream_sides(sip: pl.DataFrame, call_ids: list[str], streams: pl.DataFrame) -> dict[str, tuple[str, int]]:
    """stream_id -> (CALLER or CALLEE: whose voice it carries, leg: position of the Call-ID whose SDP placed it,
    len(call_ids) when none did)."""
    msgs = sip.filter(pl.col("call_id").is_in(call_ids)).sort("ts_ns")
    caller_tag, first_src = caller_tags(msgs)
    announced: dict[tuple[str, int], list[tuple[int, bool, int]]] = {}
    with_sdp = msgs.filter(pl.col("has_sdp").fill_null(False))
    for cid, is_request, tag, ts, media in with_sdp.select("call_id", "is_request", "from_tag", "ts_ns",
                                                           "sdp_media").iter_rows():
        by_caller = bool(is_request) == (tag == caller_tag.get(cid))
        for m in media or []:
            if m.get("port") and m.get("connection"):
                announced.setdefault((m["connection"], m["port"]), []).append((ts, by_caller, call_ids.index(cid)))
    out = {}
    for sid, src_ip, src_port, dst_ip, dst_port, start in streams.select(
            "stream_id", "src_ip", "src_port", "dst_ip", "dst_port", "start_ts_ns").iter_rows():
        found = _latest(announced.get((dst_ip, dst_port)), start)
        if found is not None:  # the writer of the SDP receives this stream
            out[sid] = (CALLEE if found[1] else CALLER, found[2])
            continue
        found = _latest(announced.get((src_ip, src_port)), start)
        if found is not None:  # symmetric RTP: the writer sends from where it receives
            out[sid] = (CALLER if found[1] else CALLEE, found[2])
            continue
        out[sid] = (CALLER if src_ip == first_src else CALLEE, len(call_ids))
    return out


def caller_tags(msgs: pl.DataFrame) -> tuple[dict[str, str | None], str | None]:
    """(Call-ID -> From tag of its first INVITE: the caller's, the address that first INVITE came from)."""
    caller_tag: dict[str, str | None] = {}
    first_src = None
    for cid, is_request, method, tag, src in msgs.sort("ts_ns").select("call_id", "is_request", "method", "from_tag",
                                                                      "src_ip").iter_rows():
        if is_request and cid not in caller_tag and method == "INVITE":
            caller_tag[cid] = tag
            first_src = first_src or src
    return caller_tag, first_src


def sent_by_caller(msgs: pl.DataFrame, frame: int, caller_tag: dict[str, str | None]) -> bool | None:
    """Whether the SIP message of this frame was sent by the caller (None if no such message)."""
    row = msgs.filter(pl.col("frame") == frame).select("call_id", "is_request", "from_tag").rows()
    if not row:
        return None
    cid, is_request, tag = row[0]
    return bool(is_request) == (tag == caller_tag.get(cid))


def _latest(items: list[tuple[int, bool, int]] | None, start: int) -> tuple[int, bool, int] | None:
    """The SDP in force when the stream started (the latest before it, else the first)."""
    if not items:
        return None
    before = [i for i in items if i[0] <= start]
    return max(before, key=lambda i: i[0]) if before else min(items, key=lambda i: i[0])

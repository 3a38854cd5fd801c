"""The capture set's finding: packets seen at one point that never reached the next, per call."""

from __future__ import annotations

import polars as pl

RULE = "capture.lost_between_points"
TITLE = "Lost between capture points"
HINT = ("A packet seen at one capture point was not seen at the next one on its path, although that point "
        "captured the packets around it: the network between the two dropped it, or the second capture did "
        "(check its interface drop counters).")


def lost_findings(capture_set, capture, correlation, stream_report: pl.DataFrame | None) -> list[dict]:
    """One finding per call (call_group_id None: packets of no call) and pair of points."""
    lost = capture_set.lost
    names = [p.name for p in capture_set.points]
    call_of_frame = _calls_of_frames(capture, correlation, stream_report)
    what_of_frame = _what_of_frames(capture, lost["merged_frame"].cast(pl.UInt32))
    out: dict[tuple, dict] = {}
    for frame, up, down in lost.iter_rows():
        group = call_of_frame.get(frame)
        key = (group, up, down)
        finding = out.setdefault(key, {
            "call_group_id": group, "rule": RULE, "severity": "warning", "title": TITLE, "explanation": "",
            "evidence": {"frames": [], "values": {"upstream": names[up], "downstream": names[down], "packets": []}},
            "hint": HINT})
        finding["evidence"]["frames"].append(int(frame))
        finding["evidence"]["values"]["packets"].append(what_of_frame.get(frame, f"frame {frame}"))
    for (group, up, down), finding in out.items():
        packets = finding["evidence"]["values"]["packets"]
        shown = "; ".join(packets[:5]) + (f"; and {len(packets) - 5} more" if len(packets) > 5 else "")
        finding["explanation"] = (f"{len(packets)} packet(s) seen at {names[up]} never reached {names[down]} "
                                  f"(lost between {names[up]} and {names[down]}): {shown}.")
        finding["evidence"]["frames"] = sorted(finding["evidence"]["frames"])[:50]
    return list(out.values())


def _calls_of_frames(capture, correlation, stream_report) -> dict[int, str]:
    calls: dict[int, str] = {}
    msgs = correlation.messages
    if not msgs.is_empty():
        groups = dict(correlation.group_of_call_id().iter_rows())
        for frame, call_id in zip(msgs["frame"].to_list(), msgs["call_id"].to_list()):
            if call_id in groups:
                calls.setdefault(frame, groups[call_id])
    if stream_report is not None and "call_group_id" in stream_report.columns and not capture.rtp_packets.is_empty():
        keys = ["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]
        streams = stream_report.filter(pl.col("call_group_id").is_not_null()).select(
            *[pl.col(k).cast(capture.rtp_packets.schema[k]) for k in keys], "call_group_id")
        rtp = capture.rtp_packets.select("frame", *keys).join(streams, on=keys)
        calls.update(zip(rtp["frame"].to_list(), rtp["call_group_id"].to_list()))
    return calls


def _what_of_frames(capture, frames: pl.Series) -> dict[int, str]:
    """'frame 3: INVITE 127.0.0.11:5060 -> 127.0.0.12:5060' for SIP, 'RTP seq N' for media."""
    out = {}
    sip = capture.sip_messages.filter(pl.col("frame").is_in(frames.to_list()))
    if not sip.is_empty():
        for r in sip.select("frame", "method", "status_code", "src_ip", "src_port", "dst_ip", "dst_port").iter_rows(named=True):
            what = r["method"] or str(r["status_code"])
            out.setdefault(r["frame"], f"frame {r['frame']}: {what} {r['src_ip']}:{r['src_port']} -> "
                                       f"{r['dst_ip']}:{r['dst_port']}")
    rtp = capture.rtp_packets.filter(pl.col("frame").is_in(frames.to_list()))
    if not rtp.is_empty():
        for r in rtp.select("frame", "seq", "src_ip", "src_port", "dst_ip", "dst_port").iter_rows(named=True):
            out.setdefault(r["frame"], f"frame {r['frame']}: RTP seq {r['seq']} {r['src_ip']}:{r['src_port']} -> "
                                       f"{r['dst_ip']}:{r['dst_port']}")
    return out

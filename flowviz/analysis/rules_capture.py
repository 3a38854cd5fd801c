"""Capture rules: the capture starts or ends mid-call, holds packets twice, or is damaged (facts about the file)."""

from __future__ import annotations

import polars as pl

from flowviz.analysis.rulebook import CallFacts, Hit, Thresholds, rule
from flowviz.analysis.rules_sip import with_duplicates

OPEN_STATES = ("setup", "ringing", "in call")


@rule("capture.starts_mid_call", "info", "Capture starts mid-call",
      "The INVITE is before the capture: start the capture earlier to see the setup.")
def starts_mid_call(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.call["state"] != "unknown":
        return []
    return [Hit(f"Only in-dialog messages of the call are in the capture (first: frame {f.call['first_frame']}).",
                [f.call["first_frame"]], {"first_method": f.msgs["cseq_method"][0]})]


@rule("capture.ends_mid_call", "info", "Capture ends mid-call",
      "The call was still going when the capture stopped: capture longer to see how it ends.")
def ends_mid_call(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.call["method"] != "INVITE" or f.call["state"] not in OPEN_STATES:
        return []
    return [Hit(f"The capture ends while the call is in state '{f.call['state']}'.",
                [int(f.msgs["frame"][-1])], {"state": f.call["state"]})]


@rule("capture.duplicate_packets", "info", "Packets captured twice",
      "The capture holds the same packets twice (several capture points or interfaces, e.g. 'any' plus a VLAN): "
      "duplicates are not counted as retransmissions; filter one interface or dedupe (editcap -d).")
def duplicate_packets(f: CallFacts, th: Thresholds) -> list[Hit]:
    if not f.retransmissions and not any(s["duplicates"] for s in f.streams):  # a SIP duplicate is marked a repeat
        return []
    sip = with_duplicates(f.msgs, th.duplicate_ms).filter(pl.col("is_duplicate"))
    doubled = [s for s in f.streams if s["packets"] and s["duplicates"] * 2 >= s["packets"]]
    if sip.is_empty() and not doubled:
        return []
    return [Hit(f"{len(sip)} SIP message(s) and {len(doubled)} RTP stream(s) were captured twice "
                f"(the same packet again within {th.duplicate_ms:.0f} ms).",
                sip["frame"].to_list()[:20] + [s["first_frame"] for s in doubled],
                {"sip_duplicates": len(sip), "rtp_streams_doubled": len(doubled)})]


def capture_findings(info: dict) -> list[dict]:
    """Findings about the file itself (call_group_id null): records cut or unreadable."""
    truncated = {k: v for k, v in (info.get("skipped") or {}).items() if "truncated" in k}
    cut = [w for w in info.get("warnings") or [] if "cut in the middle" in w or "impossible length" in w]
    gaps = info.get("tcp_gap_frames") or []
    short = info.get("short_frames") or 0
    if not truncated and not cut and not gaps and not short:
        return []
    parts = [f"{n} packet(s) with {k}" for k, n in truncated.items()] + cut
    if short:
        parts.append(f"{short} frame(s) cut short by the capture's snapshot length")
    if gaps:
        parts.append(f"{len(gaps)} gap(s) in SIP TCP streams (a segment missing before frame(s) "
                     + ", ".join(map(str, gaps[:10])) + ("..." if len(gaps) > 10 else "") + ")")
    return [{"call_group_id": None, "rule": "capture.truncated", "severity": "warning",
             "title": "Capture damaged or cut", "explanation": "The capture lost data: " + "; ".join(parts) + ".",
             "evidence": {"frames": gaps[:50], "values": {"skipped": truncated, "warnings": cut,
                                                          "short_frames": short, "tcp_gaps": len(gaps)}},
             "hint": "Packets were dropped or cut short by the capture (snaplen, disk full, copy interrupted): "
                     "findings about missing messages may come from the capture, not the network."}]

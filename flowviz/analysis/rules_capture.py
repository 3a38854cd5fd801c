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


@rule("capture.request_not_captured", "info", "Request not in the capture",
      "The capture holds the answers but not the request they answer: it took another path or interface, or the "
      "capture filter or a drop missed it; capture where both directions pass to see it.")
def request_not_captured(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.call["state"] == "unknown" or f.methods & {f.call["method"]}:
        return []
    answers = f.msgs.filter(~pl.col("is_request") & (pl.col("cseq_method") == f.call["method"]))
    if answers.is_empty():
        return []
    first = answers.row(0, named=True)
    return [Hit(f"The {f.call['method']} is not in the capture, only {len(answers)} response(s) to it "
                f"(first: {first['status_code']} {first['reason'] or ''}".rstrip() + f" in frame {first['frame']}).",
                answers["frame"].to_list()[:20], {"method": f.call["method"], "responses": len(answers),
                                                  "final_status": f.call["final_status"]})]


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


@rule("capture.time_backwards", "warning", "Capture time goes backwards",
      "The capture's clock stepped back (NTP or manual correction, a 32-bit timestamp wrap) or its records were "
      "reordered: timings across these frames are wrong, those that came out negative are not shown.")
def time_backwards(f: CallFacts, th: Thresholds) -> list[Hit]:
    """In capture (frame) order, a SIP message of the call or an RTP packet of one of its streams carries an
    earlier timestamp than the one captured before it."""
    streams = [s for s in f.streams if s.get("time_backwards")]
    if f.msgs["frame"].is_sorted() and not streams:  # messages are in time order: sorted frames agree with it
        return []
    sip = f.msgs.sort("frame", "msg_index").select("frame", back=pl.col("ts_ns").shift(1) - pl.col("ts_ns"))
    steps = sip.filter(pl.col("back") > 0)
    if steps.is_empty() and not streams:
        return []
    largest = max([int(steps["back"].max() or 0)] + [int(s["max_backwards_ms"] * 1e6) for s in streams])
    parts = [f"{len(steps)} SIP message(s)"] if len(steps) else []
    if streams:
        parts.append(f"{sum(s['time_backwards'] for s in streams)} RTP packet(s) of {len(streams)} stream(s)")
    return [Hit(f"{' and '.join(parts)} carry an earlier time than the packet captured before them "
                f"(by up to {largest / 1e9:.3f} s).",
                steps["frame"].to_list()[:20] + [s["time_backwards_frame"] for s in streams],
                {"sip_steps": len(steps), "rtp_packets": sum(s["time_backwards"] for s in streams),
                 "max_backwards_ms": round(largest / 1e6, 3),
                 "streams": [s["stream_id"] for s in streams]})]


# Findings about the file as a whole (call_group_id null), made here rather than by a @rule on a call.
FILE_RULES = ("capture.truncated", "capture.tls_without_keys")


def capture_findings(info: dict) -> list[dict]:
    """Findings about the file itself (call_group_id null): records cut or unreadable, SIP in TLS without
    keys."""
    return _damaged(info) + _tls_without_keys(info)


def _tls_without_keys(info: dict) -> list[dict]:
    """TLS connections on SIP ports that could not be decrypted: the calls in them are not in the list."""
    tls = info.get("tls") or {}
    hidden = tls.get("not_decrypted") or 0
    if not hidden:
        return []
    frames = list(tls.get("not_decrypted_frames") or [])[:50]
    if tls.get("keys", "none") == "none":
        explanation = (f"{hidden} TLS connection(s) carry SIP without keys: give --tls-keylog (the calls in them "
                       "are not listed).")
        hint = ("Give the TLS session keys with --tls-keylog FILE (an NSS key log, as SSLKEYLOGFILE writes it on "
                "the client or the SBC), or embed them in a pcapng (editcap --inject-secrets tls,FILE).")
    else:
        explanation = (f"{hidden} TLS connection(s) carry SIP that the keys given do not decrypt: they are not "
                       "the keys of these sessions (the calls in them are not listed).")
        hint = ("The key log must hold the CLIENT_RANDOM / traffic secrets of these very connections: take it "
                "from the same client or SBC at the time of the capture.")
    return [{"call_group_id": None, "rule": "capture.tls_without_keys", "severity": "warning",
             "title": "SIP over TLS not decrypted", "explanation": explanation,
             "evidence": {"frames": frames, "values": {"connections": tls.get("connections"),
                                                       "not_decrypted": hidden, "keys": tls.get("keys")}},
             "hint": hint}]


def _damaged(info: dict) -> list[dict]:
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

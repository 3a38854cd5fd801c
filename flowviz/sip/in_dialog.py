"""In-dialog requests of a call: re-INVITE and UPDATE (with hold/resume), INFO, REFER, NOTIFY, PRACK...

A request with a To tag is inside an established (or early) dialog (RFC 3261 12.2). A re-INVITE or
UPDATE whose SDP offers sendonly or inactive, or the old c=0.0.0.0, puts the other side on hold
(RFC 3264 8.4, RFC 6337 5.3); a later offer back to sendrecv resumes. ACK and BYE are left out:
the call state already tells them.
"""

from __future__ import annotations

HOLD_DIRECTIONS = {"sendonly", "inactive"}
SKIPPED = {"ACK", "BYE", "CANCEL"}


def in_dialog_requests(rows: list[dict]) -> list[dict]:
    """rows: one call's messages in time order -> [{method, frame, status, hold}] for each in-dialog request."""
    finals: dict[str, int] = {}
    for r in rows:
        if not r["is_request"] and r["status_code"] >= 200 and not r["is_retransmission"]:
            finals.setdefault(r["txn_id"], r["status_code"])
    events, seen_cseq, on_hold = [], set(), False
    for r in rows:
        if not r["is_request"] or r["to_tag"] is None or r["method"] in SKIPPED or r["is_retransmission"]:
            continue
        key = (r["call_id"], r["cseq_num"], r["method"], r["from_tag"])
        if key in seen_cseq:  # the same request seen again on the next hop
            continue
        seen_cseq.add(key)
        hold = None
        if r["method"] in ("INVITE", "UPDATE") and r["has_sdp"]:
            holding = _offers_hold(r)
            hold = "hold" if holding else ("resume" if on_hold else None)
            on_hold = holding
        events.append({"method": "re-INVITE" if r["method"] == "INVITE" else r["method"], "frame": r["frame"],
                       "status": finals.get(r["txn_id"]), "hold": hold})
    return events


def _offers_hold(r: dict) -> bool:
    media = [m for m in (r["sdp_media"] or []) if m["port"]]
    if r["sdp_connection"] == "0.0.0.0" or any(m["connection"] == "0.0.0.0" for m in media):
        return True
    return bool(media) and all(m["direction"] in HOLD_DIRECTIONS for m in media)

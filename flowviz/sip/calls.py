"""Call summary: one row per call group (state, parties, timings, path, legs, counts).

Timings are taken where the caller sits (the originating link, the root of the hop tree) and
from first transmissions only (RFC 6076 section 3): SRD = INVITE -> first 18x/2xx, setup =
INVITE -> 2xx, duration = 2xx -> BYE. When the caller retried after a 401/407 challenge, the
retry (the request with credentials) is the one measured (RFC 6076 4.1, 4.3).
"""

from __future__ import annotations

import polars as pl

from flowviz.sip import hops as hop_rules
from flowviz.sip import legs as leg_rules
from flowviz.sip.in_dialog import in_dialog_requests
from flowviz.sip.path import HopIndex, PathFacts, path_facts
from flowviz.sip.states import invite_state, request_state
from flowviz.sip.transactions import with_transactions

CHALLENGES = (401, 407)
# requests sent outside a dialog (RFC 3261 8, 10, 11; RFC 3265/6665, 3428, 3903): only their responses can tell
# the outcome of an exchange whose request is not in the capture; a BYE's or PRACK's belong to an older dialog
OUT_OF_DIALOG = ("INVITE", "REGISTER", "OPTIONS", "SUBSCRIBE", "MESSAGE", "PUBLISH")
SUMMARY_COLUMNS = [
    "frame", "ts_ns", "msg_id", "call_id", "is_request", "method", "status_code", "reason", "cseq_num",
    "cseq_method", "from_uri", "from_user", "from_display", "from_tag", "to_uri", "to_user", "to_display",
    "to_tag", "src", "dst", "txn_id", "is_retransmission", "user_agent", "server", "has_sdp", "sdp_connection",
    "sdp_media",
]


class Correlation:
    """Everything the correlator derives from one capture's SIP messages."""

    def __init__(self, sip: pl.DataFrame, capture_end_ns: int | None = None):
        self.messages = with_transactions(sip)
        self.request_hops = hop_rules.request_hops(self.messages)
        self.response_hops = hop_rules.response_hops(self.messages, self.request_hops)
        self.cancel_hops = hop_rules.cancel_hops(self.messages, self.request_hops)
        strong = pl.concat([leg_rules.header_links(self.messages), leg_rules.via_links(self.messages)])
        linked = set(strong["call_id"].to_list()) | set(strong["linked_call_id"].to_list())
        heuristic = leg_rules.heuristic_links(self.messages, self.request_hops, linked)
        self.leg_links = pl.concat([strong, heuristic])
        call_ids = self.messages["call_id"].drop_nulls().unique(maintain_order=True).to_list()
        self.groups = leg_rules.call_groups(call_ids, self.leg_links)
        last = self.messages["ts_ns"].max()
        self.capture_end_ns = capture_end_ns if capture_end_ns is not None else (last or 0)

    def group_of_call_id(self) -> pl.DataFrame:
        return pl.DataFrame(
            [(c, g) for g, members in self.groups.items() for c in members],
            schema={"call_id": pl.Utf8, "call_group_id": pl.Utf8}, orient="row",
        )

    def summaries(self) -> list[dict]:
        if self.messages.is_empty():
            return []
        tagged = self.messages.select(SUMMARY_COLUMNS).join(self.group_of_call_id(), on="call_id", how="inner")
        index = HopIndex.build(self.request_hops, self.response_hops, self.cancel_hops)
        # rows grouped as plain dicts: one small frame per call held at once cost ~20 KB a call (issue 19 item 8)
        rows_of: dict[str, list[dict]] = {}
        for row in tagged.sort("msg_id").iter_rows(named=True):
            rows_of.setdefault(row["call_group_id"], []).append(row)
        out = [self._summary(group, rows, index) for group, rows in rows_of.items()]
        return sorted(out, key=lambda s: s["start_ns"])

    def _summary(self, group: str, rows: list[dict], index: HopIndex) -> dict:
        call_ids = self.groups[group]
        method, first, leg_roots = _initial_request(rows, call_ids[0], index.forwarded)
        replies = _responses_by_transaction(rows)
        attempt = _last_attempt(leg_roots, replies) if leg_roots else None
        by_id = {r["msg_id"]: r for r in rows}
        answers = replies.get(attempt["txn_id"], []) if attempt else []
        missed = _uncaptured_request(rows, method, replies) if attempt is None else None
        if missed is not None:  # the request itself is not in the capture, its answers are: they still tell the outcome
            answers = replies[missed]
        # the caller sees one final response; with forking several 2xx can come back: the first wins
        final = next((r for r in answers if 200 <= r["status_code"] < 300), None) or next(
            (r for r in answers if r["status_code"] >= 200), None)
        final_code = final["status_code"] if final else None
        provisional = [r["status_code"] for r in answers if r["status_code"] < 200]
        start_ns = rows[0]["ts_ns"]
        waited = self.capture_end_ns - (attempt or first)["ts_ns"]
        bye = next((r for r in rows if r["is_request"] and r["method"] == "BYE" and not r["is_retransmission"]), None)
        if attempt is None and missed is None:  # only in-dialog messages: the call began before the capture did
            state = "unknown"
        elif method == "INVITE":
            cancelled = any(r["is_request"] and r["method"] == "CANCEL" for r in rows)
            state = invite_state(final_code, provisional, cancelled, bye is not None, waited)
        else:
            state = request_state(final_code, waited)
        t0 = attempt["ts_ns"] if attempt else None
        ring = next((r for r in answers if 180 <= r["status_code"] < 300), None)
        answered = final if final_code and 200 <= final_code < 300 else None
        failed = final if final_code and final_code >= 400 and final_code not in CHALLENGES and not ring else None
        end = bye if (bye and answered) else (final if final and not answered else None)
        facts: PathFacts = path_facts(call_ids, rows, by_id, index, self.leg_links, method, attempt)
        bye_answer = next((r for r in replies.get(bye["txn_id"], []) if r["status_code"] >= 200), None) if bye else None
        until = bye["ts_ns"] if bye else (self.capture_end_ns if state == "in call" else None)
        return {
            "call_group_id": group,
            "call_ids": call_ids,
            "method": method,
            "from_user": first["from_user"], "from_uri": first["from_uri"], "from_display": first["from_display"],
            "to_user": first["to_user"], "to_uri": first["to_uri"], "to_display": first["to_display"],
            "state": state,
            "final_status": final_code,
            "final_reason": final["reason"] if final else None,
            "start_ns": start_ns,
            "answer_ns": answered["ts_ns"] if answered else None,
            "end_ns": end["ts_ns"] if end else None,
            # SRD is an INVITE measure (RFC 6076 4.3); other requests keep setup_ms (request -> 2xx)
            "srd_ms": _ms(ring["ts_ns"] - t0) if ring and t0 is not None and method == "INVITE" else None,
            "failed_srd_ms": _ms(failed["ts_ns"] - t0) if failed and t0 is not None and method == "INVITE" else None,
            "setup_ms": _ms(answered["ts_ns"] - t0) if answered and t0 is not None else None,
            "duration_s": _seconds(until - answered["ts_ns"]) if answered and until else None,
            "disconnect_ms": _ms(bye_answer["ts_ns"] - bye["ts_ns"]) if bye_answer else None,
            "hung_up_by": _hung_up_by(bye, first) if bye else None,
            "hosts": facts.hosts,
            "host_roles": facts.roles,
            "host_names": facts.names,
            "hop_delays_ms": facts.hop_delays_ms,
            "forwarding": facts.forwarding,
            "forks": facts.forks,
            "in_dialog": in_dialog_requests(rows),
            "dialogs": len({(r["call_id"], r["to_tag"]) for r in answers if r["to_tag"] and r["status_code"] > 100}),
            "legs": facts.legs,
            "messages": len(rows),
            "retransmissions": sum(1 for r in rows if r["is_retransmission"]),
            "first_frame": rows[0]["frame"],
        }


def _initial_request(rows: list[dict], first_leg: str, forwarded: set[int]) -> tuple[str, dict, list[dict]]:
    """(method, the caller's first request, the caller's tries on the first leg in time order).

    Initial = out of dialog (no To tag), first transmission, not ACK/CANCEL; an INVITE anywhere
    makes it a call. The caller's copies are the roots of the hop tree (no proxy forwarded them).
    """
    initial = [r for r in rows if r["is_request"] and r["to_tag"] is None and not r["is_retransmission"]
               and r["method"] not in ("ACK", "CANCEL")]
    if any(r["method"] == "INVITE" for r in initial):
        method = "INVITE"
    else:
        method = initial[0]["method"] if initial else (rows[0]["cseq_method"] or "?")
    own = [r for r in initial if r["method"] == method]
    roots = [r for r in own if r["msg_id"] not in forwarded] or own
    leg_roots = [r for r in roots if r["call_id"] == first_leg] or roots
    return method, (leg_roots[0] if leg_roots else rows[0]), leg_roots


def _uncaptured_request(rows: list[dict], method: str, replies: dict[str, list[dict]]) -> str | None:
    """The transaction of the caller's initial request when the request was not captured but its responses
    were (e.g. a 408 re-sent by Timer G, RFC 3261 17.2.1, whose INVITE took another path): responses to
    `method` (a request sent outside a dialog) in a transaction none of whose requests is in the group, and
    nothing else in the group but that exchange's ACK or CANCEL (anything else, e.g. a BYE or another CSeq,
    means a dialog older than the capture: unknown)."""
    if method not in OUT_OF_DIALOG:
        return None
    requested = {r["txn_id"] for r in rows if r["is_request"] and r["method"] not in ("ACK", "CANCEL")}
    orphans = [txn for txn, answers in replies.items() if txn not in requested
               and answers[0]["cseq_method"] == method and not answers[0]["is_request"]]
    if not orphans:
        return None
    txn = orphans[0]
    cseq = (replies[txn][0]["call_id"], replies[txn][0]["cseq_num"])
    if any((r["call_id"], r["cseq_num"]) != cseq or (r["is_request"] and r["method"] not in ("ACK", "CANCEL"))
           for r in rows):
        return None
    return txn


def _last_attempt(roots: list[dict], replies: dict[str, list[dict]]) -> dict:
    """The caller's last try of the first request, retried with a higher CSeq after a 401/407 challenge,
    a 3xx redirect (RFC 3261 8.1.3.4: the UAC recurses on the Contact) or no answer at all."""
    first = roots[0]
    same_caller = [r for r in roots if r["src"] == first["src"] and r["cseq_num"] is not None]
    if not same_caller:
        return first
    best = first
    for r in same_caller:
        if (r["cseq_num"] or 0) > (best["cseq_num"] or 0):
            answered = replies.get(best["txn_id"], [])
            if not answered or any(a["status_code"] in CHALLENGES or 300 <= a["status_code"] < 400 for a in answered):
                best = r
    return best


def _responses_by_transaction(rows: list[dict]) -> dict[str, list[dict]]:
    """First transmissions of responses, by transaction, in time order (one pass: long REGISTER
    refresh series stay linear)."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        if not r["is_request"] and not r["is_retransmission"]:
            out.setdefault(r["txn_id"], []).append(r)
    return out


def _hung_up_by(bye: dict, first: dict) -> str:
    """The BYE's From tag is the sender's own tag (RFC 3261 12.2.1.1)."""
    return "caller" if bye["from_tag"] == first["from_tag"] else "callee"


def _ms(ns: int) -> float | None:
    """An interval in ms; None when it is negative: the capture's clock went back between its two messages
    (the rule capture.time_backwards names the frames), and no timing is better than a negative one."""
    return round(ns / 1e6, 3) if ns >= 0 else None


def _seconds(ns: int) -> float | None:
    return round(ns / 1e9, 3) if ns >= 0 else None


def unplaced_warnings(sip: pl.DataFrame, capture: str) -> list[str]:
    """A warning naming the SIP messages no call can hold: without a Call-ID (header missing or unreadable,
    RFC 3261 8.1.1.4 makes it mandatory) they belong to no dialog and no transaction of any call."""
    if sip.is_empty():
        return []
    missing = sip.filter(pl.col("call_id").is_null() & ~pl.col("icmp_quoted").fill_null(False))
    if missing.is_empty():
        return []
    frames = missing["frame"].unique(maintain_order=True).to_list()
    shown = ", ".join(map(str, frames[:20])) + (f" and {len(frames) - 20} more" if len(frames) > 20 else "")
    return [f"{capture}: {len(missing)} SIP message(s) without a Call-ID header are in no call (frames {shown})"]


def summarize_calls(sip: pl.DataFrame, capture_end_ns: int | None = None) -> list[dict]:
    """sip_messages -> one summary dict per call group, in start order."""
    return Correlation(sip, capture_end_ns).summaries()

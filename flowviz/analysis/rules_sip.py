"""Signalling rules: rejections, timeouts, retransmissions, slow hops, challenges, races, loops."""

from __future__ import annotations

import polars as pl

from flowviz.analysis.rulebook import CallFacts, Hit, Thresholds, rule

# RFC 3261 section 21 (and RFC 3262, 3329, 4412, 6665): what a final code means, in plain words.
CODE_MEANINGS = {
    400: "the request was malformed", 401: "authentication is required by the UA or registrar",
    402: "payment required", 403: "the server refuses the request (policy, bad credentials or barred number)",
    404: "the called user or number does not exist there", 405: "the method is not allowed there",
    406: "no acceptable content", 407: "a proxy asks for credentials",
    408: "no answer in time from further downstream", 410: "the user is gone for good",
    413: "the request is too large", 414: "the Request-URI is too long",
    415: "unsupported body type or encoding", 416: "unsupported URI scheme", 420: "an extension in Require is unknown",
    421: "the server requires an extension", 422: "the session interval is too small (RFC 4028)",
    423: "the registration interval is too brief", 480: "the callee is not reachable right now (not registered, DND)",
    481: "the dialog or transaction does not exist at the receiver",
    482: "a loop was detected (the request came back to a proxy that already handled it)",
    483: "too many hops: Max-Forwards reached 0", 484: "the number is incomplete",
    485: "the address is ambiguous", 486: "the callee is busy", 487: "the request was cancelled",
    488: "no common codec or media description is acceptable", 489: "unknown event package",
    491: "a request is pending (glare of two re-INVITEs)", 493: "undecipherable S/MIME body",
    500: "internal server error", 501: "not implemented", 502: "bad gateway: the next hop answered wrongly",
    503: "service unavailable (overloaded or no route/trunk)", 504: "the server timed out reaching the next hop",
    505: "SIP version not supported", 513: "the message is too large", 580: "preconditions failed",
    600: "busy everywhere", 603: "the callee declined", 604: "the number does not exist anywhere",
    606: "the session description is not acceptable",
}
LOOP_CODES = (481, 482, 483)
CHALLENGES = (401, 407)


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


def _first(msgs: pl.DataFrame) -> pl.DataFrame:
    return msgs.filter(~pl.col("is_retransmission"))


@rule("sip.rejected", "warning", "Call rejected",
      "The meaning of the code says which side to look at; Reason and Warning headers often name the cause.")
def rejected(f: CallFacts, th: Thresholds) -> list[Hit]:
    code = f.call["final_status"]
    if code is None or code < 400 or code in LOOP_CODES or f.call["state"] == "cancelled":
        return []
    finals = _first(f.msgs).filter(~pl.col("is_request") & (pl.col("status_code") == code)
                                   & (pl.col("cseq_method") == f.call["method"]))
    first = finals.row(0, named=True) if len(finals) else {}
    values = {"status_code": code, "reason": f.call["final_reason"], "meaning": CODE_MEANINGS.get(code),
              "reason_header": first.get("reason_header"), "warning": first.get("warning"), "sent_by": first.get("src")}
    extra = "".join(f"; {name}: {values[key]}" for name, key in (("Reason", "reason_header"), ("Warning", "warning"))
                    if values[key])
    meaning = CODE_MEANINGS.get(code, f"a {code // 100}xx failure")
    return [Hit(f"The {f.call['method']} was answered {code} {f.call['final_reason'] or ''}".rstrip()
                + f" ({meaning}){extra}.", finals["frame"].to_list(), values)]


@rule("sip.cancelled", "info", "Call cancelled by the caller",
      "Not a fault: the caller hung up before an answer (CANCEL, RFC 3261 9.1).")
def cancelled(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.call["state"] != "cancelled":
        return []
    cancels = _first(f.msgs).filter(pl.col("is_request") & (pl.col("method") == "CANCEL"))
    finals = _first(f.msgs).filter(pl.col("status_code") == 487)
    return [Hit("The caller cancelled the call before it was answered.",
                cancels["frame"].to_list()[:1] + finals["frame"].to_list()[:1], {"status_code": f.call["final_status"]})]


@rule("sip.no_final_response", "error", "No final response (transaction timed out)",
      "Check that the next hop is reachable (routing, firewall, transport) and alive; Timer B/C expired.")
def no_final_response(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.call["state"] != "timed out":
        return []
    requests = f.msgs.filter(pl.col("is_request") & (pl.col("method") == f.call["method"]) & pl.col("to_tag").is_null())
    if requests.is_empty() or requests["ts_ns"].min() <= 0:  # no timestamp (pcapng simple packet block)
        return []
    waited = f.capture_end_ns - int(requests["ts_ns"].min())
    return [Hit(f"The {f.call['method']} got no final response in the {waited / 1e9:.1f} s the capture ran after it.",
                requests["frame"].to_list(), {"waited_s": round(waited / 1e9, 3), "copies": len(requests)})]


REPEAT_KEY = ["txn_id", "src", "dst", "is_request", "method", "status_code", "cseq_num", "to_tag"]


def with_duplicates(msgs: pl.DataFrame, window_ms: float) -> pl.DataFrame:
    """Adds is_duplicate: the same message on the same link again within `window_ms` of the previous copy,
    i.e. seen twice by the capture (several capture points), not re-sent by the sender (T1 = 500 ms)."""
    gap = pl.col("ts_ns") - pl.col("ts_ns").shift(1).over(REPEAT_KEY)
    return msgs.sort("ts_ns", "msg_id").with_columns(
        is_duplicate=(gap < window_ms * 1e6).fill_null(False)).sort("msg_id")


def _repeats(msgs: pl.DataFrame, keys: list[str], window_ms: float) -> pl.DataFrame:
    """Per message and link: how many times it was re-sent (capture duplicates left out), and the frames."""
    msgs = with_duplicates(msgs, window_ms).filter(~pl.col("is_duplicate"))
    return (msgs.group_by(keys, maintain_order=True)
            .agg(repeats=pl.col("is_retransmission").sum(), frames=pl.col("frame"), first_ts=pl.col("ts_ns").min(),
                 last_ts=pl.col("ts_ns").max())
            .filter(pl.col("repeats") > 0))


@rule("sip.invite_retransmitted", "warning", "INVITE retransmitted",
      "No provisional response came in time: the next hop is slow, unreachable, or its answers are lost (NAT, firewall, MTU).")
def invite_retransmitted(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.retransmissions < th.invite_retransmissions:
        return []
    invites = f.msgs.filter(pl.col("is_request") & (pl.col("method") == "INVITE"))
    hits = []
    for r in _repeats(invites, ["txn_id", "src", "dst"], th.duplicate_ms).filter(pl.col("repeats") >= th.invite_retransmissions).to_dicts():
        hits.append(Hit(f"The INVITE from {r['src']} to {r['dst']} was sent {r['repeats']} more times "
                        f"over {_ms(r['last_ts'] - r['first_ts']) / 1000:.1f} s.", r["frames"],
                        {"src": r["src"], "dst": r["dst"], "retransmissions": r["repeats"]}))
    return hits


@rule("sip.ok_without_ack", "error", "200 OK retransmitted without ACK",
      "The ACK does not reach the callee: check NAT, the Contact and Record-Route addresses; the callee drops the call after 32 s.")
def ok_without_ack(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.retransmissions < th.ok_retransmissions:
        return []
    oks = f.msgs.filter(~pl.col("is_request") & (pl.col("cseq_method") == "INVITE")
                        & pl.col("status_code").is_between(200, 299))
    acks = f.msgs.filter(pl.col("is_request") & (pl.col("method") == "ACK"))
    hits = []
    for r in _repeats(oks, ["txn_id", "src", "dst", "to_tag", "cseq_num", "call_id"], th.duplicate_ms).filter(
            pl.col("repeats") >= th.ok_retransmissions).to_dicts():
        ack = acks.filter((pl.col("call_id") == r["call_id"]) & (pl.col("cseq_num") == r["cseq_num"])
                          & (pl.col("src_ip") == r["dst"].rsplit(":", 1)[0].strip("[]")))
        late = f" before the ACK came (frame {ack['frame'][0]})" if len(ack) else " and no ACK came back"
        hits.append(Hit(f"{r['src']} re-sent its 200 OK to {r['dst']} {r['repeats']} times{late}.",
                        r["frames"] + ack["frame"].to_list()[:1],
                        {"src": r["src"], "dst": r["dst"], "retransmissions": r["repeats"], "ack_seen": len(ack) > 0}))
    return hits


@rule("sip.failure_without_ack", "warning", "Failure response retransmitted without ACK",
      "The caller's side never acknowledged the final failure: its ACK is lost on the way back (NAT, firewall, "
      "wrong Via/rport handling) or the caller is gone; the server gives up after 32 s (Timer H).")
def failure_without_ack(f: CallFacts, th: Thresholds) -> list[Hit]:
    """A non-2xx final response to an INVITE re-sent (Timer G: T1, 2 T1, ... up to T2) at least
    `ok_retransmissions` times on one link with no ACK from its receiver after it (RFC 3261 17.2.1)."""
    if f.retransmissions < th.ok_retransmissions or not any(c >= 300 for c in f.codes):
        return []
    failures = f.msgs.filter(~pl.col("is_request") & (pl.col("cseq_method") == "INVITE")
                             & (pl.col("status_code") >= 300))
    acks = f.msgs.filter(pl.col("is_request") & (pl.col("method") == "ACK"))
    hits = []
    for r in _repeats(failures, ["txn_id", "src", "dst", "status_code", "to_tag", "cseq_num", "call_id"],
                      th.duplicate_ms).filter(pl.col("repeats") >= th.ok_retransmissions).to_dicts():
        ack = acks.filter((pl.col("call_id") == r["call_id"]) & (pl.col("cseq_num") == r["cseq_num"])
                          & (pl.col("src_ip") == r["dst"].rsplit(":", 1)[0].strip("[]")))
        if len(ack) and int(ack["ts_ns"].min()) <= r["first_ts"]:
            continue  # acknowledged before the repeats: they crossed it
        late = f" before the ACK came (frame {ack['frame'][0]})" if len(ack) else " and no ACK came back"
        hits.append(Hit(f"{r['src']} re-sent its {r['status_code']} to {r['dst']} {r['repeats']} times over "
                        f"{(r['last_ts'] - r['first_ts']) / 1e9:.1f} s{late}.",
                        r["frames"] + ack["frame"].to_list()[:1],
                        {"src": r["src"], "dst": r["dst"], "status_code": r["status_code"],
                         "retransmissions": r["repeats"], "ack_seen": len(ack) > 0}))
    return hits


@rule("sip.slow_hop", "warning", "Slow proxy hop",
      "The named proxy takes long to pass messages on: look at its load, DNS lookups or database queries.")
def slow_hop(f: CallFacts, th: Thresholds) -> list[Hit]:
    fastest: dict[tuple[str, str], dict] = {}
    for entry in f.call["forwarding"] or []:
        if entry["ms"] is None:  # no delay measured: the capture's clock went back (capture.time_backwards)
            continue
        key = (entry["proxy"], entry["message"])
        if key not in fastest or entry["ms"] < fastest[key]["ms"]:  # sequential forks: the first branch counts
            fastest[key] = entry
    hits = []
    for (proxy, message), entry in fastest.items():
        if entry["ms"] > th.slow_hop_ms:
            hits.append(Hit(f"Proxy {proxy} took {entry['ms']:.0f} ms to forward the {message}.", entry["frames"],
                            {"proxy": proxy, "message": message, "delay_ms": entry["ms"]}))
    return hits


@rule("sip.long_srd", "warning", "Long session request delay",
      "The far side or a gateway takes long to alert: check routing (ENUM/DNS, LCR) and the callee's reachability.")
def long_srd(f: CallFacts, th: Thresholds) -> list[Hit]:
    srd = f.call["srd_ms"]
    if srd is None or srd <= th.srd_ms:
        return []
    invite = f.msgs.filter(pl.col("frame") == f.call["first_frame"])
    return [Hit(f"The first ringing or answer came {srd / 1000:.1f} s after the INVITE.", invite["frame"].to_list(),
                {"srd_ms": srd, "threshold_ms": th.srd_ms})]


@rule("sip.auth_loop", "error", "Authentication challenged again and again",
      "The credentials are refused: check user name, password and realm at the client; a nonce problem shows as stale=true.")
def auth_loop(f: CallFacts, th: Thresholds) -> list[Hit]:
    if not f.codes & set(CHALLENGES):
        return []
    first = _first(f.msgs)
    challenged = set(first.filter(pl.col("status_code").is_in(CHALLENGES))
                     .select("call_id", "cseq_method", "cseq_num").iter_rows())
    hits = []
    requests = first.filter(pl.col("is_request") & ~pl.col("method").is_in(["ACK", "CANCEL"]))
    for (call_id, method), part in requests.group_by(["call_id", "method"], maintain_order=True):
        run, best = [], []
        for cseq in sorted(set(part["cseq_num"].drop_nulls().to_list())):
            run = run + [cseq] if (call_id, method, cseq) in challenged else []
            best = run if len(run) > len(best) else best
        if len(best) >= th.auth_challenges:
            frames = first.filter((pl.col("call_id") == call_id) & (pl.col("cseq_num").is_in(best))
                                  & (pl.col("cseq_method") == method))["frame"].to_list()
            hits.append(Hit(f"The {method} was challenged {len(best)} times in a row (CSeq {best[0]}..{best[-1]}).",
                            frames, {"method": method, "challenges": len(best)}))
    return hits


@rule("sip.cancel_race", "warning", "CANCEL crossed a 200 OK",
      "The callee answered while the CANCEL was on its way (RFC 3261 9.1): the caller must ACK and BYE the answered call.")
def cancel_race(f: CallFacts, th: Thresholds) -> list[Hit]:
    if "CANCEL" not in f.methods:
        return []
    first = _first(f.msgs)
    cancels = first.filter(pl.col("is_request") & (pl.col("method") == "CANCEL"))
    if cancels.is_empty():
        return []
    cancel = cancels.row(0, named=True)
    oks = first.filter(~pl.col("is_request") & (pl.col("cseq_method") == "INVITE")
                       & pl.col("status_code").is_between(200, 299) & (pl.col("ts_ns") > cancel["ts_ns"]))
    if oks.is_empty():
        return []
    ok = oks.row(0, named=True)
    bye = first.filter(pl.col("is_request") & (pl.col("method") == "BYE"))
    ended = f" and a BYE ended it (frame {bye['frame'][0]})" if len(bye) else ", and no BYE followed"
    return [Hit(f"A 200 OK came {_ms(ok['ts_ns'] - cancel['ts_ns']):.0f} ms after the CANCEL{ended}.",
                [cancel["frame"], ok["frame"], *bye["frame"].to_list()[:1]],
                {"after_cancel_ms": _ms(ok["ts_ns"] - cancel["ts_ns"]), "bye_sent": len(bye) > 0})]


@rule("sip.bye_unanswered", "warning", "BYE not answered 200 OK",
      "The BYE does not reach the other side, its answer is lost, or the far end refuses it: check Route/Record-Route, "
      "the Contact address and the CSeq order.")
def bye_unanswered(f: CallFacts, th: Thresholds) -> list[Hit]:
    if "BYE" not in f.methods:
        return []
    # one filter per call, then plain rows: this runs for every call with a BYE (a live refresh of 500 calls
    # spent 1.4 s here when each BYE filtered the call's messages again)
    rows = f.msgs.filter(pl.col("cseq_method") == "BYE").to_dicts()
    finals = {}
    for r in rows:
        if not r["is_retransmission"] and not r["is_request"] and (r["status_code"] or 0) >= 200:
            finals[(r["call_id"], r["cseq_num"])] = r  # the last final response of the transaction
    copies_of: dict[tuple, list[int]] = {}
    for r in rows:
        if r["method"] == "BYE":
            copies_of.setdefault((r["call_id"], r["cseq_num"]), []).append(r["frame"])
    hits, seen = [], set()
    for r in rows:
        key = (r["call_id"], r["cseq_num"])
        if r["is_retransmission"] or not r["is_request"] or r["method"] != "BYE" or key in seen:
            continue
        seen.add(key)
        final, waited, copies = finals.get(key), f.capture_end_ns - r["ts_ns"], copies_of[key]
        values = {"src": r["src"], "dst": r["dst"], "copies": len(copies)}
        if final is None and waited >= th.bye_answer_s * 1e9:
            hits.append(Hit(f"The BYE from {r['src']} got no final response in {waited / 1e9:.1f} s.", copies,
                            {**values, "status_code": None}))
        elif final is not None and final["status_code"] >= 300 and final["status_code"] not in LOOP_CODES:
            hits.append(Hit(f"The BYE from {r['src']} was answered {final['status_code']} {final['reason'] or ''}".rstrip()
                            + ".", copies + [final["frame"]], {**values, "status_code": final["status_code"]}))
    return hits


@rule("sip.dialog_or_loop_error", "error", "481/482/483: lost dialog, loop or too many hops",
      "481: the receiver forgot or never had the dialog (restart, wrong tags or routing); 482/483: a routing loop.")
def dialog_or_loop_error(f: CallFacts, th: Thresholds) -> list[Hit]:
    if not f.codes & set(LOOP_CODES):
        return []
    errors = _first(f.msgs).filter(pl.col("status_code").is_in(LOOP_CODES)).unique(
        ["call_id", "cseq_num", "cseq_method", "status_code"], keep="first", maintain_order=True)
    return [Hit(f"{r['src']} answered the {r['cseq_method']} {r['status_code']} {r['reason'] or ''}".rstrip()
                + f" ({CODE_MEANINGS[r['status_code']]}).", [r["frame"]],
                {"status_code": r["status_code"], "method": r["cseq_method"], "sent_by": r["src"]})
            for r in errors.to_dicts()]


@rule("sip.max_forwards_exhausted", "error", "Max-Forwards exhausted",
      "A request arrives with Max-Forwards 0 or 1: a routing loop between proxies, or a too low initial value.")
def max_forwards_exhausted(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.min_max_forwards is None or f.min_max_forwards > 1:
        return []
    low = _first(f.msgs).filter(pl.col("is_request") & (pl.col("max_forwards") <= 1) & (pl.col("method") != "OPTIONS"))
    if low.is_empty():
        return []
    return [Hit(f"{len(low)} request(s) arrived with Max-Forwards {low['max_forwards'].min()}.",
                low["frame"].to_list()[:20], {"min_max_forwards": low["max_forwards"].min(), "requests": len(low)})]


@rule("sip.request_not_forwarded", "error", "ACK/BYE not passed on by a proxy",
      "The proxy received the in-dialog request (it Record-Routed the call) but never sent it on: check its routing "
      "of in-dialog requests (loose routing, Route headers) and its dialog state.")
def request_not_forwarded(f: CallFacts, th: Thresholds) -> list[Hit]:
    forwarding = f.call["forwarding"] or []
    proxies = {e["proxy"] for e in forwarding if e["message"] == "INVITE"}
    if not proxies or not f.methods & {"ACK", "BYE"}:
        return []
    passed_on = {e["frames"][0] for e in forwarding}
    late_enough = f.capture_end_ns - int(th.bye_answer_s * 1e9)
    first = _first(f.msgs)
    # ACK of a 2xx only: the ACK of a failure is hop-local, even when a UA (wrongly) gives it a new branch
    answered = first.filter(~pl.col("is_request") & (pl.col("cseq_method") == "INVITE")
                            & pl.col("status_code").is_between(200, 299)).select("call_id", "cseq_num").unique()
    acks_of_2xx = first.filter(pl.col("method") == "ACK").join(answered, on=["call_id", "cseq_num"], how="semi")
    stuck = pl.concat([acks_of_2xx, first.filter(pl.col("is_request") & (pl.col("method") == "BYE"))]).filter(
        (pl.col("txn_method") != "INVITE") & pl.col("dst").is_in(list(proxies))
        & ~pl.col("frame").is_in(list(passed_on)) & (pl.col("ts_ns") <= late_enough)).sort("msg_id")
    return [Hit(f"Proxy {r['dst']} received the {r['method']} from {r['src']} but never passed it on.", [r["frame"]],
                {"proxy": r["dst"], "method": r["method"], "src": r["src"]}) for r in stuck.to_dicts()]

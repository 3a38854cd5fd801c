"""Signalling rules of flowviz diagnose on ladders typed by hand (expected findings come from the ladder)."""

from __future__ import annotations

import polars as pl

from flowviz.analysis.diagnose import RULES, Thresholds, at_least, diagnose, problems_by_call
from flowviz.schemas import RTP_PACKETS
from tests.unit import test_correlation_hops as hops
from tests.unit.test_correlation_calls import UA1, UA2, _call
from tests.kit.sip_ladders import T0_NS, forwarded, request, response, sip_frame

NO_RTP = pl.DataFrame(schema=RTP_PACKETS)


def run(ladder, *, end_ms: float | None = None, **thresholds) -> list[dict]:
    """Findings of a ladder; the capture ends at `end_ms` (else at its last message)."""
    end = T0_NS + int(end_ms * 1e6) if end_ms is not None else None
    return diagnose(sip_frame(sorted(ladder, key=lambda m: m[0])), NO_RTP, capture_end_ns=end,
                    thresholds=Thresholds().with_overrides(**thresholds))


def rules(findings: list[dict]) -> list[str]:
    return [f["rule"] for f in findings]


def only(findings: list[dict], rule_id: str) -> dict:
    [found] = [f for f in findings if f["rule"] == rule_id]
    return found


def test_clean_call_triggers_nothing():
    assert run(_call("ok", UA1, UA2, 0, bye=5000)) == []


def test_every_finding_has_the_promised_keys_and_every_rule_its_texts():
    [found] = run(_call("busy", UA1, UA2, 0, final=(486, "Busy Here")))
    assert list(found) == ["call_group_id", "rule", "severity", "title", "explanation", "evidence", "hint"]
    assert found["evidence"]["frames"] == [4]  # the 486 is message 4 of the ladder
    for r in RULES.values():
        assert r.severity in ("info", "warning", "error") and r.title and r.hint and r.id.count(".") == 1


def _invite(call_id="c1"):
    return request("INVITE", call_id=call_id, cseq=1, vias=[("10.0.0.1:5060", f"z9hG4bK-{call_id}")])


def test_rejected_call_explains_its_code_with_reason_and_warning():
    inv = _invite()
    fail = response(503, "Service Unavailable", inv, to_tag="gw",
                    headers=("Reason: Q.850;cause=34", 'Warning: 399 gw1 "no circuit"'))
    found = only(run([(0, UA1, UA2, inv), (1, UA2, UA1, response(100, "Trying", inv)), (40, UA2, UA1, fail)]),
                 "sip.rejected")
    assert found["severity"] == "warning" and found["evidence"]["frames"] == [3]
    assert "503 Service Unavailable (service unavailable" in found["explanation"]
    assert "Reason: Q.850;cause=34" in found["explanation"] and "no circuit" in found["explanation"]
    assert found["evidence"]["values"]["sent_by"] == UA2


def test_cancelled_call_is_information_only():
    inv = _invite()
    cancel = request("CANCEL", call_id="c1", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-c1")])
    ladder = [(0, UA1, UA2, inv), (50, UA2, UA1, response(180, "Ringing", inv, to_tag="t")),
              (500, UA1, UA2, cancel), (501, UA2, UA1, response(200, "OK", cancel)),
              (502, UA2, UA1, response(487, "Request Terminated", inv, to_tag="t"))]
    assert [(f["rule"], f["severity"]) for f in run(ladder)] == [("sip.cancelled", "info")]


def test_unanswered_invite_times_out_and_its_retransmissions_are_counted():
    inv = _invite()
    ladder = [(t, UA1, UA2, inv) for t in (0, 500, 1500, 3500, 7500)]  # timer A: 500 ms, doubling
    findings = run(ladder, end_ms=40_000)
    assert rules(findings) == ["sip.no_final_response", "sip.invite_retransmitted"]
    assert only(findings, "sip.no_final_response")["evidence"]["values"]["waited_s"] == 40.0
    retx = only(findings, "sip.invite_retransmitted")
    assert retx["evidence"]["values"]["retransmissions"] == 4 and retx["evidence"]["frames"] == [1, 2, 3, 4, 5]
    # one repeat is below the threshold of 2, and 10 s is not timer B yet: only the cut is told
    assert rules(run(ladder[:2], end_ms=10_000)) == ["capture.ends_mid_call"]


def test_200_ok_retransmitted_without_ack():
    ladder = [m for m in _call("na", UA1, UA2, 0) if not m[3].startswith("ACK")]
    ok = ladder[3]
    ladder += [(t, *ok[1:]) for t in (1500, 2500, 4500)]  # timer G: 500 ms doubling, no ACK arrives
    found = only(run(ladder), "sip.ok_without_ack")
    assert found["severity"] == "error"
    assert found["evidence"]["values"] == {"src": UA2, "dst": UA1, "retransmissions": 3, "ack_seen": False}
    assert found["evidence"]["frames"] == [4, 5, 6, 7]


def test_slow_hop_names_the_proxy():
    ladder = hops.forking_ladder()
    # P1 forwards the INVITE 800 ms after it got it (instead of 1 ms): everything after it comes later too
    ladder = ladder[:2] + [(t + 799.0, *rest) for t, *rest in ladder[2:]]
    found = only(run(ladder), "sip.slow_hop")
    assert found["evidence"]["values"] == {"proxy": hops.P1, "message": "INVITE", "delay_ms": 800.0}
    assert hops.P1 in found["explanation"] and found["evidence"]["frames"] == [1, 3]
    assert "sip.slow_hop" not in rules(run(hops.forking_ladder()))


def test_long_srd_against_an_overridden_threshold():
    ladder = _call("srd", UA1, UA2, 0, bye=5000)  # 180 Ringing 50 ms after the INVITE
    found = only(run(ladder, srd_ms=40), "sip.long_srd")
    assert found["evidence"]["values"] == {"srd_ms": 50, "threshold_ms": 40}


def test_register_challenged_twice_in_a_row_is_an_auth_loop():
    ladder = []
    for n, t in ((1, 0), (2, 100), (3, 200)):
        reg = request("REGISTER", call_id="reg", cseq=n, vias=[("10.0.0.1:5060", f"z9hG4bK-r{n}")], callee=("alice", None))
        code = (401, "Unauthorized") if n < 3 else (403, "Forbidden")
        ladder += [(t, UA1, UA2, reg), (t + 5, UA2, UA1, response(*code, reg, to_tag=f"s{n}"))]
    findings = run(ladder)
    loop = only(findings, "sip.auth_loop")
    assert loop["evidence"]["values"] == {"method": "REGISTER", "challenges": 2}
    assert only(findings, "sip.rejected")["evidence"]["values"]["status_code"] == 403
    assert "sip.auth_loop" not in rules(run(ladder[:2] + ladder[4:]))  # one challenge then the answer: normal


def test_cancel_crossing_the_200_ok():
    inv = _invite()
    cancel = request("CANCEL", call_id="c1", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-c1")])
    ack = request("ACK", call_id="c1", cseq=1, callee=("bob", "t"), vias=[("10.0.0.1:5060", "z9hG4bK-ack")])
    bye = request("BYE", call_id="c1", cseq=2, callee=("bob", "t"), vias=[("10.0.0.1:5060", "z9hG4bK-bye")])
    ladder = [(0, UA1, UA2, inv), (50, UA2, UA1, response(180, "Ringing", inv, to_tag="t")),
              (500, UA1, UA2, cancel), (501, UA2, UA1, response(200, "OK", inv, to_tag="t")),
              (502, UA2, UA1, response(200, "OK", cancel)), (503, UA1, UA2, ack), (504, UA1, UA2, bye),
              (505, UA2, UA1, response(200, "OK", bye))]
    found = only(run(ladder), "sip.cancel_race")
    assert found["evidence"]["values"] == {"after_cancel_ms": 1.0, "bye_sent": True}
    assert found["evidence"]["frames"] == [3, 4, 7]


def test_bye_without_final_response():
    ladder = _call("b", UA1, UA2, 0, bye=3000)[:-1]  # the BYE's 200 never comes
    found = only(run(ladder, end_ms=9000), "sip.bye_unanswered")
    assert found["evidence"]["frames"] == [6] and found["evidence"]["values"]["src"] == UA1
    assert "sip.bye_unanswered" not in rules(run(ladder, end_ms=4000))  # capture ended 1 s after the BYE
    refused = ladder + [(3002, UA2, UA1, response(500, "Request out of order", ladder[-1][3]))]
    found = only(run(refused), "sip.bye_unanswered")
    assert found["evidence"]["values"]["status_code"] == 500 and found["evidence"]["frames"] == [6, 7]
    assert "500 Request out of order" in found["explanation"]


def test_481_to_bye_and_483_with_max_forwards_exhausted():
    ladder = _call("d", UA1, UA2, 0, bye=3000)
    bye = ladder[-2][3]
    ladder[-1] = (3002, UA2, UA1, response(481, "Call/Transaction Does Not Exist", bye))
    found = only(run(ladder), "sip.dialog_or_loop_error")
    assert found["evidence"]["values"] == {"status_code": 481, "method": "BYE", "sent_by": UA2}
    inv = _invite().replace("Max-Forwards: 70", "Max-Forwards: 0")
    findings = run([(0, UA1, UA2, inv), (1, UA2, UA1, response(483, "Too Many Hops", inv, to_tag="x"))])
    assert rules(findings) == ["sip.dialog_or_loop_error", "sip.max_forwards_exhausted"]  # not also "rejected"
    assert only(findings, "sip.max_forwards_exhausted")["evidence"]["values"]["min_max_forwards"] == 0


def test_messages_captured_twice_are_duplicates_not_retransmissions():
    inv = _invite()
    ladder = [(t + d, UA1, UA2, inv) for t in (0, 500, 1500, 3500, 7500) for d in (0, 0.2)]  # each copy seen twice
    findings = run(ladder, end_ms=40_000)
    assert only(findings, "sip.invite_retransmitted")["evidence"]["values"]["retransmissions"] == 4
    duplicates = only(findings, "capture.duplicate_packets")
    assert duplicates["severity"] == "info" and duplicates["evidence"]["frames"] == [2, 4, 6, 8, 10]


def test_ack_reaching_a_proxy_that_never_passes_it_on():
    ack = request("ACK", call_id="fork", cseq=1, callee=("bob", "u2"), vias=[("10.0.0.1:5060", "z9hG4bK-ack")])
    ladder = hops.forking_ladder() + [(904.0, hops.UA1, hops.P1, ack)]
    found = only(run(ladder, end_ms=10_000), "sip.request_not_forwarded")
    assert found["evidence"]["values"] == {"proxy": hops.P1, "method": "ACK", "src": hops.UA1}
    assert found["evidence"]["frames"] == [14]
    passed = ladder + [(904.3, hops.P1, hops.UA2, forwarded(ack, sent_by="10.0.0.2:5060", branch="z9hG4bK-p1ack"))]
    assert "sip.request_not_forwarded" not in rules(run(passed, end_ms=10_000))
    assert "sip.request_not_forwarded" not in rules(run(ladder))  # the capture ends right after it: no verdict


def test_ack_of_a_failure_with_a_new_branch_stays_hop_local():
    inv = request("INVITE", call_id="f", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-f")])
    to2 = forwarded(inv, sent_by="10.0.0.2:5060", branch="z9hG4bK-p1f")
    ack = request("ACK", call_id="f", cseq=1, callee=("bob", "x"), vias=[("10.0.0.1:5060", "z9hG4bK-new")])  # 17.1.1.3 broken
    ladder = [(0, hops.UA1, hops.P1, inv), (1, hops.P1, hops.UA2, to2),
              (20, hops.UA2, hops.P1, response(407, "Proxy Authentication Required", to2, to_tag="x")),
              (21, hops.P1, hops.UA1, response(407, "Proxy Authentication Required", inv, to_tag="x")),
              (22, hops.UA1, hops.P1, ack)]
    assert "sip.request_not_forwarded" not in rules(run(ladder, end_ms=10_000))


def test_problems_grouped_by_call_and_filtered_by_severity():
    busy = _call("busy", UA1, UA2, 0, final=(486, "Busy Here"))
    open_call = _call("open", UA1, UA2, 10_000, caller=("carol", "c1"))  # answered, no BYE: capture ends mid-call
    findings = run(busy + open_call)
    problems = problems_by_call(findings)
    assert {g: [p["rule"] for p in ps] for g, ps in problems.items()} == {
        findings[0]["call_group_id"]: ["sip.rejected"], findings[1]["call_group_id"]: ["capture.ends_mid_call"]}
    assert [f["rule"] for f in at_least(findings, "warning")] == ["sip.rejected"]
    assert at_least(findings, "error") == []

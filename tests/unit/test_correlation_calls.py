"""Call groups, legs and states: built ladders, expected values from the ladder itself."""

from __future__ import annotations

import hashlib

from tests.kit.sip_ladders import offer, request, response, sip_frame

from flowviz.sip.calls import summarize_calls

UA1, B2B, UA2 = "10.0.0.1:5060", "10.0.0.5:5060", "10.0.0.9:5060"


def _call(call_id: str, src: str, dst: str, t0: float, *, caller=("alice", "a1"), callee=("bob", None),
          final=(200, "OK"), headers=(), bye: float | None = None, sent_by="10.0.0.1:5060") -> list:
    inv = request("INVITE", call_id=call_id, cseq=1, vias=[(sent_by, f"z9hG4bK-{call_id}")], caller=caller,
                  callee=callee, headers=headers)
    tag = f"t-{call_id}"
    ladder = [(t0, src, dst, inv), (t0 + 1, dst, src, response(100, "Trying", inv)),
              (t0 + 50, dst, src, response(180, "Ringing", inv, to_tag=tag)),
              (t0 + 1000, dst, src, response(final[0], final[1], inv, to_tag=tag))]
    if final[0] < 300:
        ladder.append((t0 + 1001, src, dst, request("ACK", call_id=call_id, cseq=1, caller=caller,
                                                    callee=(callee[0], tag), vias=[(sent_by, f"z9hG4bK-ack-{call_id}")])))
    if bye is not None:
        b = request("BYE", call_id=call_id, cseq=2, caller=caller, callee=(callee[0], tag), vias=[(sent_by, f"z9hG4bK-bye-{call_id}")])
        ladder += [(t0 + bye, src, dst, b), (t0 + bye + 2, dst, src, response(200, "OK", b))]
    return ladder


def test_call_group_id_is_10_hex_of_sha1_of_sorted_call_ids():
    [call] = summarize_calls(sip_frame(_call("x@h", UA1, UA2, 0, bye=5000)))
    assert call["call_group_id"] == hashlib.sha1(b"x@h").hexdigest()[:10]
    assert call["state"] == "completed" and call["hung_up_by"] == "caller"
    assert (call["srd_ms"], call["setup_ms"], call["duration_s"], call["disconnect_ms"]) == (50, 1000, 4.0, 2)


def test_b2bua_legs_linked_by_x_cid_header():
    a = _call("A-leg", UA1, B2B, 0, bye=5000)
    b = _call("B-leg", B2B, UA2, 3, headers=("X-CID: A-leg",), bye=4990, sent_by="10.0.0.5:5060")
    [call] = summarize_calls(sip_frame(sorted(a + b)))
    assert call["call_ids"] == ["A-leg", "B-leg"]
    assert call["call_group_id"] == hashlib.sha1(b"A-leg\nB-leg").hexdigest()[:10]
    assert call["legs"][1]["link_kind"] == "header:X-CID"
    assert "X-CID: A-leg" in call["legs"][1]["evidence"]
    assert call["hosts"] == [UA1, B2B, UA2] and call["host_roles"] == ["UA", "B2BUA", "UA"]
    assert call["hop_delays_ms"] == [1, 1]  # one link per leg: INVITE -> 100 Trying 1 ms later on each


def test_b2bua_without_header_linked_by_heuristic_with_evidence():
    a = _call("A2", UA1, B2B, 0, callee=("2302", None), bye=5000)
    b = _call("B2", B2B, UA2, 4, callee=("bob", None), bye=4990, sent_by="10.0.0.5:5060")
    other = _call("C2", "10.0.0.7:5060", UA2, 2000, caller=("carol", "c1"), sent_by="10.0.0.7:5060")  # not a leg
    calls = summarize_calls(sip_frame(sorted(a + b + other)))
    assert [c["call_ids"] for c in calls] == [["A2", "B2"], ["C2"]]
    leg = calls[0]["legs"][1]
    assert leg["link_kind"] == "heuristic"
    assert "'alice'" in leg["evidence"] and "10.0.0.5" in leg["evidence"] and "4.0 ms" in leg["evidence"]


def test_two_calls_from_the_same_caller_through_a_proxy_host_are_not_legs():
    # Same users, but the second INVITE starts at the caller, not at the host the first entered.
    calls = summarize_calls(sip_frame(sorted(_call("k1", UA1, B2B, 0) + _call("k2", UA1, B2B, 10))))
    assert [c["call_ids"] for c in calls] == [["k1"], ["k2"]]


def test_states_from_final_responses():
    cases = {(486, "Busy Here"): "busy", (600, "Busy Everywhere"): "busy", (487, "Request Terminated"): "cancelled",
             (302, "Moved Temporarily"): "diverted", (404, "Not Found"): "rejected", (200, "OK"): "in call"}
    for final, state in cases.items():
        [call] = summarize_calls(sip_frame(_call("s", UA1, UA2, 0, final=final)))
        assert (call["state"], call["final_status"]) == (state, final[0]), final


def test_reinvite_hold_and_resume_do_not_change_the_call_outcome():
    ladder = _call("h", UA1, UA2, 0, bye=9000)
    for t, cseq, direction in ((4000, 3, "sendonly"), (6000, 4, "sendrecv")):
        reinvite = request("INVITE", call_id="h", cseq=cseq, vias=[("10.0.0.1:5060", f"z9hG4bK-re{cseq}")],
                           callee=("bob", "t-h"), sdp=offer(direction))
        ladder += [(t, UA1, UA2, reinvite), (t + 5, UA2, UA1, response(200, "OK", reinvite))]
    info = request("INFO", call_id="h", cseq=5, vias=[("10.0.0.1:5060", "z9hG4bK-info")], callee=("bob", "t-h"))
    ladder += [(7000, UA1, UA2, info), (7002, UA2, UA1, response(200, "OK", info))]
    [call] = summarize_calls(sip_frame(sorted(ladder, key=lambda m: m[0])))
    assert call["state"] == "completed" and call["setup_ms"] == 1000 and call["duration_s"] == 8.0
    assert [(e["method"], e["hold"], e["status"]) for e in call["in_dialog"]] == [
        ("re-INVITE", "hold", 200), ("re-INVITE", "resume", 200), ("INFO", None, 200)]


def test_register_challenge_then_success():
    r1 = request("REGISTER", call_id="reg", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-r1")], callee=("alice", None))
    r2 = request("REGISTER", call_id="reg", cseq=2, vias=[("10.0.0.1:5060", "z9hG4bK-r2")], callee=("alice", None),
                 headers=('Authorization: Digest username="alice"',))
    ladder = [(0, UA1, B2B, r1), (3, B2B, UA1, response(401, "Unauthorized", r1, to_tag="r")),
              (10, UA1, B2B, r2), (14, B2B, UA1, response(200, "OK", r2, to_tag="r"))]
    [call] = summarize_calls(sip_frame(ladder))
    assert (call["method"], call["state"], call["final_status"]) == ("REGISTER", "completed", 200)


def test_capture_ending_mid_call_or_before_any_answer():
    [answered] = summarize_calls(sip_frame(_call("m", UA1, UA2, 0)), capture_end_ns=None)
    assert answered["state"] == "in call"
    silent = request("INVITE", call_id="q", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-q")])
    options = request("OPTIONS", call_id="o", cseq=1, vias=[("10.0.0.3:5060", "z9hG4bK-o")])
    lost, unanswered = summarize_calls(sip_frame([(0, UA1, UA2, silent), (40_000, "10.0.0.3:5060", UA2, options)]))
    assert (lost["call_ids"], lost["state"]) == (["q"], "timed out")  # no answer and the capture went on past Timer B (32 s)


def test_ipv6_and_tcp_hosts():
    a, b = "[2001:db8::1]:5060", "[2001:db8::2]:5060"
    [call] = summarize_calls(sip_frame(_call("v6", a, b, 0, sent_by="[2001:db8::1]:5060", bye=2000), transport="tcp"))
    assert call["hosts"] == [a, b] and call["state"] == "completed"


def test_call_whose_invite_is_before_the_capture_is_unknown():
    bye = request("BYE", call_id="late", cseq=5, vias=[("10.0.0.1:5060", "z9hG4bK-late")], callee=("bob", "t"))
    [call] = summarize_calls(sip_frame([(0, UA1, UA2, bye), (2, UA2, UA1, response(200, "OK", bye))]))
    assert call["state"] == "unknown" and call["call_ids"] == ["late"]


def test_302_redirect_followed_to_the_new_target():
    first = request("INVITE", call_id="r", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-r1")])
    moved = response(302, "Moved Temporarily", first, to_tag="x", headers=("Contact: <sip:bob@10.0.0.9>",))
    ack = request("ACK", call_id="r", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-r1")], callee=("bob", "x"))
    second = request("INVITE", call_id="r", cseq=2, vias=[("10.0.0.1:5060", "z9hG4bK-r2")])
    redirect_server = "10.0.0.8:5060"
    ladder = [(0, UA1, redirect_server, first), (2, redirect_server, UA1, moved), (3, UA1, redirect_server, ack),
              (10, UA1, UA2, second), (40, UA2, UA1, response(180, "Ringing", second, to_tag="y")),
              (900, UA2, UA1, response(200, "OK", second, to_tag="y"))]
    [call] = summarize_calls(sip_frame(ladder))
    assert call["hosts"] == [UA1, redirect_server, UA2]  # where it was sent, then where it went
    assert (call["state"], call["final_status"]) == ("in call", 200)
    assert (call["srd_ms"], call["setup_ms"]) == (30, 890)  # measured from the INVITE that was answered
    [not_followed] = summarize_calls(sip_frame(ladder[:3]))
    assert (not_followed["state"], not_followed["final_status"]) == ("diverted", 302)


def test_b2bua_legs_linked_by_rfc7989_session_id():
    sid = "Session-ID: ab30317f1a784dc48ff824d0d3715d86;remote=00000000000000000000000000000000"
    a = _call("SA", UA1, B2B, 0, headers=(sid,), callee=("2302", None))
    b = _call("SB", B2B, UA2, 3, headers=(sid,), caller=("pbx", "p1"), sent_by="10.0.0.5:5060")
    [call] = summarize_calls(sip_frame(sorted(a + b)))
    assert call["call_ids"] == ["SA", "SB"]
    assert call["legs"][1]["link_kind"] == "header:Session-ID"
    assert "ab30317f1a784dc48ff824d0d3715d86" in call["legs"][1]["evidence"]


def test_subscribe_with_its_notify_is_one_exchange():
    sub = request("SUBSCRIBE", call_id="sub", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-sub")], headers=("Event: presence",))
    notify = request("NOTIFY", call_id="sub", cseq=1, vias=[("10.0.0.9:5060", "z9hG4bK-ntf")], caller=("bob", "n1"),
                     callee=("alice", "a1"), headers=("Event: presence", "Subscription-State: active"))
    ladder = [(0, UA1, UA2, sub), (5, UA2, UA1, response(202, "Accepted", sub, to_tag="n1")),
              (6, UA2, UA1, notify), (8, UA1, UA2, response(200, "OK", notify))]
    [call] = summarize_calls(sip_frame(ladder))
    assert (call["method"], call["state"], call["final_status"], call["setup_ms"]) == ("SUBSCRIBE", "completed", 202, 5)
    assert [(e["method"], e["status"]) for e in call["in_dialog"]] == [("NOTIFY", 200)]
    assert call["srd_ms"] is None  # SRD is an INVITE measure


def test_busy_b2bua_with_one_caller_pairs_each_b_leg_with_its_own_a_leg():
    # 300 overlapping calls, all from "alice" to "bob" through one B2BUA, a new one every 20 ms:
    # each B-leg leaves 4 ms after its own A-leg arrived, while 50 other A-legs are still ringing.
    ladder = []
    for i in range(300):
        ladder += _call(f"A{i}", UA1, B2B, 20 * i, bye=5000)
        ladder += _call(f"B{i}", B2B, UA2, 20 * i + 4, bye=4990, sent_by="10.0.0.5:5060")
    calls = summarize_calls(sip_frame(sorted(ladder, key=lambda m: m[0])))
    assert sorted(tuple(c["call_ids"]) for c in calls) == sorted((f"A{i}", f"B{i}") for i in range(300))


def test_long_register_refresh_series_is_one_exchange_measured_at_its_first_success():
    ladder = []
    for n in range(1, 1501):  # a UA refreshing its binding 1500 times under one Call-ID
        reg = request("REGISTER", call_id="refresh", cseq=n, vias=[("10.0.0.1:5060", f"z9hG4bK-{n}")],
                      callee=("alice", None))
        ladder += [(n * 1000.0, UA1, B2B, reg), (n * 1000.0 + 7, B2B, UA1, response(200, "OK", reg, to_tag="r"))]
    [call] = summarize_calls(sip_frame(ladder))
    assert (call["state"], call["messages"], call["setup_ms"]) == ("completed", 3000, 7)


def test_null_session_id_links_nothing():
    null = "Session-ID: 00000000000000000000000000000000"
    calls = summarize_calls(sip_frame(sorted(_call("N1", UA1, UA2, 0, headers=(null,))
                                             + _call("N2", "10.0.0.7:5060", UA2, 5, headers=(null,), caller=("carol", "c")))))
    assert [c["call_ids"] for c in calls] == [["N1"], ["N2"]]


def test_new_call_id_under_the_kept_via_stack_is_a_via_link():
    from tests.kit.sip_ladders import forwarded

    inv = request("INVITE", call_id="outside", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-out")])
    inside = forwarded(inv, sent_by="10.0.0.5:5060", branch="z9hG4bK-sbc").replace("Call-ID: outside", "Call-ID: inside")
    ladder = [(0, UA1, B2B, inv), (2, B2B, UA2, inside), (40, UA2, B2B, response(180, "Ringing", inside, to_tag="u")),
              (41, B2B, UA1, response(180, "Ringing", inv, to_tag="u"))]
    [call] = summarize_calls(sip_frame(ladder))
    assert call["call_ids"] == ["outside", "inside"]
    assert call["legs"][1]["link_kind"] == "via" and "z9hG4bK-out" in call["legs"][1]["evidence"]

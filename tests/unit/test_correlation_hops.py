"""Hops by the Via stack (RFC 3261 16.6, 16.7, 16.12): forwarding, forking, responses back, loose routing."""

from __future__ import annotations

from tests.kit.sip_ladders import forwarded, request, response, sip_frame

from flowviz.sip.calls import summarize_calls
from flowviz.sip.hops import request_hops, response_hops
from flowviz.sip.transactions import with_transactions

UA1, P1, UA2, UA3 = "10.0.0.1:5060", "10.0.0.2:5060", "10.0.0.3:5060", "10.0.0.4:5060"


def forking_ladder():
    """P1 forks the INVITE to UA2 and UA3 in parallel; UA2 answers, P1 cancels UA3 (16.7 step 10)."""
    inv = request("INVITE", call_id="fork", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-a")])
    to2 = forwarded(inv, sent_by="10.0.0.2:5060", branch="z9hG4bK-p1.1")
    to3 = forwarded(inv, sent_by="10.0.0.2:5060", branch="z9hG4bK-p1.2")
    ring2, ring3 = response(180, "Ringing", to2, to_tag="u2"), response(180, "Ringing", to3, to_tag="u3")
    ok2 = response(200, "OK", to2, to_tag="u2")
    cancel3 = request("CANCEL", call_id="fork", cseq=1, vias=[("10.0.0.2:5060", "z9hG4bK-p1.2"), ("10.0.0.1:5060", "z9hG4bK-a")])
    return [
        (0.0, UA1, P1, inv),
        (0.1, P1, UA1, response(100, "Trying", inv)),
        (1.0, P1, UA2, to2),  # forwarded 1.0 ms after P1 received it
        (1.5, P1, UA3, to3),  # second branch of the fork
        (20.0, UA2, P1, ring2),
        (20.4, P1, UA1, response(180, "Ringing", inv, to_tag="u2")),
        (25.0, UA3, P1, ring3),
        (25.3, P1, UA1, response(180, "Ringing", inv, to_tag="u3")),
        (900.0, UA2, P1, ok2),
        (900.5, P1, UA1, response(200, "OK", inv, to_tag="u2")),
        (901.0, P1, UA3, cancel3),
        (902.0, UA3, P1, response(200, "OK", cancel3)),
        (903.0, UA3, P1, response(487, "Request Terminated", to3, to_tag="u3")),
    ]


def test_forwarded_copy_is_linked_by_via1_equal_to_received_via0_with_its_delay():
    msgs = with_transactions(sip_frame(forking_ladder()))
    hops = request_hops(msgs)
    invites = hops.filter(hops["method"] == "INVITE")
    assert invites["up_msg"].to_list() == [0, 0]  # one received INVITE, two forwarded copies: a fork
    assert invites["proxy"].to_list() == [P1, P1]
    assert [round(ns / 1e6, 3) for ns in invites["forward_ns"].to_list()] == [1.0, 1.5]


def test_responses_travel_back_through_the_proxy_and_100_is_never_forwarded():
    msgs = with_transactions(sip_frame(forking_ladder()))
    back = response_hops(msgs, request_hops(msgs))
    assert sorted(back["status_code"].to_list()) == [180, 180, 200]  # 487 stays at P1 (it answers 200 upstream)
    assert 100 not in back["status_code"].to_list()
    assert [round(ns / 1e6, 3) for ns in back.sort("down_msg")["forward_ns"].to_list()] == [0.4, 0.3, 0.5]


def test_forking_keeps_both_branches_and_both_early_dialogs():
    [call] = summarize_calls(sip_frame(forking_ladder()))
    assert call["hosts"] == [UA1, P1, UA2, UA3]  # branch 1 walked first, then branch 2
    assert call["host_roles"] == ["UA", "proxy", "UA", "UA"]
    assert call["dialogs"] == 2  # two early dialogs (To tags u2, u3), one confirmed
    assert call["forks"] == [{"proxy": P1, "frame": 1, "branches": [UA2, UA3]}]
    assert call["state"] == "in call" and call["final_status"] == 200
    assert call["srd_ms"] == 20.4  # first 180 at the caller, not P1's 100 Trying at 0.1 ms
    assert call["hop_delays_ms"] == [0.1, 19.0, 23.5]  # per link: INVITE -> first answer from the next hop


def test_in_dialog_request_routed_by_route_headers_is_a_hop_too():
    bye = request("BYE", call_id="rr", cseq=2, vias=[("10.0.0.1:5060", "z9hG4bK-bye")], callee=("bob", "u2"),
                  headers=("Route: <sip:10.0.0.2;lr>",))
    on = forwarded(bye, sent_by="10.0.0.2:5060", branch="z9hG4bK-p1bye")
    ladder = [(0, UA1, P1, bye), (0.7, P1, UA2, on), (5, UA2, P1, response(200, "OK", on)),
              (5.2, P1, UA1, response(200, "OK", bye))]
    msgs = with_transactions(sip_frame(ladder))
    hops = request_hops(msgs)
    assert hops["up_msg"].to_list() == [0] and hops["down_msg"].to_list() == [1]
    assert response_hops(msgs, hops)["up_msg"].to_list() == [3]


def test_stateless_proxy_is_linked_by_the_same_via_rule():
    # A stateless proxy (16.11) sends no 100 of its own and keeps no transaction; it still pushes a Via.
    inv = request("INVITE", call_id="sl", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-sl")])
    on = forwarded(inv, sent_by="10.0.0.2:5060", branch="z9hG4bK-sl-p1")
    ladder = [(0, UA1, P1, inv), (0.2, P1, UA2, on), (30, UA2, P1, response(180, "Ringing", on, to_tag="u")),
              (30.1, P1, UA1, response(180, "Ringing", inv, to_tag="u")),
              (800, UA2, P1, response(486, "Busy Here", on, to_tag="u")),
              (800.1, P1, UA1, response(486, "Busy Here", inv, to_tag="u"))]
    [call] = summarize_calls(sip_frame(ladder))
    assert call["hosts"] == [UA1, P1, UA2] and call["host_roles"] == ["UA", "proxy", "UA"]
    assert call["hop_delays_ms"] == [30.1, 29.8]  # no 100 anywhere: the first answer per link is the 180
    assert [(f["message"], f["ms"]) for f in call["forwarding"]] == [("INVITE", 0.2), ("180 (INVITE)", 0.1),
                                                                      ("486 (INVITE)", 0.1)]
    assert (call["state"], call["final_status"]) == ("busy", 486)


def test_topology_hiding_hop_that_rewrites_the_vias_is_a_b2bua_on_the_path():
    # The SBC sends the INVITE on with only its own Via (no link by via[1]) but keeps the Call-ID.
    sbc_out = "10.0.0.2:5070"
    inv = request("INVITE", call_id="th", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-a")])
    hidden = request("INVITE", call_id="th", cseq=1, vias=[("10.0.0.2:5070", "z9hG4bK-sbc")])
    ladder = [(0, UA1, P1, inv), (0.1, P1, UA1, response(100, "Trying", inv)), (2, sbc_out, UA2, hidden),
              (2.5, UA2, sbc_out, response(100, "Trying", hidden)),
              (30, UA2, sbc_out, response(180, "Ringing", hidden, to_tag="u")),
              (31, P1, UA1, response(180, "Ringing", inv, to_tag="s"))]
    [call] = summarize_calls(sip_frame(ladder))
    assert call["hosts"] == [UA1, P1, sbc_out, UA2]
    assert call["host_roles"] == ["UA", "B2BUA", "B2BUA", "UA"]
    assert call["hop_delays_ms"] == [0.1, 0.5]
    assert call["srd_ms"] == 31  # the caller's own link decides

"""The built scenarios again, this time written as real pcap files and read back through ingest
(tshark decoding included), so the whole chain capture -> calls is tested. Ladders and expected values
are the ones typed by hand in the other test_correlation_* files."""

from __future__ import annotations

import pytest

from flowviz.analysis.kpis import capture_kpis
from flowviz.ingest import read_capture
from flowviz.sip.calls import summarize_calls
from tests.unit.test_correlation_calls import B2B, UA1, UA2, _call
from tests.unit import test_correlation_hops as fork
from tests.kit.sip_ladders import offer, request, response, write_pcap


@pytest.fixture
def through_capture(tmp_path):
    def run(ladder):
        path = tmp_path / "built.pcap"
        write_pcap(sorted(ladder, key=lambda m: m[0]), path)
        sip = read_capture(path, use_cache=False).sip_messages
        assert len(sip) == len(ladder)
        return sip
    return run


def test_retransmitted_invite_and_200(through_capture):
    ladder = _call("rt", UA1, UA2, 0, bye=3000)
    ladder += [(500, *ladder[0][1:]), (1500, *ladder[3][1:])]  # INVITE again (timer A), 200 again (no ACK yet)
    [call] = summarize_calls(through_capture(ladder))
    assert (call["retransmissions"], call["messages"]) == (2, 9)  # INVITE,100,180,200,ACK,BYE,200 + 2
    assert (call["state"], call["srd_ms"], call["setup_ms"]) == ("completed", 50, 1000)


def test_forking_to_two_uas(through_capture):
    [call] = summarize_calls(through_capture(fork.forking_ladder()))
    assert call["hosts"] == [fork.UA1, fork.P1, fork.UA2, fork.UA3] and call["dialogs"] == 2
    assert (call["state"], call["final_status"]) == ("in call", 200)


def test_b2bua_x_cid_and_heuristic(through_capture):
    a = _call("A-leg", UA1, B2B, 0, bye=5000)
    b = _call("B-leg", B2B, UA2, 3, headers=("X-CID: A-leg",), bye=4990, sent_by="10.0.0.5:5060")
    c = _call("C-leg", UA1, B2B, 20_000, callee=("2302", None))
    d = _call("D-leg", B2B, UA2, 20_004, sent_by="10.0.0.5:5060")
    calls = summarize_calls(through_capture(a + b + c + d))
    assert [(call["call_ids"], call["legs"][1]["link_kind"]) for call in calls] == [
        (["A-leg", "B-leg"], "header:X-CID"), (["C-leg", "D-leg"], "heuristic")]


def test_302_redirect(through_capture):
    ladder = _call("r", UA1, UA2, 0, final=(302, "Moved Temporarily"))
    [call] = summarize_calls(through_capture(ladder))
    assert (call["state"], call["final_status"]) == ("diverted", 302)


def test_register_401_then_200_rrd(through_capture):
    r1 = request("REGISTER", call_id="reg", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-r1")], callee=("alice", None))
    r2 = request("REGISTER", call_id="reg", cseq=2, vias=[("10.0.0.1:5060", "z9hG4bK-r2")], callee=("alice", None),
                 headers=('Authorization: Digest username="alice"',))
    ladder = [(0, UA1, B2B, r1), (3, B2B, UA1, response(401, "Unauthorized", r1, to_tag="r")),
              (10, UA1, B2B, r2), (14, B2B, UA1, response(200, "OK", r2, to_tag="r"))]
    kpis = {k["kpi"]: k for k in capture_kpis(through_capture(ladder))}
    assert (kpis["RRD"]["value"], kpis["RRD"]["count"]) == (4, 1)


def test_reinvite_on_hold(through_capture):
    ladder = _call("h", UA1, UA2, 0, bye=9000)
    hold = request("INVITE", call_id="h", cseq=3, vias=[("10.0.0.1:5060", "z9hG4bK-hold")], callee=("bob", "t-h"),
                   sdp=offer("sendonly"))
    ladder += [(4000, UA1, UA2, hold), (4005, UA2, UA1, response(200, "OK", hold))]
    [call] = summarize_calls(through_capture(ladder))
    assert call["state"] == "completed" and [e["hold"] for e in call["in_dialog"]] == ["hold"]


def test_ipv6_capture_ending_mid_call(through_capture):
    a, b = "[2001:db8::1]:5060", "[2001:db8::2]:5060"
    [call] = summarize_calls(through_capture(_call("v6", a, b, 0, sent_by="[2001:db8::1]:5060")))
    assert call["hosts"] == [a, b] and call["state"] == "in call"

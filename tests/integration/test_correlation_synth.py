"""Calls rebuilt from the deliberately built captures of tests/synth (UDP, TCP split/coalesced, IPv6,
VLAN, tunnels...). Expected values come from each builder's own description of what it wrote."""

from __future__ import annotations

import pytest

from flowviz.ingest import read_capture
from flowviz.sip.calls import summarize_calls
from tests.synth import SCENARIOS, build, write

CALL = ["INVITE", "100", "180", "200", "ACK", "BYE", "200"]
FULL_CALLS = [name for name in SCENARIOS if build(name)[1].get("sip_sequence") == CALL]


@pytest.mark.parametrize("name", FULL_CALLS)
def test_built_call_is_one_completed_call_with_its_constructed_timings(name, tmp_path):
    path = tmp_path / name
    expected = write(name, path)
    sent = {m["label"] + ("" if m["label"] != "200" else f" {m['cseq']}"): m for m in expected["sip"]}
    invite, ringing, ok, bye = sent["INVITE"], sent["180"], sent["200 1 INVITE"], sent["BYE"]
    [call] = summarize_calls(read_capture(path, use_cache=False).sip_messages)
    assert call["call_ids"] == expected["call_ids"]
    assert (call["state"], call["final_status"]) == ("completed", 200)
    assert call["hosts"] == [invite["src"], invite["dst"]]
    assert call["srd_ms"] == pytest.approx((ringing["ts_ns"] - invite["ts_ns"]) / 1e6, abs=1e-3)
    assert call["setup_ms"] == pytest.approx((ok["ts_ns"] - invite["ts_ns"]) / 1e6, abs=1e-3)
    assert call["duration_s"] == pytest.approx((bye["ts_ns"] - ok["ts_ns"]) / 1e9, abs=1e-3)
    assert (call["messages"], call["retransmissions"]) == (len(CALL), 0)
    assert call["hop_delays_ms"] == [pytest.approx((sent["100"]["ts_ns"] - invite["ts_ns"]) / 1e6, abs=1e-3)]


def test_the_synth_set_has_ipv6_and_tcp_calls():
    kinds = {(build(n)[1]["sip"][0]["transport"], "[" in build(n)[1]["sip"][0]["src"]) for n in FULL_CALLS}
    assert ("tcp", False) in kinds and ("udp", True) in kinds

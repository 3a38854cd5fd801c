"""HEP from real software: the lab's reference call while both kamailio proxies mirror every SIP message
they receive and send as HEPv3 (siptrace, agents 11 = P1 at 127.0.0.11 and 12 = P2 at 127.0.0.12), and the
same call as it went on the wire, from one tcpdump of the same run (lab/make_hep_capture.sh).

By construction each proxy mirrors the messages it receives and sends: P1 the hops UA1-P1 and P1-P2, P2
the hops P1-P2 and P2-UA2. So each HEP message must be one of the wire's, and the two agents together must
give every wire message; the middle hop is seen by both."""

from __future__ import annotations

from collections import Counter

import pytest

from flowviz.analyze import analyze
from flowviz.ingest.capture import read_capture
from tests.conftest import SAMPLES

HEP = SAMPLES / "transports" / "hep" / "hep_reference_call.pcap"
PLAIN = SAMPLES / "transports" / "hep" / "plain_reference_call.pcap"
P1, P2 = "127.0.0.11", "127.0.0.12"


def _key(row):
    return (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"], row["raw"])


@pytest.fixture(scope="module")
def frames():
    return read_capture(HEP, use_cache=False).sip_messages, read_capture(PLAIN, use_cache=False).sip_messages


def test_each_agent_mirrors_what_its_proxy_received_and_sent(frames):
    hep, plain = frames
    wire = Counter(_key(r) for r in plain.iter_rows(named=True))
    assert max(wire.values()) == 1  # the plain capture has no retransmission: each message is one key
    for agent, proxy in ((11, P1), (12, P2)):
        seen = [_key(r) for r in hep.filter(hep["capture_agent"] == agent).iter_rows(named=True)]
        assert all(k in wire for k in seen)  # the exact bytes, addresses and ports of a wire message
        assert sorted(seen) == sorted(k for k in wire if proxy in (k[0], k[2]))
    both = {_key(r) for r in hep.iter_rows(named=True)}
    assert both == set(wire)


def test_hep_times_are_the_proxies_clock_beside_the_wire(frames):
    """The HEP time is the proxy's (chunks 9 and 10), not the collector capture's: siptrace stamps a message
    when kamailio handles it, a little after tcpdump saw it on lo (0.007 to 0.95 ms in this capture)."""
    hep, plain = frames
    wire_ts = {_key(r): r["ts_ns"] for r in plain.iter_rows(named=True)}
    gaps = [r["ts_ns"] - wire_ts[_key(r)] for r in hep.iter_rows(named=True)]
    assert 0 <= min(gaps) and max(gaps) < 2_000_000


def test_same_call_hosts_in_path_order_and_hop_delays(frames):
    via_hep, on_wire = analyze(HEP, use_cache=False), analyze(PLAIN, use_cache=False)
    (a,), (b,) = via_hep.calls, on_wire.calls
    assert a["call_ids"] == b["call_ids"] and a["state"] == b["state"] == "completed"
    assert a["hosts"] == b["hosts"] == [f"127.0.0.{n}:5060" for n in (10, 11, 12, 13)]
    assert len(a["hop_delays_ms"]) == len(b["hop_delays_ms"]) == 3
    assert all(abs(x - y) < 1.0 for x, y in zip(a["hop_delays_ms"], b["hop_delays_ms"]))

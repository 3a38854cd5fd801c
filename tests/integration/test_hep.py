"""HEP (HOMER encapsulation): captures built on purpose (tests/kit/hep.py) and the corpus capture.

Expected values come from the construction: each HEP packet carries an inner packet whose addresses,
ports, time and capture agent the generator chose; the outer packets go to the collector 192.0.2.9:9060
half a second later. The corpus capture's values were read from its bytes by the HEP3 layout (kit
reader below, and by hand: `tshark -r hep.pcap -x`)."""

from __future__ import annotations

import struct

import dpkt
import pytest

from flowviz.ingest.capture import read_capture
from tests.conftest import SHARED_PCAPS
from tests.kit import hep as kit

CORPUS_HEP = SHARED_PCAPS / "sipcapture__hep-wireshark" / "hep.pcap"


def _decode(path):
    return read_capture(path, use_cache=False)


def _expected_rows(inners):
    return [(i.src, i.dst, i.sport, i.dport, round(i.ts * 1e6) * 1000, i.agent, i.payload.split(b"\r\n")[0].decode())
            for i in inners]


def _rows(capture):
    sip = capture.sip_messages
    return [(r["src_ip"], r["dst_ip"], r["src_port"], r["dst_port"], r["ts_ns"], r["capture_agent"],
             r["raw"].split("\r\n")[0]) for r in sip.iter_rows(named=True)]


def test_hepv3_over_udp_gives_the_inner_packets(tmp_path):
    inners = kit.sip_call() + kit.sip_call("10.3.3.3", "10.4.4.4", call_id="hepcall-2", agent=7)
    capture = _decode(kit.udp_capture(tmp_path / "hep3.pcap", inners))
    assert _rows(capture) == _expected_rows(inners)
    sip = capture.sip_messages
    assert set(sip["transport"]) == {"udp"}
    assert sip["hep_correlation_id"].to_list() == [i.correlation for i in inners]
    assert sip["frame"].to_list() == list(range(1, len(inners) + 1))
    hep = capture.info["hep"]
    assert hep["packets"] == 10 and hep["unreadable"] == 0
    assert hep["agents"] == {"2001": 5, "7": 5}
    assert capture.info["warnings"] == []
    # the authentication key is never kept
    assert not any(kit.AUTH_KEY.decode() in str(v) for v in capture.info.values())
    assert not any(kit.AUTH_KEY.decode() in str(row) for row in sip.iter_rows())


def test_hepv3_over_tcp_cut_anywhere_and_retransmitted(tmp_path):
    inners = kit.sip_call()
    sizes = [len(kit.hep3(i)) for i in inners]
    # cuts inside the header of packet 2, inside the payload of packet 3, right at the end of packet 4
    cuts = [sizes[0] + 3, sizes[0] + sizes[1] + 40, sum(sizes[:4])]
    capture = _decode(kit.tcp_capture(tmp_path / "hep3_tcp.pcap", inners, cuts, retransmit=1))
    assert _rows(capture) == _expected_rows(inners)
    sip = capture.sip_messages
    # frame 1 is the SYN; the four segments are frames 2, 3 (sent again as 4), 5, 6
    assert sip["frames"].to_list() == [[2], [2, 3], [3, 5], [5], [6]]
    assert sip["frame"].to_list() == [2, 3, 5, 5, 6] and sip["msg_index"].to_list() == [0, 0, 0, 1, 0]
    assert capture.info["hep"]["unreadable"] == 0 and capture.info["warnings"] == []


def test_hepv2(tmp_path):
    inners = kit.sip_call()
    capture = _decode(kit.udp_capture(tmp_path / "hep2.pcap", inners, version=2))
    assert _rows(capture) == _expected_rows(inners)
    assert capture.info["hep"]["versions"] == {"v2": 5}


def test_hep_carrying_ipv6(tmp_path):
    inners = kit.sip_call("2001:db8::1", "2001:db8:0:1::2")
    capture = _decode(kit.udp_capture(tmp_path / "hep6.pcap", inners))
    assert _rows(capture) == _expected_rows(inners)
    v2 = _decode(kit.udp_capture(tmp_path / "hep6v2.pcap", inners, version=2))
    assert _rows(v2) == _expected_rows(inners)


def test_raw_rtcp_in_hep_becomes_an_rtcp_report(tmp_path):
    rtcp = kit.Inner("10.1.1.1", "10.2.2.2", 40001, 50001, 1_700_000_001.5, kit.rtcp_sr(), payload_type=5)
    capture = _decode(kit.udp_capture(tmp_path / "rtcp.pcap", [*kit.sip_call(), rtcp]))
    reports = capture.rtcp_reports
    assert len(reports) == 1
    row = reports.row(0, named=True)
    assert (row["src_ip"], row["dst_ip"], row["src_port"], row["dst_port"]) == ("10.1.1.1", "10.2.2.2", 40001, 50001)
    assert row["ts_ns"] == 1_700_000_001_500_000_000
    assert (row["sender_ssrc"], row["source_ssrc"], row["fraction_lost"], row["cumulative_lost"]) == \
        (0x11223344, 0x55667788, 5, 7)
    assert capture.info["hep"]["payload_types"] == {"SIP": 5, "RTCP": 1}


def test_truncated_chunk_warns_and_loses_nothing_else(tmp_path):
    inners = kit.sip_call()
    cap = kit.Capture()
    for n, inner in enumerate(inners):
        data = kit.hep3(inner)
        if n == 2:  # the ACK's payload chunk claims 20 bytes more than the packet holds
            at = data.rindex(struct.pack("!HH", 0, 15))
            clen = struct.unpack_from("!H", data, at + 4)[0]
            data = data[: at + 4] + struct.pack("!H", clen + 20) + data[at + 6 :]
        cap.udp(inner.ts + 0.5, data)
    capture = _decode(cap.write(tmp_path / "cut.pcap"))
    expected = _expected_rows(inners)
    assert _rows(capture) == expected[:2] + expected[3:]
    assert capture.info["hep"]["unreadable"] == 1
    (warning,) = capture.info["warnings"]
    assert "frame 3" in warning and "cut short" in warning and "could not be read" in warning


def test_length_that_lies_udp(tmp_path):
    inners = kit.sip_call()
    cap = kit.Capture()
    for n, inner in enumerate(inners):
        data = kit.hep3(inner)
        if n == 1:  # says 100 bytes more than it has: its chunks are whole, so it is read, with a warning
            data = data[:4] + struct.pack("!H", len(data) + 100) + data[6:]
        cap.udp(inner.ts + 0.5, data)
    capture = _decode(cap.write(tmp_path / "lie.pcap"))
    assert _rows(capture) == _expected_rows(inners)
    (warning,) = capture.info["warnings"]
    assert "frame 2" in warning and f"says {len(kit.hep3(inners[1])) + 100} bytes" in warning
    assert capture.info["hep"]["with_problems"] == 1 and capture.info["hep"]["unreadable"] == 0


@pytest.mark.parametrize("delta", [+60, -60])
def test_length_that_lies_tcp(tmp_path, delta):
    """In a TCP stream the length cuts the packets; a lie is found where the chunks end at the next HEP3."""
    inners = kit.sip_call()
    packets = [kit.hep3(i) for i in inners]
    bad = packets[1]
    packets[1] = bad[:4] + struct.pack("!H", len(bad) + delta) + bad[6:]
    stream = b"".join(packets)
    capture = _decode(kit.tcp_stream_capture(tmp_path / "lie_tcp.pcap", stream, [700, 1400], inners[0].ts + 0.5))
    assert _rows(capture) == _expected_rows(inners)
    (warning,) = capture.info["warnings"]
    assert "frame" in warning and f"says {len(bad) + delta} bytes" in warning and "chunks end" in warning


def _kit_read(path):
    """The corpus capture read with dpkt and the HEP3 layout alone: per packet, the inner
    (src, dst, sport, dport, seconds, micros, payload type, agent, first payload line)."""
    out = []
    for _ts, buf in dpkt.pcap.Reader(open(path, "rb")):
        data = bytes(dpkt.ethernet.Ethernet(buf).data.data.data)
        assert data[:4] == b"HEP3"
        fields, pos = {}, 6
        while pos + 6 <= len(data):
            _vendor, ctype, clen = struct.unpack_from("!HHH", data, pos)
            fields[ctype] = data[pos + 6 : pos + clen]
            pos += clen
        out.append((".".join(map(str, fields[3])), ".".join(map(str, fields[4])), int.from_bytes(fields[7], "big"),
                    int.from_bytes(fields[8], "big"), int.from_bytes(fields[9], "big"),
                    int.from_bytes(fields[10], "big"), fields[11][0], int.from_bytes(fields[12], "big"),
                    fields[15].split(b"\n")[0].rstrip(b"\r").decode()))
    return out


def test_corpus_hep_pcap():
    if not CORPUS_HEP.exists():
        pytest.skip(f"{CORPUS_HEP} is absent (public corpus)")
    capture = _decode(CORPUS_HEP)
    packets = _kit_read(CORPUS_HEP)
    # 8 HEP packets: 6 SIP (type 1), one log line (type 100) and one RTCP report as JSON (type 5), all
    # from agent 2001, SIP between 192.168.1.1:5060 and 192.168.1.2:5060 (read by hand too)
    assert [p[6] for p in packets] == [1, 1, 1, 1, 100, 1, 1, 5]
    sip_packets = [p for p in packets if p[6] == 1]
    assert {(p[0], p[1]) for p in sip_packets} == {("192.168.1.1", "192.168.1.2"), ("192.168.1.2", "192.168.1.1")}
    rows = _rows(capture)
    assert rows == [(p[0], p[1], p[2], p[3], p[4] * 1_000_000_000 + p[5] * 1000, p[7], p[8]) for p in sip_packets]
    assert capture.info["hep"] == {"packets": 8, "versions": {"v3": 8}, "agents": {"2001": 8},
                                   "payload_types": {"SIP": 6, "log": 1, "RTCP": 1}, "sip_messages": 6,
                                   "rtcp_packets": 0, "unreadable": 0, "with_problems": 0}
    assert set(capture.sip_messages["call_id"]) == {"qgf3dm9rudi@127.0.0.1"}


def test_hep_sent_over_ipv6(tmp_path):
    """The agent reaches the collector over IPv6; the inner packets are IPv4 (the outer family does not matter)."""
    from tests.kit.transports import Conversation

    inners = kit.sip_call()
    conv = Conversation(("2001:db8:9::1", 41000), ("2001:db8:9::9", 9060))
    for inner in inners:
        conv.udp(True, kit.hep3(inner))
    capture = _decode(conv.write(tmp_path / "hep_over_v6.pcap"))
    assert _rows(capture) == _expected_rows(inners)


def _big(inner):
    """The same message with a body that makes its HEP packet take three IPv4 fragments."""
    body = "v=0\r\n" + "a=x-filler:" + "z" * 3000 + "\r\n"
    text = inner.payload.decode().replace("Content-Length: 0\r\n\r\n",
                                          f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")
    return kit.Inner(inner.src, inner.dst, inner.sport, inner.dport, inner.ts, text.encode(), agent=inner.agent,
                     correlation=inner.correlation)


def test_hep_datagram_in_ip_fragments(tmp_path):
    """A HEP packet bigger than the path's MTU travels in IPv4 fragments (heplify over UDP with a big
    INVITE): they are put together (in any order) before the HEP packet is read."""
    inners = kit.sip_call()
    inners[0] = _big(inners[0])
    inners[3] = _big(inners[3])
    cap = kit.Capture()
    frames = []
    for n, inner in enumerate(inners):
        start = len(cap.frames) + 1
        if n in (0, 3):
            count = cap.udp_fragments(inner.ts + 0.5, kit.hep3(inner), ident=100 + n,
                                      order=None if n == 0 else [2, 0, 1])
            frames.append(list(range(start, start + count)))
        else:
            cap.udp(inner.ts + 0.5, kit.hep3(inner))
            frames.append([start])
    capture = _decode(cap.write(tmp_path / "frag.pcap"))
    assert _rows(capture) == _expected_rows(inners)
    assert capture.sip_messages["frames"].to_list() == frames and len(frames[0]) == 3
    assert capture.info["warnings"] == [] and capture.info["hep"]["unreadable"] == 0


def test_hep_datagram_missing_a_fragment(tmp_path):
    inners = kit.sip_call()
    inners[1] = _big(inners[1])
    cap = kit.Capture()
    for n, inner in enumerate(inners):
        if n == 1:
            cap.udp_fragments(inner.ts + 0.5, kit.hep3(inner), ident=7, order=[0, 2])  # the middle one is lost
        else:
            cap.udp(inner.ts + 0.5, kit.hep3(inner))
    capture = _decode(cap.write(tmp_path / "frag_lost.pcap"))
    expected = _expected_rows(inners)
    assert _rows(capture) == expected[:1] + expected[2:]
    (warning,) = capture.info["warnings"]
    assert "frames 2, 3" in warning and "missing fragments" in warning

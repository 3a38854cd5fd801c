"""A TCP segment holding a response and a request keeps their wire order.

tshark's field output gives request lines and status lines as two lists, so for such frames ingest
asks tshark for PDML of those frames (a display filter with a set of frame numbers). The expected
order comes from how the segment is built.
"""

from __future__ import annotations

from flowviz.ingest import read_capture
from tests.synth.packets import TcpConnection, ethernet
from tests.synth.writers import Record, pcap_bytes

PROXY, UA = ("10.0.0.1", 5060), ("10.0.0.2", 5060)


def message(start: str, cseq: str, call_id: str) -> bytes:
    return (f"{start}\r\nVia: SIP/2.0/TCP 10.0.0.2:5060;branch=z9hG4bK-{cseq.split()[0]}\r\n"
            f"From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def test_response_and_request_in_one_segment_keep_their_order(tmp_path, tshark):
    conn = TcpConnection(PROXY, UA, client_isn=1000, server_isn=5000)
    segments = [l3 for _, l3 in conn.handshake()]
    # From the UA: a 200 for the proxy's OPTIONS, then its own BYE; then a BYE before a 200.
    segments.append(conn.segment("s", message("SIP/2.0 200 OK", "7 OPTIONS", "opt-1")
                                 + message("BYE sip:a@10.0.0.1 SIP/2.0", "2 BYE", "call-1")))
    segments.append(conn.segment("s", message("BYE sip:a@10.0.0.1 SIP/2.0", "3 BYE", "call-2")
                                 + message("SIP/2.0 486 Busy Here", "8 INVITE", "call-3")))
    path = tmp_path / "mixed_tcp.pcap"
    path.write_bytes(pcap_bytes(1, [Record(1_700_000_000_000_000_000 + i * 1_000_000, ethernet(l3))
                                    for i, l3 in enumerate(segments)]))
    sip = read_capture(path, use_cache=False).sip_messages
    got = [(r["frame"], r["msg_index"], r["status_code"] or r["method"], r["call_id"], r["raw"].split("\r\n")[0])
           for r in sip.iter_rows(named=True)]
    assert got == [
        (4, 0, 200, "opt-1", "SIP/2.0 200 OK"),
        (4, 1, "BYE", "call-1", "BYE sip:a@10.0.0.1 SIP/2.0"),
        (5, 0, "BYE", "call-2", "BYE sip:a@10.0.0.1 SIP/2.0"),
        (5, 1, 486, "call-3", "SIP/2.0 486 Busy Here"),
    ]

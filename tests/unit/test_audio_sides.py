"""Whose voice a stream carries (flowviz/audio/sides.py), on SIP ladders typed out in tests/kit/sip_ladders.py:
the expected side follows from who wrote the SDP that announced the stream's destination."""

from __future__ import annotations

import polars as pl

from flowviz.audio.sides import CALLEE, CALLER, stream_sides
from tests.kit.sip_ladders import T0_NS, offer, request, response, sip_frame

A, B = "10.0.0.1:5060", "10.0.0.2:5060"


def streams(*rows: tuple[str, str, int, str, int, float]) -> pl.DataFrame:
    """(stream_id, src ip, src port, dst ip, dst port, start ms)."""
    return pl.DataFrame([(sid, si, sp, di, dp, T0_NS + int(ms * 1e6)) for sid, si, sp, di, dp, ms in rows],
                        schema=["stream_id", "src_ip", "src_port", "dst_ip", "dst_port", "start_ts_ns"], orient="row")


def with_sdp(text: str, sdp: str) -> str:
    head = text.split("\r\n\r\n")[0].replace("Content-Length: 0", "Content-Type: application/sdp")
    body = sdp.replace("\n", "\r\n")
    return f"{head}\r\nContent-Length: {len(body)}\r\n\r\n{body}"


def test_offer_from_the_caller_and_answer_from_the_callee_and_a_re_invite_from_the_callee():
    invite = request("INVITE", call_id="c1", cseq=1, vias=[(A, "z9hG4bK1")], sdp=offer(address="10.0.0.1", port=4000))
    ok = with_sdp(response(200, "OK", invite, to_tag="b1"), offer(address="10.0.0.2", port=5000))
    # later the callee moves its media: its re-INVITE (From = the callee, tag b1) announces 10.0.0.2:6000
    reinvite = request("INVITE", call_id="c1", cseq=7, vias=[(B, "z9hG4bK2")], caller=("bob", "b1"),
                       callee=("alice", "a1"), sdp=offer(address="10.0.0.2", port=6000))
    re_ok = with_sdp(response(200, "OK", reinvite), offer(address="10.0.0.1", port=4002))
    sip = sip_frame([(0, A, B, invite), (50, B, A, ok), (5000, B, A, reinvite), (5010, A, B, re_ok)])
    found = stream_sides(sip, ["c1"], streams(
        ("to-callee", "10.0.0.1", 4000, "10.0.0.2", 5000, 100),     # to the answer's address: caller's voice
        ("to-caller", "10.0.0.2", 5000, "10.0.0.1", 4000, 100),     # to the offer's address: callee's voice
        ("to-callee-2", "10.0.0.1", 4002, "10.0.0.2", 6000, 5100),  # to the re-INVITE's address (callee's SDP)
        ("to-caller-2", "10.0.0.2", 6000, "10.0.0.1", 4002, 5100),  # to its answer's address (caller's SDP)
        ("unknown", "10.0.0.1", 7777, "10.9.9.9", 9999, 200),       # no SDP: from the first INVITE's address
    ))
    assert found == {"to-callee": (CALLER, 0), "to-caller": (CALLEE, 0), "to-callee-2": (CALLER, 0),
                     "to-caller-2": (CALLEE, 0), "unknown": (CALLER, 1)}

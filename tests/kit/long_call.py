"""Captures built on purpose for the web UI's call page and call list.

long_call(n_info): one call of 2 * n_info + 6 SIP messages between two UAs: INVITE, 180 Ringing,
200 OK, ACK, then n_info INFO / 200 OK pairs 20 ms apart (each INFO carries 'X-Step: k'), then BYE / 200 OK.
mixed_methods(): three dialogs of different methods and final responses: an INVITE answered 486, a REGISTER
answered 200 and an OPTIONS answered 404. Written as real pcaps by tests.kit.sip_ladders.write_pcap, so
the expected numbers come from the construction.

    .venv/bin/python -m tests.kit.long_call OUT.pcap [N_INFO]
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.kit.sip_ladders import ack_of_failure, request, response, write_pcap

A, B = "10.20.0.1:5060", "10.20.0.2:5060"
VIA_A = ("10.20.0.1:5060", "z9hG4bK-long")


def long_call_messages(n_info: int) -> list[tuple[float, str, str, str]]:
    call = dict(call_id="long-call-1@10.20.0.1", caller=("alice", "a1"))
    invite = request("INVITE", cseq=1, vias=[(VIA_A[0], VIA_A[1] + "-inv")], callee=("bob", None), **call)
    ladder = [(0.0, A, B, invite),
              (40.0, B, A, response(180, "Ringing", invite, to_tag="b1")),
              (900.0, B, A, response(200, "OK", invite, to_tag="b1"))]
    ack = request("ACK", cseq=1, vias=[(VIA_A[0], VIA_A[1] + "-ack")], callee=("bob", "b1"), **call)
    ladder.append((905.0, A, B, ack))
    t = 1000.0
    for k in range(n_info):
        info = request("INFO", cseq=2 + k, vias=[(VIA_A[0], f"{VIA_A[1]}-info{k}")], callee=("bob", "b1"),
                       headers=(f"X-Step: {k}",), **call)
        ladder.append((t, A, B, info))
        ladder.append((t + 4.0, B, A, response(200, "OK", info, to_tag="b1")))
        t += 20.0
    bye = request("BYE", cseq=2 + n_info, vias=[(VIA_A[0], VIA_A[1] + "-bye")], callee=("bob", "b1"), **call)
    ladder += [(t, A, B, bye), (t + 4.0, B, A, response(200, "OK", bye, to_tag="b1"))]
    return ladder


def write_long_call(path: Path, n_info: int = 997) -> int:
    """Writes the call; returns its number of SIP messages (2 * n_info + 6: 2,000 for the default)."""
    ladder = long_call_messages(n_info)
    write_pcap(ladder, path)
    return len(ladder)


def mixed_methods_messages() -> list[tuple[float, str, str, str]]:
    invite = request("INVITE", call_id="mixed-invite@10.20.0.1", cseq=1, vias=[(VIA_A[0], "z9hG4bK-m1")])
    register = request("REGISTER", call_id="mixed-register@10.20.0.1", cseq=1, vias=[(VIA_A[0], "z9hG4bK-m2")],
                       callee=("alice", None))
    options = request("OPTIONS", call_id="mixed-options@10.20.0.1", cseq=1, vias=[(VIA_A[0], "z9hG4bK-m3")])
    busy = response(486, "Busy Here", invite, to_tag="b2")
    return [(0.0, A, B, invite), (30.0, B, A, busy), (31.0, A, B, ack_of_failure(invite, to_tag="b2")),
            (1000.0, A, B, register), (1010.0, B, A, response(200, "OK", register, to_tag="r1")),
            (2000.0, A, B, options), (2010.0, B, A, response(404, "Not Found", options, to_tag="o1"))]


def write_mixed_methods(path: Path) -> None:
    write_pcap(mixed_methods_messages(), path)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    print(write_long_call(out, int(sys.argv[2]) if len(sys.argv) > 2 else 997), "SIP messages written to", out)

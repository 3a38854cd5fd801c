"""SIP in whole UDP datagrams, decoded by flowviz itself with the rules of tshark 4.0's SIP dissector.

A UDP datagram holds one SIP message (RFC 3261 18.1.1): nothing needs reassembling, so tshark
and its ~0.3 s start are not needed for it. tshark still decodes everything else (TCP,
fragments, SCTP, WebSocket, ICMP quotes, tunnels the packet kernel does not open). The result is
the same row tshark's field output gives (tests/integration/test_sip_udp.py compares the two on
every capture the tests have); docs/architecture.md section 10 lists the rules and where they
come from.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from flowviz import schemas
from flowviz.ingest import kernel
from flowviz.ingest.capture_file import Packets
from flowviz.ingest.sip_text import parse_message

SIP_VERSION = b"SIP/2.0"


def shares(table: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of `rows` flowviz decodes, mask of `rows` nobody needs to decode). flowviz decodes the
    complete UDP datagrams that start like a SIP message: not a fragment, not cut by the snapshot
    length, not in a tunnel the kernel leaves to tshark. Complete UDP keepalives (only CR, LF, NUL,
    spaces) hold no message for tshark either; they need no tshark at all."""
    share = kernel.udp_shares(table, rows, kernel.GET_PREFIX)
    return share == kernel.SHARE_OWN, share == kernel.SHARE_NONE


def decode(packets: Packets, rows: np.ndarray, leg_link_headers: tuple[str, ...]) -> pl.DataFrame:
    """sip_messages of the datagrams in `rows` that hold a SIP start line, in capture order. Others
    are skipped, as tshark skips them: it shows such a datagram as "Continuation", with no message.

    Serial on purpose: parsing in a thread while the packet kernel reads the file (copying the
    datagrams out of its window) gained 10-20 ms of 0.56 s and needed a shorter interpreter switch
    interval to gain even that (docs/architecture.md section 10)."""
    details = packets.details(rows)
    out = []
    for row, ts, sport, dport, src, dst, payload in zip(
        rows.tolist(), packets.ts_ns[rows].tolist(), packets.table["sport"][rows].tolist(),
        packets.table["dport"][rows].tolist(), details.src, details.dst, details.payloads,
    ):
        raw = message_text(payload)
        if raw is None:
            continue
        message = {
            "frame": row + 1, "frames": [row + 1], "msg_index": 0, "ts_ns": ts,
            "src_ip": src, "dst_ip": dst, "src_port": sport, "dst_port": dport,
            "transport": "udp", "icmp_quoted": False, "raw": raw,
        }
        message.update(parse_message(raw, leg_link_headers))
        out.append(message)
    return schemas.from_rows(out, schemas.SIP_MESSAGES)


def message_text(payload: bytes) -> str | None:
    """The text tshark gives for a datagram (start line + CRLF + the rest), or None when the first
    line is no Request-Line or Status-Line by tshark's test.

    tshark (packet-sip.c, dissect_sip_common and sip_parse_line): the first line ends at the first
    CR, LF or CRLF; it must not be empty or hold a NUL. The rest of the datagram after the line
    end is one field (`sip.msg_hdr`), whatever Content-Length says. Text is UTF-8 with each
    invalid sequence replaced by U+FFFD, and a field ends at its first NUL byte.
    """
    cr, lf = payload.find(b"\r"), payload.find(b"\n")
    ends = [i for i in (cr, lf) if i >= 0]
    line_end = min(ends) if ends else len(payload)
    rest = line_end + (2 if payload[line_end : line_end + 2] == b"\r\n" else 1)
    if line_end == 0 or b"\0" in payload[:line_end] or not is_start_line(payload, line_end):
        return None
    body = payload[rest:]
    nul = body.find(b"\0")
    if nul >= 0:
        body = body[:nul]
    return (payload[:line_end].decode("utf-8", "replace") + "\r\n" + body.decode("utf-8", "replace"))


def is_start_line(payload: bytes, line_len: int) -> bool:
    """tshark 4.0's sip_parse_line() with strict_sip_version on (its default).

    Spaces and the URI's colon are searched to the end of the datagram, not of the line, as
    tshark does: "SIP/2.0 200\\r\\nCall-ID: x" is no Status-Line because the second token then
    runs to the space after "Call-ID:".
    """
    space1 = payload.find(b" ")
    if space1 <= 0:
        return False
    space2 = payload.find(b" ", space1 + 1)
    if space2 < 0:
        return False
    token2 = payload[space1 + 1 : space2]
    if payload[:space1] == SIP_VERSION:  # Status-Line: a 3-digit status code
        return len(token2) == 3 and all(0x30 <= c <= 0x39 for c in token2)
    if len(token2) < 3:  # Request-Line: a URI with a colon, then exactly "SIP/2.0"
        return False
    colon = payload.find(b":", space1 + 2)
    return 0 <= colon < space2 + 1 and payload[space2 + 1 : line_len] == SIP_VERSION

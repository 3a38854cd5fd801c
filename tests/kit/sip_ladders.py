"""Builders for correlation tests: SIP messages written by hand, parsed into a sip_messages frame.

Every scenario in the test_correlation_* files is a ladder typed out here message by message,
so the expected values come from the ladder itself, never from flowviz output.
"""

from __future__ import annotations

import polars as pl

from flowviz.ingest.sip_text import parse_message
from flowviz.schemas import SIP_MESSAGES

T0_NS = 1_700_000_000_000_000_000


def request(method: str, *, call_id: str, cseq: int, vias: list[tuple[str, str]], caller=("alice", "a1"),
            callee=("bob", None), cseq_method: str | None = None, headers: tuple[str, ...] = (),
            transport: str = "UDP", sdp: str = "") -> str:
    """Request text. vias: (sent-by, branch) top first; caller/callee: (user, tag); sdp: body lines."""
    lines = [f"{method} sip:{callee[0]}@example.com SIP/2.0"]
    lines += [f"Via: SIP/2.0/{transport} {sent_by};branch={branch}" for sent_by, branch in vias]
    lines.append("Max-Forwards: 70")
    lines.append(f"From: \"{caller[0].title()}\" <sip:{caller[0]}@example.com>;tag={caller[1]}")
    lines.append(f"To: <sip:{callee[0]}@example.com>" + (f";tag={callee[1]}" if callee[1] else ""))
    lines.append(f"Call-ID: {call_id}")
    lines.append(f"CSeq: {cseq} {cseq_method or method}")
    lines += list(headers)
    body = sdp.replace("\n", "\r\n") if sdp else ""
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def offer(direction: str = "sendrecv", address: str = "10.0.0.1", port: int = 40000) -> str:
    """An audio SDP offer (RFC 4566) with the given direction attribute."""
    return (f"v=0\no=- 1 1 IN IP4 {address}\ns=-\nc=IN IP4 {address}\nt=0 0\n"
            f"m=audio {port} RTP/AVP 0\na=rtpmap:0 PCMU/8000\na={direction}\n")


def response(code: int, reason: str, to_request: str, *, to_tag: str | None = None, pop_vias: int = 0,
             headers: tuple[str, ...] = ()) -> str:
    """Response to a request text: its Via/From/To/Call-ID/CSeq, To tag added, top `pop_vias` Vias removed."""
    head = to_request.split("\r\n\r\n")[0].split("\r\n")[1:]
    vias = [h for h in head if h.startswith("Via:")][pop_vias:]
    others = [h for h in head if h.split(":")[0] in ("From", "Call-ID", "CSeq")]
    to = next(h for h in head if h.startswith("To:"))
    if to_tag and ";tag=" not in to:
        to += f";tag={to_tag}"
    lines = [f"SIP/2.0 {code} {reason}", *vias, *others, to, *headers, "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\n"


def forwarded(text: str, *, sent_by: str, branch: str) -> str:
    """The copy a proxy sends on: its own Via pushed on top (RFC 3261 16.6 step 8)."""
    start, rest = text.split("\r\n", 1)
    return f"{start}\r\nVia: SIP/2.0/UDP {sent_by};branch={branch}\r\n{rest}"


def through_proxies(text: str, *hops: tuple[str, str]) -> list[str]:
    """The copies of one request along a chain of proxies: [as sent, after hop 1, after hop 2, ...].

    hops: (sent-by, branch) that each proxy pushes in turn (RFC 3261 16.6 step 8), so the copy after
    hop k carries k + 1 Vias and its via[1] is via[0] of the copy before it.
    """
    copies = [text]
    for sent_by, branch in hops:
        copies.append(forwarded(copies[-1], sent_by=sent_by, branch=branch))
    return copies


def ack_of_failure(invite: str, *, to_tag: str) -> str:
    """The ACK a client transaction sends for a non-2xx final response to `invite` (RFC 3261 17.1.1.3):
    same Request-URI, Call-ID, From and CSeq number, the response's To tag, and one Via: the INVITE's top one."""
    start, *head = invite.split("\r\n\r\n")[0].split("\r\n")
    top_via = next(h for h in head if h.startswith("Via:"))
    kept = [h for h in head if h.split(":")[0] in ("From", "Call-ID")]
    to = next(h for h in head if h.startswith("To:"))
    to += "" if ";tag=" in to else f";tag={to_tag}"
    cseq = next(h for h in head if h.startswith("CSeq:")).split()[1]
    lines = [start.replace("INVITE", "ACK", 1), top_via, "Max-Forwards: 70", *kept, to, f"CSeq: {cseq} ACK",
             "Content-Length: 0"]
    return "\r\n".join(lines) + "\r\n\r\n"


def sip_frame(ladder: list[tuple[float, str, str, str]], transport: str = "udp") -> pl.DataFrame:
    """ladder: (time in ms, "ip:port" source, "ip:port" destination, message text), one per message."""
    rows = []
    for frame, (t_ms, src, dst, text) in enumerate(ladder, start=1):
        row = parse_message(text)
        src_ip, src_port = _split(src)
        dst_ip, dst_port = _split(dst)
        row.update(
            frame=frame, frames=[frame], msg_index=0, ts_ns=T0_NS + int(round(t_ms * 1e6)), src_ip=src_ip,
            dst_ip=dst_ip, src_port=src_port, dst_port=dst_port, transport=transport, icmp_quoted=False, raw=text,
        )
        rows.append(row)
    return pl.DataFrame(rows, schema=SIP_MESSAGES)


def _split(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def write_pcap(ladder: list[tuple[float, str, str, str]], path) -> None:
    """The same ladder as a real capture: Ethernet / IPv4 or IPv6 / UDP, nanosecond pcap."""
    from tests.synth.packets import ETH_P_IP, ETH_P_IPV6, ethernet, ip_udp, is_ipv6
    from tests.synth.writers import Record, pcap_bytes

    records = []
    for ident, (t_ms, src, dst, text) in enumerate(ladder, start=1):
        (src_ip, src_port), (dst_ip, dst_port) = _split(src), _split(dst)
        datagram = ip_udp(src_ip, dst_ip, src_port, dst_port, text.encode(), ident=ident)
        kind = ETH_P_IPV6 if is_ipv6(src_ip) else ETH_P_IP
        records.append(Record(ts_ns=T0_NS + int(round(t_ms * 1e6)), data=ethernet(datagram, ethertype=kind)))
    path.write_bytes(pcap_bytes(1, records, nsec=True))

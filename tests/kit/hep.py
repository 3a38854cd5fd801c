"""HEP captures built on purpose with dpkt: HEPv3 over UDP and TCP, HEPv2, HEP carrying IPv6, and
damaged packets. The construction gives the expected values (inner addresses, ports, times, agents).

HEPv3 layout (sipcapture HEP3 specification): "HEP3", total length (u16), then chunks of vendor id (u16),
type id (u16), chunk length (u16, header included) and value, big-endian. HEPv2: version, header
length, family, protocol (u8 each), ports (u16 big-endian), addresses, then seconds, microseconds
(u32) and capture id (u16) little-endian and 2 bytes of padding.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

COLLECTOR = ("192.0.2.9", 9060)
AGENT_HOST = "192.0.2.1"
AUTH_KEY = b"s3cret-hep-key"


@dataclass
class Inner:
    """One captured packet as a capture agent saw it."""

    src: str
    dst: str
    sport: int
    dport: int
    ts: float  # seconds since the epoch (microsecond precision)
    payload: bytes
    proto: int = 17
    agent: int = 2001
    payload_type: int = 1
    correlation: str = ""


def chunk(ctype: int, value: bytes, vendor: int = 0) -> bytes:
    return struct.pack("!HHH", vendor, ctype, 6 + len(value)) + value


def hep3(inner: Inner, *, auth_key: bytes = AUTH_KEY) -> bytes:
    six = ":" in inner.src
    family = 10 if six else 2
    addr = socket.AF_INET6 if six else socket.AF_INET
    secs = int(inner.ts)
    micros = round((inner.ts - secs) * 1_000_000)
    parts = [
        chunk(1, bytes([family])), chunk(2, bytes([inner.proto])),
        chunk(5 if six else 3, socket.inet_pton(addr, inner.src)),
        chunk(6 if six else 4, socket.inet_pton(addr, inner.dst)),
        chunk(7, struct.pack("!H", inner.sport)), chunk(8, struct.pack("!H", inner.dport)),
        chunk(9, struct.pack("!I", secs)), chunk(10, struct.pack("!I", micros)),
        chunk(11, bytes([inner.payload_type])), chunk(12, struct.pack("!I", inner.agent)),
        chunk(14, auth_key),
    ]
    if inner.correlation:
        parts.append(chunk(17, inner.correlation.encode()))
    parts.append(chunk(15, inner.payload))
    body = b"".join(parts)
    return b"HEP3" + struct.pack("!H", 6 + len(body)) + body


def hep2(inner: Inner) -> bytes:
    six = ":" in inner.src
    addr = socket.AF_INET6 if six else socket.AF_INET
    secs = int(inner.ts)
    micros = round((inner.ts - secs) * 1_000_000)
    head = struct.pack("!BBBBHH", 2, 8, 10 if six else 2, inner.proto, inner.sport, inner.dport)
    return (head + socket.inet_pton(addr, inner.src) + socket.inet_pton(addr, inner.dst)
            + struct.pack("<IIHH", secs, micros, inner.agent, 0) + inner.payload)


def sip_call(a: str = "10.1.1.1", b: str = "10.2.2.2", start: float = 1_700_000_000.25, call_id: str = "hepcall-1",
             agent: int = 2001) -> list[Inner]:
    """INVITE / 200 / ACK / BYE / 200 between a:5060 and b:5080, 100 ms apart."""
    host_a = f"[{a}]" if ":" in a else a
    host_b = f"[{b}]" if ":" in b else b

    def msg(first: str, cseq: str, via_host: str, via_port: int) -> bytes:
        return (f"{first}\r\nVia: SIP/2.0/UDP {via_host}:{via_port};branch=z9hG4bK-{cseq.split()[0]}\r\n"
                f"From: <sip:alice@{host_a}>;tag=a1\r\nTo: <sip:bob@{host_b}>"
                + ("" if first.startswith("INVITE") else ";tag=b1")
                + f"\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n").encode()

    invite = msg(f"INVITE sip:bob@{host_b}:5080 SIP/2.0", "1 INVITE", host_a, 5060)
    ok = msg("SIP/2.0 200 OK", "1 INVITE", host_a, 5060)
    ack = msg(f"ACK sip:bob@{host_b}:5080 SIP/2.0", "1 ACK", host_a, 5060)
    bye = msg(f"BYE sip:bob@{host_b}:5080 SIP/2.0", "2 BYE", host_a, 5060)
    ok_bye = msg("SIP/2.0 200 OK", "2 BYE", host_a, 5060)
    out = []
    for i, (payload, forward) in enumerate([(invite, True), (ok, False), (ack, True), (bye, True), (ok_bye, False)]):
        src, dst, sport, dport = (a, b, 5060, 5080) if forward else (b, a, 5080, 5060)
        out.append(Inner(src, dst, sport, dport, round(start + 0.1 * i, 6), payload, agent=agent,
                         correlation=call_id))
    return out


def rtcp_sr(ssrc: int = 0x11223344, source: int = 0x55667788) -> bytes:
    """An RTCP SR with one report block (RFC 3550 6.4.1): fraction lost 5/256, cumulative lost 7."""
    head = struct.pack("!BBH", 0x81, 200, 12)
    sender = struct.pack("!IIIIII", ssrc, 3_900_000_000, 0x80000000, 160_000, 500, 80_000)
    block = struct.pack("!IIIIII", source, (5 << 24) | 7, 1_234, 33, 0x0A0B0C0D, 65_536)
    return head + sender + block


# --- writing


@dataclass
class Frame:
    ts: float
    ip: bytes  # an IPv4 packet


@dataclass
class Capture:
    frames: list[Frame] = field(default_factory=list)

    def udp(self, ts: float, payload: bytes, src=(AGENT_HOST, 41000), dst=COLLECTOR) -> None:
        udp = dpkt.udp.UDP(sport=src[1], dport=dst[1], data=payload)
        udp.ulen = 8 + len(payload)
        self.frames.append(Frame(ts, _ipv4(src[0], dst[0], dpkt.ip.IP_PROTO_UDP, bytes(udp))))

    def udp_fragments(self, ts: float, payload: bytes, ident: int, size: int = 1480, order=None,
                      src=(AGENT_HOST, 41000), dst=COLLECTOR) -> int:
        """One UDP datagram sent as IPv4 fragments of `size` bytes of IP payload (RFC 791: offsets in
        8-byte units, More Fragments on all but the last); `order` lists which fragments to write, in
        which order (default: all, in order). Returns how many fragments the datagram takes."""
        udp = dpkt.udp.UDP(sport=src[1], dport=dst[1], data=payload)
        udp.ulen = 8 + len(payload)
        data = bytes(udp)
        pieces = [data[i : i + size] for i in range(0, len(data), size)]
        for k, n in enumerate(range(len(pieces)) if order is None else order):
            ip = dpkt.ip.IP(src=ipaddress.IPv4Address(src[0]).packed, dst=ipaddress.IPv4Address(dst[0]).packed,
                            p=dpkt.ip.IP_PROTO_UDP, ttl=64, id=ident, data=pieces[n])
            ip.offset = n * size // 8  # the field counts 8-byte units
            ip.mf = int(n + 1 < len(pieces))
            ip.len = 20 + len(pieces[n])
            self.frames.append(Frame(ts + 0.001 * k, bytes(ip)))
        return len(pieces)

    def tcp(self, ts: float, seq: int, payload: bytes, src=(AGENT_HOST, 42000), dst=COLLECTOR, flags=None) -> None:
        tcp = dpkt.tcp.TCP(sport=src[1], dport=dst[1], seq=seq, ack=1, off=5,
                           flags=flags if flags is not None else dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH, win=65535,
                           data=payload)
        self.frames.append(Frame(ts, _ipv4(src[0], dst[0], dpkt.ip.IP_PROTO_TCP, bytes(tcp))))

    def write(self, path: Path) -> Path:
        with open(path, "wb") as f:
            writer = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_EN10MB)
            for frame in self.frames:
                eth = dpkt.ethernet.Ethernet(src=b"\x02\0\0\0\0\1", dst=b"\x02\0\0\0\0\2",
                                             type=dpkt.ethernet.ETH_TYPE_IP, data=frame.ip)
                writer.writepkt(bytes(eth), ts=frame.ts)
        return path


def _ipv4(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    ip = dpkt.ip.IP(src=ipaddress.IPv4Address(src).packed, dst=ipaddress.IPv4Address(dst).packed, p=proto, ttl=64,
                    data=payload)
    ip.len = 20 + len(payload)
    return bytes(ip)


OUTER_DELAY = 0.5  # the collector's capture sees each HEP packet this long after the agent captured it


def udp_capture(path: Path, inners: list[Inner], version: int = 3) -> Path:
    cap = Capture()
    for inner in inners:
        cap.udp(inner.ts + OUTER_DELAY, hep3(inner) if version == 3 else hep2(inner))
    return cap.write(path)


def tcp_capture(path: Path, inners: list[Inner], cuts: list[int], retransmit: int | None = None) -> Path:
    """The HEP packets as one TCP byte stream, cut into segments at the given stream offsets; segment
    number `retransmit` is sent twice."""
    stream = b"".join(hep3(i) for i in inners)
    return tcp_stream_capture(path, stream, cuts, inners[0].ts + OUTER_DELAY, retransmit)


def tcp_stream_capture(path: Path, stream: bytes, cuts: list[int], ts: float, retransmit: int | None = None) -> Path:
    cap = Capture()
    isn = 1000
    cap.tcp(ts - 0.01, isn, b"", flags=dpkt.tcp.TH_SYN)
    bounds = [0, *cuts, len(stream)]
    for n, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        cap.tcp(ts + 0.01 * n, isn + 1 + lo, stream[lo:hi])
        if n == retransmit:
            cap.tcp(ts + 0.01 * n + 0.005, isn + 1 + lo, stream[lo:hi])
    return cap.write(path)

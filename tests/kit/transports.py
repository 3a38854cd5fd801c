"""SIP calls over each transport, written as pcaps with dpkt: WebSocket (RFC 7118, frames per RFC 6455),
SCTP (RFC 4168: one message per DATA chunk), TCP on any port, and IPv6. The construction gives the
expected messages: the exact text of tests/kit/tls_sip.sip_messages, in order, between CLIENT and SERVER.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from pathlib import Path

import dpkt

START = 1_700_000_200.0


class Conversation:
    """Packets between a client and a server (IPv4 or IPv6), written as one Ethernet pcap."""

    def __init__(self, client: tuple[str, int], server: tuple[str, int]):
        self.client, self.server = client, server
        self.frames: list[tuple[float, bytes]] = []
        self.ts = START
        self.seq = {True: 1000, False: 5000}

    def _ip(self, from_client: bool, proto: int, payload: bytes) -> bytes:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        a, b = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
        if a.version == 6:
            ip = dpkt.ip6.IP6(src=a.packed, dst=b.packed, nxt=proto, hlim=64, plen=len(payload), data=payload)
            ip.extension_hdrs = {}
            return bytes(dpkt.ethernet.Ethernet(src=b"\x02\0\0\0\0\1", dst=b"\x02\0\0\0\0\2",
                                                type=dpkt.ethernet.ETH_TYPE_IP6)) + bytes(ip)
        ip = dpkt.ip.IP(src=a.packed, dst=b.packed, p=proto, ttl=64, data=payload)
        ip.len = 20 + len(payload)
        return bytes(dpkt.ethernet.Ethernet(src=b"\x02\0\0\0\0\1", dst=b"\x02\0\0\0\0\2",
                                            type=dpkt.ethernet.ETH_TYPE_IP, data=ip))

    def _ports(self, from_client: bool) -> tuple[int, int]:
        return (self.client[1], self.server[1]) if from_client else (self.server[1], self.client[1])

    def _add(self, frame: bytes) -> None:
        self.frames.append((self.ts, frame))
        self.ts += 0.01

    def udp(self, from_client: bool, payload: bytes) -> None:
        sport, dport = self._ports(from_client)
        udp = dpkt.udp.UDP(sport=sport, dport=dport, ulen=8 + len(payload), data=payload)
        self._add(self._ip(from_client, 17, _with_checksum(udp, self, from_client)))

    def tcp(self, from_client: bool, payload: bytes = b"", flags: int = dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH) -> None:
        sport, dport = self._ports(from_client)
        tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=self.seq[from_client], ack=self.seq[not from_client],
                           off=5, flags=flags, win=65535, data=payload)
        self._add(self._ip(from_client, 6, _with_checksum(tcp, self, from_client)))
        grow = len(payload) + (1 if flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN) else 0)
        self.seq[from_client] = (self.seq[from_client] + grow) % (1 << 32)

    def open_tcp(self) -> None:
        self.tcp(True, flags=dpkt.tcp.TH_SYN)
        self.tcp(False, flags=dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)
        self.tcp(True, flags=dpkt.tcp.TH_ACK)

    def sctp_data(self, from_client: bool, payload: bytes, tsn: int) -> None:
        """One SCTP packet with one DATA chunk (flags B and E: a whole message; PPID 0)."""
        sport, dport = self._ports(from_client)
        pad = b"\0" * (-len(payload) % 4)
        chunk = struct.pack("!BBHIHHI", 0, 3, 16 + len(payload), tsn, 0, tsn - 1, 0) + payload + pad
        common = struct.pack("!HHII", sport, dport, 0x01020304, 0)
        crc = _crc32c(common + chunk)
        self._add(self._ip(from_client, 132, common[:8] + struct.pack("<I", crc) + chunk))

    def write(self, path: Path) -> Path:
        with open(path, "wb") as f:
            writer = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_EN10MB)
            for ts, frame in self.frames:
                writer.writepkt(frame, ts=ts)
        return path


def _with_checksum(segment, conv: Conversation, from_client: bool) -> bytes:
    """UDP/TCP checksum over the pseudo-header (RFC 768, RFC 793, RFC 8200 8.1)."""
    src, dst = (conv.client, conv.server) if from_client else (conv.server, conv.client)
    a, b = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    segment.sum = 0
    data = bytes(segment)
    proto = 17 if isinstance(segment, dpkt.udp.UDP) else 6
    if a.version == 6:
        pseudo = a.packed + b.packed + struct.pack("!IxxxB", len(data), proto)
    else:
        pseudo = a.packed + b.packed + struct.pack("!xBH", proto, len(data))
    total = dpkt.dpkt.in_cksum(pseudo + data)
    segment.sum = total or (0xFFFF if proto == 17 else 0)
    return bytes(segment)


def _crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the SCTP checksum (RFC 4960 appendix B), bit by bit."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def ws_frame(text: bytes, masked: bool) -> bytes:
    """One unfragmented WebSocket text frame (RFC 6455 5.2); a client's frames are masked."""
    head = bytes([0x81])
    n = len(text)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mask_bit | n])
    else:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    if not masked:
        return head + text
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(text))


def ws_upgrade(host: str, port: int) -> tuple[bytes, bytes]:
    """The HTTP/1.1 Upgrade request with the 'sip' subprotocol (RFC 7118 4) and the server's 101."""
    request = (f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.test\r\n"
               "Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    response = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n").encode()
    return request, response

"""Packet builders: link layers, IPv4/IPv6, UDP, TCP and tunnels.

Every builder returns ``bytes`` and is pure (same arguments -> same bytes), so the
captures built from them are reproducible byte for byte.  Checksums (IPv4 header,
UDP, TCP, over the IPv4 or IPv6 pseudo header) are always correct.

Link types (the pcap/pcapng LINKTYPE_* numbers) are exported as constants.
"""

from __future__ import annotations

import ipaddress
import struct

# LINKTYPE_* values (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4/IPv6, version from the first nibble
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "null",
    LINKTYPE_ETHERNET: "ethernet",
    LINKTYPE_RAW: "raw",
    LINKTYPE_LINUX_SLL: "linux_sll",
    LINKTYPE_LINUX_SLL2: "linux_sll2",
}

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ARPHRD_ETHER = 1

IPPROTO_IPIP = 4
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_IPV6 = 41
IPPROTO_GRE = 47

# BSD AF_INET is 2 everywhere; AF_INET6 differs (24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS).
AF_INET = 2
AF_INET6_BSD = 24
AF_INET6_FREEBSD = 28
AF_INET6_DARWIN = 30

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10


def mac(text: str) -> bytes:
    """'02:00:00:00:00:01' -> 6 bytes."""
    out = bytes(int(part, 16) for part in text.split(":"))
    if len(out) != 6:
        raise ValueError(f"bad MAC {text!r}")
    return out


def ip_bytes(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def is_ipv6(addr: str) -> bool:
    return ipaddress.ip_address(addr).version == 6


def inet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


# --------------------------------------------------------------------------- link layers


def ethernet(
    payload: bytes,
    *,
    src: str = "02:00:00:00:00:01",
    dst: str = "02:00:00:00:00:02",
    ethertype: int = ETH_P_IP,
    vlans: tuple[int, ...] = (),
    outer_tpid: int = ETH_P_8021Q,
) -> bytes:
    """Ethernet II frame.

    ``vlans`` lists VLAN ids outermost first.  One id gives an 802.1Q tag (TPID
    0x8100); two ids give QinQ: outer tag with ``outer_tpid`` (pass 0x88a8 for
    802.1ad) and inner tag 0x8100.  Priority bits are 0.
    """
    head = mac(dst) + mac(src)
    for i, vid in enumerate(vlans):
        tpid = outer_tpid if (i == 0 and len(vlans) > 1) else ETH_P_8021Q
        head += struct.pack("!HH", tpid, vid & 0x0FFF)
    return head + struct.pack("!H", ethertype) + payload


def linux_sll(
    payload: bytes,
    *,
    protocol: int = ETH_P_IP,
    pkttype: int = 0,
    hatype: int = ARPHRD_ETHER,
    addr: str = "02:00:00:00:00:01",
) -> bytes:
    """Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 16-byte header).

    pkttype: 0 = to us, 1 = broadcast, 2 = multicast, 3 = to other host, 4 = sent by us.
    """
    a = mac(addr)
    return struct.pack("!HHH", pkttype, hatype, len(a)) + a.ljust(8, b"\x00") + struct.pack("!H", protocol) + payload


def linux_sll2(
    payload: bytes,
    *,
    protocol: int = ETH_P_IP,
    ifindex: int = 2,
    pkttype: int = 0,
    hatype: int = ARPHRD_ETHER,
    addr: str = "02:00:00:00:00:01",
) -> bytes:
    """Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 20-byte header)."""
    a = mac(addr)
    return (
        struct.pack("!HHIHBB", protocol, 0, ifindex, hatype, pkttype, len(a))
        + a.ljust(8, b"\x00")
        + payload
    )


def null_loopback(payload: bytes, *, family: int = AF_INET, byteorder: str = "<") -> bytes:
    """BSD loopback (LINKTYPE_NULL): 4-byte family in the *capturing host's* byte order.

    Pass the byte order of the file being written ('<' or '>'), as a host writing
    its own native pcap would.
    """
    return struct.pack(byteorder + "I", family) + payload


def raw_ip(payload: bytes) -> bytes:
    """LINKTYPE_RAW: no link header at all."""
    return payload


# --------------------------------------------------------------------------- IP


def ipv4(
    src: str,
    dst: str,
    proto: int,
    payload: bytes,
    *,
    ident: int = 0,
    ttl: int = 64,
    df: bool = False,
    mf: bool = False,
    frag_offset: int = 0,
    tos: int = 0,
    total_length: int | None = None,
) -> bytes:
    """IPv4 header (no options) + payload, with a correct header checksum.

    ``frag_offset`` is in bytes and must be a multiple of 8.
    """
    if frag_offset % 8:
        raise ValueError("fragment offset must be a multiple of 8")
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset // 8)
    length = 20 + len(payload) if total_length is None else total_length
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, length, ident, flags, ttl, proto, 0, ip_bytes(src), ip_bytes(dst))
    csum = inet_checksum(hdr)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def ipv4_fragments(
    src: str, dst: str, proto: int, payload: bytes, *, ident: int, fragment_size: int = 1480, ttl: int = 64
) -> list[bytes]:
    """Split one IPv4 datagram into fragments carrying at most ``fragment_size`` payload bytes.

    ``fragment_size`` is rounded down to a multiple of 8.  Returned in offset order;
    the caller may reorder them on the wire.
    """
    size = fragment_size - fragment_size % 8
    if size <= 0:
        raise ValueError("fragment_size too small")
    out = []
    for off in range(0, len(payload), size):
        chunk = payload[off : off + size]
        more = off + size < len(payload)
        out.append(ipv4(src, dst, proto, chunk, ident=ident, ttl=ttl, mf=more, frag_offset=off))
    return out


def ipv6(src: str, dst: str, next_header: int, payload: bytes, *, hop_limit: int = 64, flow_label: int = 0) -> bytes:
    first = (6 << 28) | (flow_label & 0xFFFFF)
    return struct.pack("!IHBB16s16s", first, len(payload), next_header, hop_limit, ip_bytes(src), ip_bytes(dst)) + payload


def ip(src: str, dst: str, proto: int, payload: bytes, *, ident: int = 0) -> bytes:
    """IPv4 or IPv6 header depending on the address family of ``src``."""
    if is_ipv6(src):
        return ipv6(src, dst, proto, payload)
    return ipv4(src, dst, proto, payload, ident=ident)


def _pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    if is_ipv6(src):
        return ip_bytes(src) + ip_bytes(dst) + struct.pack("!IxxxB", length, proto)
    return ip_bytes(src) + ip_bytes(dst) + struct.pack("!xBH", proto, length)


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """UDP header + payload; checksum over the pseudo header of ``src``/``dst``."""
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    csum = inet_checksum(_pseudo_header(src, dst, IPPROTO_UDP, length) + hdr + payload)
    if csum == 0:
        csum = 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, csum) + payload


def tcp(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    payload: bytes,
    *,
    seq: int,
    ack: int = 0,
    flags: int = TCP_ACK,
    window: int = 65535,
    mss: int | None = None,
) -> bytes:
    """TCP header (+ MSS option when given) + payload, with a correct checksum."""
    opts = b""
    if mss is not None:
        opts = struct.pack("!BBH", 2, 4, mss)
    offset = (20 + len(opts)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, offset << 4, flags, window, 0, 0)
    hdr += opts
    csum = inet_checksum(_pseudo_header(src, dst, IPPROTO_TCP, len(hdr) + len(payload)) + hdr + payload)
    return hdr[:16] + struct.pack("!H", csum) + hdr[18:] + payload


def ip_udp(src: str, dst: str, sport: int, dport: int, payload: bytes, *, ident: int = 0) -> bytes:
    """A whole IP datagram (v4 or v6 by address family) carrying one UDP datagram."""
    return ip(src, dst, IPPROTO_UDP, udp(src, dst, sport, dport, payload), ident=ident)


class TcpConnection:
    """Tracks sequence/ack numbers of one TCP connection so segments can be built in order.

    Side "c" is the client (opened the connection), side "s" the server.
    """

    def __init__(self, client: tuple[str, int], server: tuple[str, int], *, client_isn: int, server_isn: int):
        self.ends = {"c": client, "s": server}
        self.next_seq = {"c": client_isn, "s": server_isn}
        self.ident = {"c": 0x1000, "s": 0x2000}

    def _other(self, side: str) -> str:
        return "s" if side == "c" else "c"

    def segment(self, side: str, payload: bytes = b"", flags: int = TCP_ACK | TCP_PSH, *, mss: int | None = None) -> bytes:
        """IP datagram carrying the next segment from ``side``; advances that side's seq."""
        (sip, sport), (dip, dport) = self.ends[side], self.ends[self._other(side)]
        other = self._other(side)
        ack = self.next_seq[other] if flags & TCP_ACK else 0
        if not payload and flags == TCP_ACK | TCP_PSH:
            flags = TCP_ACK
        seg = tcp(sip, dip, sport, dport, payload, seq=self.next_seq[side], ack=ack, flags=flags, mss=mss)
        self.next_seq[side] += len(payload) + (1 if flags & (TCP_SYN | TCP_FIN) else 0)
        self.ident[side] += 1
        return ip(sip, dip, IPPROTO_TCP, seg, ident=self.ident[side])

    def handshake(self) -> list[tuple[str, bytes]]:
        return [
            ("c", self.segment("c", flags=TCP_SYN, mss=1460)),
            ("s", self.segment("s", flags=TCP_SYN | TCP_ACK, mss=1460)),
            ("c", self.segment("c", flags=TCP_ACK)),
        ]

    def close(self) -> list[tuple[str, bytes]]:
        return [
            ("c", self.segment("c", flags=TCP_FIN | TCP_ACK)),
            ("s", self.segment("s", flags=TCP_FIN | TCP_ACK)),
            ("c", self.segment("c", flags=TCP_ACK)),
        ]


# --------------------------------------------------------------------------- tunnels


def ipip(outer_src: str, outer_dst: str, inner_ipv4: bytes, *, ident: int = 0) -> bytes:
    """IPv4-in-IPv4 (protocol 4)."""
    return ipv4(outer_src, outer_dst, IPPROTO_IPIP, inner_ipv4, ident=ident)


def gre(inner: bytes, *, protocol: int = ETH_P_IP, key: int | None = None) -> bytes:
    """GRE header (RFC 2784/2890): version 0, optional key."""
    flags = 0x2000 if key is not None else 0
    hdr = struct.pack("!HH", flags, protocol)
    if key is not None:
        hdr += struct.pack("!I", key)
    return hdr + inner


def ipv4_gre(outer_src: str, outer_dst: str, inner_ipv4: bytes, *, ident: int = 0, key: int | None = None) -> bytes:
    return ipv4(outer_src, outer_dst, IPPROTO_GRE, gre(inner_ipv4, key=key), ident=ident)


VXLAN_PORT = 4789
GTPU_PORT = 2152


def vxlan(inner_ethernet: bytes, *, vni: int) -> bytes:
    """VXLAN header (RFC 7348): flags 0x08 (VNI valid), 24-bit VNI."""
    return struct.pack("!B3xI", 0x08, (vni & 0xFFFFFF) << 8) + inner_ethernet


def gtpu(inner_ip: bytes, *, teid: int) -> bytes:
    """GTPv1-U G-PDU header (8 bytes, no optional fields): flags 0x30, type 0xff."""
    return struct.pack("!BBHI", 0x30, 0xFF, len(inner_ip), teid) + inner_ip

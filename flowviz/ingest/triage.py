"""Packet index: link, IP and UDP/TCP headers of every packet, decoded with numpy in one pass.

Each step works on all packets at once: an array of offsets moves through the
headers (link layer, VLAN tags, tunnels, IP, transport). Packets the reader cannot
place are counted by reason, never dropped silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from flowviz.ingest.capture_file import Records

# Link types (LINKTYPE_* values as stored in pcap/pcapng files).
LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP, LT_SLL, LT_ERF, LT_IPV4, LT_IPV6, LT_SLL2 = 0, 1, 101, 108, 113, 197, 228, 229, 276
RAW_LINK_TYPES = (LT_RAW, 12, 14, LT_IPV4, LT_IPV6)

# What comes next at `cur` while walking headers.
NEXT_DONE, NEXT_ETHER, NEXT_IP_BY_VERSION = 0, 1, 2
ET_IPV4, ET_IPV6 = 0x0800, 0x86DD
NOT_IP = 0xFFFF  # a link-layer payload that is not IP (unknown PPP protocol)

PROTO_ICMP, PROTO_IPIP, PROTO_TCP, PROTO_UDP, PROTO_IPV6, PROTO_GRE, PROTO_ICMPV6, PROTO_SCTP = 1, 4, 6, 17, 41, 47, 58, 132
VXLAN_PORT, GTPU_PORT = 4789, 2152


@dataclass
class PacketIndex:
    """One entry per packet; arrays share the packet order of the capture."""

    records: Records
    ip_version: np.ndarray  # uint8: 4, 6, or 0 when the packet is not IP (or could not be placed)
    src_hi: np.ndarray  # uint64: address as 128 bits (IPv4 as ::ffff:a.b.c.d), high half
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    ip_proto: np.ndarray  # uint8: innermost IP protocol
    is_fragment: np.ndarray  # bool: an IP fragment (first or later)
    tunneled: np.ndarray  # bool: found inside IP-in-IP, GRE, VXLAN or GTP-U
    needs_exact: np.ndarray  # bool: could not be fully placed but may hold SIP (unknown tunnel...)
    src_port: np.ndarray  # uint16 (0 when not UDP/TCP/SCTP)
    dst_port: np.ndarray
    tcp_flags: np.ndarray  # uint8
    payload_off: np.ndarray  # int64: offset of the UDP/TCP payload in records.buf
    payload_len: np.ndarray  # int64: payload bytes captured (0 when none)
    skipped: Counter = field(default_factory=Counter)  # reason -> packets

    @property
    def count(self) -> int:
        return self.records.count

    def frame_numbers(self) -> np.ndarray:
        return np.arange(1, self.count + 1, dtype=np.uint32)


class _Reader:
    """Big-endian fields at any byte offset of the file buffer, gathered in one numpy operation.

    The views step one byte at a time, so `u16[i]` is the 16-bit value starting at byte i;
    indices are clipped so a broken length field can never read outside the buffer.
    """

    def __init__(self, buf: np.ndarray):
        if len(buf) < 8:
            buf = np.concatenate([buf, np.zeros(8, dtype=np.uint8)])
        self.buf = buf
        self._u16 = _byte_strided(buf, ">u2")
        self._u32 = _byte_strided(buf, ">u4")

    def u8(self, idx: np.ndarray) -> np.ndarray:
        return self.buf.take(idx, mode="clip")

    def u16(self, idx: np.ndarray) -> np.ndarray:
        return self._u16[np.clip(idx, 0, len(self._u16) - 1)].astype(np.uint16)

    def u32(self, idx: np.ndarray) -> np.ndarray:
        return self._u32[np.clip(idx, 0, len(self._u32) - 1)].astype(np.uint32)

    def u64(self, idx: np.ndarray) -> np.ndarray:
        return (self.u32(idx).astype(np.uint64) << np.uint64(32)) | self.u32(idx + 4)


def _byte_strided(buf: np.ndarray, dtype: str) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    return np.ndarray(shape=(len(buf) - size + 1,), dtype=dtype, buffer=buf, strides=(1,))


def build_index(records: Records) -> PacketIndex:
    n = records.count
    rd = _Reader(records.buf) if n else _Reader(np.zeros(1, dtype=np.uint8))
    start = records.data_off
    end = records.data_off + records.caplen
    lt = records.link_type.astype(np.int64)

    cur = start.copy()
    nxt = np.full(n, NEXT_DONE, dtype=np.int64)  # NEXT_* or an ethertype
    skipped: Counter = Counter()

    nxt[lt == LT_ETHERNET] = NEXT_ETHER
    _link_sll(rd, lt, cur, nxt)
    _link_null(rd, lt, cur, nxt)
    _link_erf(rd, lt, cur, nxt, end)
    nxt[np.isin(lt, RAW_LINK_TYPES)] = NEXT_IP_BY_VERSION
    known_link = np.isin(lt, (LT_ETHERNET, LT_SLL, LT_SLL2, LT_NULL, LT_LOOP, LT_ERF) + RAW_LINK_TYPES)
    for t, c in zip(*np.unique(lt[~known_link], return_counts=True)):
        skipped[f"unsupported link type {t}"] += int(c)

    st = _IpState(n)
    for depth in range(6):
        pending = nxt != NEXT_DONE
        if not pending.any():
            break
        _step_ether(rd, cur, nxt, end)
        by_version = nxt == NEXT_IP_BY_VERSION
        if by_version.any():
            version = rd.u8(cur[by_version]) >> 4
            nxt[by_version] = np.where(version == 4, ET_IPV4, np.where(version == 6, ET_IPV6, NEXT_DONE))
        is4, is6 = nxt == ET_IPV4, nxt == ET_IPV6
        other = pending & ~is4 & ~is6 & (nxt != NEXT_ETHER)
        for et, c in zip(*np.unique(nxt[other], return_counts=True)):
            reason = "not IP (802.3 LLC frame)" if et < 0x600 else f"not IP (ethertype 0x{et:04x})"
            skipped[reason] += int(c)
        nxt[other] = NEXT_DONE
        if depth > 0:
            st.tunneled |= is4 | is6
        _step_ipv4(rd, cur, nxt, end, is4, st)
        _step_ipv6(rd, cur, nxt, end, is6, st)
        _step_tunnels(rd, cur, nxt, st)
    leftover = nxt != NEXT_DONE
    if leftover.any():
        skipped["nested too deep"] += int(leftover.sum())
        st.needs_exact |= leftover

    return _transport(rd, records, st, skipped)


class _IpState:
    def __init__(self, n: int):
        z64 = lambda: np.zeros(n, dtype=np.uint64)  # noqa: E731
        self.version = np.zeros(n, dtype=np.uint8)
        self.src_hi, self.src_lo, self.dst_hi, self.dst_lo = z64(), z64(), z64(), z64()
        self.proto = np.zeros(n, dtype=np.uint8)
        self.l4 = np.zeros(n, dtype=np.int64)
        self.ip_end = np.zeros(n, dtype=np.int64)
        self.fragment = np.zeros(n, dtype=bool)
        self.later_fragment = np.zeros(n, dtype=bool)
        self.tunneled = np.zeros(n, dtype=bool)
        self.needs_exact = np.zeros(n, dtype=bool)
        self.truncated = np.zeros(n, dtype=bool)


def _link_sll(rd, lt, cur, nxt):
    sll = lt == LT_SLL
    if sll.any():
        nxt[sll] = rd.u16(cur[sll] + 14)
        cur[sll] += 16
    sll2 = lt == LT_SLL2
    if sll2.any():
        nxt[sll2] = rd.u16(cur[sll2])
        cur[sll2] += 20


def _link_null(rd, lt, cur, nxt):
    """BSD loopback: a 4-byte address family, host order (NULL) or network order (LOOP)."""
    m = (lt == LT_NULL) | (lt == LT_LOOP)
    if not m.any():
        return
    be = rd.u32(cur[m]).astype(np.int64)
    le = _bswap32(be)
    fam = np.where(lt[m] == LT_LOOP, be, np.where(le < 256, le, be))
    nxt[m] = np.where(fam == 2, ET_IPV4, np.where(np.isin(fam, (10, 24, 28, 30)), ET_IPV6, NEXT_DONE))
    cur[m] += 4


def _bswap32(v: np.ndarray) -> np.ndarray:
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | ((v >> 24) & 0xFF)


def _link_erf(rd, lt, cur, nxt, end):
    """ERF records: 16-byte header, optional extension headers, 2 bytes of padding before Ethernet."""
    m = np.flatnonzero(lt == LT_ERF)
    if not len(m):
        return
    erf_type = rd.u8(cur[m] + 8)
    hlen = np.full(len(m), 16, dtype=np.int64)
    more = (erf_type & 0x80) != 0
    for _ in range(8):
        if not more.any():
            break
        ext = rd.u8(cur[m] + hlen)
        hlen = np.where(more, hlen + 8, hlen)
        more = more & ((ext & 0x80) != 0)
    ethernet = np.isin(erf_type & 0x7F, (2, 10, 16, 21))
    cur[m] += hlen + 2
    nxt[m] = np.where(ethernet, NEXT_ETHER, NEXT_DONE)


def _step_ether(rd, cur, nxt, end):
    """Ethernet with 802.1Q/QinQ tags, PPPoE session and MPLS labels."""
    m = np.flatnonzero(nxt == NEXT_ETHER)
    if not len(m):
        return
    c = cur[m] + 14
    et = rd.u16(c - 2).astype(np.int64)
    for _ in range(4):  # stacked tags
        tag = np.isin(et, (0x8100, 0x88A8, 0x9100))
        if not tag.any():
            break
        et = np.where(tag, rd.u16(c + 2), et)
        c = np.where(tag, c + 4, c)
    pppoe = et == 0x8864
    if pppoe.any():
        ppp = rd.u16(c + 6).astype(np.int64)
        et = np.where(pppoe, np.where(ppp == 0x21, ET_IPV4, np.where(ppp == 0x57, ET_IPV6, NOT_IP)), et)
        c = np.where(pppoe, c + 8, c)
    mpls = et == 0x8847
    for _ in range(6):
        if not mpls.any():
            break
        bottom = (rd.u8(c + 2) & 1) == 1
        c = np.where(mpls, c + 4, c)
        et = np.where(mpls & bottom, NEXT_IP_BY_VERSION, et)
        mpls = mpls & ~bottom
    cur[m] = c
    nxt[m] = et


def _step_ipv4(rd, cur, nxt, end, is4, st):
    m = np.flatnonzero(is4)
    if not len(m):
        return
    c, e = cur[m], end[m]
    ok = c + 20 <= e
    ihl = (rd.u8(c) & 0x0F).astype(np.int64) * 4
    total = rd.u16(c + 2).astype(np.int64)
    frag = rd.u16(c + 6).astype(np.int64)
    proto = rd.u8(c + 9)
    src = rd.u32(c + 12).astype(np.uint64)
    dst = rd.u32(c + 16).astype(np.uint64)
    ok &= ihl >= 20
    mapped = np.uint64(0xFFFF00000000)
    _set_ip(st, m, ok, 4, np.uint64(0), src | mapped, np.uint64(0), dst | mapped, proto, c + ihl,
            np.minimum(c + np.maximum(total, ihl), e), (frag & 0x3FFF) != 0, (frag & 0x1FFF) != 0)
    nxt[m] = NEXT_DONE
    st.truncated[m[~ok]] = True


def _step_ipv6(rd, cur, nxt, end, is6, st):
    m = np.flatnonzero(is6)
    if not len(m):
        return
    c, e = cur[m], end[m]
    ok = c + 40 <= e
    plen = rd.u16(c + 4).astype(np.int64)
    nh = rd.u8(c + 6).astype(np.int64)
    l4 = c + 40
    frag = np.zeros(len(m), dtype=bool)
    later = np.zeros(len(m), dtype=bool)
    for _ in range(4):  # hop-by-hop, routing, destination options, fragment
        ext = np.isin(nh, (0, 43, 60))
        fr = nh == 44
        if not (ext.any() or fr.any()):
            break
        later |= fr & ((rd.u16(l4 + 2) & 0xFFF8) != 0)
        frag |= fr
        step = np.where(fr, 8, (rd.u8(l4 + 1).astype(np.int64) + 1) * 8)
        nh = np.where(ext | fr, rd.u8(l4), nh)
        l4 = np.where(ext | fr, l4 + step, l4)
    _set_ip(st, m, ok, 6, rd.u64(c + 8), rd.u64(c + 16), rd.u64(c + 24), rd.u64(c + 32), nh.astype(np.uint8),
            l4, np.minimum(c + 40 + plen, e), frag, later)
    nxt[m] = NEXT_DONE
    st.truncated[m[~ok]] = True


def _set_ip(st, m, ok, version, shi, slo, dhi, dlo, proto, l4, ip_end, frag, later):
    keep = m[ok]
    pick = lambda a: a[ok] if isinstance(a, np.ndarray) and a.shape == ok.shape else a  # noqa: E731
    st.version[keep] = version
    st.src_hi[keep], st.src_lo[keep] = pick(shi), pick(slo)
    st.dst_hi[keep], st.dst_lo[keep] = pick(dhi), pick(dlo)
    st.proto[keep] = pick(proto)
    st.l4[keep] = pick(l4)
    st.ip_end[keep] = pick(ip_end)
    st.fragment[keep] = pick(frag)
    st.later_fragment[keep] = pick(later)


def _step_tunnels(rd, cur, nxt, st):
    """Set up the next round for IP-in-IP, GRE, VXLAN and GTP-U (only freshly decoded IP headers)."""
    fresh = (st.version > 0) & (nxt == NEXT_DONE) & ~st.later_fragment
    l4, proto = st.l4, st.proto
    ipip = fresh & ((proto == PROTO_IPIP) | (proto == PROTO_IPV6))
    cur[ipip] = l4[ipip]
    nxt[ipip] = np.where(proto[ipip] == PROTO_IPIP, ET_IPV4, ET_IPV6)

    gre = np.flatnonzero(fresh & (proto == PROTO_GRE))
    if len(gre):
        g = l4[gre]
        flags = rd.u16(g).astype(np.int64)
        gproto = rd.u16(g + 2).astype(np.int64)
        glen = 4 + 4 * ((flags & 0x8000) != 0) + 4 * ((flags & 0x2000) != 0) + 4 * ((flags & 0x1000) != 0)
        version = flags & 7
        inner = g + glen
        to_ip = (version == 0) & np.isin(gproto, (ET_IPV4, ET_IPV6))
        to_eth = (version == 0) & (gproto == 0x6558)
        erspan2 = (version == 0) & (gproto == 0x88BE) & ((flags & 0x1000) != 0)
        erspan3 = (version == 0) & (gproto == 0x22EB)
        inner = np.where(erspan2, inner + 8, np.where(erspan3, inner + 12, inner))
        cur[gre] = inner
        nxt[gre] = np.where(to_ip, gproto, np.where(to_eth | erspan2 | erspan3, NEXT_ETHER, NEXT_DONE))
        st.needs_exact[gre[~(to_ip | to_eth | erspan2 | erspan3)]] = True

    udp = np.flatnonzero(fresh & (proto == PROTO_UDP))
    if len(udp):
        u = l4[udp]
        dport = rd.u16(u + 2)
        vx = (dport == VXLAN_PORT) & ((rd.u8(u + 8) & 0x08) != 0)
        gtp_flags = rd.u8(u + 8)
        gtp = (dport == GTPU_PORT) & ((gtp_flags >> 5) == 1) & (rd.u8(u + 9) == 255)
        ghl = np.where((gtp_flags & 0x07) != 0, 12, 8).astype(np.int64)
        # GTP-U extension headers: length in 4-byte units, next type in the last byte
        has_ext = (gtp_flags & 0x04) != 0
        next_ext = np.where(has_ext, rd.u8(u + 8 + 11), 0)
        for _ in range(4):
            more = gtp & (next_ext != 0)
            if not more.any():
                break
            elen = rd.u8(u + 8 + ghl).astype(np.int64) * 4
            next_ext = np.where(more, rd.u8(u + 8 + ghl + elen - 1), next_ext)
            ghl = np.where(more, ghl + elen, ghl)
        cur[udp] = np.where(vx, u + 16, u + 8 + ghl)
        nxt[udp] = np.where(vx, NEXT_ETHER, np.where(gtp, NEXT_IP_BY_VERSION, NEXT_DONE))


def _transport(rd, records, st, skipped) -> PacketIndex:
    n = records.count
    proto = st.proto
    is_ip = st.version > 0
    has_ports = is_ip & ~st.later_fragment & np.isin(proto, (PROTO_UDP, PROTO_TCP, PROTO_SCTP))
    l4 = st.l4
    sport = np.zeros(n, dtype=np.uint16)
    dport = np.zeros(n, dtype=np.uint16)
    flags = np.zeros(n, dtype=np.uint8)
    poff = np.zeros(n, dtype=np.int64)
    plen = np.zeros(n, dtype=np.int64)
    idx = np.flatnonzero(has_ports)
    sport[idx] = rd.u16(l4[idx])
    dport[idx] = rd.u16(l4[idx] + 2)

    udp = idx[proto[idx] == PROTO_UDP]
    poff[udp] = l4[udp] + 8
    udp_len = rd.u16(l4[udp] + 4).astype(np.int64) - 8
    plen[udp] = np.clip(np.minimum(udp_len, st.ip_end[udp] - poff[udp]), 0, None)

    tcp = idx[proto[idx] == PROTO_TCP]
    doff = (rd.u8(l4[tcp] + 12) >> 4).astype(np.int64) * 4
    flags[tcp] = rd.u8(l4[tcp] + 13)
    poff[tcp] = l4[tcp] + doff
    plen[tcp] = np.clip(st.ip_end[tcp] - poff[tcp], 0, None)

    short = has_ports & (l4 + 8 > records.data_off + records.caplen)
    if short.any():
        skipped["truncated headers"] += int(short.sum())
    if st.truncated.any():
        skipped["truncated headers"] += int((st.truncated & ~is_ip).sum())
    return PacketIndex(
        records=records,
        ip_version=st.version,
        src_hi=st.src_hi,
        src_lo=st.src_lo,
        dst_hi=st.dst_hi,
        dst_lo=st.dst_lo,
        ip_proto=proto,
        is_fragment=st.fragment,
        tunneled=st.tunneled,
        needs_exact=st.needs_exact,
        src_port=sport,
        dst_port=dport,
        tcp_flags=flags,
        payload_off=poff,
        payload_len=plen,
        skipped=skipped,
    )


def address_strings(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map 128-bit addresses to (index into a table, table of text addresses).

    IPv4 addresses (hi == 0) are unique-d as one uint64 column, which is fast; only the
    IPv6 rows pay for the two-column unique.
    """
    import ipaddress

    n = len(hi)
    inverse = np.zeros(n, dtype=np.int64)
    table: list[str] = []
    v6 = hi != 0
    v4_rows = np.flatnonzero(~v6)
    if len(v4_rows):
        uniq, inv = np.unique(lo[v4_rows], return_inverse=True)
        inverse[v4_rows] = inv
        table += [str(ipaddress.IPv4Address(int(v) & 0xFFFFFFFF)) if v else "" for v in uniq.tolist()]
    v6_rows = np.flatnonzero(v6)
    if len(v6_rows):
        key = np.stack([hi[v6_rows], lo[v6_rows]], axis=1)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        inverse[v6_rows] = inv.reshape(-1) + len(table)
        table += [str(ipaddress.IPv6Address((int(h) << 64) | int(l))) for h, l in uniq.tolist()]
    return inverse, table

"""Packet kernel: the compiled loop that walks capture records and decodes every packet's headers.

One pass, one packet at a time, compiled by numba: link layer (Ethernet with VLAN/QinQ,
PPPoE, MPLS; SLL, SLL2, raw IP, BSD loopback, ERF), tunnels (IP-in-IP, GRE, ERSPAN,
VXLAN, GTP-U), IPv4/IPv6 (extension headers, fragments), UDP/TCP/SCTP ports, and the
RTP fixed header. Each packet becomes one row of PACKET (no Python object per packet).
Why numba and not numpy: docs/architecture.md ("Ingest speed").
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import njit

PACKET = np.dtype(
    [
        ("file_off", np.int64),  # offset of the packet's first byte in the (plain) capture file
        ("caplen", np.int32),
        ("orig_len", np.int32),
        ("ts", np.int64),  # pcap: ns since the epoch; pcapng: interface time units until capture_file converts
        ("iface", np.uint16),  # pcapng interface index (0 for pcap)
        ("link_type", np.uint16),
        ("skip", np.uint8),  # SKIP_* reason, 0 when the packet was placed
        ("flags", np.uint8),  # F_* bits
        ("ip_version", np.uint8),
        ("ip_proto", np.uint8),
        ("ethertype", np.uint16),  # for SKIP_NOT_IP: what the link layer carried
        ("sport", np.uint16),
        ("dport", np.uint16),
        ("sip_prefix", np.uint8),  # 1 + index of the SIP_PREFIXES entry the payload starts with, 0 none
        ("rtp_kind", np.uint8),  # RTP_SHAPED / RTCP_SHAPED / 0
        ("rtp_b1", np.uint8),  # marker bit and payload type
        ("seq", np.uint16),
        ("rtp_ts", np.uint32),
        ("ssrc", np.uint32),
        ("rtp_payload_len", np.uint16),  # after CSRCs, extension and padding
        ("flow", np.uint64),  # hash of the unordered UDP/TCP conversation
        ("stream", np.uint64),  # hash of src ip:port, dst ip:port and SSRC (RTP-shaped packets)
    ],
    align=False,
)
# Addresses and payload position are not kept per packet (they would double the table); the
# kernel writes them to a small DETAIL scratch array, which decode_many keeps for chosen packets.
D_SRC_HI, D_SRC_LO, D_DST_HI, D_DST_LO, D_PAYLOAD_OFF, D_PAYLOAD_LEN, D_L4_OFF, D_IP_OFF = range(8)
DETAIL_FIELDS = 8

SKIP_NONE, SKIP_LINK, SKIP_NOT_IP, SKIP_TRUNCATED, SKIP_DEEP = 0, 1, 2, 3, 4
F_FRAGMENT, F_LATER_FRAGMENT, F_TUNNELED, F_NEEDS_EXACT, F_TURN = 1, 2, 4, 8, 16
RTP_SHAPED, RTCP_SHAPED = 1, 2

# First bytes of a SIP request or response (RFC 3261 and the methods of its extensions);
# "GET " marks a possible WebSocket upgrade (RFC 7118), checked later on the few that match.
SIP_PREFIXES = [
    b"INVITE ", b"ACK ", b"BYE ", b"CANCEL ", b"REGISTER", b"OPTIONS ", b"PRACK ", b"SUBSCRIB",
    b"NOTIFY ", b"PUBLISH ", b"INFO ", b"REFER ", b"MESSAGE ", b"UPDATE ", b"SIP/2.0 ", b"GET ",
]
GET_PREFIX = len(SIP_PREFIXES)  # sip_prefix value of "GET "
# sip_prefix of a UDP payload made only of CR, LF, NUL and spaces (or empty): a keepalive (RFC 5626
# 4.4.1 sends CRLF; some phones send zero bytes). tshark finds no SIP message in it either way.
KEEPALIVE_PREFIX = GET_PREFIX + 1
# sip_prefix of a UDP/TCP payload that starts a HEP packet (HOMER encapsulation: "HEP3", or a HEPv1/v2
# header whose payload starts with a letter); ingest/hep.py decodes them. Never a SIP candidate itself.
HEP_PREFIX = GET_PREFIX + 2
# sip_prefix of a TCP payload that starts with a TLS ClientHello (record type 22, version 3.x, handshake
# type 1, RFC 8446 5.1 and 4): a TLS connection opens; ingest/tls.py counts those on SIP ports.
TLS_HELLO_PREFIX = GET_PREFIX + 3
PREFIX_TABLE = np.zeros((len(SIP_PREFIXES), 8), dtype=np.uint8)
PREFIX_LEN = np.array([len(p) for p in SIP_PREFIXES], dtype=np.int64)
for _i, _p in enumerate(SIP_PREFIXES):
    PREFIX_TABLE[_i, : len(_p)] = np.frombuffer(_p, dtype=np.uint8)

# walk status
NEED_MORE, BAD_LENGTH, OTHER_BLOCK, OUT_FULL = 0, 1, 2, 3

LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP, LT_SLL, LT_ERF, LT_IPV4, LT_IPV6, LT_SLL2 = 0, 1, 101, 108, 113, 197, 228, 229, 276

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, nogil=True)
def _u16(b, i):
    return (np.int64(b[i]) << 8) | np.int64(b[i + 1])


@njit(cache=True, nogil=True)
def _u32(b, i):
    return (np.int64(b[i]) << 24) | (np.int64(b[i + 1]) << 16) | (np.int64(b[i + 2]) << 8) | np.int64(b[i + 3])


@njit(cache=True, nogil=True)
def _u32le(b, i):
    return (np.int64(b[i + 3]) << 24) | (np.int64(b[i + 2]) << 16) | (np.int64(b[i + 1]) << 8) | np.int64(b[i])


@njit(cache=True, nogil=True)
def _u64(b, i):
    return (np.uint64(_u32(b, i)) << np.uint64(32)) | np.uint64(_u32(b, i + 4))


@njit(cache=True, nogil=True)
def _mix(x):
    x = (x ^ (x >> np.uint64(31))) * _M2
    return x ^ (x >> np.uint64(29))


@njit(cache=True, nogil=True)
def _endpoint(hi, lo, port):
    return _mix(hi * _M1 ^ lo ^ (np.uint64(port) * _M3))


@njit(cache=True, nogil=True)
def walk_pcap(buf, limit, base, big_endian, ns_per_unit, link_type, max_record, out, k):
    """Decode whole pcap records in buf[0:limit]; returns (bytes consumed, packets written, status)."""
    off = 0
    cap = len(out)
    detail = np.zeros(DETAIL_FIELDS, dtype=np.uint64)
    while True:
        if off + 16 > limit:
            return off, k, NEED_MORE
        if k >= cap:
            return off, k, OUT_FULL
        if big_endian:
            sec, frac, caplen, orig = _u32(buf, off), _u32(buf, off + 4), _u32(buf, off + 8), _u32(buf, off + 12)
        else:
            sec, frac, caplen, orig = _u32le(buf, off), _u32le(buf, off + 4), _u32le(buf, off + 8), _u32le(buf, off + 12)
        if caplen > max_record:
            return off, k, BAD_LENGTH
        if off + 16 + caplen > limit:
            return off, k, NEED_MORE
        row = out[k]
        row.file_off = base + off + 16
        row.caplen = caplen
        row.orig_len = orig
        row.ts = sec * 1_000_000_000 + frac * ns_per_unit
        row.iface = 0
        row.link_type = link_type
        decode_packet(buf, off + 16, caplen, link_type, row, detail)
        k += 1
        off += 16 + caplen


@njit(cache=True, nogil=True)
def walk_pcapng(buf, limit, base, iface_link_types, max_block, out, k):
    """Decode Enhanced Packet Blocks (little-endian sections); stop at any other block for Python to read."""
    off = 0
    cap = len(out)
    n_ifaces = len(iface_link_types)
    detail = np.zeros(DETAIL_FIELDS, dtype=np.uint64)
    while True:
        if off + 12 > limit:
            return off, k, NEED_MORE
        btype = _u32le(buf, off)
        blen = _u32le(buf, off + 4)
        if btype != 6:
            return off, k, OTHER_BLOCK
        if blen < 32 or blen % 4 != 0 or blen > max_block:
            return off, k, BAD_LENGTH
        if off + blen > limit:
            return off, k, NEED_MORE
        if k >= cap:
            return off, k, OUT_FULL
        iface = _u32le(buf, off + 8)
        if iface >= n_ifaces:
            return off, k, BAD_LENGTH
        caplen = min(_u32le(buf, off + 20), blen - 32)
        row = out[k]
        row.file_off = base + off + 28
        row.caplen = caplen
        row.orig_len = _u32le(buf, off + 24)
        row.ts = (np.int64(_u32le(buf, off + 12)) << 32) | np.int64(_u32le(buf, off + 16))
        row.iface = iface
        lt = iface_link_types[iface]
        row.link_type = lt
        decode_packet(buf, off + 28, caplen, lt, row, detail)
        k += 1
        off += blen


@njit(cache=True, nogil=True)
def decode_packet(b, start, caplen, link_type, row, detail):
    """Fill the header fields of one packet whose bytes are b[start:start+caplen] (addresses: detail)."""
    end = start + caplen
    row.skip = SKIP_NONE
    row.flags = 0
    row.ip_version = 0
    row.ip_proto = 0
    row.ethertype = 0
    row.sport = 0
    row.dport = 0
    for i in range(DETAIL_FIELDS):
        detail[i] = 0
    row.sip_prefix = 0
    row.rtp_kind = 0
    row.flow = np.uint64(0)
    row.stream = np.uint64(0)

    # --- link layer: find where the first network header starts and what it is
    cur = start
    nxt = -1  # ethertype, or 1 = Ethernet header at cur, 2 = IP by version nibble
    if link_type == LT_ETHERNET:
        nxt = 1
    elif link_type == LT_SLL:
        if cur + 16 > end:
            row.skip = SKIP_TRUNCATED
            return
        nxt = _u16(b, cur + 14)
        cur += 16
    elif link_type == LT_SLL2:
        if cur + 20 > end:
            row.skip = SKIP_TRUNCATED
            return
        nxt = _u16(b, cur)
        cur += 20
    elif link_type == LT_NULL or link_type == LT_LOOP:
        if cur + 4 > end:
            row.skip = SKIP_TRUNCATED
            return
        be = _u32(b, cur)
        le = _u32le(b, cur)
        fam = be if (link_type == LT_LOOP or le >= 256) else le
        nxt = 0x0800 if fam == 2 else (0x86DD if (fam == 10 or fam == 24 or fam == 28 or fam == 30) else 0xFFFF)
        cur += 4
    elif link_type == LT_ERF:
        if cur + 16 > end:
            row.skip = SKIP_TRUNCATED
            return
        erf_type = b[cur + 8]
        hlen = 16
        more = (erf_type & 0x80) != 0
        while more and cur + hlen < end:
            more = (b[cur + hlen] & 0x80) != 0
            hlen += 8
        t = erf_type & 0x7F
        if t == 2 or t == 10 or t == 16 or t == 21:
            cur += hlen + 2
            nxt = 1
        else:
            row.skip = SKIP_LINK
            return
    elif link_type == LT_RAW or link_type == 12 or link_type == 14 or link_type == LT_IPV4 or link_type == LT_IPV6:
        nxt = 2
    else:
        row.skip = SKIP_LINK
        return

    for depth in range(6):
        if nxt == 1:  # Ethernet, VLAN tags, PPPoE, MPLS
            if cur + 14 > end:
                row.skip = SKIP_TRUNCATED
                return
            nxt = _u16(b, cur + 12)
            cur += 14
            while (nxt == 0x8100 or nxt == 0x88A8 or nxt == 0x9100) and cur + 4 <= end:
                nxt = _u16(b, cur + 2)
                cur += 4
            if nxt == 0x8864 and cur + 8 <= end:  # PPPoE session
                ppp = _u16(b, cur + 6)
                nxt = 0x0800 if ppp == 0x21 else (0x86DD if ppp == 0x57 else 0xFFFF)
                cur += 8
            if nxt == 0x8847:  # MPLS unicast: labels until bottom of stack
                while cur + 4 <= end:
                    bottom = (b[cur + 2] & 1) == 1
                    cur += 4
                    if bottom:
                        nxt = 2
                        break
        if nxt == 2:
            if cur >= end:
                row.skip = SKIP_TRUNCATED
                return
            v = b[cur] >> 4
            nxt = 0x0800 if v == 4 else (0x86DD if v == 6 else 0xFFFF)
        if nxt != 0x0800 and nxt != 0x86DD:
            row.skip = SKIP_NOT_IP
            row.ethertype = nxt
            return
        if depth > 0:
            row.flags |= F_TUNNELED
        # --- IP
        if nxt == 0x0800:
            if cur + 20 > end:
                row.skip = SKIP_TRUNCATED
                return
            ihl = (b[cur] & 0x0F) * 4
            if ihl < 20:
                row.skip = SKIP_TRUNCATED
                return
            total = _u16(b, cur + 2)
            frag = _u16(b, cur + 6)
            proto = b[cur + 9]
            mapped = np.uint64(0xFFFF00000000)
            row.ip_version = 4
            detail[D_IP_OFF] = cur - start
            detail[D_SRC_HI] = 0
            detail[D_DST_HI] = 0
            detail[D_SRC_LO] = mapped | np.uint64(_u32(b, cur + 12))
            detail[D_DST_LO] = mapped | np.uint64(_u32(b, cur + 16))
            later = (frag & 0x1FFF) != 0
            if (frag & 0x3FFF) != 0:
                row.flags |= F_FRAGMENT
            if later:
                row.flags |= F_LATER_FRAGMENT
            l4 = cur + ihl
            ip_end = min(cur + max(total, ihl), end)
        else:
            if cur + 40 > end:
                row.skip = SKIP_TRUNCATED
                return
            plen = _u16(b, cur + 4)
            proto = b[cur + 6]
            row.ip_version = 6
            detail[D_IP_OFF] = cur - start
            detail[D_SRC_HI] = _u64(b, cur + 8)
            detail[D_SRC_LO] = _u64(b, cur + 16)
            detail[D_DST_HI] = _u64(b, cur + 24)
            detail[D_DST_LO] = _u64(b, cur + 32)
            l4 = cur + 40
            ip_end = min(cur + 40 + plen, end)
            later = False
            for _ in range(6):  # extension headers
                if proto == 0 or proto == 43 or proto == 60:
                    if l4 + 2 > end:
                        break
                    step = (np.int64(b[l4 + 1]) + 1) * 8
                    proto = b[l4]
                    l4 += step
                elif proto == 44:
                    if l4 + 8 > end:
                        break
                    row.flags |= F_FRAGMENT
                    if (_u16(b, l4 + 2) & 0xFFF8) != 0:
                        later = True
                        row.flags |= F_LATER_FRAGMENT
                    proto = b[l4]
                    l4 += 8
                else:
                    break
        row.ip_proto = proto
        if later:
            return
        # --- tunnels: set up the next round
        if proto == 4 or proto == 41:
            cur = l4
            nxt = 0x0800 if proto == 4 else 0x86DD
            continue
        if proto == 47:
            if l4 + 4 > end:
                row.skip = SKIP_TRUNCATED
                return
            gflags = _u16(b, l4)
            gproto = _u16(b, l4 + 2)
            glen = 4
            if gflags & 0x8000:
                glen += 4
            if gflags & 0x2000:
                glen += 4
            if gflags & 0x1000:
                glen += 4
            if (gflags & 7) != 0:
                row.flags |= F_NEEDS_EXACT
                return
            if gproto == 0x0800 or gproto == 0x86DD:
                cur = l4 + glen
                nxt = gproto
                continue
            if gproto == 0x6558:
                cur = l4 + glen
                nxt = 1
                continue
            if gproto == 0x88BE and (gflags & 0x1000):
                cur = l4 + glen + 8
                nxt = 1
                continue
            if gproto == 0x22EB:
                cur = l4 + glen + 12
                nxt = 1
                continue
            row.flags |= F_NEEDS_EXACT
            return
        if proto != 17 and proto != 6 and proto != 132:
            return
        if l4 + 8 > end:
            row.skip = SKIP_TRUNCATED
            return
        sport = _u16(b, l4)
        dport = _u16(b, l4 + 2)
        row.sport = sport
        row.dport = dport
        if proto == 17:
            poff = l4 + 8
            plen_udp = _u16(b, l4 + 4) - 8
            plen = max(0, min(plen_udp, ip_end - poff))
            if dport == 4789 and plen >= 8 and (b[poff] & 0x08) != 0:  # VXLAN
                cur = poff + 8
                nxt = 1
                continue
            if dport == 2152 and plen >= 8 and (b[poff] >> 5) == 1 and b[poff + 1] == 255:  # GTP-U G-PDU
                gflags = b[poff]
                ghl = 12 if (gflags & 0x07) != 0 else 8
                if (gflags & 0x04) != 0 and poff + 12 <= end:
                    next_ext = b[poff + 11]
                    while next_ext != 0 and poff + ghl < end:
                        elen = np.int64(b[poff + ghl]) * 4
                        if elen == 0 or poff + ghl + elen > end:
                            break
                        next_ext = b[poff + ghl + elen - 1]
                        ghl += elen
                cur = poff + ghl
                nxt = 2
                continue
        elif proto == 6:
            if l4 + 14 > end:
                row.skip = SKIP_TRUNCATED
                return
            poff = l4 + (b[l4 + 12] >> 4) * 4
            plen = max(0, ip_end - poff)
        else:  # SCTP: no payload parsing, SIP over SCTP goes to tshark
            poff = l4 + 12
            plen = 0
        detail[D_PAYLOAD_OFF] = poff - start
        detail[D_PAYLOAD_LEN] = plen
        detail[D_L4_OFF] = l4 - start
        _classify_payload(b, poff, plen, proto, row, detail)
        return
    row.skip = SKIP_DEEP
    row.flags |= F_NEEDS_EXACT


@njit(cache=True, nogil=True)
def _classify_payload(b, poff, plen, proto, row, detail):
    a = _endpoint(detail[D_SRC_HI], detail[D_SRC_LO], row.sport)
    z = _endpoint(detail[D_DST_HI], detail[D_DST_LO], row.dport)
    lo = min(a, z)
    hi = max(a, z)
    row.flow = _mix(lo * _M1 ^ hi ^ np.uint64(proto))
    if _is_hep(b, poff, plen):
        row.sip_prefix = HEP_PREFIX
        return
    if proto == 6 and plen >= 6 and b[poff] == 22 and b[poff + 1] == 3 and b[poff + 2] <= 4 and b[poff + 5] == 1:
        row.sip_prefix = TLS_HELLO_PREFIX
        return
    if plen >= 4:
        for i in range(len(PREFIX_LEN)):
            n = PREFIX_LEN[i]
            if plen < n:
                continue
            ok = True
            for j in range(n):
                if b[poff + j] != PREFIX_TABLE[i, j]:
                    ok = False
                    break
            if ok:
                row.sip_prefix = i + 1
                return
    if (row.flags & F_FRAGMENT) != 0:
        return
    if proto == 17 and _blank(b, poff, plen):
        row.sip_prefix = KEEPALIVE_PREFIX
        return
    inner = _turn_data(b, poff, plen)
    if inner >= 0:  # RTP relayed by a TURN server: the DATA attribute holds the packet
        row.flags |= F_TURN
        plen = _u16(b, inner - 2)
        poff = inner
    elif proto != 17:
        return
    if plen < 8:
        return
    b0 = b[poff]
    b1 = b[poff + 1]
    if (b0 >> 6) != 2:
        return
    if 200 <= b1 < 212 and (_u16(b, poff + 2) * 4 + 4) <= plen:
        row.rtp_kind = RTCP_SHAPED
        return
    pt = b1 & 0x7F
    if plen < 12 or (72 <= pt <= 76):
        return
    header = 12 + 4 * (b0 & 0x0F)
    if (b0 & 0x10) != 0 and header + 4 <= plen:
        header += 4 + 4 * _u16(b, poff + header + 2)
    padding = b[poff + plen - 1] if (b0 & 0x20) != 0 else 0
    row.rtp_kind = RTP_SHAPED
    row.rtp_b1 = b1
    row.seq = _u16(b, poff + 2)
    row.rtp_ts = _u32(b, poff + 4)
    ssrc = _u32(b, poff + 8)
    row.ssrc = ssrc
    row.rtp_payload_len = max(0, min(plen - header - padding, 65535))
    row.stream = _mix(a * _M1 ^ z ^ (np.uint64(ssrc) * _M3))


@njit(cache=True, nogil=True)
def _is_hep(b, poff, plen):
    """A HEP packet starts here: "HEP3" (HEPv3), or a HEPv1/v2 header (version 1 or 2, address family 2 =
    IPv4 or 10 = IPv6, protocol UDP/TCP/SCTP) whose payload starts with a letter, as SIP does. The version
    byte alone would match too much; HEPv1/v2 carried SIP only."""
    if plen >= 6 and b[poff] == 72 and b[poff + 1] == 69 and b[poff + 2] == 80 and b[poff + 3] == 51:
        return True
    if plen < 16 or (b[poff] != 1 and b[poff] != 2):
        return False
    family = b[poff + 2]
    proto = b[poff + 3]
    if proto != 17 and proto != 6 and proto != 132:
        return False
    header = 8 + (8 if family == 2 else (32 if family == 10 else 0)) + (12 if b[poff] == 2 else 0)
    if header == 8 or header + 1 > plen:
        return False
    c = b[poff + header]
    return 65 <= c <= 90


@njit(cache=True, nogil=True)
def _blank(b, poff, plen):
    """Only CR, LF, NUL and spaces (stops at the first other byte: RTP's first byte is >= 0x80)."""
    for j in range(plen):
        c = b[poff + j]
        if c != 13 and c != 10 and c != 0 and c != 32:
            return False
    return True


@njit(cache=True, nogil=True)
def _turn_data(b, poff, plen):
    """Offset of the DATA attribute's value in a TURN Data indication (RFC 5766 10.4), else -1."""
    if plen < 24 or b[poff] != 0x00 or b[poff + 1] != 0x17 or _u32(b, poff + 4) != 0x2112A442:
        return -1
    end = poff + min(20 + _u16(b, poff + 2), plen)
    pos = poff + 20
    while pos + 4 <= end:
        kind = _u16(b, pos)
        size = _u16(b, pos + 2)
        if kind == 0x0013:
            return pos + 4 if pos + 4 + size <= end else -1
        pos += 4 + ((size + 3) // 4) * 4
    return -1


@njit(cache=True, nogil=True)
def stream_counts(stream, kind, seq):
    """Per RTP-shaped stream key: packets, and packets whose seq is the previous one + 1.

    Returns (stream index per packet or -1, packets per stream, in-order packets per stream,
    first packet row of each stream).
    The key table is open addressing with linear probing (a typed dict is slow to load). The
    per-stream arrays are allocated once at their largest (untouched pages cost no memory): growing
    them inside the loop would make numba count references on every packet (4x slower, measured).
    """
    size = 4 * 65536
    keys = np.zeros(size, dtype=np.uint64)
    used = np.zeros(size, dtype=np.bool_)
    slot_id = np.zeros(size, dtype=np.int64)
    counts = np.zeros(size // 2, dtype=np.int64)
    in_order = np.zeros(size // 2, dtype=np.int64)
    last = np.zeros(size // 2, dtype=np.int64)
    first = np.zeros(size // 2, dtype=np.int64)
    ids = np.full(len(stream), -1, dtype=np.int64)
    n = 0
    mask = np.uint64(size - 1)
    for i in range(len(stream)):
        if kind[i] != RTP_SHAPED:
            continue
        key = stream[i]
        h = np.int64(_mix(key) & mask)
        while used[h] and keys[h] != key:
            h = (h + 1) & (size - 1)
        if not used[h]:
            if n >= size // 2:  # table too full: give up placing new streams (never in practice)
                continue
            used[h] = True
            keys[h] = key
            slot_id[h] = n
            last[n] = np.int64(seq[i]) - 1
            first[n] = i
            n += 1
        j = slot_id[h]
        if (np.int64(seq[i]) - last[j]) % 65536 == 1:
            in_order[j] += 1
        last[j] = seq[i]
        counts[j] += 1
        ids[i] = j
    return ids, counts[:n].copy(), in_order[:n].copy(), first[:n].copy()


@njit(cache=True, nogil=True)
def decode_one(buf, start, caplen, link_type, out, k):
    """decode_packet for a packet found outside the fast walks (pcapng SPB/PB blocks)."""
    detail = np.zeros(DETAIL_FIELDS, dtype=np.uint64)
    decode_packet(buf, start, caplen, link_type, out[k], detail)


@njit(cache=True, nogil=True)
def decode_many(buf, starts, caplens, link_types, details):
    """Decode packets laid end to end in buf again, keeping their DETAIL (addresses, payload position)."""
    row = np.zeros(1, dtype=PACKET)
    for i in range(len(starts)):
        decode_packet(buf, starts[i], caplens[i], link_types[i], row[0], details[i])


@njit(cache=True, nogil=True)
def _only_tshark_places(r):
    """Fragments, SCTP, ICMP errors quoting SIP, unknown tunnels and links: always SIP candidates, for tshark."""
    proto = r.ip_proto
    return ((r.flags & (F_FRAGMENT | F_NEEDS_EXACT)) != 0 or proto == 132 or proto == 1 or proto == 58
            or r.skip == SKIP_LINK)


@njit(cache=True, nogil=True)
def candidate_mask(table, sip_flows, sip_ports, get_prefix):
    """SIP candidates: SIP-looking payloads, SIP ports, SIP conversations, and what only tshark places."""
    out = np.zeros(len(table), dtype=np.bool_)
    n_flows = len(sip_flows)
    flow_set, flow_used = _hash_set(sip_flows)
    for i in range(len(table)):
        r = table[i]
        proto = r.ip_proto
        if _only_tshark_places(r):
            out[i] = True
            continue
        if proto != 17 and proto != 6:
            continue
        if 0 < r.sip_prefix < get_prefix:
            out[i] = True
            continue
        for p in sip_ports:
            if r.sport == p or r.dport == p:
                out[i] = True
        if not out[i] and n_flows and _in_set(flow_set, flow_used, r.flow):
            out[i] = True
    return out


@njit(cache=True, nogil=True)
def _hash_set(values):
    """Open-addressing set of 64-bit hashes (already mixed, so their low bits index the table), at
    most a quarter full: a lookup per packet costs about one probe, where a binary search took ~11."""
    size = 16
    while size < 4 * len(values):
        size *= 2
    slots = np.zeros(size, dtype=np.uint64)
    used = np.zeros(size, dtype=np.bool_)
    for v in values:
        h = np.int64(v & np.uint64(size - 1))
        while used[h] and slots[h] != v:
            h = (h + 1) & (size - 1)
        slots[h] = v
        used[h] = True
    return slots, used


@njit(cache=True, nogil=True)
def _in_set(slots, used, v):
    h = np.int64(v & np.uint64(len(slots) - 1))
    while used[h]:
        if slots[h] == v:
            return True
        h = (h + 1) & (len(slots) - 1)
    return False


@njit(cache=True, nogil=True)
def _has_prefix(r, lo, hi, udp_too):
    return lo <= r.sip_prefix < hi and (r.ip_proto == 6 or (udp_too and r.ip_proto == 17))


@njit(cache=True, nogil=True)
def prefix_rows(table, lo, hi, udp_too):
    """Rows of TCP (and UDP when udp_too) packets with lo <= sip_prefix < hi. Compiled: numpy on
    the table's strided fields took three passes and ~15 ms per million packets."""
    n = 0
    for i in range(len(table)):
        n += _has_prefix(table[i], lo, hi, udp_too)
    out = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(len(table)):
        if _has_prefix(table[i], lo, hi, udp_too):
            out[k] = i
            k += 1
    return out


SHARE_TSHARK, SHARE_OWN, SHARE_NONE = 0, 1, 2


@njit(cache=True, nogil=True)
def _udp_share(r, get_prefix):
    """Who decodes a SIP candidate: flowviz (a complete UDP datagram that starts like SIP), nobody (a
    complete UDP keepalive: no message, for tshark neither), or tshark (everything else)."""
    if (r.ip_proto != 17 or r.skip != 0 or r.caplen < r.orig_len
            or (r.flags & (F_FRAGMENT | F_LATER_FRAGMENT | F_NEEDS_EXACT | F_TURN)) != 0):
        return SHARE_TSHARK
    if 0 < r.sip_prefix < get_prefix:
        return SHARE_OWN
    if r.sip_prefix == KEEPALIVE_PREFIX:
        return SHARE_NONE
    return SHARE_TSHARK


@njit(cache=True, nogil=True)
def any_for_tshark(table, start, end, sip_ports, get_prefix):
    """Whether rows start..end-1 hold a packet that SIP decoding will hand to tshark: SIP-looking or
    SIP-port TCP (or UDP that flowviz does not settle itself), fragments, SCTP, ICMP, unopened tunnels
    and links. Ingest starts tshark at the first such packet, so its start overlaps the rest of the pass."""
    for i in range(start, end):
        r = table[i]
        proto = r.ip_proto
        if _only_tshark_places(r):
            return True
        if proto == 6 and 0 < r.sip_prefix <= get_prefix:
            return True
        if (proto == 6 or proto == 17) and _udp_share(r, get_prefix) == SHARE_TSHARK:
            for p in sip_ports:
                if r.sport == p or r.dport == p:
                    return True
    return False


@njit(cache=True, nogil=True)
def udp_shares(table, rows, get_prefix):
    """SHARE_* of each of the given rows (see _udp_share)."""
    out = np.zeros(len(rows), dtype=np.uint8)
    for k in range(len(rows)):
        out[k] = _udp_share(table[rows[k]], get_prefix)
    return out


@njit(cache=True, nogil=True)
def table_summary(table):
    """(first ts, last ts, frames cut short by the snapshot length, packets per link type) in one pass."""
    lo, hi = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    short = 0
    per_link = np.zeros(65536, dtype=np.int64)
    for i in range(len(table)):
        r = table[i]
        lo, hi = min(lo, r.ts), max(hi, r.ts)
        short += r.caplen < r.orig_len
        per_link[r.link_type] += 1
    return lo, hi, short, per_link


@njit(cache=True, nogil=True)
def rtp_columns(table, ids):
    """The RTP header fields of every packet with a stream index (ids >= 0), as contiguous arrays, in one pass."""
    n = 0
    for i in range(len(ids)):
        if ids[i] >= 0:
            n += 1
    frame = np.empty(n, dtype=np.uint32)
    stream = np.empty(n, dtype=np.uint32)
    ts = np.empty(n, dtype=np.int64)
    sport = np.empty(n, dtype=np.uint16)
    dport = np.empty(n, dtype=np.uint16)
    ssrc = np.empty(n, dtype=np.uint32)
    seq = np.empty(n, dtype=np.uint16)
    rtp_ts = np.empty(n, dtype=np.uint32)
    b1 = np.empty(n, dtype=np.uint8)
    payload_len = np.empty(n, dtype=np.uint16)
    k = 0
    for i in range(len(ids)):
        if ids[i] < 0:
            continue
        r = table[i]
        frame[k] = i + 1
        stream[k] = ids[i]
        ts[k] = r.ts
        sport[k] = r.sport
        dport[k] = r.dport
        ssrc[k] = r.ssrc
        seq[k] = r.seq
        rtp_ts[k] = r.rtp_ts
        b1[k] = r.rtp_b1
        payload_len[k] = r.rtp_payload_len
        k += 1
    return frame, stream, ts, sport, dport, ssrc, seq, rtp_ts, b1, payload_len


def _preload() -> None:
    """Load each kernel's machine code from numba's cache, in the order ingest calls them and for the
    argument types ingest passes (another type would load again at the call, ~5 ms each; 60 ms in
    all on a fresh process before this). tests/unit/test_kernel_preload.py keeps the types true."""
    table = np.zeros(2, dtype=PACKET)
    buf = np.zeros(8, dtype=np.uint8)
    readonly = np.frombuffer(b"\0" * 8, dtype=np.uint8)  # what decode_many gets from bytes
    i64 = np.zeros(2, dtype=np.int64)
    calls = [
        (walk_pcap, (buf, 0, 0, False, 0, 0, 0, table, 0)),
        (walk_pcapng, (buf, 0, 0, i64, 0, table, 0)),
        (decode_one, (readonly, 0, 0, 0, table, 0)),  # pcapng simple and obsolete packet blocks
        (any_for_tshark, (table, 0, 0, i64, 0)),
        (prefix_rows, (table, 0, 0, True)),
        (candidate_mask, (table, np.zeros(2, dtype=np.uint64), i64, 0)),
        (udp_shares, (table, i64, 0)),
        (decode_many, (readonly, i64, i64, i64, np.zeros((2, DETAIL_FIELDS), dtype=np.uint64))),
        (table_summary, (table,)),
        (stream_counts, (table["stream"], np.zeros(2, dtype=np.uint8), table["seq"])),
        (rtp_columns, (table, i64)),
    ]
    for function, args in calls:
        function.compile(tuple(numba.typeof(a) for a in args))


# Setting numba's runtime up (~0.15 s, mostly in LLVM, which releases the GIL) and loading the kernels
# (~5 ms each): begin now, in the background, while the rest of flowviz is imported and the capture
# file is opened.
threading.Thread(target=_preload, name="flowviz-numba-load", daemon=True).start()

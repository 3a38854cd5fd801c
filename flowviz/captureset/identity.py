"""Packet identity: what stays the same when one packet is seen at two points of the network.

Two observations are the same packet when their IP packets are equal once the fields that change along
the path are left out: the link layer (one tap sees a VLAN tag or a Linux cooked header, the other
Ethernet), the TTL / hop limit and the header checksum (a router decrements one and so rewrites the
other), and the DSCP/ECN byte (re-marked at network borders). Everything else stays in: addresses, IPv4
identification, protocol, the whole transport header but its checksum (which covers the pseudo-header),
and the payload up to the IP length (Ethernet padding left out). A packet that is not IP, or on a link
type this does not know, is identified by all its captured bytes.

Per packet, one compiled pass gives the identity hash and two direction keys (source -> destination and
the reverse), used to pair the two directions of one conversation when clock offsets are estimated.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)

# link types (pcap LINKTYPE_*) whose network header is found here
_ETHERNET, _NULL, _RAW, _RAW_OLD1, _RAW_OLD2, _LOOP, _SLL, _RAW4, _RAW6, _SLL2 = 1, 0, 101, 12, 14, 108, 113, 228, 229, 276


@njit(cache=True, nogil=True)
def _u16(b, i):
    return (np.int64(b[i]) << 8) | np.int64(b[i + 1])


@njit(cache=True, nogil=True)
def _feed(h, value):
    return (h ^ np.uint64(value)) * _FNV_PRIME


@njit(cache=True, nogil=True)
def _feed_bytes(h, b, start, end, skip_a, skip_b):
    """FNV-1a over b[start:end], the bytes at absolute positions skip_a..skip_a+1 and skip_b..skip_b+1 read
    as zero (-1: none)."""
    for i in range(start, end):
        v = b[i]
        if i == skip_a or i == skip_a + 1 or i == skip_b or i == skip_b + 1:
            v = 0
        h = (h ^ np.uint64(v)) * _FNV_PRIME
    return h


@njit(cache=True, nogil=True)
def _network_start(b, start, end, link_type):
    """Where the IP header starts (-1: not found) for the link types captures of SIP come on."""
    cur = start
    ethertype = -1
    if link_type == _ETHERNET:
        if cur + 14 > end:
            return -1
        ethertype = _u16(b, cur + 12)
        cur += 14
        while (ethertype == 0x8100 or ethertype == 0x88A8 or ethertype == 0x9100) and cur + 4 <= end:
            ethertype = _u16(b, cur + 2)
            cur += 4
    elif link_type == _SLL:
        if cur + 16 > end:
            return -1
        ethertype = _u16(b, cur + 14)
        cur += 16
    elif link_type == _SLL2:
        if cur + 20 > end:
            return -1
        ethertype = _u16(b, cur)
        cur += 20
    elif link_type == _NULL or link_type == _LOOP:
        cur += 4
        ethertype = 0
    elif link_type == _RAW or link_type == _RAW_OLD1 or link_type == _RAW_OLD2 or link_type == _RAW4 \
            or link_type == _RAW6:
        ethertype = 0
    else:
        return -1
    if ethertype != 0 and ethertype != 0x0800 and ethertype != 0x86DD:
        return -1
    if cur >= end:
        return -1
    version = b[cur] >> 4
    return cur if version == 4 or version == 6 else -1


@njit(cache=True, nogil=True)
def _checksum_at(b, transport, end, proto):
    """Absolute position of the transport checksum (-1: none or not captured)."""
    if proto == 17 and transport + 8 <= end:
        return transport + 6
    if proto == 6 and transport + 18 <= end:
        return transport + 16
    return -1


@njit(cache=True, nogil=True)
def identities(buf, file_off, caplen, link_type, ident, forward, backward):
    """For each packet i (bytes buf[file_off[i]:file_off[i]+caplen[i]]): ident[i], the identity hash;
    forward[i] and backward[i], keys of (source, destination, protocol, ports) and of the reverse, 0 when
    the packet is not IP."""
    for i in range(len(file_off)):
        start = file_off[i]
        end = start + caplen[i]
        ip = _network_start(buf, start, end, link_type[i])
        h = _FNV_OFFSET
        if ip < 0:
            ident[i] = _feed_bytes(h, buf, start, end, -1, -1)
            forward[i] = 0
            backward[i] = 0
            continue
        if buf[ip] >> 4 == 4:
            if ip + 20 > end:
                ident[i] = _feed_bytes(h, buf, start, end, -1, -1)
                forward[i] = 0
                backward[i] = 0
                continue
            header = (buf[ip] & 15) * 4
            total = _u16(buf, ip + 2)
            stop = min(end, ip + max(total, header))
            proto = buf[ip + 9]
            fragment_offset = _u16(buf, ip + 6) & 0x1FFF
            transport = ip + header
            checksum = _checksum_at(buf, transport, stop, proto) if fragment_offset == 0 else -1
            h = _feed(h, buf[ip])  # version and header length; byte 1 (DSCP/ECN) left out
            h = _feed_bytes(h, buf, ip + 2, ip + 8, -1, -1)  # total length, identification, flags/fragment
            h = _feed(h, proto)  # byte 8 (TTL) and 10-11 (header checksum) left out
            h = _feed_bytes(h, buf, ip + 12, stop, checksum, -1)  # addresses, options, transport, payload
            addr, addr_len = ip + 12, 4
        else:
            if ip + 40 > end:
                ident[i] = _feed_bytes(h, buf, start, end, -1, -1)
                forward[i] = 0
                backward[i] = 0
                continue
            proto = buf[ip + 6]
            stop = min(end, ip + 40 + _u16(buf, ip + 4))
            transport = ip + 40
            checksum = _checksum_at(buf, transport, stop, proto)
            h = _feed(h, buf[ip] >> 4)  # version; the traffic class (the next 8 bits) left out
            h = _feed(h, buf[ip + 1] & 15)  # flow label, payload length, next header
            h = _feed_bytes(h, buf, ip + 2, ip + 7, -1, -1)
            h = _feed_bytes(h, buf, ip + 8, stop, checksum, -1)  # hop limit (byte 7) left out
            addr, addr_len = ip + 8, 16
        ident[i] = h
        sport = dport = 0
        if (proto == 17 or proto == 6) and transport + 4 <= end:
            sport = _u16(buf, transport)
            dport = _u16(buf, transport + 2)
        f = _feed(_feed_bytes(_FNV_OFFSET, buf, addr, addr + addr_len, -1, -1), 0xFF)
        f = _feed(_feed(_feed(_feed_bytes(f, buf, addr + addr_len, addr + 2 * addr_len, -1, -1), proto), sport), dport)
        r = _feed(_feed_bytes(_FNV_OFFSET, buf, addr + addr_len, addr + 2 * addr_len, -1, -1), 0xFF)
        r = _feed(_feed(_feed(_feed_bytes(r, buf, addr, addr + addr_len, -1, -1), proto), dport), sport)
        forward[i] = f
        backward[i] = r


def packet_identities(packets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ident, forward, backward) for every packet of a flowviz.ingest.capture_file.Packets, read from its
    plain file by offset (a memory map: the file is not read into memory)."""
    table = packets.table
    n = len(table)
    ident = np.zeros(n, dtype=np.uint64)
    forward = np.zeros(n, dtype=np.uint64)
    backward = np.zeros(n, dtype=np.uint64)
    if n:
        buf = np.memmap(packets.plain_path, dtype=np.uint8, mode="r")
        identities(buf, np.ascontiguousarray(table["file_off"]), np.ascontiguousarray(table["caplen"]).astype(np.int64),
                   np.ascontiguousarray(table["link_type"]).astype(np.int64), ident, forward, backward)
        del buf
    return ident, forward, backward

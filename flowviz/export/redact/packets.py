"""Packet rewriting of a redaction: link, ARP, IPv4/IPv6 (tunnels, fragments, ICMP quotes), UDP/TCP, RTCP SDES.

`PacketRewriter` finds the network header behind the link-layer header (_link_offset), swaps addresses and
MACs for their pseudonyms, sends text payloads to the text rewriter and RTCP SDES items with them, and keeps
every length: the IPv4 header checksum is recomputed, UDP/TCP/ICMP checksums are adjusted for the changed
bytes (RFC 1624), so a right checksum stays right and a wrong one stays wrong the same way.
"""

from __future__ import annotations

import re
import struct

from flowviz.export.redact.text import TextRewriter

SIP_START = re.compile(rb"^(?:SIP/2\.0 \d{3}|[A-Z]+ \S+ SIP/2\.0\r?\n)")


class PacketRewriter(TextRewriter):
    """Pseudonyms applied to captured frames: `_packet(buf, link_type, learn)` learns or rewrites in place."""

    def __init__(self):
        super().__init__()
        self._frag_sip: set[tuple] = set()   # (src, dst, id) of IP datagrams whose first fragment is SIP

    def _packet(self, buf: bytearray, link_type: int, learn: bool) -> None:
        offset, ethertype = _link_offset(buf, link_type)
        if offset is None:
            return
        if not learn and link_type == 1 and len(buf) >= 12:
            buf[0:6], buf[6:12] = self._mac(bytes(buf[0:6])), self._mac(bytes(buf[6:12]))
        elif not learn and link_type == 113 and len(buf) >= 16 and struct.unpack("!H", buf[4:6])[0] == 6:
            buf[6:12] = self._mac(bytes(buf[6:12]))
        elif not learn and link_type == 276 and len(buf) >= 20 and buf[11] == 6:
            buf[12:18] = self._mac(bytes(buf[12:18]))
        if ethertype == 0x0806:
            self._arp(buf, offset, learn)
        elif ethertype in (0x0800, 0x86DD, None) and len(buf) > offset:
            version = buf[offset] >> 4
            if version == 4:
                self._ipv4(buf, offset, learn)
            elif version == 6:
                self._ipv6(buf, offset, learn)

    def _arp(self, buf: bytearray, o: int, learn: bool) -> None:
        if len(buf) < o + 28 or buf[o + 2:o + 4] != b"\x08\x00" or buf[o + 4] != 6 or buf[o + 5] != 4:
            return
        for at in (o + 14, o + 24):
            buf[at:at + 4] = self._ip4(bytes(buf[at:at + 4]), learn)
        if not learn:
            for at in (o + 8, o + 18):
                buf[at:at + 6] = self._mac(bytes(buf[at:at + 6]))

    def _ipv4(self, buf: bytearray, o: int, learn: bool, inner: bool = False) -> None:
        ihl = (buf[o] & 0x0F) * 4
        if ihl < 20 or len(buf) < o + ihl:
            return
        old_addrs = bytes(buf[o + 12:o + 20])
        buf[o + 12:o + 16] = self._ip4(old_addrs[:4], learn)
        buf[o + 16:o + 20] = self._ip4(old_addrs[4:], learn)
        if not learn:
            buf[o + 10:o + 12] = b"\0\0"
            buf[o + 10:o + 12] = struct.pack("!H", _checksum(bytes(buf[o:o + ihl])))
        if inner:
            return
        total = struct.unpack("!H", buf[o + 2:o + 4])[0]
        end = min(len(buf), o + total) if total >= ihl else len(buf)
        frag = struct.unpack("!H", buf[o + 6:o + 8])[0]
        more, frag_offset = bool(frag & 0x2000), frag & 0x1FFF
        proto = buf[o + 9]
        key = (old_addrs, bytes(buf[o + 4:o + 6]), proto)
        if frag_offset:  # a later fragment: SIP text if the first fragment was (its checksum is in the first)
            if key in self._frag_sip:
                buf[o + ihl:end] = self._payload(bytes(buf[o + ihl:end]), learn)
            return
        pseudo = [(old_addrs, bytes(buf[o + 12:o + 20]))]
        if proto == 1:
            self._icmp(buf, o + ihl, end, [], learn, v6=False)
        elif proto in (4, 41) and not more:  # IP in IP
            (self._ipv4 if proto == 4 else self._ipv6)(buf, o + ihl, learn)
        elif self._l4(buf, o + ihl, end, proto, pseudo, learn, v6=False) and more:
            self._frag_sip.add(key)
            if proto == 17 and not learn:  # later fragments change too: the checksum cannot follow them
                buf[o + ihl + 6:o + ihl + 8] = b"\0\0"

    def _ipv6(self, buf: bytearray, o: int, learn: bool, inner: bool = False) -> None:
        if len(buf) < o + 40:
            return
        old_addrs = bytes(buf[o + 8:o + 40])
        for at in (o + 8, o + 24):
            buf[at:at + 16] = self._ip6(bytes(buf[at:at + 16]), learn)
        if inner:
            return
        plen = struct.unpack("!H", buf[o + 4:o + 6])[0]
        end = min(len(buf), o + 40 + plen)
        nxt, at = buf[o + 6], o + 40
        while nxt in (0, 43, 60, 44) and at + 8 <= end:
            if nxt == 44 and struct.unpack("!H", buf[at + 2:at + 4])[0] & 0xFFF8:
                return  # a later fragment
            nxt, at = buf[at], at + 8 + (0 if nxt == 44 else buf[at + 1] * 8)
        if at > end:
            return
        pseudo = [(old_addrs, bytes(buf[o + 8:o + 40]))]
        if nxt == 58:
            self._icmp(buf, at, end, pseudo, learn, v6=True)
        elif nxt in (4, 41):  # IP in IP
            (self._ipv4 if nxt == 4 else self._ipv6)(buf, at, learn)
        else:
            self._l4(buf, at, end, nxt, pseudo, learn, v6=True)

    def _l4(self, buf: bytearray, o: int, end: int, proto: int, pseudo: list, learn: bool, v6: bool) -> bool:
        """UDP or TCP: SIP payloads redacted; the checksum adjusted for the changed addresses and bytes (RFC
        1624: a right checksum stays right, even when the capture cut the packet; a wrong one, e.g. from
        checksum offload, stays wrong the same way). Returns whether the payload is SIP."""
        if proto == 17 and end - o >= 8:
            sum_at, header = o + 6, 8
        elif proto == 6 and end - o >= 20:
            sum_at, header = o + 16, (buf[o + 12] >> 4) * 4
        else:
            return False
        sport, dport = struct.unpack("!HH", buf[o:o + 4])
        payload = bytes(buf[o + header:end])
        # SIP, and any other text (MGCP, Megaco, HTTP...: addresses, learned users), on any port
        is_sip = bool(payload) and (bool(SIP_START.match(payload)) or _texty(payload))
        rewritten = is_sip
        hep = not is_sip and _hep_spans(payload)
        if hep:  # a HEP packet: the inner packet's addresses and SIP are in its chunks
            buf[o + header:end] = self._hep(payload, hep, learn)
            rewritten = True
        elif is_sip:
            buf[o + header:end] = self._payload(payload, learn)
        elif proto == 17 and _looks_rtcp(payload):
            new = self._rtcp(payload, learn)
            if new is not None:
                buf[o + header:end] = new
                rewritten = True
        elif payload and not learn:
            new = self._binary(payload)
            if new != payload:
                buf[o + header:end] = new
                rewritten = True
        if learn or len(buf) < sum_at + 2:
            return is_sip
        old_sum = struct.unpack("!H", buf[sum_at:sum_at + 2])[0]
        if proto == 17 and old_sum == 0 and not v6:
            return is_sip  # no checksum
        changes = list(pseudo)
        if rewritten and header % 2 == 0:
            changes.append((payload, bytes(buf[o + header:end])))
        new_sum = _adjust(old_sum, changes)
        if proto == 17 and new_sum == 0:
            new_sum = 0xFFFF
        buf[sum_at:sum_at + 2] = struct.pack("!H", new_sum)
        return is_sip

    def _hep(self, payload: bytes, spans: list[tuple[int, int, int]], learn: bool) -> bytes:
        """A HEP packet rewritten in place, each chunk at its length: inner addresses (chunks 3-6), the
        captured payload (15) and the correlation id (17) as text; the auth key (14) blanked."""
        out = bytearray(payload)
        for ctype, start, end in spans:
            value = bytes(out[start:end])
            if ctype in (3, 4) and end - start == 4:
                out[start:end] = self._ip4(value, learn)
            elif ctype in (5, 6) and end - start == 16:
                out[start:end] = self._ip6(value, learn)
            elif ctype in (15, 17) and value:
                out[start:end] = self._payload(value, learn)
            elif ctype == 14 and not learn:
                out[start:end] = b"x" * (end - start)
        return bytes(out)

    def _rtcp(self, payload: bytes, learn: bool) -> bytes | None:
        """RTCP SDES items (CNAME user@host, NAME, EMAIL, PHONE, LOC, TOOL, NOTE...) redacted like SIP text,
        same length. None when nothing changed."""
        data = bytearray(payload)
        at = 0
        while at + 4 <= len(data):
            count, pt = data[at] & 0x1F, data[at + 1]
            length = (struct.unpack("!H", data[at + 2:at + 4])[0] + 1) * 4
            if data[at] >> 6 != 2 or at + length > len(data):
                break
            if pt == 202:
                item, stop = at + 4, at + length
                for _ in range(count):
                    item += 4  # SSRC/CSRC
                    while item + 2 <= stop and data[item]:
                        kind, size = data[item], data[item + 1]
                        text = bytes(data[item + 2:item + 2 + size])
                        if len(text) == size:
                            data[item + 2:item + 2 + size] = self._payload(text, learn)
                        item += 2 + size
                    item = (item + 4) & ~3  # the null item, then padding to 32 bits
            at += length
        return None if learn or data == payload else bytes(data)

    def _icmp(self, buf: bytearray, o: int, end: int, pseudo: list, learn: bool, v6: bool) -> None:
        """ICMP errors quote the offending IP header: its addresses (and its checksum) are rewritten too."""
        if end - o < 8 + 20 or buf[o] not in ((1, 2, 3, 4) if v6 else (3, 4, 5, 11, 12)):
            if pseudo and not learn and end - o >= 4:  # ICMPv6: the pseudo header has the addresses
                old_sum = struct.unpack("!H", buf[o + 2:o + 4])[0]
                buf[o + 2:o + 4] = struct.pack("!H", _adjust(old_sum, pseudo))
            return
        inner = o + 8
        old_inner = bytes(buf[inner:end])
        if v6 and buf[inner] >> 4 == 6:
            self._ipv6(buf, inner, learn, inner=True)
            quoted_l4, proto = inner + 40, buf[inner + 6]
        elif not v6 and buf[inner] >> 4 == 4:
            self._ipv4(buf, inner, learn, inner=True)
            quoted_l4, proto = inner + (buf[inner] & 0x0F) * 4, buf[inner + 9]
        else:
            quoted_l4, proto = end, 0
        if proto in (6, 17) and quoted_l4 + 8 < end:  # the quoted datagram's text (often a SIP message)
            start = quoted_l4 + (8 if proto == 17 else max(20, (buf[quoted_l4 + 12] >> 4) * 4))
            if start < end and _texty(bytes(buf[start:end])):
                buf[start:end] = self._payload(bytes(buf[start:end]), learn)
        if learn:
            return
        old_sum = struct.unpack("!H", buf[o + 2:o + 4])[0]
        buf[o + 2:o + 4] = struct.pack("!H", _adjust(old_sum, [*pseudo, (old_inner, bytes(buf[inner:end]))]))


def _adjust(checksum: int, changes: list[tuple[bytes, bytes]]) -> int:
    """Internet checksum updated for replaced data (RFC 1624 eqn. 3): each (old, new) pair of equal length
    starts at an even offset of the checksummed data."""
    total = ~checksum & 0xFFFF
    for old, new in changes:
        if len(old) % 2:
            old, new = old + b"\0", new + b"\0"
        n = len(old) // 2
        total += sum(~w & 0xFFFF for w in struct.unpack(f"!{n}H", old)) + sum(struct.unpack(f"!{n}H", new))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _hep_spans(payload: bytes) -> list[tuple[int, int, int]]:
    """The chunks of a HEP packet (flowviz.ingest.hep.value_spans), empty for anything else: HEPv3 by its
    magic, HEPv1/v2 by their version, address family and a payload that starts like SIP."""
    from flowviz.ingest.hep import MAGIC, value_spans

    if payload.startswith(MAGIC):
        return value_spans(payload)
    if len(payload) < 16 or payload[0] not in (1, 2) or payload[2] not in (2, 10):
        return []
    spans = value_spans(payload)
    body = next((payload[s:e] for t, s, e in spans if t == 15), b"")
    return spans if SIP_START.match(body) else []


def _looks_rtcp(payload: bytes) -> bool:
    """An RTCP compound packet: version 2, first packet SR/RR/SDES/BYE/APP/XR... and a length that fits."""
    if len(payload) < 8 or payload[0] >> 6 != 2 or not 200 <= payload[1] <= 207:
        return False
    return (struct.unpack("!H", payload[2:4])[0] + 1) * 4 <= len(payload)


def _texty(payload: bytes) -> bool:
    """Text: 90% printable ASCII, or UTF-8 (names in other scripts) with few control characters."""
    sample = payload[:400]
    if not sample:
        return False
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13))
    if printable >= 0.9 * len(sample):
        return True
    for start in range(4):  # a segment may begin or end inside a multi-byte character
        for stop in range(4):
            try:
                text = sample[start:len(sample) - stop].decode("utf-8")
            except UnicodeDecodeError:
                continue
            controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\r\n")
            return controls <= 0.05 * len(text)
    return False


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _link_offset(buf: bytearray, link_type: int) -> tuple[int | None, int | None]:
    """Where the network header starts, and its ethertype (None: look at the IP version)."""
    if link_type == 1:  # Ethernet, with VLAN tags
        at, ethertype = 12, None
        while len(buf) >= at + 2:
            ethertype = struct.unpack("!H", buf[at:at + 2])[0]
            if ethertype in (0x8100, 0x88A8, 0x9100):
                at += 4
                continue
            return at + 2, ethertype
        return None, None
    if link_type in (101, 228, 229, 12, 14):
        return 0, None
    if link_type in (0, 108):
        return 4, None
    if link_type == 113 and len(buf) >= 16:
        return 16, struct.unpack("!H", buf[14:16])[0]
    if link_type == 276 and len(buf) >= 20:
        return 20, struct.unpack("!H", buf[0:2])[0]
    return None, None

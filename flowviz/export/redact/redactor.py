"""Redactor: the public face of redaction, learning and rewriting texts, SIP frames, captures and packets.

One `Redactor` holds the maps (original -> pseudonym) for one export: IPv4/IPv6 addresses, users and numbers
(sip:/sips:/tel: URIs, Digest usernames, SDP o= usernames), display names and Digest secrets (realm, nonce,
cnonce, response, opaque). The same original always gets the same pseudonym, in packets and in text, so a
redacted capture still correlates (Call-IDs, tags and branches change the same way in every message) and a
redacted ladder or JSON names the same hosts and parties as the redacted pcap.

Every pseudonym has the byte length of what it replaces: SIP Content-Length, UDP/IP lengths and TCP
sequence numbers stay valid. Addresses are 10.x.y.z (100.x.y.z for 15-character addresses, 0.x.y.z for
7-character ones) and 2001:db8::/32 (fd00::/8 or ::/96 for short ones), never one of the originals seen.
The work is done by the classes it builds on: pseudonyms.Pseudonyms (the maps), text.TextRewriter,
packets.PacketRewriter.
"""

from __future__ import annotations

from collections.abc import Iterable

from flowviz.export.redact.packets import PacketRewriter
from flowviz.export.redact.text import _latin, _unlatin

SIP_PORTS = frozenset({5060, 5061})


# Fields of flowviz's reports (call rows, the per-call report) that hold a user part or a display name.
USER_FIELDS = frozenset({"from_user", "to_user"})
NAME_FIELDS = frozenset({"from_display", "to_display"})


class Redactor(PacketRewriter):
    """Consistent same-length pseudonyms within one export. Not thread-safe. `sip_ports` (the settings'
    --sip-port) is kept for callers; SIP and other text payloads are recognised by content on any port."""

    def __init__(self, sip_ports: Iterable[int] = SIP_PORTS):
        super().__init__()
        self.sip_ports = frozenset(sip_ports) | SIP_PORTS

    def learn_text(self, text: str) -> None:
        """Record the originals of one SIP message (or any SIP text) without rewriting it."""
        self._sip_text(_latin(text), learn=True)

    def learn_messages(self, sip) -> None:
        """Record the originals of every message of a SIP frame (its `raw` column), as read_capture gives it."""
        for raw in sip["raw"].to_list():
            if raw:
                self.learn_text(raw)

    def learn_capture(self, capture) -> None:
        """Record the originals of a capture as read_capture gives it: every SIP message, and the addresses of
        SIP, RTP and RTCP packets. Call it first when text exports are redacted before (or without) a pcap."""
        self.learn_messages(capture.sip_messages)
        for frame in (capture.sip_messages, capture.rtp_packets, capture.rtcp_reports):
            for column in ("src_ip", "dst_ip"):
                if column in frame.columns:
                    for text in frame[column].unique().drop_nulls().to_list():
                        self._ip_text(text, learn=True)

    def redact_text(self, text: str) -> str:
        """A text export (ladder, Mermaid, JSON string...) with the same pseudonyms as the packets: SIP URIs,
        display names, Digest parameters, IP addresses and every learned user and name (as a whole word)."""
        return _unlatin(self._sip_text(_latin(text), learn=False))

    def redact_obj(self, obj):
        """A JSON-like value (dicts, lists, strings) with every string passed through redact_text, dict keys
        too (host_names and the like are keyed by address)."""
        if isinstance(obj, str):
            return self.redact_text(obj)
        if isinstance(obj, dict):
            return {(self.redact_text(k) if isinstance(k, str) else k): self._field(k, v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        return obj

    def _field(self, key, value):
        """A report field: users and display names by their key, since a short number ('2503') alone is not
        told apart from a status code or a port in free text; everything else as text."""
        if isinstance(value, str) and key in USER_FIELDS:
            return self._token(value, self.users, "user", False)
        if isinstance(value, str) and key in NAME_FIELDS:
            return self._token(value, self.names, "name", False)
        return self.redact_obj(value)

    def learn_packet(self, data: bytes, link_type: int) -> None:
        self._packet(bytearray(data), link_type, learn=True)

    def redact_packet(self, data: bytes, link_type: int) -> bytes:
        """One captured frame (as in the file, from the link-layer header: `link_type` is the pcap
        LINKTYPE, e.g. 1 Ethernet, 101 raw IP, 113/276 Linux cooked, 0 BSD loopback) with its IPv4/IPv6/ARP
        addresses, ICMP-quoted headers, SIP and other text payloads, RTCP SDES items redacted; same length;
        the IPv4 header checksum recomputed, UDP/TCP/ICMP checksums adjusted for the changed bytes (RFC 1624).
        Frames it does not understand come back unchanged."""
        buf = bytearray(data)
        self._packet(buf, link_type, learn=False)
        return bytes(buf)

    def pseudonym_ip(self, text: str) -> str:
        """The pseudonym of one address in text form (IPv4 or IPv6)."""
        return self._ip_text(text, learn=False)


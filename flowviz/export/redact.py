"""Redaction: consistent, same-length pseudonyms for the personal data of a capture or an export.

One `Redactor` holds the maps (original -> pseudonym) for one export: IPv4/IPv6 addresses, users and numbers
(sip:/sips:/tel: URIs, Digest usernames, SDP o= usernames), display names and Digest secrets (realm, nonce,
cnonce, response, opaque). The same original always gets the same pseudonym, in packets and in text, so a
redacted capture still correlates (Call-IDs, tags and branches change the same way in every message) and a
redacted ladder or JSON names the same hosts and parties as the redacted pcap.

Every pseudonym has the byte length of what it replaces: SIP Content-Length, UDP/IP lengths and TCP
sequence numbers stay valid. Addresses are 10.x.y.z (100.x.y.z for 15-character addresses, 0.x.y.z for
7-character ones) and 2001:db8::/32 (fd00::/8 or ::/96 for short ones), never one of the originals seen.

Redacting a whole file is two passes (`redact_capture`): the first learns every original (so that the
pseudonyms avoid them, and so that users found in one message are also replaced where they appear bare
elsewhere: Call-ID, tags, branches, Subject), the second rewrites. Docs: docs/redact.md.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from flowviz.errors import CaptureError, ToolMissingError

SIP_PORTS = frozenset({5060, 5061})

# --- text ------------------------------------------------------------------------------------------------

IPV4_TEXT = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
IPV6_TEXT = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:)?(?![\w:])")
URI_USER = re.compile(r"(?i)\b(sips?:)([^@\s;>?,:\"<]+)(:[^@\s;>?,\"<]*)?((?:;[^@\s;>?,\"<]*)*)@")
URI_CUT = re.compile(r"(?i)\b(sips?:)([^@\s;>?,:\"<.]+)\Z")  # a URI cut by the end of a TCP segment
WORD = re.compile(r"[A-Za-z0-9]+")
NUMBER = re.compile(r"\+?[\d().\- ]*\d[\d().\- ]*")
TEL_URI = re.compile(r"(?i)\b(tel:)([^\s;>?,\"<]+)")
QUOTED_NAME = re.compile(r'"((?:[^"\\\r\n]|\\.)*)"(?=\s*<)')
UNQUOTED_NAME = re.compile(r"(^|,)(\s*)([^\s<>\",;:][^<>\",;:]*?)(\s*<)")
AUTH_PARAM = re.compile(r"(?i)\b(username|realm|nonce|cnonce|response|opaque|nextnonce|rspauth)(\s*=\s*)"
                        r"(\"[^\"]*\"|[^\s,\"]+)")
BASIC_CRED = re.compile(r"(?i)(\bBasic\s+)([A-Za-z0-9+/=]+)")
HEADER_NAME = re.compile(r"^([A-Za-z0-9!%*_+`'~.-]+)\s*:")
SIP_START = re.compile(rb"^(?:SIP/2\.0 \d{3}|[A-Z]+ \S+ SIP/2\.0\r?\n)")

AUTH_HEADERS = {"authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate",
                "authentication-info", "proxy-authentication-info"}
NAME_ADDR_HEADERS = {"from", "f", "to", "t", "contact", "m", "p-asserted-identity", "p-preferred-identity",
                     "remote-party-id", "diversion", "refer-to", "r", "referred-by", "b", "reply-to",
                     "history-info", "p-called-party-id", "route", "record-route", "path", "service-route"}
# header values that are numbers or fixed syntax: bare user tokens are not searched there
PROTECTED_HEADERS = {"content-length", "l", "cseq", "max-forwards", "expires", "min-expires", "session-expires",
                     "x", "min-se", "rseq", "rack", "retry-after", "content-type", "c", "allow", "supported", "k",
                     "require", "accept", "date", "timestamp", "content-encoding", "e"}
SDP_NAMED_LINES = set("osiuep")
SDP_NAMED_ATTRIBUTES = ("a=ssrc:", "a=msid", "a=label:", "a=cname:", "a=tool:")  # SDP lines whose text may name people (o= username, s=, i=, u=, e=, p=)
KEEP_IPV4 = {"0.0.0.0", "255.255.255.255"}
MAX_TRIES = 100_000
STOP_WORDS = {"sip", "sips", "tel", "udp", "tcp", "tls", "sctp", "wss", "invite", "ack", "bye", "cancel",
              "options", "register", "prack", "subscribe", "notify", "publish", "info", "refer", "message",
              "update", "branch", "tag", "transport", "user", "phone", "received", "rport", "maddr", "ttl",
              "method", "lr", "expires", "audio", "video", "rtp", "avp", "savp", "ip4", "ip6", "digest",
              "sendrecv", "sendonly", "recvonly", "inactive", "application", "sdp"}


def _latin(text: str) -> str:
    """The bytes of `text` (UTF-8) as one character each: lengths in characters are lengths in bytes."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _unlatin(text: str) -> str:
    return text.encode("latin-1").decode("utf-8", "replace")


def _ipv4_ok(text: str) -> bool:
    parts = text.split(".")
    return all(len(p) == 1 or (p[0] != "0" and int(p) <= 255) for p in parts)


class Redactor:
    """Consistent same-length pseudonyms within one export. Not thread-safe. `sip_ports` (the settings'
    --sip-port) is kept for callers; SIP and other text payloads are recognised by content on any port."""

    def __init__(self, sip_ports: Iterable[int] = SIP_PORTS):
        self.sip_ports = frozenset(sip_ports) | SIP_PORTS
        self.ip4: dict[bytes, bytes] = {}
        self.ip6: dict[bytes, bytes] = {}
        self.macs: dict[bytes, bytes] = {}
        self.users: dict[str, str] = {}      # user parts, numbers, Digest usernames (latin-1 view of bytes)
        self.names: dict[str, str] = {}      # display names
        self.secrets: dict[str, str] = {}    # realm, nonce, response... and Basic credentials
        self._orig_ip4: set[bytes] = set()
        self._orig_ip6: set[bytes] = set()
        self._orig_tokens: set[str] = set()
        self._fakes: set = set()  # every pseudonym given (str tokens, bytes addresses)
        self._counters: dict[str, int] = {}
        self._token_re: re.Pattern | bool | None = None  # None: to build from _learned
        self._simple_words: frozenset[str] = frozenset()
        self._others: dict[str, list[str]] = {}
        self._learned: dict[str, str] = {}   # user or name token -> its kind, as learned
        self._frag_sip: set[tuple] = set()   # (src, dst, id) of IP datagrams whose first fragment is SIP

    # --- public API --------------------------------------------------------------------------------------

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
            return {(self.redact_text(k) if isinstance(k, str) else k): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        return obj

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

    # --- pseudonyms --------------------------------------------------------------------------------------

    def _next(self, kind: str) -> int:
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return self._counters[kind]

    def _token(self, value: str, table: dict[str, str], kind: str, learn: bool) -> str:
        if not value:
            return value
        if learn:
            self._orig_tokens.add(value)
            if kind in ("user", "name") and value not in self._learned:
                self._learned[value] = kind
                if kind == "user" and value[:1] == "+" and value[1:].isdigit():
                    self._learned.setdefault(value[1:], "plus")  # the number written without its +
                self._token_re = None
            return value
        if value in table:
            return table[value]
        if value in self._fakes:  # already a pseudonym (text redacted twice)
            return value
        width = len(value)
        numeric = NUMBER.fullmatch(value) is not None
        taken = self._fakes
        fake = value
        for tries in range(MAX_TRIES):
            n = self._next(kind)
            if numeric:  # digits stay digits; +, -, ., (, ) and spaces stay where they are
                digits = sum(c.isdigit() for c in value)
                fill = iter(str(n % 10**digits).zfill(digits))
                candidate = "".join(next(fill) if c.isdigit() else c for c in value)
            else:
                candidate = _word(kind, n, width)
            if candidate == value:
                continue
            fake = candidate
            # a new pseudonym if the width allows it, never an original; short widths run out: then share
            if candidate not in self._orig_tokens and (candidate not in taken or tries > 100):
                break
        if fake == value:  # one character with nothing else free
            fake = "x" if value != "x" else "y"
        table[value] = fake
        self._fakes.add(fake)
        self._orig_tokens.add(value)
        if kind in ("user", "name") and value not in self._learned:
            self._learned[value] = kind
            self._token_re = None
        return fake

    def _ip4(self, raw: bytes, learn: bool) -> bytes:
        if learn:
            self._orig_ip4.add(raw)
            return raw
        if raw in self.ip4:
            return self.ip4[raw]
        text = str(ipaddress.IPv4Address(raw))
        if text in KEEP_IPV4 or raw[0] >= 224 or raw in self._fakes:
            return raw
        used = self._fakes
        length = len(text)
        for _ in range(MAX_TRIES):
            fake = _ipv4_of_length(length, self._next(f"ip4-{length}"))
            if fake not in self._orig_ip4 and fake not in used and fake != raw:
                break
        else:
            raise CaptureError(f"too many different IPv4 addresses of {length} characters to redact")
        self.ip4[raw] = fake
        self._fakes.add(fake)
        self._orig_ip4.add(raw)
        return fake

    def _ip6(self, raw: bytes, learn: bool) -> bytes:
        if learn:
            self._orig_ip6.add(raw)
            return raw
        if raw in self.ip6:
            return self.ip6[raw]
        addr = ipaddress.IPv6Address(raw)
        if addr.is_unspecified or addr.is_multicast or raw in self._fakes:
            return raw
        used = self._fakes
        length = len(str(addr))
        for _ in range(MAX_TRIES):
            fake = _ipv6_of_length(length, self._next(f"ip6-{length}")) or _ipv6_of_length(12, self._next("ip6"))
            if fake not in self._orig_ip6 and fake not in used and fake != raw:
                break
        else:
            raise CaptureError(f"too many different IPv6 addresses of {length} characters to redact")
        self.ip6[raw] = fake
        self._fakes.add(fake)
        self._orig_ip6.add(raw)
        return fake

    def _ip_text(self, text: str, learn: bool) -> str:
        if ":" in text:
            try:
                addr = ipaddress.IPv6Address(text)
            except ValueError:
                return text
            fake = ipaddress.IPv6Address(self._ip6(addr.packed, learn))
            if learn:
                return text
            out = str(fake)
            if len(out) != len(text):  # the text was not in canonical form: leading zeros, else all zeros
                out = _pad_ipv6(fake, len(text)) or re.sub(r"[0-9A-Fa-f]", "0", text)
            return out
        if not _ipv4_ok(text):
            return text
        fake = self._ip4(ipaddress.IPv4Address(text).packed, learn)
        return text if learn else str(ipaddress.IPv4Address(fake))

    # --- SIP text ----------------------------------------------------------------------------------------

    def _sip_text(self, text: str, learn: bool) -> str:
        lines = text.split("\n")
        in_body = False
        for i, line in enumerate(lines):
            stripped = line.rstrip("\r")
            if stripped.startswith("SIP/2.0 ") or re.match(r"^[A-Z]+ \S+ SIP/2\.0$", stripped):
                in_body = False
                lines[i] = self._line(line, None, first=True, learn=learn)
                continue
            if not stripped:
                in_body = True
                continue
            if in_body and re.match(r"^[a-z]=", stripped):
                lines[i] = self._line(line, "sdp-" + stripped[0], first=False, learn=learn)
                continue
            match = HEADER_NAME.match(stripped)
            name = match.group(1).lower() if match and not in_body else None
            lines[i] = self._line(line, name, first=False, learn=learn)
        return "\n".join(lines)

    def _line(self, line: str, header: str | None, first: bool, learn: bool) -> str:
        if header in AUTH_HEADERS:
            line = self._auth(line, learn)
        line = URI_USER.sub(lambda m: m.group(1) + self._token(m.group(2), self.users, "user", learn)
                            + (":" + self._token(m.group(3)[1:], self.secrets, "secret", learn) if m.group(3) else "")
                            + m.group(4) + "@", line)
        line = URI_CUT.sub(lambda m: m.group(1) + self._token(m.group(2), self.users, "user", learn), line)
        line = TEL_URI.sub(lambda m: m.group(1) + self._token(m.group(2), self.users, "user", learn), line)
        line = QUOTED_NAME.sub(lambda m: '"' + self._token(m.group(1), self.names, "name", learn) + '"', line)
        if header in NAME_ADDR_HEADERS:
            colon = line.index(":") + 1
            line = line[:colon] + UNQUOTED_NAME.sub(
                lambda m: m.group(1) + m.group(2) + self._token(m.group(3), self.names, "name", learn) + m.group(4),
                line[colon:])
        if header == "sdp-o":  # o=<username> <sess-id> <sess-version> IN IP4 <address>
            parts = line.split(" ", 1)
            if len(parts) == 2 and len(parts[0]) > 2 and parts[0][2:] != "-":
                line = "o=" + self._token(parts[0][2:], self.users, "user", learn) + " " + parts[1]
        line = IPV4_TEXT.sub(lambda m: self._ip_text(m.group(0), learn), line)
        line = IPV6_TEXT.sub(lambda m: self._ip_text(m.group(0), learn), line)
        if learn or header in PROTECTED_HEADERS:
            return line
        if first:  # the Request-URI only, not the method, version or status
            parts = line.split(" ")
            if len(parts) >= 3 and not line.startswith("SIP/2.0 "):
                parts[1] = self._bare_tokens(parts[1])
            return " ".join(parts)
        if header and header.startswith("sdp-") and header[4] not in SDP_NAMED_LINES \
                and not line.startswith(SDP_NAMED_ATTRIBUTES):
            return line
        return self._bare_tokens(line)

    def _auth(self, line: str, learn: bool) -> str:
        def param(m: re.Match) -> str:
            key, value = m.group(1).lower(), m.group(3)
            quoted = value.startswith('"') and value.endswith('"') and len(value) >= 2
            inner = value[1:-1] if quoted else value
            if key == "username":
                fake = self._token(inner, self.users, "user", learn)
            else:
                fake = self._token(inner, self.secrets, "secret", learn)
            return m.group(1) + m.group(2) + (f'"{fake}"' if quoted else fake)

        line = AUTH_PARAM.sub(param, line)
        return BASIC_CRED.sub(lambda m: m.group(1) + self._token(m.group(2), self.secrets, "secret", learn), line)

    def _bare_tokens(self, line: str, binary: bool = False) -> str:
        """Users and names learned elsewhere, where they stand as a word (Call-ID, tags, branches, Subject,
        X- headers): non-numeric tokens of 3+ characters, numbers of 5+ digits (not after a colon: ports).
        Words of letters and digits are looked up in a set (fast with thousands of users); the few with
        other characters (display names with spaces, dotted users) go through one regex."""
        if self._token_re is None:
            words = [t for t in self._learned if _bare_ok(t)]
            self._simple_words = frozenset(t for t in words if WORD.fullmatch(t))
            # the others by their rarest word ("" when they have none): a line is only searched for the
            # tokens whose every word it has
            others = [t for t in words if not WORD.fullmatch(t)]
            counts: dict[str, int] = {}
            for t in others:
                for w in set(WORD.findall(t)):
                    counts[w] = counts.get(w, 0) + 1
            self._others = {}
            for t in others:
                parts = set(WORD.findall(t))
                key = min(parts, key=lambda w: (counts[w], -len(w), w)) if parts else ""
                self._others.setdefault(key, []).append(t)
            self._token_re = True
        if self._others and not binary:
            present = set(WORD.findall(line))
            found = sorted({t for w in present | {""} for t in self._others.get(w, ())
                            if set(WORD.findall(t)) <= present}, key=len, reverse=True)
            if found:
                line = re.sub(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, found)) + r")(?![A-Za-z0-9])",
                              self._bare_swap, line)
        if self._simple_words and not self._simple_words.isdisjoint(WORD.findall(line)):
            line = WORD.sub(self._binary_swap if binary else self._bare_swap, line)
        return line

    def _bare_swap(self, m: re.Match) -> str:
        word = m.group(m.lastindex or 0)
        if word not in self._learned or not _bare_ok(word):
            return word
        if word.lstrip("+").isdigit() and m.start() and m.string[m.start() - 1] == ":" \
                and not m.string[max(0, m.start() - 5):m.start() - 1].lower().endswith(("sip", "sips", "tel")):
            return word  # a port, not a number
        return self._swap(word)

    def _binary_swap(self, m: re.Match) -> str:
        return m.group(0) if len(m.group(0)) < 4 else self._bare_swap(m)

    def _swap(self, word: str) -> str:
        if self._learned[word] == "plus":
            return self._token("+" + word, self.users, "user", False)[1:]
        if self._learned[word] == "user":
            return self._token(word, self.users, "user", False)
        return self._token(word, self.names, "name", False)

    def _payload(self, payload: bytes, learn: bool) -> bytes:
        text = payload.decode("latin-1")
        out = self._sip_text(text, learn)
        if learn:
            return payload
        data = out.encode("latin-1")
        if len(data) != len(payload):  # a pseudonym of another length would break lengths and TCP: keep bytes
            raise AssertionError("redaction changed a payload length")
        return data

    # --- packets -----------------------------------------------------------------------------------------

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

    def _mac(self, mac: bytes) -> bytes:
        """A locally administered 02:00:00:xx:xx:xx per MAC address; zero, broadcast and multicast kept."""
        if not any(mac) or mac[0] & 1:
            return mac
        if mac not in self.macs:
            self.macs[mac] = b"\x02\x00\x00" + len(self.macs).to_bytes(3, "big")
        return self.macs[mac]

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
        if is_sip:
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

    def _binary(self, payload: bytes) -> bytes:
        """Payloads that are not text (RTP, proprietary protocols with text fields inside): only the text form
        of addresses seen in the capture and learned users and names of 4+ characters are replaced."""
        text = payload.decode("latin-1")
        out = IPV4_TEXT.sub(lambda m: self._known_ip4(m.group(0)), text)
        out = self._bare_tokens(out, binary=True)
        return payload if out == text else out.encode("latin-1")

    def _known_ip4(self, text: str) -> str:
        if not _ipv4_ok(text) or ipaddress.IPv4Address(text).packed not in self._orig_ip4:
            return text
        return self._ip_text(text, learn=False)

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


def _bare_ok(token: str) -> bool:
    if token.lower() in STOP_WORDS:
        return False
    if token.lstrip("+").isdigit():
        return len(token) >= 5
    return len(token) >= 3


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


def _word(kind: str, n: int, width: int) -> str:
    """A same-width pseudonym word: kind letter, then the counter zero-padded (base 36 when narrow)."""
    letter = {"user": "u", "name": "N", "secret": "x"}.get(kind, "z")
    if width == 1:
        return "abcdefghijklmnopqrstuvwxyz"[n % 26] if kind != "name" else "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 26]
    digits = str(n)
    if len(digits) > width - 1:
        digits = _base36(n % 36 ** (width - 1))
    return letter + digits.zfill(width - 1)


def _base36(n: int) -> str:
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = chars[r] + out
        if not n:
            return out


def _ipv4_of_length(length: int, n: int) -> bytes:
    """The n-th pseudonym IPv4 address whose dotted text has `length` characters (7..15)."""
    def octet(width: int, k: int) -> tuple[int, int]:  # value, radix
        lo, hi = {1: (0, 9), 2: (10, 99), 3: (100, 254)}[width]
        return lo + k % (hi - lo + 1), hi - lo + 1

    if length == 7:
        first, widths = 0, [1, 1, 1]
    elif length == 15:
        first, widths = 100, [3, 3, 3]
    else:
        first, rest = 10, length - 5  # "10." and two dots
        widths = []
        for slots in (3, 2, 1):
            w = min(3, rest - (slots - 1))
            widths.append(w)
            rest -= w
        widths.reverse()  # the counter runs in the last octet first
    values = []
    k = n
    for w in reversed(widths):
        v, radix = octet(w, k)
        if w == 1 and len(values) == 0:
            v = 1 + (k % 9)  # last octet of one digit: 1..9
            radix = 9
        values.append(v)
        k //= radix
    values.reverse()
    if first == 100:
        values[0] = 100 + values[0] % 28  # 100.100-127.x.y: inside 100.64.0.0/10
    return bytes([first, *values])


def _ipv6_of_length(length: int, n: int) -> bytes | None:
    """The n-th pseudonym IPv6 address whose canonical text has `length` characters, or None."""
    for prefix, groups in (("2001:db8::", 6), ("fd00::", 7), ("::", 6), ("2001:db8:", 6), ("fd00:", 7)):
        rest = length - len(prefix)
        if rest < 1:
            continue
        for k in range(1, groups + 1):
            width_sum = rest - (k - 1)
            if width_sum < k or width_sum > 4 * k:
                continue
            widths = [4] * (width_sum // 4)
            if width_sum % 4:
                widths.append(width_sum % 4)
            while len(widths) < k:  # split a wide group to reach k groups
                i = max(range(len(widths)), key=lambda j: widths[j])
                if widths[i] < 2:
                    break
                widths[i] -= 1
                widths.append(1)
            if len(widths) != k:
                continue
            values = []
            m = n
            for w in reversed(widths):
                lo = 1 if w == 1 else 16 ** (w - 1)
                span = 16 ** w - lo
                values.append(lo + m % span)
                m //= span
            values.reverse()
            text = prefix + ":".join(f"{v:x}" for v in values)
            try:
                addr = ipaddress.IPv6Address(text)
            except ValueError:
                continue
            if str(addr) == text and not addr.ipv4_mapped and len(text) == length:
                return addr.packed
    return None


def _pad_ipv6(addr: ipaddress.IPv6Address, length: int) -> str | None:
    """A valid (non-canonical) text of `addr` as long as `length`: leading zeros in its groups, zero groups
    written out instead of "::" where that is needed."""
    groups = [int(x, 16) for x in addr.exploded.split(":")]
    runs = [None] + [(i, j) for i in range(8) for j in range(i + 1, 9) if not any(groups[i:j])]
    for run in runs:
        sides = [groups] if run is None else [groups[:run[0]], groups[run[1]:]]
        texts = [[f"{v:x}" for v in side] for side in sides]
        text = "::".join(":".join(side) for side in texts)
        missing = length - len(text)
        if missing < 0 or missing > sum(4 - len(t) for side in texts for t in side):
            continue
        for side in texts:
            for k, t in enumerate(side):
                pad = min(4 - len(t), missing)
                side[k], missing = "0" * pad + t, missing - pad
        text = "::".join(":".join(side) for side in texts)
        if len(text) == length and ipaddress.IPv6Address(text) == addr:
            return text
    return None


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


# --- ladders ---------------------------------------------------------------------------------------------


def redact_ladder(model, redactor):
    """The ladder (flowviz.ladder.Ladder) with every text column (names, keys, labels, raw messages) through
    the redactor: what images (PNG, PDF) are drawn from, since pixels cannot be redacted afterwards."""
    import dataclasses

    import polars as pl

    def frame(df: pl.DataFrame) -> pl.DataFrame:
        texts = [c for c, t in df.schema.items() if t == pl.Utf8]
        return df.with_columns(
            [pl.col(c).map_elements(redactor.redact_text, return_dtype=pl.Utf8) for c in texts]) if texts else df

    return dataclasses.replace(model, columns=frame(model.columns), arrows=frame(model.arrows),
                               media=frame(model.media), events=frame(model.events), markers=frame(model.markers))


# --- files -----------------------------------------------------------------------------------------------

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
DROPPED_BLOCKS = (0x00000004, 0x0000000A)  # name resolution (addresses -> names), decryption secrets


def redact_capture(source: str | Path, output: str | Path, redactor: Redactor | None = None,
                   tshark: str = "") -> dict:
    """Write a redacted copy of a whole capture: pcap stays pcap (same header, timestamps, lengths), pcapng
    stays pcapng (packet blocks rewritten; name resolution and decryption secrets blocks dropped). gzip input
    is written uncompressed; other formats are converted to pcapng by tshark first. Two passes: learn, then
    rewrite. `output` may be `source`. Returns counts: packets, addresses, users, names."""
    from flowviz.export.pcap import _open

    redactor = redactor or Redactor()
    source, output = Path(source), Path(output)
    with tempfile.TemporaryDirectory(prefix="flowviz-redact-") as tmp:
        with _open(source) as f:
            magic = f.read(4)
        if magic not in PCAP_MAGICS and magic != PCAPNG_SHB:
            tool = tshark or shutil.which("tshark") or ""
            if not tool:
                raise ToolMissingError("redacting this capture format needs tshark (to convert it to pcapng)")
            converted = Path(tmp) / "converted.pcapng"
            done = subprocess.run([tool, "-r", str(source), "-F", "pcapng", "-w", str(converted)],
                                  capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                said = " ".join(line.removeprefix("tshark: ") for line in done.stderr.splitlines()
                                if line.strip() and not line.startswith("Running as user"))
                raise CaptureError(f"{source}: not a capture tshark can read ({said[:200]})")
            source = converted
        for data, link in _records(source, None):
            redactor.learn_packet(data, link)
        target = Path(tmp) / "out"
        count = _rewrite(source, target, redactor)
        shutil.move(str(target), str(output))
    return {"packets": count, "addresses": len(redactor.ip4) + len(redactor.ip6), "users": len(redactor.users),
            "names": len(redactor.names)}


def _records(source: Path, out):
    """(frame bytes, link type) of every packet; with `out` (a file), every record is also written there,
    packet data replaced by what the caller sends back into the generator."""
    from flowviz.export.pcap import _open, pcap_records, pcapng_blocks

    with _open(source) as src:
        magic = src.read(4)
        if magic in PCAP_MAGICS:
            endian = ">" if magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d") else "<"
            rest = src.read(20)
            link = struct.unpack(endian + "I", rest[16:20])[0] & 0x0FFFFFFF
            if out:
                out.write(magic + rest)
            for header, data in pcap_records(src, magic):
                new = yield data, link
                if out:
                    out.write(header + (new if new is not None else data))
            return
        if magic != PCAPNG_SHB:
            raise CaptureError(f"{source}: not a pcap or pcapng file")
        links = []
        for btype, endian, block, number in pcapng_blocks(src, magic):
            if btype == 0x0A0D0D0A:  # a new section numbers its interfaces from 0 again
                links = []
            if btype == 1 and len(block) >= 10:  # interface description
                links.append(struct.unpack(endian + "H", block[8:10])[0])
            elif btype in DROPPED_BLOCKS:
                continue
            elif number is not None:  # a packet block
                if btype == 6:
                    iface = struct.unpack(endian + "I", block[8:12])[0]
                    caplen = struct.unpack(endian + "I", block[20:24])[0]
                    start = 28
                elif btype == 2:
                    iface = struct.unpack(endian + "H", block[8:10])[0]
                    caplen = struct.unpack(endian + "I", block[20:24])[0]
                    start = 28
                else:
                    iface = 0
                    origlen = struct.unpack(endian + "I", block[8:12])[0]
                    caplen = min(origlen, len(block) - 16)
                    start = 12
                link = links[iface] if iface < len(links) else 1
                data = bytes(block[start:start + caplen])
                new = yield data, link
                if new is not None:
                    block = bytearray(block)
                    block[start:start + caplen] = new
            if out:
                out.write(_strip_options(block, btype, endian))


KEPT_OPTIONS = {  # block type -> (where its options start, option codes kept); comments and the rest dropped
    0x0A0D0D0A: (24, {2, 3, 4}),  # SHB: hardware, OS, application
    1: (16, {9, 13, 14}),  # IDB: timestamp resolution, FCS length, timestamp offset (name, filter... dropped)
    6: (28, {2, 4}),  # EPB: flags, drop count (comments, hashes of the original bytes dropped)
}


def _strip_options(block: bytearray, btype: int, endian: str) -> bytes:
    """A pcapng block with only the options of KEPT_OPTIONS: interface names, capture filters ("host
    192.0.2.7") and comments can name what was redacted."""
    if btype not in KEPT_OPTIONS:
        return bytes(block)
    start, keep = KEPT_OPTIONS[btype]
    if btype == 6:
        caplen = struct.unpack(endian + "I", block[20:24])[0]
        start += (caplen + 3) & ~3
    end = len(block) - 4
    kept, at = b"", start
    while at + 4 <= end:
        code, size = struct.unpack(endian + "HH", block[at:at + 4])
        if code == 0:
            break
        stop = at + 4 + ((size + 3) & ~3)
        if code in keep:
            kept += bytes(block[at:stop])
        at = stop
    if at > end or (at == start and start >= end):
        return bytes(block)
    if kept:
        kept += b"\0\0\0\0"
    body = bytes(block[:start]) + kept
    length = len(body) + 4
    packed = struct.pack(endian + "I", length)
    return body[:4] + packed + body[8:] + packed


def _rewrite(source: Path, target: Path, redactor: Redactor) -> int:
    count = 0
    with open(target, "wb") as out:
        gen = _records(source, out)
        try:
            item = next(gen)
            while True:
                data, link = item
                count += 1
                item = gen.send(redactor.redact_packet(data, link))
        except StopIteration:
            pass
    return count


def redact_file_in_place(path: str | Path, redactor: Redactor) -> dict:
    """Redact a file just written (e.g. the per-call pcap of `flowviz export`) with an existing Redactor."""
    return redact_capture(path, path, redactor)


__all__ = ["Redactor", "redact_capture", "redact_file_in_place"]

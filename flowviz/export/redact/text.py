"""SIP, SDP and other text rewriting of a redaction: URIs, display names, Digest parameters, addresses, words.

`TextRewriter` walks a SIP message (or any text: a ladder label, a JSON string, an SDP body) line by line
and swaps each original for its pseudonym (pseudonyms.Pseudonyms). Text is handled as latin-1 (one
character per byte), so lengths in characters are lengths in bytes. Users and names learned in one
message are also replaced where they stand as a word elsewhere (Call-ID, tags, branches, Subject).
"""

from __future__ import annotations

import ipaddress
import re

from flowviz.export.redact.pseudonyms import Pseudonyms, _ipv4_ok

IPV4_TEXT = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
IPV6_TEXT = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:)?(?![\w:])")
URI_USER = re.compile(r"(?i)\b(sips?:)([^@\s;>?,:\"<]+)(:[^@\s;>?,\"<]*)?((?:;[^@\s;>?,\"<]*)*)@")
URI_CUT = re.compile(r"(?i)\b(sips?:)([^@\s;>?,:\"<.]+)\Z")  # a URI cut by the end of a TCP segment
WORD = re.compile(r"[A-Za-z0-9]+")
TEL_URI = re.compile(r"(?i)\b(tel:)([^\s;>?,\"<]+)")
QUOTED_NAME = re.compile(r'"((?:[^"\\\r\n]|\\.)*)"(?=\s*<)')
UNQUOTED_NAME = re.compile(r"(^|,)(\s*)([^\s<>\",;:][^<>\",;:]*?)(\s*<)")
AUTH_PARAM = re.compile(r"(?i)\b(username|realm|nonce|cnonce|response|opaque|nextnonce|rspauth)(\s*=\s*)"
                        r"(\"[^\"]*\"|[^\s,\"]+)")
BASIC_CRED = re.compile(r"(?i)(\bBasic\s+)([A-Za-z0-9+/=]+)")
HEADER_NAME = re.compile(r"^([A-Za-z0-9!%*_+`'~.-]+)\s*:")

AUTH_HEADERS = {"authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate",
                "authentication-info", "proxy-authentication-info"}
NAME_ADDR_HEADERS = {"from", "f", "to", "t", "contact", "m", "p-asserted-identity", "p-preferred-identity",
                     "remote-party-id", "diversion", "refer-to", "r", "referred-by", "b", "reply-to",
                     "history-info", "p-called-party-id", "route", "record-route", "path", "service-route"}
# header values that are numbers or fixed syntax: bare user tokens are not searched there
PROTECTED_HEADERS = {"content-length", "l", "cseq", "max-forwards", "expires", "min-expires", "session-expires",
                     "x", "min-se", "rseq", "rack", "retry-after", "content-type", "c", "allow", "supported", "k",
                     "require", "accept", "date", "timestamp", "content-encoding", "e"}
# SDP lines whose text may name people (o= username, s=, i=, u=, e=, p=)
SDP_NAMED_LINES = set("osiuep")
SDP_NAMED_ATTRIBUTES = ("a=ssrc:", "a=msid", "a=label:", "a=cname:", "a=tool:")
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


class TextRewriter(Pseudonyms):
    """Pseudonyms applied to text: `_sip_text(text, learn)` learns the originals of a message (learn=True)
    or rewrites it with the same length (learn=False)."""

    def __init__(self):
        super().__init__()
        self._simple_words: frozenset[str] = frozenset()
        self._others: dict[str, list[str]] = {}

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


def _bare_ok(token: str) -> bool:
    if token.lower() in STOP_WORDS:
        return False
    if token.lstrip("+").isdigit():
        return len(token) >= 5
    return len(token) >= 3

"""Pseudonym tables of a redaction: original -> same-length pseudonym for addresses, MACs, users, names, secrets.

`Pseudonyms` holds the maps of one export and gives each original its pseudonym: the same one every time,
never one of the originals seen (learn them first), as many bytes as the original. The generators below
make the n-th candidate of a given width: words (_word, _base36), IPv4 addresses 10.x.y.z / 100.x.y.z /
0.x.y.z (_ipv4_of_length), IPv6 addresses in 2001:db8::/32, fd00::/8 or ::/96 (_ipv6_of_length,
_pad_ipv6 for non-canonical text).
"""

from __future__ import annotations

import ipaddress
import re

from flowviz.errors import CaptureError

NUMBER = re.compile(r"\+?[\d().\- ]*\d[\d().\- ]*")
KEEP_IPV4 = {"0.0.0.0", "255.255.255.255"}
MAX_TRIES = 100_000


def _ipv4_ok(text: str) -> bool:
    parts = text.split(".")
    return all(len(p) == 1 or (p[0] != "0" and int(p) <= 255) for p in parts)


class Pseudonyms:
    """The original -> pseudonym maps of one export, and what was learned to keep pseudonyms apart from
    originals. Not thread-safe."""

    def __init__(self):
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
        self._token_re: re.Pattern | bool | None = None  # None: text.py rebuilds its word lookup from _learned
        self._learned: dict[str, str] = {}   # user or name token -> its kind, as learned

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

    def _mac(self, mac: bytes) -> bytes:
        """A locally administered 02:00:00:xx:xx:xx per MAC address; zero, broadcast and multicast kept."""
        if not any(mac) or mac[0] & 1:
            return mac
        if mac not in self.macs:
            self.macs[mac] = b"\x02\x00\x00" + len(self.macs).to_bytes(3, "big")
        return self.macs[mac]


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

"""Settings: the knobs that change analysis results; they are part of the cache key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field

from flowviz.errors import FlowvizError

# The safety limits (docs/robustness.md, "Limits"): name for `--limit NAME=VALUE`, Settings field, environment
# variable, default, and whether the value is a size in bytes (K/M/G/T = 1024^n) or a count (K/M/G = 1000^n).
# The defaults come from the environment variable when it is set, in every front end (CLI, batch, web).
LIMITS = {
    "packets": ("max_packets", "FLOWVIZ_MAX_PACKETS", 20_000_000, False),
    "interfaces": ("max_interfaces", "FLOWVIZ_MAX_INTERFACES", 1_000_000, False),
    "decompressed": ("max_decompressed_bytes", "FLOWVIZ_MAX_DECOMPRESSED", 8 << 30, True),
    "record": ("max_record_bytes", "FLOWVIZ_MAX_RECORD_BYTES", 262_144, True),
}
# Limits that decide only whether a capture is read, never what is read from it: not in the cache key.
_NOT_IN_KEY = ("max_packets", "max_interfaces", "max_decompressed_bytes")


def parse_limit(name: str, text: str) -> int:
    """A limit's value from text: '20000000', '20M' (a count: 20 million), '8G' or '8GiB' (bytes: 8 GiB)."""
    _field, variable, _default, in_bytes = LIMITS[name]
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(i?b)?\s*", text, re.IGNORECASE)
    if not match or (match.group(3) and not in_bytes):
        unit = "a size such as 512M or 16G" if in_bytes else "a count such as 50000000 or 50M"
        raise FlowvizError(f"limit {name} (--limit {name}=..., {variable}): {text!r} is not {unit}")
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(match.group(1)) * (1024 if in_bytes else 1000) ** power


def limit_options(items: tuple[str, ...] | list[str]) -> dict[str, int]:
    """`--limit NAME=VALUE` options as Settings keyword arguments."""
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if name not in LIMITS or not value:
            raise FlowvizError(f"--limit {item}: give NAME=VALUE with NAME one of {', '.join(LIMITS)} "
                               "(docs/robustness.md, Limits)")
        out[LIMITS[name][0]] = parse_limit(name, value)
    return out


def _limit(name: str):
    _field, variable, default, _in_bytes = LIMITS[name]
    return field(default_factory=lambda: parse_limit(name, os.environ[variable]) if os.environ.get(variable)
                 else default)


def keylog_digest(path: str) -> str:
    """sha256 of a TLS key log's bytes ("" when none is given)."""
    if not path:
        return ""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise FlowvizError(f"--tls-keylog {path}: cannot read it ({exc.strerror}); give an NSS key log file "
                           "(SSLKEYLOGFILE format)") from None
    return digest.hexdigest()


@dataclass(frozen=True)
class Settings:
    # tshark (decoding and the one format conversion); found on PATH when empty.
    tshark_path: str = ""
    # UDP/TCP ports always treated as SIP (besides ports where SIP is found by content).
    sip_ports: tuple[int, ...] = (5060, 5061)
    # Headers that link B2BUA legs (checked in this order).
    leg_link_headers: tuple[str, ...] = ("X-CID", "X-Call-ID", "Session-ID")
    # RTP heuristic: packets with the same 5-tuple and SSRC needed to call a flow RTP
    # when no SDP announced its port.
    rtp_min_packets: int = 4
    # Largest record length accepted as real (bigger ones mean a broken file); a pcapng block may be 1 KiB
    # longer (its header and options).
    max_record_bytes: int = _limit("record")
    # Safety limits, past which a capture is refused with a one-line error (docs/robustness.md, "Limits"):
    # packets (each holds a 69-byte row in memory while the capture is read), pcapng interface blocks,
    # and the bytes a gzip capture may unpack to in the temporary folder.
    max_packets: int = _limit("packets")
    max_interfaces: int = _limit("interfaces")
    max_decompressed_bytes: int = _limit("decompressed")
    # Who decodes SIP in whole UDP datagrams: "auto" = flowviz itself (tshark's rules, no tshark
    # process needed), "tshark" = tshark, like everything else (to compare, or to rule flowviz out).
    sip_decoder: str = "auto"
    # NSS key log file (SSLKEYLOGFILE format) handed to tshark to decrypt SIP over TLS; empty: none.
    tls_keylog: str = ""

    def tshark(self) -> str:
        if self.tshark_path:
            return self.tshark_path if shutil.which(self.tshark_path) else ""
        return shutil.which("tshark") or ""

    def fingerprint(self) -> str:
        """Short stable hash of every setting, for cache keys (tool paths and the limits that only refuse a
        capture excluded)."""
        values = dataclasses.asdict(self)
        for name in ("tshark_path", *_NOT_IN_KEY):
            values.pop(name)
        # the key log's content, not its path: keys added to the same file, or another file with the
        # same keys, must decide the frames (a run without keys must not be served after one with them)
        values["tls_keylog"] = keylog_digest(self.tls_keylog)
        text = json.dumps(values, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

"""Settings: the knobs that change analysis results; they are part of the cache key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    # External tools; found on PATH when empty.
    tshark_path: str = ""
    editcap_path: str = ""
    # UDP/TCP ports always treated as SIP (besides ports where SIP is found by content).
    sip_ports: tuple[int, ...] = (5060, 5061)
    # Headers that link B2BUA legs (checked in this order).
    leg_link_headers: tuple[str, ...] = ("X-CID", "X-Call-ID", "Session-ID")
    # RTP heuristic: packets with the same 5-tuple and SSRC needed to call a flow RTP
    # when no SDP announced its port.
    rtp_min_packets: int = 4
    # Largest record length accepted as real (bigger ones mean a broken file).
    max_record_bytes: int = 262_144
    # Who decodes SIP in whole UDP datagrams: "auto" = flowviz itself (tshark's rules, no tshark
    # process needed), "tshark" = tshark, like everything else (to compare, or to rule flowviz out).
    sip_decoder: str = "auto"

    def tshark(self) -> str:
        if self.tshark_path:
            return self.tshark_path if shutil.which(self.tshark_path) else ""
        return shutil.which("tshark") or ""

    def editcap(self) -> str:
        return self.editcap_path or shutil.which("editcap") or ""

    def fingerprint(self) -> str:
        """Short stable hash of every setting, for cache keys (tool paths excluded)."""
        values = dataclasses.asdict(self)
        values.pop("tshark_path")
        values.pop("editcap_path")
        text = json.dumps(values, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

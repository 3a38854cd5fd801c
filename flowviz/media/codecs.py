"""Codecs: payload type -> name and clock rate (static table, SDP rtpmap overrides).

Clock rates follow Wireshark's ui/tap-rtp-analysis.c (clock_map and mimetype_and_clock_map),
which is what its jitter uses; names follow the RTP/AVP registry (RFC 3551).
"""

from __future__ import annotations


# Static payload types (RFC 3551 table 4/5): pt -> (encoding name, clock rate used for jitter).
# G.722 is 8000 on purpose (RFC 3551 4.5.2: the RTP clock is 8 kHz though it samples at 16 kHz).
STATIC: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000), 1: ("1016", 8000), 2: ("G721", 8000), 3: ("GSM", 8000), 4: ("G723", 8000),
    5: ("DVI4", 8000), 6: ("DVI4", 16000), 7: ("LPC", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000),
    10: ("L16", 44100), 11: ("L16", 44100), 12: ("QCELP", 8000), 13: ("CN", 8000), 14: ("MPA", 90000),
    15: ("G728", 8000), 16: ("DVI4", 11025), 17: ("DVI4", 22050), 18: ("G729", 8000), 19: ("CN", 8000),
    25: ("CelB", 90000), 26: ("JPEG", 90000), 28: ("nv", 90000), 31: ("H261", 90000), 32: ("MPV", 90000),
    33: ("MP2T", 90000), 34: ("H263", 90000),
}

COMFORT_NOISE = (13, 19)  # PT_CN and PT_CN_OLD

# Dynamic encodings without a rate in the rtpmap (Wireshark's mimetype_and_clock_map), lower case.
DYNAMIC_CLOCK: dict[str, int] = {
    "amr": 8000, "amr-wb": 16000, "bmpeg": 90000, "bt656": 90000, "dv": 90000, "evrc": 8000, "evrc0": 8000,
    "evrc1": 8000, "evrcb": 8000, "evrcb0": 8000, "evrcb1": 8000, "evrcwb": 16000, "evrcwb0": 16000,
    "evrcwb1": 16000, "evs": 16000, "g7221": 16000, "g726-16": 8000, "g726-24": 8000, "g726-32": 8000,
    "g726-40": 8000, "g729d": 8000, "g729e": 8000, "gsm-efr": 8000, "h263-1998": 90000, "h263-2000": 90000,
    "h264": 90000, "mp1s": 90000, "mp2p": 90000, "mp4v-es": 90000, "mpa-robust": 90000, "opus": 48000,
    "pointer": 90000, "raw": 90000, "red": 1000, "smv": 8000, "smv0": 8000, "t140": 1000,
    "telephone-event": 8000,
}


def parse_rtpmap(value: str) -> tuple[int, str, int] | None:
    """'96 opus/48000/2' -> (96, 'opus', 48000); the rate is 0 when absent or unreadable."""
    try:
        pt_text, rest = value.strip().split(None, 1)
        parts = rest.split("/")
        rate = int(parts[1]) if len(parts) > 1 and parts[1].strip().isdigit() else 0
        return int(pt_text), parts[0].strip(), rate
    except (ValueError, IndexError):
        return None


def dynamic_clock(encoding: str | None, rtpmap_rate: int) -> int:
    """Wireshark's rule for PT >= 96: telephone-event 0 (no jitter), else the rtpmap rate, else by name."""
    if not encoding:
        return 0
    name = encoding.lower()
    if name.startswith("telephone-event"):
        return 0
    if rtpmap_rate:
        return rtpmap_rate
    # Wireshark matches a registered name as a prefix, longest entries first (reverse alphabetical).
    for key in sorted(DYNAMIC_CLOCK, reverse=True):
        if name.startswith(key):
            return DYNAMIC_CLOCK[key]
    return 0


def codec_name(payload_type: int, encoding: str | None = None) -> str:
    """Display name: the rtpmap encoding for dynamic types, else the static name, else 'PT<n>'."""
    if encoding:
        return encoding
    if payload_type in STATIC:
        return STATIC[payload_type][0]
    return f"PT{payload_type}"

"""tshark's command line for the SIP decode, and starting it: light to import, so a worker can start
tshark before it loads polars."""

from __future__ import annotations

import os
import subprocess

from flowviz.settings import Settings

AGGREGATOR = "\x1e"
TSHARK_FIELDS = [
    "frame.number", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "udp.srcport", "udp.dstport",
    "tcp.srcport", "tcp.dstport", "sctp.srcport", "sctp.dstport", "frame.protocols",
    "tcp.segment", "ip.fragment", "ipv6.fragment", "sip.Request-Line", "sip.Status-Line", "sip.msg_hdr",
    "tcp.analysis.lost_segment",
]
# SIP messages, and TCP segments of SIP conversations that follow a gap the capture missed.
DISPLAY_FILTER = "sip or tcp.analysis.lost_segment"


def key_options(settings: Settings) -> list[str]:
    """tshark's option for the TLS key log, when one is given (keys in a pcapng need none: tshark reads
    Decryption Secrets Blocks itself)."""
    return ["-o", f"tls.keylog_file:{settings.tls_keylog}"] if settings.tls_keylog else []


def start_tshark(settings: Settings, decode_as: list[str] = ()) -> tuple[subprocess.Popen | None, str]:
    """tshark reading a capture on its standard input and writing TSHARK_FIELDS; (None, "") if missing."""
    tshark = settings.tshark()
    if not tshark:
        return None, ""
    args = [tshark, "-r", "-", "-n", *key_options(settings), "-Y", DISPLAY_FILTER, *(a for d in decode_as for a in ("-d", d)),
            "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", f"aggregator={AGGREGATOR}",
            "-E", "quote=n"]
    for field in TSHARK_FIELDS:
        args += ["-e", field]
    env = dict(os.environ, LC_ALL="C.UTF-8")
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    return proc, tshark

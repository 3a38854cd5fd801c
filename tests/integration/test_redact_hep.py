"""Redaction of HEP captures: the inner packet's addresses, users and SIP text live in HEP chunks, and the
auth key in chunk 14 (HEPv3). The originals are read here from the chunks themselves (dpkt + the HEPv3
layout: 'HEP3', length, then vendor/type/length chunks), not from flowviz."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest

from flowviz.analyze import analyze
from tests.conftest import SHARED_PCAPS

REPO = Path(__file__).resolve().parents[2]
CAPTURES = [SHARED_PCAPS / "sipcapture__hep-wireshark" / "hep.pcap",
            REPO / "sample_pcaps" / "transports" / "hep" / "hep_reference_call.pcap"]


def chunks(path: Path) -> list[dict[int, bytes]]:
    out = []
    with open(path, "rb") as f:
        for _, data in dpkt.pcap.Reader(f):
            udp = dpkt.ethernet.Ethernet(data).data.data
            payload = bytes(udp.data)
            if not payload.startswith(b"HEP3"):
                continue
            found, pos = {}, 6
            while pos + 6 <= len(payload):
                vendor, ctype, length = struct.unpack_from("!HHH", payload, pos)
                if length < 6:
                    break
                if vendor == 0:
                    found[ctype] = payload[pos + 6:pos + length]
                pos += length
            out.append(found)
    return out


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_no_inner_address_user_or_auth_key_survives(path, tmp_path):
    if not path.exists():
        pytest.skip(f"{path} is absent (public corpus)")
    originals = set()
    for found in chunks(path):
        for ctype in (3, 4):
            if ctype in found:
                originals.add(socket.inet_ntoa(found[ctype]).encode())
        if 14 in found:
            originals.add(found[14])
    calls = analyze(path).calls
    originals |= {c[k].encode() for c in calls for k in ("from_user", "to_user") if c[k]}
    target = tmp_path / "redacted.pcap"
    done = subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", "redact", str(path), "-o", str(target)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = target.read_bytes()
    assert originals and not [o for o in originals if o in data]
    assert len(analyze(target).calls) == len(calls)  # still the same calls, under pseudonyms

"""--redact on `flowviz ladder` and `flowviz export`: nothing original left in any file of the ticket.

Originals of the lab reference call (lab/uac_call.xml, lab/uas_call.xml, the proxies' addresses):
127.0.0.10-13, users ua1/ua2, display names UA1/UA2, Call-ID lab-ref-1@127.0.0.10.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab" / "reference_call.pcap"
CALL_ID = "lab-ref-1@127.0.0.10"
ORIGINAL_TEXT = [f"127.0.0.{n}" for n in (10, 11, 12, 13)] + ["ua1", "ua2", "UA1", "UA2"]
ORIGINAL_BYTES = [socket.inet_aton(f"127.0.0.{n}") for n in (10, 11, 12, 13)]


def flowviz(*args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", *args], capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr.decode()
    return out


def assert_no_original_text(data: bytes) -> None:
    for word in ORIGINAL_TEXT:
        assert word.encode() not in data, word


@pytest.mark.parametrize("fmt", ["txt", "mermaid", "plantuml", "svg", "html"])
def test_ladder_redacted(fmt, tmp_path, tshark):
    out = tmp_path / f"ladder.{fmt}"
    flowviz("ladder", str(REFERENCE), "--call", CALL_ID, "--format", fmt, "--redact", "-o", str(out))
    data = out.read_bytes()
    assert b"INVITE" in data  # still a ladder
    assert_no_original_text(data)


def test_export_pcap_and_json_redacted(tmp_path, tshark):
    pcap, report = tmp_path / "call.pcap", tmp_path / "call.json"
    flowviz("export", str(REFERENCE), "--call", CALL_ID, "--pcap", str(pcap), "--json", str(report), "--redact")
    data = pcap.read_bytes()
    assert_no_original_text(data)
    for raw in ORIGINAL_BYTES:
        assert raw not in data
    text = report.read_text()
    assert_no_original_text(text.encode())
    # the redacted pcap still decodes: 21 SIP messages and 668 RTP packets, as the original
    sip = subprocess.run(["tshark", "-r", str(pcap), "-Y", "sip"], capture_output=True, text=True).stdout
    assert len(sip.splitlines()) == 21
    calls = json.loads(flowviz("calls", "--format", "json", str(pcap)).stdout)
    assert [c["state"] for c in calls] == ["completed"] and len(calls[0]["hosts"]) == 4

"""What `flowviz info` and `flowviz diagnose` say about how the SIP was carried: HEP packets per agent, TLS
connections decrypted or not, and the finding for SIP in TLS without keys. Expected values from tshark on
the same files and from how sample_pcaps/transports was made (its README)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED_PCAPS, run_tshark

REPO = Path(__file__).resolve().parents[2]
TLS = REPO / "sample_pcaps" / "transports" / "tls"
CAPTURE, KEYS = TLS / "sip_tls_call.pcap", TLS / "sip_tls_call.keys"

pytestmark = pytest.mark.usefixtures("tshark")


def flowviz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=300)


def tls_findings(*options: str) -> list[dict]:
    done = flowviz(*options, "diagnose", str(CAPTURE), "--format", "json")
    assert done.returncode == 0, done.stderr
    return [f for f in json.loads(done.stdout) if f["rule"] == "capture.tls_without_keys"]


def test_sip_in_tls_without_keys_is_a_finding_on_the_client_hello():
    (finding,) = tls_findings()
    assert "give --tls-keylog" in finding["explanation"] and finding["call_group_id"] is None
    hellos = run_tshark("-r", str(CAPTURE), "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "frame.number")
    assert finding["evidence"]["frames"] == [int(f) for f in hellos.split()]
    info = flowviz("info", str(CAPTURE))
    assert "TLS" in info.stdout and "0 decrypted, 1 not" in info.stdout


def test_with_the_keys_no_finding_and_wrong_keys_are_named(tmp_path):
    assert tls_findings("--tls-keylog", str(KEYS)) == []
    wrong = tmp_path / "other.keys"  # the same labels and client randoms, other secrets
    wrong.write_text("".join(line.rsplit(" ", 1)[0] + " " + "00" * 48 + "\n" if line.strip() and not line.startswith("#")
                             else line for line in KEYS.read_text().splitlines(keepends=True)))
    (finding,) = tls_findings("--tls-keylog", str(wrong))
    assert "do not decrypt" in finding["explanation"]


def test_info_counts_hep_packets_per_agent():
    path = SHARED_PCAPS / "sipcapture__hep-wireshark" / "hep.pcap"
    if not path.exists():
        pytest.skip(f"{path} is absent (public corpus)")
    hep_packets = run_tshark("-r", str(path), "-T", "fields", "-e", "frame.number").split()
    info = flowviz("info", str(path))
    assert info.returncode == 0, info.stderr
    line = next(l for l in info.stdout.splitlines() if l.startswith("HEP"))
    assert f"{len(hep_packets)} packets (v3)" in line and "0 unreadable" in line

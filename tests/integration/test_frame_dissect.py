"""`flowviz frame`: Wireshark's full decode of one packet, through pyshark in a worker process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from flowviz.ingest.dissect import dissect_frame

REFERENCE = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab" / "reference_call.pcap"


def test_first_frame_of_the_reference_call_is_the_invite(tshark):
    layers = dissect_frame(REFERENCE, 1)
    assert [layer["layer"] for layer in layers][:4] == ["eth", "ip", "udp", "sip"]
    sip = {f["name"]: f["text"] for f in layers[3]["fields"]}
    assert sip["sip.Call-ID"].endswith("lab-ref-1@127.0.0.10")  # lab/uac_call.xml sets this Call-ID
    assert sip["sip.Method"].endswith("INVITE")


def test_frame_command_json_and_missing_frame(tshark):
    ok = subprocess.run([sys.executable, "-m", "flowviz", "frame", str(REFERENCE), "684", "--format", "json"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    layers = json.loads(ok.stdout)
    sip = [layer for layer in layers if layer["layer"] == "sip"][0]
    assert any(f["name"] == "sip.Method" and f["text"].endswith("BYE") for f in sip["fields"])  # frame 684 is the BYE
    missing = subprocess.run([sys.executable, "-m", "flowviz", "frame", str(REFERENCE), "5000"],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"flowviz: error: {REFERENCE} has no frame 5000; `flowviz info` shows how many packets it has"
    ]

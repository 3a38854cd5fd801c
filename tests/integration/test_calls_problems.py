"""`flowviz calls` carries each call's diagnostics as `problems` (issue 5: part of the call summary)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LAB = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab"


def calls_json(*names: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", "calls", "--format", "json",
                          *(str(LAB / n) for n in names)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_busy_call_has_its_rejection_and_the_reference_call_no_fault():
    by_state = {c["state"]: c for c in calls_json("busy_486.pcap", "reference_call.pcap")}
    assert [p["rule"] for p in by_state["busy"]["problems"]] == ["sip.rejected"]  # UA2 answers 486 by construction
    assert [p for p in by_state["completed"]["problems"] if p["severity"] in ("warning", "error")] == []

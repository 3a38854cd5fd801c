"""The PlantUML ladder renders in plantuml.jar without edits (Debian's plantuml package, installed by make test)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab"


# labels the lab scenarios send, in order (lab/uac_call.xml, lab/uas_busy.xml)
@pytest.mark.parametrize("name, call_id, labels", [
    ("reference_call.pcap", "lab-ref-1@127.0.0.10", ["INVITE", "180 Ringing", "200 OK", "ACK", "BYE"]),
    ("busy_486.pcap", "lab-busy-1@127.0.0.10", ["INVITE", "486 Busy Here", "ACK"]),
])
def test_plantuml_export_renders(name, call_id, labels, tmp_path, tshark):
    plantuml = shutil.which("plantuml")
    if plantuml is None:
        pytest.skip("plantuml is not installed (Debian package plantuml)")
    source = tmp_path / "ladder.puml"
    subprocess.run([sys.executable, "-m", "flowviz", "ladder", str(LAB / name), "--call", call_id,
                    "--format", "plantuml", "-o", str(source)], check=True, capture_output=True, timeout=300)
    done = subprocess.run([plantuml, "-tsvg", "-failfast2", str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    svg = source.with_suffix(".svg").read_text()
    assert "Syntax Error" not in svg
    positions = [svg.find(label) for label in labels]
    assert -1 not in positions and positions == sorted(positions), positions

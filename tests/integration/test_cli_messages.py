"""`flowviz info` and `flowviz messages` on the lab reference call, in every format."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import polars as pl

REFERENCE = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab" / "reference_call.pcap"
CALL_ID = "lab-ref-1@127.0.0.10"  # set by lab/uac_call.xml


def flowviz(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", *args], capture_output=True, text=True,
                          timeout=300)


def test_messages_json_is_one_object_per_message():
    out = flowviz("messages", str(REFERENCE), "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 21  # 7 messages on each of the 3 links (sample_pcaps/lab/expected.json)
    assert [r["method"] or r["status_code"] for r in rows[:3]] == ["INVITE", 100, "INVITE"]
    assert rows[0]["ts"].startswith("20") and rows[0]["raw"].startswith("INVITE sip:")


def test_messages_csv_reads_back_with_the_same_rows():
    out = flowviz("messages", str(REFERENCE), "--format", "csv", "--call-id", CALL_ID)
    frame = pl.read_csv(io.StringIO(out.stdout))
    assert frame.height == 21 and set(frame["call_id"]) == {CALL_ID}


def test_messages_table_fits_120_columns_and_unknown_call_id_is_an_error():
    table = flowviz("messages", str(REFERENCE)).stdout.splitlines()
    assert len(table) == 22 and max(len(line) for line in table) <= 120
    missing = flowviz("messages", str(REFERENCE), "--call-id", "nope")
    assert missing.returncode == 2 and missing.stderr.startswith("flowviz: error: no SIP message has Call-ID 'nope'")


def test_info_json_counts():
    info = json.loads(flowviz("info", "--format", "json", str(REFERENCE)).stdout)
    assert (info["packets"], info["sip_messages"], info["rtp_packets"], info["rtp_streams"]) == (689, 21, 668, 2)
    assert info["link_types"] == {"1": 689} and info["skipped"] == {}

"""`flowviz streams` on the lab reference call (two clean G.711 streams between 127.0.0.10 and 127.0.0.13)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from flowviz.cli import cli
from flowviz.export.tables import STREAM_KEYS
from tests.conftest import SAMPLES

LAB_CALL = SAMPLES / "lab" / "reference_call.pcap"
PROMISED = ["stream_id", "call_group_id", "src", "src_port", "dst", "dst_port", "ssrc", "payload_type", "codec",
            "packets", "expected", "lost", "lost_pct", "seq_errors", "min_delta_ms", "mean_delta_ms", "max_delta_ms",
            "min_jitter_ms", "mean_jitter_ms", "max_jitter_ms", "mos", "r_factor", "mos_method", "start_ts", "end_ts",
            "sdp_match"]


@pytest.fixture
def run(tshark, tmp_path, monkeypatch):
    if not LAB_CALL.exists():
        pytest.skip(f"{LAB_CALL} is absent")
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))

    def invoke(*args):
        result = CliRunner().invoke(cli, ["streams", str(LAB_CALL), *args], catch_exceptions=False)
        return result

    return invoke


def test_reference_call_two_bound_streams_clean_g711(run):
    result = run("--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 2 and all(set(PROMISED) <= set(r) for r in rows)
    assert {(r["src"], r["dst"]) for r in rows} == {("127.0.0.10", "127.0.0.13"), ("127.0.0.13", "127.0.0.10")}
    assert rows[0]["call_group_id"] is not None and rows[0]["call_group_id"] == rows[1]["call_group_id"]
    for r in rows:
        assert r["sdp_match"] is True and r["codec"] in ("PCMU", "PCMA") and r["lost"] == 0
        assert r["mos"] >= 4.3 and r["r_factor"] == 93.2 and r["ssrc"].startswith("0x") and len(r["ssrc"]) == 10


def test_call_filter_and_formats(run):
    rows = json.loads(run("--format", "json").output)
    group = rows[0]["call_group_id"]
    assert len(json.loads(run("--call", group, "--format", "json").output)) == 2
    table = run("--call", group).output
    assert rows[0]["stream_id"] in table and "yes" in table
    parsed = list(csv.DictReader(io.StringIO(run("--format", "csv").output)))
    assert len(parsed) == 2 and list(parsed[0]) == STREAM_KEYS


def test_unknown_call_is_a_user_error(run):
    from flowviz.cli import main

    assert main(["streams", str(LAB_CALL), "--call", "no-such-call"]) == 2

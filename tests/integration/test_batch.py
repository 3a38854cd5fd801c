"""`flowviz batch`: the lab + a few synth captures in 2 worker processes, one failing; the corpus once.

Counts come from the lab's construction (sample_pcaps/lab/expected.json), never from flowviz output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from flowviz import batch
from flowviz.errors import FlowvizError
from tests.conftest import SAMPLES, SHARED_PCAPS, corpus_files

REPO = Path(__file__).resolve().parents[2]
LAB = SAMPLES / "lab"
SYNTH = SAMPLES / "synth"
EXPECTED = json.loads((LAB / "expected.json").read_text())["captures"]
SYNTH_FILES = ["basic_call_udp.pcap", "rtp_loss_reorder_jitter.pcap", "not_a_capture.pcap"]


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowviz", "batch", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory, tshark):
    out = tmp_path_factory.mktemp("batch") / "out"
    started = time.perf_counter()
    proc = run(str(LAB), *(str(SYNTH / f) for f in SYNTH_FILES), "-o", str(out), "--workers", "2",
               "--fail-on", "state=busy")
    return proc, out, time.perf_counter() - started


def test_every_capture_processed_and_the_bad_one_reported(lab_run):
    proc, out, _ = lab_run
    assert proc.returncode == 1, proc.stderr  # state=busy matches the lab's busy calls
    captures = pl.read_parquet(out / "captures.parquet")
    assert set(captures["capture_id"]) == {f"lab__{n}" for n in EXPECTED} | {f"synth__{n}" for n in SYNTH_FILES}
    failed = captures.filter(~pl.col("ok"))
    assert failed["capture_id"].to_list() == ["synth__not_a_capture.pcap"]
    assert "not a capture" in failed["error"][0]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("flowviz: error: ")]
    assert sum("not_a_capture.pcap" in line for line in errors) == 1
    assert any(line.startswith("flowviz batch: 7 captures (6 ok, 1 failed)") for line in proc.stderr.splitlines())
    assert "--fail-on matched: state=busy (11 calls)" in proc.stderr
    assert "\r" not in proc.stderr  # no progress line when stderr is not a terminal


def test_parquet_has_the_documented_schema(lab_run):
    _, out, _ = lab_run
    documented = _documented_schemas()
    for name in ("calls", "streams", "kpis"):
        frame = pl.read_parquet(out / name / "**" / "*.parquet", hive_partitioning=True)
        assert {c: str(t) for c, t in frame.schema.items()} == documented[name], name
        assert frame.schema == batch.DATASETS[name]
        ok = pl.read_parquet(out / "captures.parquet").filter(pl.col("ok"))["capture_id"]
        parts = sorted(p.parent.name for p in (out / name).glob("*/part.parquet"))
        assert parts == sorted(f"capture_id={c}" for c in ok)
    for name in ("kpis_all", "captures"):
        frame = pl.read_parquet(out / f"{name}.parquet")
        assert {c: str(t) for c, t in frame.schema.items()} == documented[name], name


def _documented_schemas() -> dict[str, dict[str, str]]:
    text = (REPO / "docs" / "batch.md").read_text()
    out: dict[str, dict[str, str]] = {}
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        name, body = section.split("\n", 1)
        out[name.strip()] = dict(re.findall(r"^\| (\w+) \| (.+?) \|$", body, flags=re.M)[1:])  # skip header
    return out


def test_counts_match_the_lab_construction(lab_run):
    _, out, _ = lab_run
    calls = batch.read_dataset(out, "calls")
    streams = batch.read_dataset(out, "streams")
    for name, expected in EXPECTED.items():
        mine = calls.filter(pl.col("capture_id") == f"lab__{name}")
        assert mine.height == expected["calls"], name
        assert Counter(mine["state"].to_list()) == Counter(expected["outcomes"]), name
        assert sorted(c for ids in mine["call_ids"].to_list() for c in ids) == sorted(expected["call_ids"])
        assert streams.filter(pl.col("capture_id") == f"lab__{name}").height == expected["rtp_streams"], name
    burst = calls.filter(pl.col("capture_id") == "lab__burst_100.pcap")
    assert burst.height == 100 and burst.filter(pl.col("state") == "busy").height == 10
    # the CSV holds the same rows
    for name in ("calls", "streams", "kpis"):
        assert pl.read_csv(out / f"{name}.csv", infer_schema=False).height == batch.read_dataset(out, name).height
    # KPIs per capture (10 each) and across all captures
    kpis = batch.read_dataset(out, "kpis")
    assert Counter(kpis["capture_id"].to_list()) == {cid: 10 for cid in kpis["capture_id"].unique()}
    total = pl.read_parquet(out / "kpis_all.parquet")
    ser = total.filter(pl.col("kpi") == "SER").row(0, named=True)
    assert ser["denominator"] == calls.filter(pl.col("method") == "INVITE").height


def test_calls_carry_problems_and_worst_mos(lab_run):
    _, out, _ = lab_run
    calls = batch.read_dataset(out, "calls")
    busy = calls.filter(pl.col("state") == "busy")
    assert busy["warnings"].min() >= 1 and set(busy["worst_severity"]) == {"warning"}
    assert all("sip.rejected" in [p["rule"] for p in problems] for problems in busy["problems"].to_list())
    [ref] = calls.filter(pl.col("capture_id") == "lab__reference_call.pcap").to_dicts()
    assert ref["state"] == "completed" and ref["worst_mos"] is not None and ref["worst_mos"] > 4


def test_report_lists_captures_failures_and_worst_calls(lab_run):
    _, out, _ = lab_run
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for text in (md, page):
        for name in EXPECTED:
            assert f"lab__{name}" in text
        assert "synth__not_a_capture.pcap" in text and "FAILED" in text
        assert "Worst calls" in text and "busy" in text and "Call rejected" in text
        assert "state=busy" in text
    assert "<script" not in page.lower() and "http" not in page  # self-contained
    assert "| lab__burst_100.pcap | ok | 100 | 90 completed, 10 busy |" in md
    captures = pl.read_parquet(out / "captures.parquet")
    burst = captures.filter(pl.col("capture_id") == "lab__burst_100.pcap").row(0, named=True)
    assert burst["ser_pct"] == 90.0 and burst["failed_calls"] == 10 and burst["streams"] == 180


def test_quick_run_time(lab_run):
    assert lab_run[2] < 120


def test_exit_0_2_and_refusals(tmp_path, tshark):
    out = tmp_path / "out"
    ok = run(str(LAB / "busy_486.pcap"), "-o", str(out), "--workers", "1", "--fail-on", "mos<1")
    assert ok.returncode == 0, ok.stderr
    # OUTDIR not empty: refused in one line, nothing touched; --force replaces the batch outputs only
    (out / "mine.txt").write_text("keep")
    again = run(str(LAB / "busy_486.pcap"), "-o", str(out))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    forced = run(str(LAB / "cancel.pcap"), "-o", str(out), "--workers", "1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (out / "mine.txt").read_text() == "keep"
    assert [p.name for p in (out / "calls").iterdir()] == ["capture_id=cancel.pcap"]
    # nothing usable: exit 2
    bad = run(str(SYNTH / "not_a_capture.pcap"), str(SYNTH / "empty.pcap"), "-o", str(tmp_path / "bad"),
              "--workers", "2")
    assert bad.returncode == 2
    assert "none of the 2 captures could be analysed" in bad.stderr
    nothing = run(str(tmp_path / "no*such*.pcap"), "-o", str(tmp_path / "none"))
    assert nothing.returncode == 2 and "no file matches" in nothing.stderr
    # a bad condition: one line, exit 2, before any work
    cond = run(str(LAB), "-o", str(tmp_path / "cond"), "--fail-on", "mos<abc")
    assert cond.returncode == 2 and cond.stderr.strip().count("\n") == 0 and "not a number" in cond.stderr
    assert not (tmp_path / "cond").exists()


@pytest.mark.parametrize("text", ["mos<3.5", "mos <= 3", "state=rejected", "state!=completed", "severity>=warning",
                                  "status>=500", "rule=sip.rejected", "state==timed out"])
def test_conditions_parse(text):
    cond = batch.parse_condition(text)
    assert cond.field in batch.FIELDS


@pytest.mark.parametrize("text,why", [("mos", "FIELD OP VALUE"), ("moss<3", "unknown field"), ("mos<", "no value"),
                                      ("mos<x", "not a number"), ("state<busy", "= or !="),
                                      ("state=gone", "unknown state"), ("severity>=bad", "unknown severity"),
                                      ("rule>x", "= or !=")])
def test_bad_conditions_are_one_line_errors(text, why):
    with pytest.raises(FlowvizError) as err:
        batch.parse_condition(text)
    assert why in err.value.message and "\n" not in err.value.message


def test_condition_matching():
    call = {"state": "busy", "final_status": 486, "srd_ms": None,
            "problems": [{"rule": "sip.rejected", "severity": "warning", "title": "Call rejected"}]}
    assert batch.parse_condition("state=busy").matches(call)
    assert not batch.parse_condition("state!=busy").matches(call)
    assert batch.parse_condition("severity>=warning").matches(call)
    assert not batch.parse_condition("severity>=error").matches(call)
    assert batch.parse_condition("rule=sip.rejected").matches(call)
    assert batch.parse_condition("status>=400").matches(call)
    assert not batch.parse_condition("srd_ms>0").matches(call)  # missing values never match
    assert batch.parse_condition("mos<3.5").matches({"mos": 2.4})
    assert not batch.parse_condition("mos<3.5").matches({"mos": None})


def test_capture_ids_are_unique_and_safe():
    ids = batch.capture_ids([Path("a/x y.pcap"), Path("b/x y.pcap"), Path("a/sub/z.pcap")])
    assert ids == ["a__x_y.pcap", "b__x_y.pcap", "a__sub__z.pcap"]
    assert batch.capture_ids([Path("a/x.pcap"), Path("a/x.pcap")]) == ["x.pcap", "x.pcap-2"]


@pytest.mark.skipif(not corpus_files(), reason="../shared/pcaps is absent (public corpus)")
def test_corpus_every_capture_processed(tmp_path, tshark):
    out = tmp_path / "corpus"
    proc = run(str(SHARED_PCAPS), "-o", str(out), "--workers", "2", timeout=900)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    captures = pl.read_parquet(out / "captures.parquet")
    files, _ = batch.find_inputs([str(SHARED_PCAPS)])
    assert captures.height == len(files) > 0
    failed = captures.filter(~pl.col("ok"))
    assert failed["error"].null_count() == 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("flowviz: error: ")]
    assert len(errors) == failed.height
    calls = batch.read_dataset(out, "calls")
    assert calls.schema == batch.CALL_SCHEMA
    assert set(calls["capture_id"]) <= set(captures.filter(pl.col("ok"))["capture_id"])


def _crashing_task(path: str, capture_id: str, settings, use_cache: bool) -> dict:
    """A worker that dies on one capture (as if killed or out of memory), in the spawned process."""
    if "busy_486" in path:
        os._exit(1)
    return batch.analyze_capture(path, capture_id, settings, use_cache)


def test_a_dying_worker_fails_only_its_capture(tshark, capsys):
    from flowviz.cli.batch import run_batch
    from flowviz.cli.common import Context
    from flowviz.settings import Settings

    files = [LAB / "busy_486.pcap", LAB / "cancel.pcap", LAB / "reference_call.pcap"]
    results = run_batch(files, batch.capture_ids(files), Context(True, Settings()), 2, False, task=_crashing_task)
    assert [r["ok"] for r in results] == [False, True, True]
    assert "worker process died" in results[0]["error"]
    assert [r["calls"][0]["state"] for r in results[1:]] == ["cancelled", "completed"]
    assert capsys.readouterr().err.count("flowviz: error: ") == 1


def test_inputs_files_folders_globs_once_each(tmp_path):
    files, bad = batch.find_inputs([str(LAB), str(LAB / "cancel.pcap"), str(SYNTH / "tunnel_*.pcap"),
                                    str(tmp_path / "nothing*.pcap"), str(tmp_path)])
    names = [p.name for p in files]
    assert names[:4] == sorted(EXPECTED) and names.count("cancel.pcap") == 1
    assert names[4:] == ["tunnel_gre.pcap", "tunnel_gtpu.pcap", "tunnel_ipip.pcap", "tunnel_vxlan.pcap"]
    assert [why for _, why in bad] == ["no file matches this pattern", bad[1][1]] and "no capture files" in bad[1][1]


def test_collector_writes_as_it_goes_and_keeps_little(tmp_path):
    def fake(cid: str, n: int) -> dict:
        calls = [{"call_group_id": f"{cid}-{i}", "method": "INVITE", "state": "busy", "final_status": 486,
                  "start_ts": f"t{i:03d}", "problems": [{"rule": "sip.rejected", "severity": "warning",
                                                         "title": "Call rejected"}]} for i in range(n)]
        return {**batch.failed_result(f"{cid}.pcap", cid, ""), "ok": True, "error": None, "calls": calls,
                "kpis": [{"kpi": "SER", "value": 0.0}]}

    collector = batch.Collector(tmp_path, [batch.parse_condition("state=busy")])
    rows = [collector.add(fake("a", 15)), collector.add(fake("b", 15))]
    assert (tmp_path / "calls" / "capture_id=a" / "part.parquet").exists()  # written before finish
    assert len(collector.worst) == 20 and set(collector.worst[0]) == set(batch.WORST_KEYS)
    assert all(set(c) == set(batch.KPI_CALL_KEYS) for c in collector.kpi_calls)
    [match] = collector.finish(rows, [], 1.0)
    assert match == {"condition": "state=busy", "table": "calls", "matched": 30, "captures": ["a", "b"]}
    assert pl.read_csv(tmp_path / "calls.csv").height == 30
    assert batch.read_dataset(tmp_path, "calls").height == 30

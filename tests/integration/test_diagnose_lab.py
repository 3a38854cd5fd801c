"""flowviz diagnose on the lab captures (outcomes known from lab/: sipp scenarios and proxy configs) and on
the built captures of tests/synth, through ingest and the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from flowviz.analysis.diagnose import FINDING_KEYS, at_least, diagnose_capture
from flowviz.cli import cli
from flowviz.errors import NotFoundError
from flowviz.ingest import read_capture
from tests import synth
from tests.conftest import SAMPLES

LAB = SAMPLES / "lab"


def _findings(name: str) -> list[dict]:
    return diagnose_capture(read_capture(LAB / name))


def test_reference_call_triggers_no_fault_rule():
    assert at_least(_findings("reference_call.pcap"), "warning") == []


def test_busy_call_has_exactly_the_486_finding():
    [found] = _findings("busy_486.pcap")
    assert (found["rule"], found["severity"]) == ("sip.rejected", "warning")
    assert found["evidence"]["values"]["status_code"] == 486
    assert found["evidence"]["values"]["sent_by"] == "127.0.0.13:5060"  # UA2, the sipp UAS that answers busy
    assert len(found["evidence"]["frames"]) == 3  # the 486 on each of the 3 links


def test_cancelled_call_has_exactly_the_cancel_information():
    [found] = _findings("cancel.pcap")
    assert (found["rule"], found["severity"]) == ("sip.cancelled", "info")


def test_burst_has_one_busy_finding_per_busy_call():
    findings = _findings("burst_100.pcap")  # 100 calls, every 10th answered 486 (lab/expected.json)
    assert [f["rule"] for f in findings] == ["sip.rejected"] * 10


def test_built_one_way_stream_is_one_way_audio(tmp_path):
    path = tmp_path / "one_way.pcap"
    synth.write("rtp_loss_reorder_jitter", path)  # one RTP stream, caller to callee only (its README)
    [found] = diagnose_capture(read_capture(path, use_cache=False))
    assert found["rule"] == "media.one_way"
    assert found["evidence"]["values"]["flows"] == ["10.0.0.10:40000 -> 10.0.1.20:50000"]


@pytest.mark.parametrize("name", ["basic_call_udp", "sip_tcp_coalesced_split", "ipv6_call", "tunnel_gre"])
def test_built_calls_have_no_signalling_fault(tmp_path, name):
    path = tmp_path / "x.pcap"
    synth.write(name, path)
    findings = diagnose_capture(read_capture(path, use_cache=False))
    assert [f for f in at_least(findings, "warning") if f["rule"].startswith("sip.")] == []


def _invoke(*args: str):
    result = CliRunner().invoke(cli, ["diagnose", *args], catch_exceptions=False)
    return result


def test_cli_json_has_the_promised_keys_and_filters_by_severity_and_call():
    out = json.loads(_invoke(str(LAB), "--format", "json").output)
    assert {f["rule"] for f in out} == {"sip.rejected", "sip.cancelled"}
    assert all(list(f)[:len(FINDING_KEYS)] == FINDING_KEYS and f["evidence"]["frames"] for f in out)
    warnings = json.loads(_invoke(str(LAB), "--format", "json", "--min-severity", "warning").output)
    assert {f["rule"] for f in warnings} == {"sip.rejected"}
    cancel = json.loads(_invoke(str(LAB / "cancel.pcap"), "--format", "json", "--call", "lab-cancel-1@127.0.0.10").output)
    assert [f["rule"] for f in cancel] == ["sip.cancelled"]


def test_cli_threshold_override_and_table():
    # the reference call's first ringing comes after 4.7 ms: a 1 ms SRD threshold flags it
    result = _invoke(str(LAB / "reference_call.pcap"), "--srd-ms", "1")
    assert result.exit_code == 0 and "sip.long_srd" in result.output and "hint:" in result.output
    assert _invoke(str(LAB / "reference_call.pcap")).output.strip() == "no findings"
    unknown = CliRunner().invoke(cli, ["diagnose", str(LAB / "busy_486.pcap"), "--call", "nope"])
    assert isinstance(unknown.exception, NotFoundError) and "no call 'nope'" in unknown.exception.message


def test_capture_cut_in_the_middle_of_a_record_is_told_once_for_the_file(tmp_path):
    path = tmp_path / "cut.pcap"
    synth.write("truncated", path)  # the basic call cut inside record 21 (its README)
    findings = diagnose_capture(read_capture(path, use_cache=False))
    assert [(f["rule"], f["call_group_id"]) for f in findings][0] == ("capture.truncated", None)
    assert "cut in the middle of record 21" in findings[0]["explanation"]
    assert "capture.ends_mid_call" in [f["rule"] for f in findings]  # the call's end is past the cut
    table = _invoke(str(path)).output
    assert "(capture)  warning  capture.truncated" in table


def test_packets_with_truncated_headers_are_counted():
    from flowviz.analysis.rules_capture import capture_findings

    [found] = capture_findings({"skipped": {"truncated headers": 3, "not IP (ethertype 0x0806)": 2}, "warnings": []})
    assert found["evidence"]["values"]["skipped"] == {"truncated headers": 3}
    assert capture_findings({"skipped": {"not IP (ethertype 0x0806)": 2}, "warnings": []}) == []

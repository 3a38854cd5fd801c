"""Calls rebuilt from the lab captures (sipp UA1 -> kamailio P1 -> kamailio P2 -> sipp UA2).

Expected values come from the lab's construction (sample_pcaps/lab/expected.json, written from
the sipp scenarios and proxy configs), never from flowviz output.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from flowviz.ingest import read_capture
from flowviz.sip.calls import Correlation, summarize_calls

LAB = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab"
EXPECTED = json.loads((LAB / "expected.json").read_text())
CAPTURES = EXPECTED["captures"]
HOSTS = EXPECTED["hosts"]


@pytest.fixture(scope="module")
def calls():
    return {name: summarize_calls(read_capture(LAB / name).sip_messages) for name in CAPTURES}


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_one_call_group_per_call_with_the_constructed_outcome(calls, name):
    expected = CAPTURES[name]
    got = calls[name]
    assert len(got) == expected["calls"]
    assert sorted(c for call in got for c in call["call_ids"]) == sorted(expected["call_ids"])
    assert Counter(call["state"] for call in got) == Counter(expected["outcomes"])
    assert Counter(str(call["final_status"]) for call in got) == Counter(expected["final_status_codes"])
    for call in got:
        assert call["hosts"] == expected["path"]  # the 4 addresses, in path order
        assert call["host_roles"] == ["UA", "proxy", "proxy", "UA"]
        assert call["retransmissions"] == 0  # loopback, no loss


def test_per_call_message_counts(calls):
    for name, expected in CAPTURES.items():
        by_id = {call["call_ids"][0]: call for call in calls[name]}
        for detail in expected["calls_detail"]:
            assert by_id[detail["call_id"]]["messages"] == detail["sip_messages"], detail["call_id"]


def test_reference_call_path_delays_and_timings(calls):
    [call] = calls["reference_call.pcap"]
    assert call["state"] == "completed" and call["final_status"] == 200
    assert (call["from_user"], call["to_user"]) == ("ua1", "ua2")
    # 3 links -> 3 per-hop delays (INVITE -> that hop's own 100 Trying), each far below the SRD:
    # the 100s are hop-local, the SRD waits for the 180 that came from UA2 through both proxies.
    assert len(call["hop_delays_ms"]) == 3
    assert all(d is not None and 0 <= d < call["srd_ms"] for d in call["hop_delays_ms"])
    # Construction: 180 at ~0 s, 200 after 1.0 s of ringing, BYE 10.5 s after the ACK.
    assert 1000 <= call["setup_ms"] < 1200
    assert call["srd_ms"] < 200
    assert 10.4 < call["duration_s"] < 10.8
    assert call["hung_up_by"] == "caller"


def test_reference_call_forwarding_order(calls):
    [call] = calls["reference_call.pcap"]
    p1, p2 = HOSTS["P1"], HOSTS["P2"]
    by_message: dict[str, list[str]] = {}
    for f in call["forwarding"]:
        by_message.setdefault(f["message"], []).append(f["proxy"])
        assert f["ms"] >= 0
    assert by_message["INVITE"] == [p1, p2]
    assert by_message["180 (INVITE)"] == [p2, p1]  # responses return in reverse
    assert by_message["200 (INVITE)"] == [p2, p1]
    # ACK (of the 2xx) and BYE are new transactions routed through both proxies (Record-Route)
    assert by_message["ACK"] == [p1, p2] and by_message["BYE"] == [p1, p2]
    assert by_message["200 (BYE)"] == [p2, p1]
    assert "100 (INVITE)" not in by_message


def test_reference_call_transactions():
    corr = Correlation(read_capture(LAB / "reference_call.pcap").sip_messages)
    msgs = corr.messages
    # 7 transactions per link (INVITE, ACK and BYE each their own) on 3 links; the 100s are per link
    assert msgs.filter(msgs["cseq_method"] != "ACK")["txn_id"].n_unique() == 2 * 3
    assert msgs.filter(msgs["cseq_method"] == "ACK")["txn_id"].n_unique() == 3
    assert not msgs["is_retransmission"].any()


def test_cancel_passed_on_by_each_proxy_and_487_back(calls):
    # expected.json "derivation": each proxy answers the CANCEL it received and sends its own CANCEL on
    [call] = calls["cancel.pcap"]
    p1, p2 = HOSTS["P1"], HOSTS["P2"]
    by_message: dict[str, list[str]] = {}
    for f in call["forwarding"]:
        by_message.setdefault(f["message"], []).append(f["proxy"])
    assert by_message["CANCEL"] == [p1, p2]
    assert by_message["487 (INVITE)"] == [p2, p1]


def test_busy_and_cancel(calls):
    [busy] = calls["busy_486.pcap"]
    [cancel] = calls["cancel.pcap"]
    assert (busy["state"], busy["final_status"], busy["srd_ms"]) == ("busy", 486, None)  # no 180 by construction
    assert 150 < busy["failed_srd_ms"] < 400  # 486 0.2 s after the INVITE
    assert (cancel["state"], cancel["final_status"]) == ("cancelled", 487)


def test_burst_outcomes_follow_the_injection_rule(calls):
    burst = CAPTURES["burst_100.pcap"]
    # Call n is answered 486 when n % 10 == 0 (outcome_rule in expected.json)
    busy_ids = {f"lab-burst-{n}@127.0.0.10" for n in range(1, burst["calls"] + 1) if n % 10 == 0}
    for call in calls["burst_100.pcap"]:
        [call_id] = call["call_ids"]
        expected_state = "busy" if call_id in busy_ids else "completed"
        assert call["state"] == expected_state, call_id


def test_burst_kpis_equal_counts_from_the_construction():
    from flowviz.analysis.kpis import capture_kpis

    burst = CAPTURES["burst_100.pcap"]
    n = burst["calls"]
    busy = sum(1 for i in range(1, n + 1) if i % 10 == 0)  # outcome_rule: 486 when n % 10 == 0
    answered = n - busy
    kpis = {k["kpi"]: k for k in capture_kpis(read_capture(LAB / "burst_100.pcap").sip_messages)}
    assert (kpis["SER"]["numerator"], kpis["SER"]["denominator"]) == (answered, n)  # no 3xx in the burst
    assert (kpis["SEER"]["numerator"], kpis["SEER"]["denominator"]) == (answered + busy, n)  # 486 is "effective"
    assert (kpis["ISA"]["numerator"], kpis["ISA"]["denominator"]) == (0, n)
    assert (kpis["SCR"]["numerator"], kpis["SCR"]["denominator"]) == (answered, n)  # every answered call got a BYE
    assert kpis["SER"]["value"] == 100.0 * answered / n
    assert kpis["SRD"]["count"] == answered and kpis["SRD failed"]["count"] == busy
    assert kpis["SDD"]["count"] == answered and kpis["SDT"]["count"] == answered
    assert (kpis["RRD"]["count"], kpis["IRA"]["denominator"]) == (0, 0)  # no REGISTER in the lab
    # lab/uac_burst.xml: ACK then <pause 1500 ms> then BYE; lab/uas_burst.xml: <pause 100 ms> before 200/486
    assert 1.5 <= kpis["SDT"]["min"] and kpis["SDT"]["max"] < 1.6
    assert 100 <= kpis["SRD failed"]["min"] and kpis["SRD failed"]["max"] < 150
    assert kpis["SRD"]["max"] < 100  # the 180 is sent at once, before the 100 ms pause


def _run(*args: str):
    from click.testing import CliRunner

    from flowviz.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_calls_json_has_the_promised_keys():
    [call] = json.loads(_run("calls", str(LAB / "reference_call.pcap"), "--format", "json"))
    for key in ("call_group_id", "call_ids", "method", "from_user", "to_user", "from_uri", "to_uri", "state",
                "final_status", "start_ts", "srd_ms", "setup_ms", "duration_s", "hosts", "hop_delays_ms", "legs",
                "messages", "retransmissions"):
        assert key in call, key
    assert call["hosts"] == EXPECTED["path"] and call["state"] == "completed"
    assert call["start_ts"].endswith("+00:00") and "T" in call["start_ts"]
    assert set(call["legs"][0]) == {"call_id", "link_kind", "evidence"}
    assert len(call["call_group_id"]) == 10 and int(call["call_group_id"], 16) >= 0


def test_cli_calls_table_fits_120_columns_and_filters():
    table = _run("calls", str(LAB))
    assert max(len(line) for line in table.splitlines()) <= 120
    busy = json.loads(_run("calls", str(LAB / "burst_100.pcap"), "--state", "busy", "--format", "json"))
    assert len(busy) == 10 and {c["final_status"] for c in busy} == {486}
    found = json.loads(_run("calls", str(LAB), "--search", "LAB-CANCEL", "--format", "json"))
    assert [c["call_ids"] for c in found] == [["lab-cancel-1@127.0.0.10"]]
    csv_text = _run("calls", str(LAB / "busy_486.pcap"), "--format", "csv")
    assert csv_text.splitlines()[0].startswith("call_group_id,call_ids,method")
    assert len(csv_text.splitlines()) == 2


def test_cli_kpis_json_and_table():
    kpis = {k["kpi"]: k for k in json.loads(_run("kpis", str(LAB / "burst_100.pcap"), "--format", "json"))}
    assert (kpis["SER"]["numerator"], kpis["SER"]["denominator"]) == (90, 100)
    table = _run("kpis", str(LAB / "burst_100.pcap"))
    assert "90/100" in table and max(len(line) for line in table.splitlines()) <= 120


def test_cli_kpis_over_the_whole_lab_folder():
    outcomes = Counter()
    for expected in CAPTURES.values():
        outcomes.update(expected["final_status_codes"])
    invites = sum(outcomes.values())
    kpis = {k["kpi"]: k for k in json.loads(_run("kpis", str(LAB), "--format", "json"))}
    assert (kpis["SER"]["numerator"], kpis["SER"]["denominator"]) == (outcomes["200"], invites)
    assert kpis["SEER"]["numerator"] == outcomes["200"] + outcomes["486"]  # 487 (cancelled) is not effective
    assert kpis["SRD failed"]["count"] == outcomes["486"]  # the cancelled call rang first: no failed SRD
    assert (kpis["IRA"]["numerator"], kpis["IRA"]["denominator"]) == (0, 0)


def test_cli_calls_goes_on_past_an_unreadable_capture(tmp_path, capsys):
    from flowviz.cli import main

    (tmp_path / "a_broken.pcap").write_bytes(b"not a capture at all")
    (tmp_path / "busy.pcap").write_bytes((LAB / "busy_486.pcap").read_bytes())
    assert main(["--no-cache", "calls", str(tmp_path), "--format", "json"]) == 2
    out, err = capsys.readouterr()
    assert [c["state"] for c in json.loads(out)] == ["busy"]
    assert "a_broken.pcap" in err and "1 of 2 captures could not be read" in err

"""Issue 19, wrong answers (items 10, 12, 13, 14, 15): each case built as a small capture, read through the
library's front door (flowviz.analyze) and, where Wireshark has an answer, checked against tshark on the
same file. The ladders and rows of tests/unit/test_wrong_answers_units.py are reused as captures here."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from flowviz.analyze import Analysis
from tests.conftest import run_tshark
from tests.integration.test_media_corpus import METRICS, compare, our_streams
from tests.kit.sip_ladders import write_pcap
from tests.synth import scenario_kit as K
from tests.synth import writers as W
from tests.synth.scenarios import parties
from tests.unit.test_wrong_answers_units import proxied_call, timer_g_408s

pytestmark = pytest.mark.usefixtures("tshark")

# tshark -z rtp,streams, with the start and end times allowed to be negative (time going backwards)
STREAM_LINE = re.compile(
    r"^\s*(-?[\d.]+)\s+(-?[\d.]+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(0x[0-9A-Fa-f]+)\s+(.+?)\s+(\d+)\s+(-?\d+)\s+"
    r"\((-?[\d.]+)%\)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s*(X?)\s*$")


def tshark_streams(path: Path) -> list[dict]:
    out = run_tshark("-r", str(path), "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams")
    streams = []
    for line in out.splitlines():
        if m := STREAM_LINE.match(line):
            streams.append({"src_ip": m[3], "src_port": int(m[4]), "dst_ip": m[5], "dst_port": int(m[6]),
                            "ssrc": int(m[7], 16), "payload": m[8], "packets": int(m[9]), "lost": int(m[10]),
                            **{name: m[12 + i] for i, name in enumerate(METRICS)}})
    return streams


def tshark_fields(path: Path, *fields: str, display_filter: str = "sip") -> list[list[str]]:
    args = ["-r", str(path), "-Y", display_filter, "-T", "fields"] + [a for f in fields for a in ("-e", f)]
    return [line.split("\t") for line in run_tshark(*args).splitlines() if line.strip()]


def basic_call_records(name: str) -> tuple[list[K.Pkt], K.CallPlan]:
    """tests/synth's basic call (INVITE ... BYE over UDP, 100 G.711 packets each way, no RTCP), in time order."""
    caller, callee = parties()
    tl = K.Timeline()
    plan = K.basic_call(tl, t0=K.BASE_TS_NS, caller=caller, callee=callee, call_id=f"{name}@flowviz", tag=name[:2],
                        rtp_packets=100, rtcp=False)
    pkts = K.order(tl.pkts)
    for p in pkts:
        p.data = K.encapsulate("ether", p)
    return pkts, plan


def write_records(path: Path, records: list[W.Record]) -> Path:
    path.write_bytes(W.pcap_bytes(1, records, nsec=True))
    return path


def analysis(path: Path) -> Analysis:
    return Analysis(path, use_cache=False)


# ----------------------------------------------------------------------------- 10: time going backwards

def test_reversed_records_keep_wiresharks_counts_without_nonsense(tmp_path):
    """Every record of a call written last first (a 'shuffled records' mutant): tshark prints lost -198 for
    100 packets; flowviz prints the same counts, but no loss %, MOS or duration, and says why."""
    pkts, _ = basic_call_records("reversed")
    path = write_records(tmp_path / "reversed.pcap", [W.Record(p.ts_ns, p.data) for p in reversed(pkts)])
    theirs = tshark_streams(path)
    assert [(s["packets"], s["lost"]) for s in theirs] == [(100, -198), (100, -198)]
    assert not compare(path.name, theirs, our_streams(path))  # packets, lost, deltas, jitter: Wireshark's
    a = analysis(path)
    for s in a.streams:
        assert (s["packets"], s["expected"], s["lost"]) == (100, -98, -198)
        assert (s["lost_pct"], s["mos"], s["r_factor"], s["duration_s"]) == (None, None, None, None)
    rules = [f["rule"] for f in a.findings]
    assert rules.count("media.loss_unmeasurable") == 2 and "capture.time_backwards" in rules
    assert "media.packet_loss" not in rules and "media.low_mos" not in rules


def test_reversed_records_every_command_and_export_says_loss_unmeasurable(tmp_path):
    """The same reversed capture through the commands a user types: streams table, ladder, export; no crash on
    the missing loss %."""
    from flowviz.cli import main

    pkts, _ = basic_call_records("reversed")
    path = write_records(tmp_path / "reversed.pcap", [W.Record(p.ts_ns, p.data) for p in reversed(pkts)])
    [call] = analysis(path).calls
    assert main(["--no-cache", "streams", str(path)]) == 0
    assert main(["ladder", str(path), "--call", call["call_group_id"], "-o", str(tmp_path / "l.txt")]) == 0
    assert "loss unmeasurable" in (tmp_path / "l.txt").read_text()
    assert main(["export", str(path), "--call", call["call_group_id"], "--json", str(tmp_path / "c.json")]) == 0


def test_clock_step_back_mid_call(tmp_path):
    """The capture's clock steps back 4 s one second into the media: the call's duration would be negative,
    the RTP deltas across the step are Wireshark's (negative min delta), and the step is a finding."""
    pkts, plan = basic_call_records("stepback")
    step_at = plan.rtp_start_ns + 1000 * K.MS
    records = [W.Record(p.ts_ns - (4000 * K.MS if p.ts_ns > step_at else 0), p.data) for p in pkts]
    path = write_records(tmp_path / "step.pcap", records)
    theirs = tshark_streams(path)
    assert len(theirs) == 2 and all(float(s["min_delta_ms"]) < -3900 for s in theirs)
    assert not compare(path.name, theirs, our_streams(path))
    a = analysis(path)
    [call] = a.calls
    assert (call["state"], call["setup_ms"], call["duration_s"]) == ("completed", 1500.0, None)
    after = [n for n, p in enumerate(pkts, start=1) if p.ts_ns > step_at]
    [found] = [f for f in a.findings if f["rule"] == "capture.time_backwards"]
    rtp_after = [n for n in after if pkts[n - 1].rtp]
    sip_after = [n for n in after if pkts[n - 1].sip_done]
    values = found["evidence"]["values"]
    assert (values["sip_steps"], values["rtp_packets"]) == (1, 2)
    assert found["evidence"]["frames"] == sorted([sip_after[0], *rtp_after[:2]])


def test_32_bit_timestamp_wrap_gives_no_negative_srd(tmp_path):
    """The INVITE stamped 2^32 - 1 s, its answers after the seconds counter wrapped to 0: SRD was
    -4,294,967,294,960 ms."""
    from tests.synth.packets import ethernet, ip_udp
    from tests.unit.test_wrong_answers_units import UA1, UA2, _leg

    ladder = _leg("wrap", UA1, UA2, 0, caller=("alice", "a1"), callee=("bob", None), bye=None, sent_by=UA1)
    stamps = [(2**32 - 1) * 10**9, (2**32 - 1) * 10**9 + 10**6, 40 * 10**6, 990 * 10**6, 991 * 10**6]
    records = []
    for n, ((_, src, dst, text), ts) in enumerate(zip(ladder, stamps), start=1):
        (sip_, sport), (dip, dport) = src.split(":"), dst.split(":")
        records.append(W.Record(ts, ethernet(ip_udp(sip_, dip, int(sport), int(dport), text.encode(), ident=n))))
    path = write_records(tmp_path / "wrap.pcap", records)
    epochs = [float(e) for [e] in tshark_fields(path, "frame.time_epoch")]
    assert epochs[0] == pytest.approx(4294967295.0) and epochs[2] == pytest.approx(0.04)
    a = analysis(path)
    [call] = a.calls
    assert (call["srd_ms"], call["setup_ms"], call["state"]) == (None, None, "in call")
    [found] = [f for f in a.findings if f["rule"] == "capture.time_backwards"]
    assert found["evidence"]["frames"] == [3]


# ----------------------------------------------------------------------------- 12: host names

def test_proxies_are_named_by_their_own_server_header_as_tshark_shows_it(tmp_path):
    path = tmp_path / "proxied.pcap"
    write_pcap(proxied_call(), path)
    fields = tshark_fields(path, "ip.src", "sip.Method", "sip.Status-Code", "sip.User-Agent", "sip.Server")
    # what each proxy put on the wire: the forwarded INVITE carries UA1's User-Agent, its own 100 its Server
    p1 = [row for row in fields if row[0] == "10.0.0.11"]
    assert ["10.0.0.11", "INVITE", "", "sipp-UA1", ""] in p1
    assert ["10.0.0.11", "", "100", "", "kamailio-proxy1"] in p1
    [call] = analysis(path).calls
    assert call["host_names"] == ["sipp-UA1", "kamailio-proxy1", "kamailio-proxy2", "sipp-UA2"]


# ----------------------------------------------------------------------------- 13: packet time

def test_bursty_arrival_is_not_a_packet_time_asymmetry(tmp_path):
    """The caller's 20 ms packets (160 samples, RTP timestamps 160 apart, as tshark shows) arrive in bursts
    of three 2 ms apart, every 60 ms; the callee's every 20 ms. Same packet time both ways."""
    pkts, plan = basic_call_records("bursty")
    caller_rtp = [p for p in pkts if p.rtp and p.rtp["src"][1] == 40000]
    for i, p in enumerate(caller_rtp):
        p.ts_ns = plan.rtp_start_ns + (60 * (i // 3) + 2 * (i % 3)) * K.MS
    path = write_records(tmp_path / "bursty.pcap", [W.Record(p.ts_ns, p.data) for p in K.order(pkts)])
    stamps = [int(t) for [t] in tshark_fields(path, "rtp.timestamp", display_filter="rtp && udp.srcport == 40000")]
    assert {b - a for a, b in zip(stamps, stamps[1:])} == {160}
    a = analysis(path)
    assert "media.ptime_asymmetry" not in [f["rule"] for f in a.findings]


# ----------------------------------------------------------------------------- 14: 408s without their INVITE

def test_408s_re_sent_without_ack_whose_invite_was_not_captured(tmp_path):
    path = tmp_path / "408.pcap"
    write_pcap(timer_g_408s(), path)
    fields = tshark_fields(path, "sip.Method", "sip.Status-Code", "sip.CSeq.method")
    assert fields == [["", "408", "INVITE"]] * 11  # no INVITE, no ACK
    a = analysis(path)
    [call] = a.calls
    assert (call["state"], call["final_status"], call["retransmissions"]) == ("rejected", 408, 10)
    rules = [f["rule"] for f in a.findings]
    assert rules == ["capture.request_not_captured", "sip.rejected", "sip.failure_without_ack"]


# ----------------------------------------------------------------------------- 15b: messages without a Call-ID

def test_messages_without_call_id_are_a_warning_naming_them(tmp_path):
    from tests.unit.test_wrong_answers_units import UA1, UA2, _leg

    ladder = _leg("k1", UA1, UA2, 0, caller=("alice", "a1"), callee=("bob", None), bye=3000, sent_by=UA1)
    ladder = [(t, s, d, text.replace("Call-ID: k1\r\n", "") if n in (2, 5) else text)
              for n, (t, s, d, text) in enumerate(ladder)]
    path = tmp_path / "no-call-id.pcap"
    write_pcap(ladder, path)
    assert [int(f) for [f] in tshark_fields(path, "frame.number", display_filter="sip && !sip.Call-ID")] == [3, 6]
    a = analysis(path)
    assert a.warnings == [f"{path}: 2 SIP message(s) without a Call-ID header are in no call (frames 3, 6)"]
    [call] = a.calls
    assert call["messages"] == 5


# ----------------------------------------------------------------------------- 15c: the path of a cached capture

def test_info_names_the_file_asked_for_even_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path / "cache"))
    first, second = tmp_path / "first.pcap", tmp_path / "copy" / "second.pcap"
    write_pcap(timer_g_408s(), first)
    second.parent.mkdir()
    shutil.copyfile(first, second)
    assert Analysis(first).info["file"] == str(first)
    again = Analysis(second).info
    assert again["from_cache"] is True and again["file"] == str(second)


# ----------------------------------------------------------------------------- 15f: quoted display names

def test_display_names_with_angle_brackets_equal_tshark(tmp_path):
    from tests.kit.sip_ladders import request

    headers = ['"<script>alert(1)</script>" <sip:alice@example.com>;tag=a1',
               '"Mallory <sip:evil@x.org>" <sip:alice@example.com>;tag=a2',
               r'"A \"quoted\" name" <sip:alice@example.com>;tag=a3', r'"back\\slash<" <sip:alice@example.com>;tag=a4']
    ladder = []
    for n, header in enumerate(headers):
        text = request("INVITE", call_id=f"d{n}", cseq=1, vias=[("10.0.0.1:5060", f"z9hG4bK-d{n}")]).replace(
            'From: "Alice" <sip:alice@example.com>;tag=a1', f"From: {header}")
        ladder.append((10.0 * n, "10.0.0.1:5060", "10.0.0.9:5060", text))
    path = tmp_path / "display.pcap"
    write_pcap(ladder, path)
    theirs = tshark_fields(path, "sip.from.user", "sip.display.info", "sip.from.tag")
    sip = analysis(path).capture.sip_messages.sort("frame")
    ours = sip.select("from_user", "from_display", "from_tag").rows()
    # tshark shows the quoted-string as written; its content is the display name (RFC 3261 25.1)
    unquoted = [(user, re.sub(r"\\(.)", r"\1", display[1:-1]), tag) for user, display, tag in theirs]
    assert ours == unquoted
    assert [u for u, _, _ in ours] == ["alice"] * 4

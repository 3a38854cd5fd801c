"""Media statistics against Wireshark on the public corpus and the lab capture.

For every stream of every `<capture>.rtp_streams.txt` reference (tshark -o rtp.heuristic_rtp:TRUE
-q -z rtp,streams): Pkts, Lost, Min/Mean/Max Delta and Min/Mean/Max Jitter must equal tshark's
printed values (3 decimals). Streams that knowingly differ are listed in KNOWN_DIFFERENCES below
with the reason (and in docs/media.md); nothing is skipped silently. A capture whose reference lists no
stream compares nothing: its statistics case is skipped ("reference lists no RTP stream") and
test_no_stream_where_the_reference_lists_none checks that flowviz finds no stream there either.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flowviz.ingest import read_capture
from flowviz.media.stats import stream_stats
from flowviz.media.streams import sdp_payload_map
from tests.conftest import SAMPLES, corpus_params, run_tshark
from tests.integration.test_ingest_corpus import KNOWN_DIFFERENCES as INGEST_DIFFERENCES

FULL_LINE = re.compile(
    r"^\s*([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(0x[0-9A-Fa-f]+)\s+(.+?)\s+(\d+)\s+(-?\d+)\s+"
    r"\((-?[\d.]+)%\)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s*(X?)\s*$"
)
METRICS = ["min_delta_ms", "mean_delta_ms", "max_delta_ms", "min_jitter_ms", "mean_jitter_ms", "max_jitter_ms"]

# Streams whose statistics knowingly differ from tshark's, with the reason (also in docs/media.md).
# Key: (capture, src_ip, src_port, dst_ip, dst_port, ssrc) -> reason.
KNOWN_DIFFERENCES: dict[tuple, str] = {
    **{key: f"packet count differs (ingest): {reason}" for key, (_, reason) in INGEST_DIFFERENCES.items()},
}


def parse_streams(text: str) -> list[dict]:
    streams = []
    for line in text.splitlines():
        m = FULL_LINE.match(line)
        if m:
            streams.append({
                "src_ip": m[3], "src_port": int(m[4]), "dst_ip": m[5], "dst_port": int(m[6]), "ssrc": int(m[7], 16),
                "payload": m[8], "packets": int(m[9]), "lost": int(m[10]),
                **{name: m[12 + i] for i, name in enumerate(METRICS)}, "problem": m[18] == "X",
            })
    return streams


def our_streams(path: Path) -> dict[tuple, dict]:
    cap = read_capture(path, use_cache=False)
    stats = stream_stats(cap.rtp_packets, t0_ns=cap.info["first_ts_ns"], payload_map=sdp_payload_map(cap.sip_messages))
    return {tuple(r[k] for k in ("src_ip", "src_port", "dst_ip", "dst_port", "ssrc")): r
            for r in stats.iter_rows(named=True)}


def compare(name: str, expected: list[dict], ours: dict[tuple, dict]) -> list[str]:
    mismatches = []
    for s in expected:
        key = (s["src_ip"], s["src_port"], s["dst_ip"], s["dst_port"], s["ssrc"])
        if (name, *key) in KNOWN_DIFFERENCES:
            continue  # listed with its reason above
        got = ours.get(key)
        if got is None:
            mismatches.append(f"{key}: stream not found by flowviz")
            continue
        diffs = [f"packets {s['packets']} vs {got['packets']}"] if s["packets"] != got["packets"] else []
        if s["lost"] != got["lost"]:
            diffs.append(f"lost {s['lost']} vs {got['lost']}")
        diffs += [f"{m} {s[m]} vs {got[m]:.3f}" for m in METRICS if f"{got[m]:.3f}" != s[m]]
        if diffs:
            mismatches.append(f"{key} ({s['payload']}): tshark vs flowviz: " + ", ".join(diffs))
    return mismatches


NO_STREAM_REASON = "reference lists no RTP stream"


def reference_of(path: Path) -> list[dict]:
    return parse_streams(path.with_name(path.name + ".rtp_streams.txt").read_text())


@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_params())
def test_stream_statistics_equal_tshark(path, tmp_path, monkeypatch):
    expected = reference_of(path)
    if not expected:  # nothing to compare: counted apart, see test_no_stream_where_the_reference_lists_none
        pytest.skip(NO_STREAM_REASON)
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    mismatches = compare(path.name, expected, our_streams(path))
    assert not mismatches, "\n".join(mismatches)


def streamless_params():
    """The corpus captures whose rtp,streams reference (RTP heuristics on) lists no stream."""
    return [p for p in corpus_params() if p.values[0] is None or not reference_of(p.values[0])]


@pytest.mark.corpus
@pytest.mark.parametrize("path", streamless_params())
def test_no_stream_where_the_reference_lists_none(path, tmp_path, monkeypatch):
    """Where tshark finds no RTP stream, even with its RTP heuristics on, flowviz must find none either."""
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    assert reference_of(path) == []
    assert our_streams(path) == {}


def test_known_differences_are_in_the_corpus():
    """Every listed difference names a stream that exists in its reference file (no stale entries)."""
    from tests.conftest import corpus_files

    files = {p.name: p for p in corpus_files()}
    if not files:
        pytest.skip("../shared/pcaps is absent (public corpus)")
    for name, *key in KNOWN_DIFFERENCES:
        streams = parse_streams(files[name].with_name(name + ".rtp_streams.txt").read_text())
        assert any((s["src_ip"], s["src_port"], s["dst_ip"], s["dst_port"], s["ssrc"]) == tuple(key) for s in streams)


# Built and lab captures with RTP (sample_pcaps): the reference is a tshark run made here.
SAMPLE_CAPTURES = [
    "lab/reference_call.pcap", "lab/burst_100.pcap", "synth/rtp_loss_reorder_jitter.pcap",
    "synth/basic_call_udp.pcap", "synth/ipv6_call.pcap", "synth/pcap_nsec.pcap", "synth/vlan_call.pcap",
    "synth/sll2_call.pcap", "synth/ipv4_fragmented_sip.pcap", "synth/tunnel_gre.pcap",
]


@pytest.mark.parametrize("name", SAMPLE_CAPTURES)
def test_sample_capture_statistics_equal_tshark(name, tshark, tmp_path, monkeypatch):
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    expected = parse_streams(run_tshark("-r", str(path), "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams"))
    assert expected, "tshark found no RTP stream"
    mismatches = compare(path.name, expected, our_streams(path))
    assert not mismatches, "\n".join(mismatches)


def _rtp_pcap(pkts: list[tuple]) -> bytes:
    """The built stream of tests/unit/test_media_stats.py as an Ethernet pcap (nanosecond timestamps)."""
    import struct

    from tests.synth.packets import ethernet, ip_udp
    from tests.synth.writers import Record, pcap_bytes
    from tests.unit.test_media_stats import DST, SRC, SSRC, T0

    records = []
    for t, seq, ts, pt, marker in pkts:
        body = b"\x00" * 4 if pt >= 96 else b"\xd5" * 160
        rtp = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, SSRC) + body
        records.append(Record(T0 + round(t * 1e6), ethernet(ip_udp(SRC[0], DST[0], SRC[1], DST[1], rtp))))
    return pcap_bytes(1, records, nsec=True)


def _scenarios():
    from tests.unit.test_media_stats import SCENARIOS

    return list(SCENARIOS.items())


@pytest.mark.parametrize("name,pkts", _scenarios())
def test_built_stream_statistics_equal_tshark(name, pkts, tshark, tmp_path, monkeypatch):
    """The unit-test constructions (loss, burst, reorder, duplicate, wrap, jumps, CN, DTMF) through tshark."""
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(_rtp_pcap(pkts))
    expected = parse_streams(run_tshark("-r", str(path), "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams"))
    assert len(expected) == 1
    mismatches = compare(path.name, expected, our_streams(path))
    assert not mismatches, "\n".join(mismatches)


# Captures whose RTCP has LSR/DLSR answered by an SR in the capture; tshark's rtcp.roundtrip-delay is in
# integer ms, computed from truncated ms (packet-rtcp.c), flowviz's is exact: they agree within 2 ms.
RTT_CAPTURES = ["goffinet__sip_captures/Forensic_challenge_4.pcap", "sipcapture__heplify/rtp_rtcp_sip_ipv4_udp.pcap"]


@pytest.mark.corpus
@pytest.mark.parametrize("name", RTT_CAPTURES)
def test_rtcp_round_trip_equals_tshark_within_2ms(name, tshark, tmp_path, monkeypatch):
    from tests.conftest import SHARED_PCAPS

    from flowviz.media.rtcp import block_rtt

    path = SHARED_PCAPS / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    out = run_tshark("-r", str(path), "-o", "rtcp.show_roundtrip_calculation:TRUE", "-o",
                     "rtcp.roundtrip_min_threshhold:0", "-Y", "rtcp.roundtrip-delay", "-T", "fields",
                     "-e", "frame.number", "-e", "rtcp.roundtrip-delay")
    theirs = {int(f): int(d) for f, d in (line.split("\t") for line in out.splitlines() if line.strip())}
    assert theirs
    ours = {}
    for frame_no, rtt in block_rtt(read_capture(path, use_cache=False).rtcp_reports).select(["frame", "rtt_ms"]).iter_rows():
        if rtt is not None:
            ours[frame_no] = rtt
    far = {f: (d, ours.get(f)) for f, d in theirs.items() if ours.get(f) is None or abs(ours[f] - d) > 2}
    assert not far


def test_lab_burst_every_stream_bound_to_its_call(tmp_path, monkeypatch):
    """sample_pcaps/lab/burst_100.pcap: 90 answered calls x 2 streams, every one bound by its SDP."""
    from flowviz.media.report import streams_report
    from flowviz.sip.calls import Correlation

    path = SAMPLES / "lab" / "burst_100.pcap"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    cap = read_capture(path, use_cache=False)
    groups = Correlation(cap.sip_messages).group_of_call_id()
    report = streams_report(cap.sip_messages, cap.rtp_packets, t0_ns=cap.info["first_ts_ns"], group_of_call_id=groups)
    assert len(report) == 180 and report["sdp_match"].all() and report["call_group_id"].n_unique() == 90
    assert report.group_by("call_group_id").len()["len"].to_list() == [2] * 90
    assert report["mos"].min() >= 4.3


def _nat_call_pcap() -> bytes:
    """A call whose caller sits behind a NAT: its SDP announces 192.168.1.10:40000, its SIP and RTP come
    from the public 198.51.100.7:31000 (tests/synth builders)."""
    import dataclasses

    from tests.synth.scenario_kit import SETUP_TIMES, MS, Timeline, finish_pcap, make_dialog, media
    from tests.synth.scenarios import parties

    alice, bob = parties()
    private = dataclasses.replace(alice, ip="192.168.1.10")
    public = dataclasses.replace(alice, ip="198.51.100.7", rtp_port=31000)
    tl = Timeline()
    d = make_dialog(private, bob, call_id="nat-call@192.168.1.10", tag="nat1")
    msgs = d.all()
    t0 = 1_700_000_000 * 10**9
    a_sip, b_sip = (public.ip, 5060), (bob.ip, bob.sip_port)
    for i, dt in enumerate(SETUP_TIMES):
        src, dst = (a_sip, b_sip) if msgs[i].sender == "caller" else (b_sip, a_sip)
        tl.sip_udp(t0 + dt, msgs[i], src, dst)
    end = media(tl, start=t0 + 1540 * MS, caller=public, callee=bob, rtp_packets=100, rtcp=False)
    for i, dt in ((5, 200 * MS), (6, 204 * MS)):
        src, dst = (a_sip, b_sip) if msgs[i].sender == "caller" else (b_sip, a_sip)
        tl.sip_udp(end + dt, msgs[i], src, dst)
    return finish_pcap("nat_call", tl, link="ether", description="caller behind NAT").data


def test_nat_call_streams_bound_by_latching_and_flagged(tshark, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from flowviz.cli import cli

    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    path = tmp_path / "nat_call.pcap"
    path.write_bytes(_nat_call_pcap())
    rows = json.loads(CliRunner().invoke(cli, ["streams", str(path), "--format", "json"], catch_exceptions=False).stdout)
    assert len(rows) == 2 and rows[0]["call_group_id"] is not None
    assert {r["call_group_id"] for r in rows} == {rows[0]["call_group_id"]}
    for r in rows:
        assert r["sdp_match"] is False and r["bound_by"] == "latching"
        assert "192.168.1.10:40000" in r["sdp_announced"] and "198.51.100.7" in (r["src"], r["dst"])
    expected = parse_streams(run_tshark("-r", str(path), "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams"))
    assert not compare(path.name, expected, our_streams(path))

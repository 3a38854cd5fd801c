"""Capture sets (issue 13): the lab's reference call as seen at several points, each point a per-address
filter of the one capture on lo, some shifted by a known clock offset, one missing a packet
(lab/make_capture_points.sh; facts in sample_pcaps/points/expected.json). The single capture is the
truth every merged result must give back; its RTP numbers are checked against tshark's here too."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest

from flowviz.analyze import analyze
from tests.conftest import run_tshark
from tests.integration.test_wrong_answers import tshark_streams

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "sample_pcaps" / "lab"
POINTS = REPO / "sample_pcaps" / "points"
EXPECTED = json.loads((POINTS / "expected.json").read_text())["points"]
REFERENCE = LAB / "reference_call.pcap"

pytestmark = pytest.mark.usefixtures("tshark")


def flowviz(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, FLOWVIZ_CACHE_DIR=os.environ.get("FLOWVIZ_CACHE_DIR", "/tmp/flowviz-test-cache"))
    return subprocess.run([sys.executable, "-m", "flowviz", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def single():
    return analyze(REFERENCE)


def point(name: str) -> Path:
    return POINTS / name


def offsets(analysis) -> dict[str, dict]:
    return {p["capture"]: p for p in analysis.info["capture_set"]["points"]}


def test_two_points_with_a_known_shift_give_the_single_capture_call(single):
    merged = analyze([point("p1.pcap"), point("p2_plus250ms.pcap")])
    assert len(merged.calls) == 1
    call, truth = merged.calls[0], single.calls[0]
    assert call["hosts"] == truth["hosts"]  # path order UA1, P1, P2, UA2
    assert call["messages"] == truth["messages"]
    assert call["retransmissions"] == 0
    assert all(abs(a - b) <= 1.0 for a, b in zip(call["hop_delays_ms"], truth["hop_delays_ms"]))
    assert len(call["hop_delays_ms"]) == len(truth["hop_delays_ms"])
    found = offsets(merged)["p2_plus250ms.pcap"]
    assert found["method"] == "shared packets"
    assert abs(found["offset_s"] - EXPECTED["p2_plus250ms.pcap"]["offset_s"]) <= 0.001
    # the packets of link L2 (P1 - P2) were seen at both points: each kept once
    assert merged.info["capture_set"]["duplicates_dropped"] == found["duplicates_dropped"] > 0
    assert not [f for f in merged.findings if f["rule"] == "capture.lost_between_points"]


def test_three_points_every_message_and_rtp_packet_once_equal_to_tshark(single):
    merged = analyze([point("p1.pcap"), point("p2_plus250ms.pcap"), point("ua2_minus120ms.pcap")])
    found = offsets(merged)
    for name in ("p2_plus250ms.pcap", "ua2_minus120ms.pcap"):
        assert abs(found[name]["offset_s"] - EXPECTED[name]["offset_s"]) <= 0.001
    assert merged.info["packets"] == single.info["packets"]  # every packet of the one capture, once
    assert merged.calls[0]["messages"] == single.calls[0]["messages"]
    assert merged.calls[0]["hosts"] == single.calls[0]["hosts"]
    truth = {(s["src_ip"], s["src_port"], s["ssrc"]): s for s in tshark_streams(REFERENCE)}
    assert len(merged.streams) == len(truth) == 2
    for s in merged.streams:
        t = truth[(s["src"], s["src_port"], int(s["ssrc"], 16))]
        assert (s["packets"], s["lost"]) == (t["packets"], t["lost"])
        assert abs(s["max_jitter_ms"] - float(t["max_jitter_ms"])) <= 0.01


def test_the_ladder_marks_where_each_message_was_seen():
    merged = analyze([point("p1.pcap"), point("p2_plus250ms.pcap"), point("ua2_minus120ms.pcap")])
    ladder = merged.call(merged.calls[0]["call_group_id"]).ladder()
    assert ladder.points == ("p1.pcap", "p2_plus250ms.pcap", "ua2_minus120ms.pcap")
    by_link = {}
    for a in ladder.arrows.to_dicts():
        by_link.setdefault(frozenset((a["src"].split(":")[0], a["dst"].split(":")[0])), set()).add(a["points"])
    # L1 only at P1's tap, L2 at P1's and P2's, L3 at P2's and UA2's (expected.json: links per point)
    assert by_link[frozenset(("127.0.0.10", "127.0.0.11"))] == {"1"}
    assert by_link[frozenset(("127.0.0.11", "127.0.0.12"))] == {"1,2"}
    assert by_link[frozenset(("127.0.0.12", "127.0.0.13"))] == {"2,3"}
    text = flowviz("ladder", "--merge", str(point("p1.pcap")), str(point("p2_plus250ms.pcap")),
                   "--call", merged.calls[0]["call_ids"][0])
    assert text.returncode == 0, text.stderr
    assert "@1,2" in text.stdout and "1 p1.pcap, 2 p2_plus250ms.pcap" in text.stdout


def test_a_packet_lost_between_two_points_is_a_finding_with_its_frame():
    merged = analyze([point("p1.pcap"), point("p2_lost_invite.pcap")])
    lost = [f for f in merged.findings if f["rule"] == "capture.lost_between_points"]
    assert len(lost) == 1
    assert lost[0]["call_group_id"] == merged.calls[0]["call_group_id"]
    (frame,) = lost[0]["evidence"]["frames"]
    removed = EXPECTED["p2_lost_invite.pcap"]["removed"]
    # the merged frame is the INVITE P1 -> P2, as tshark reads it in the merged capture
    fields = run_tshark("-r", str(merged.capture_path), "-Y", f"frame.number == {frame}", "-T", "fields",
                        "-e", "sip.Method", "-e", "ip.src", "-e", "ip.dst").split()
    assert fields == ["INVITE", "127.0.0.11", "127.0.0.12"] and removed["what"].startswith("INVITE 127.0.0.11")
    assert lost[0]["evidence"]["values"]["upstream"] == "p1.pcap"
    assert lost[0]["evidence"]["values"]["downstream"] == "p2_lost_invite.pcap"


def test_points_that_share_no_packet_are_placed_by_sip_causality():
    merged = analyze([point("ua1.pcap"), point("p2_plus250ms.pcap")])  # links L1+RTP and L2+L3: nothing shared
    found = offsets(merged)["p2_plus250ms.pcap"]
    assert found["method"] == "causality"
    # P1 forwards what UA1's tap saw to P2's tap and back: the true shift lies within the reported bounds
    assert abs(found["offset_s"] - 0.25) <= found["uncertainty_s"] + 1e-9
    assert found["uncertainty_s"] < 0.005
    assert merged.calls[0]["hosts"] == analyze(REFERENCE).calls[0]["hosts"]


def test_captures_that_share_nothing_get_no_invented_offset():
    merged = analyze([LAB / "reference_call.pcap", LAB / "busy_486.pcap"])  # two different calls
    found = offsets(merged)["busy_486.pcap"]
    assert found["method"] == "none" and found["offset_s"] == 0.0
    assert any("busy_486.pcap" in w and "not corrected" in w for w in merged.warnings)
    singles = len(analyze(LAB / "reference_call.pcap").calls) + len(analyze(LAB / "busy_486.pcap").calls)
    assert len(merged.calls) == singles


def test_one_capture_given_twice_is_all_duplicates(single):
    merged = analyze([REFERENCE, REFERENCE])
    points = merged.info["capture_set"]["points"]
    assert points[1]["duplicates_dropped"] == single.info["packets"] and points[1]["offset_s"] == 0.0
    assert [c["messages"] for c in merged.calls] == [c["messages"] for c in single.calls]
    assert [s["packets"] for s in merged.streams] == [s["packets"] for s in single.streams]


def test_packets_twice_at_one_point_are_counted_once(tmp_path, single):
    doubled = tmp_path / "doubled.pcap"  # every packet twice at the same instant (two interfaces)
    subprocess.run(["mergecap", "-F", "pcap", "-w", str(doubled), str(REFERENCE), str(REFERENCE)], check=True)
    assert analyze(doubled).calls[0]["retransmissions"] > 0  # without --merge: what the capture holds
    merged = analyze(doubled, merge=True)
    assert merged.calls[0]["retransmissions"] == 0
    assert merged.info["packets"] == single.info["packets"]


def _as_linux_cooked(source: Path, target: Path, shift_s: float) -> None:
    """Another tap of the same packets: Linux cooked capture (SLL) instead of Ethernet, one router hop
    further (TTL - 1, so a new IP header checksum), its clock shift_s ahead."""
    with open(source, "rb") as f, open(target, "wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_LINUX_SLL, nano=True)
        for ts, data in dpkt.pcap.Reader(f):
            ip = bytearray(data[14:])  # after the Ethernet header (the lab's frames are untagged IPv4)
            ip[8] -= 1
            ip[10:12] = b"\0\0"
            words = struct.unpack(f"!{(ip[0] & 15) * 2}H", bytes(ip[:(ip[0] & 15) * 4]))
            total = sum(words)
            total = (total & 0xFFFF) + (total >> 16)
            ip[10:12] = struct.pack("!H", ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF)
            sll = struct.pack("!HHH8sH", 0, 772, 6, b"\0" * 8, 0x0800)
            writer.writepkt(sll + bytes(ip), ts=float(ts) + shift_s)


def test_identity_ignores_link_layer_ttl_and_checksum(tmp_path):
    other = tmp_path / "p2_cooked.pcap"
    _as_linux_cooked(point("p2_plus250ms.pcap"), other, 0.5)
    merged = analyze([point("p1.pcap"), other])
    found = offsets(merged)["p2_cooked.pcap"]
    assert abs(found["offset_s"] - 0.75) <= 0.001  # 0.25 from the file plus 0.5 added here
    # link L2: the 7 packets P1 and P2 exchange, each kept once (from whichever tap saw it first)
    assert merged.info["capture_set"]["duplicates_dropped"] == 7
    assert merged.calls[0]["retransmissions"] == 0


def test_cli_merge_info_offset_and_errors(tmp_path):
    p1, p2 = str(point("p1.pcap")), str(point("p2_plus250ms.pcap"))
    info = flowviz("info", "--merge", p1, p2, "--format", "json")
    assert info.returncode == 0, info.stderr
    capture_set = json.loads(info.stdout)["capture_set"]
    assert [p["method"] for p in capture_set["points"]] == ["reference", "shared packets"]
    forced = flowviz("calls", "--merge", p1, p2, "--offset", "p2_plus250ms.pcap=0.25", "--format", "json")
    assert forced.returncode == 0, forced.stderr
    assert len(json.loads(forced.stdout)) == 1
    for args, words in [(("calls", p1, p2, "--offset", "p2_plus250ms.pcap=0.25"), "--merge"),
                        (("calls", "--merge", p1, p2, "--offset", "nosuch.pcap=1"), "none of the captures"),
                        (("calls", "--merge", p1, p2, "--offset", "p2_plus250ms.pcap=soon"), "CAPTURE=SECONDS"),
                        (("ladder", p1, p2, "--call", "x"), "--merge")]:
        result = flowviz(*args)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr, result.stderr
    call_pcap = tmp_path / "call.pcap"
    temp = tmp_path / "tmp"
    temp.mkdir()
    export = subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", "export", "--merge", p1, p2, "--call",
                             "lab-ref-1@127.0.0.10", "--pcap", str(call_pcap)], capture_output=True, text=True,
                            env=dict(os.environ, TMPDIR=str(temp)), timeout=300)
    assert export.returncode == 0, export.stderr
    sip = run_tshark("-r", str(call_pcap), "-Y", "sip", "-T", "fields", "-e", "frame.number").split()
    assert len(sip) == analyze([p1, p2]).calls[0]["messages"]
    assert not list(temp.iterdir())  # the merged capture is removed when the command ends


@pytest.mark.skipif(not shutil.which("editcap"), reason="editcap is not installed")
def test_lab_points_are_what_the_script_says():
    """The committed points are the script's output: each is the reference's packets to/from its host."""
    for name, facts in EXPECTED.items():
        got = run_tshark("-r", str(point(name)), "-T", "fields", "-e", "ip.src", "-e", "ip.dst").split("\n")
        assert all(facts["host"] in line for line in got if line.strip())


def test_batch_reads_each_folder_of_captures_as_one_set(tmp_path):
    import polars as pl

    day = tmp_path / "day"
    (day / "call1").mkdir(parents=True)
    for name in ("p1.pcap", "p2_plus250ms.pcap"):
        shutil.copy(point(name), day / "call1" / name)
    shutil.copy(LAB / "busy_486.pcap", day / "busy_486.pcap")
    out = tmp_path / "out"
    result = flowviz("--no-cache", "batch", "--set-per-folder", "-o", str(out), str(day))
    assert result.returncode == 0, result.stderr
    captures = pl.read_parquet(out / "captures.parquet").sort("capture_id")
    assert captures["capture_id"].to_list() == ["busy_486.pcap", "call1"]
    assert captures["ok"].to_list() == [True, True]
    calls = pl.read_parquet(out / "calls" / "**" / "*.parquet", hive_partitioning=True)
    set_calls = calls.filter(pl.col("capture_id") == "call1")
    merged = analyze([day / "call1" / "p1.pcap", day / "call1" / "p2_plus250ms.pcap"])
    assert len(set_calls) == len(merged.calls) == 1
    assert set_calls["messages"].to_list() == [merged.calls[0]["messages"]]
    assert set_calls["retransmissions"].to_list() == [0]


def test_hep_agents_are_points_each_message_once():
    """The lab HEP capture: kamailio's siptrace on both proxies mirrors the middle hop twice (once per agent);
    the plain capture of the same run is the truth (sample_pcaps/transports/hep/README.md)."""
    hep_dir = REPO / "sample_pcaps" / "transports" / "hep"
    plain, mirrored = hep_dir / "plain_reference_call.pcap", hep_dir / "hep_reference_call.pcap"
    wire = run_tshark("-r", str(plain), "-Y", "sip", "-T", "fields", "-e", "ip.src", "-e", "ip.dst").splitlines()
    middle = [line for line in wire if set(line.split()) == {"127.0.0.11", "127.0.0.12"}]
    analysis, truth = analyze(mirrored), analyze(plain)
    (call,) = analysis.calls
    assert call["messages"] == len(wire) == truth.calls[0]["messages"]
    assert call["retransmissions"] == 0
    assert analysis.info["capture_agents"]["duplicates_dropped"] == len(middle)
    assert call["hosts"] == truth.calls[0]["hosts"]
    assert all(abs(a - b) <= 1.0 for a, b in zip(call["hop_delays_ms"], truth.calls[0]["hop_delays_ms"]))


def test_audio_of_a_set_is_the_single_capture_audio(tmp_path):
    """UA1's and UA2's taps both see the RTP (each packet twice in the set, UA2's clock 120 ms behind): the
    call's WAV is the single capture's, byte for byte."""
    single, merged = tmp_path / "single.wav", tmp_path / "merged.wav"
    call = analyze(REFERENCE).calls[0]["call_ids"][0]
    one = flowviz("audio", str(REFERENCE), "--call", call, "-o", str(single))
    both = flowviz("audio", "--merge", str(point("ua1.pcap")), str(point("ua2_minus120ms.pcap")), "--call", call,
                   "-o", str(merged))
    assert one.returncode == 0 and both.returncode == 0, one.stderr + both.stderr
    assert merged.read_bytes() == single.read_bytes()

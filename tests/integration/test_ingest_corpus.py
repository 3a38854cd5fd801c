"""Ingest against Wireshark on the public corpus: SIP message counts and RTP packets per stream.

Expected values come from tshark itself: the `-z rtp,streams` reference saved beside
each capture (see ../shared/pcaps/MANIFEST.md) and a tshark run made here for SIP.
"""

from __future__ import annotations

import re
from collections import Counter

import polars as pl
import pytest

from flowviz.ingest import read_capture
from tests.conftest import corpus_params, run_tshark, skip_where_tshark_is_blind

# MANIFEST.md: "Reference outputs generated with -d tcp.port==6060,sip" for this file only.
DECODE_AS = {"sip_ipv4_tcp_fragmented.pcap": ["-d", "tcp.port==6060,sip"]}

# Streams where flowviz's count differs from tshark's on purpose, with the reason (also in docs/media.md).
# Key: (capture, src_ip, src_port, dst_ip, dst_port, ssrc) -> (flowviz count, reason)
KNOWN_DIFFERENCES = {
    ("FAX-Call-t38-CA-TDM-SIP-FB-1.pcap", "10.35.60.100", 15580, "10.23.1.52", 16756, 246353583): (
        1838 + 2010,
        "tshark 4.0 follows the rejected T.38 re-INVITE and decodes the next 2010 G.711 packets of this "
        "stream as malformed T.38 (MANIFEST.md); flowviz keeps them as the RTP they are",
    ),
}


def tshark_sip_message_count(path) -> int:
    """Messages, not frames: every message has exactly one Request-Line or Status-Line.

    `tshark -Y sip` counts frames, so a TCP segment with two messages counts once and a
    "Continuation" frame (no start line, e.g. HTTP on port 5060) counts as SIP; counting
    start lines fixes both.
    """
    out = run_tshark("-r", str(path), "-n", *DECODE_AS.get(path.name, []), "-Y", "sip", "-T", "fields",
                     "-E", "occurrence=a", "-E", "aggregator=\x1e", "-e", "sip.Request-Line", "-e", "sip.Status-Line")
    return sum(len([v for v in field.split("\x1e") if v]) for line in out.split("\n") for field in line.split("\t"))


STREAM_LINE = re.compile(
    r"^\s*([\d.]+)\s+([\d.]+)\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(0x[0-9A-Fa-f]+)\s+(.+?)\s+(\d+)\s+(-?\d+)\s+\("
)


def reference_streams(path) -> list[dict]:
    ref = path.with_name(path.name + ".rtp_streams.txt")
    streams = []
    for line in ref.read_text().splitlines():
        m = STREAM_LINE.match(line)
        if m:
            streams.append({"src_ip": m[3], "src_port": int(m[4]), "dst_ip": m[5], "dst_port": int(m[6]),
                            "ssrc": int(m[7], 16), "payload": m[8], "packets": int(m[9]), "lost": int(m[10])})
    return streams


@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_params())
def test_sip_message_count_equals_tshark(path, tshark, tmp_path, monkeypatch):
    skip_where_tshark_is_blind(path)
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    capture = read_capture(path, use_cache=False)
    assert len(capture.sip_messages) == tshark_sip_message_count(path)


@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_params())
def test_rtp_packets_per_stream_equal_tshark(path, tshark, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    capture = read_capture(path, use_cache=False)
    ours = Counter(
        capture.rtp_packets.select(["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]).iter_rows()
    )
    expected = reference_streams(path)
    mismatches = []
    for s in expected:
        key = (s["src_ip"], s["src_port"], s["dst_ip"], s["dst_port"], s["ssrc"])
        want = KNOWN_DIFFERENCES.get((path.name, *key), (s["packets"], ""))[0]
        if ours.get(key, 0) != want:
            mismatches.append(f"{key}: tshark {s['packets']} ({s['payload']}), flowviz {ours.get(key, 0)}")
    assert not mismatches, "\n".join(mismatches)


# Frames flowviz reads as RTCP that tshark leaves as data, with the reason.
RTCP_EXTRA_FRAMES = {
    # SR+RR+SDES compound packets from port 40379 to 4801: well-formed (version 2, lengths add up to the
    # datagram), but tshark's RTCP heuristic does not take them on that port pair.
    "rtp_rtcp_sip_ipv4_udp.pcap": {531, 2646},
}


@pytest.mark.corpus
@pytest.mark.parametrize("path", corpus_params())
def test_rtcp_sr_rr_frames_equal_tshark(path, tshark, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    out = run_tshark("-r", str(path), "-n", *DECODE_AS.get(path.name, []), "-o", "rtcp.heuristic_rtcp:TRUE",
                     "-Y", "rtcp.pt == 200 or rtcp.pt == 201", "-T", "fields", "-e", "frame.number")
    theirs = {int(v) for v in out.split()}
    ours = set(read_capture(path, use_cache=False).rtcp_reports["frame"].to_list())
    assert ours == theirs | RTCP_EXTRA_FRAMES.get(path.name, set())

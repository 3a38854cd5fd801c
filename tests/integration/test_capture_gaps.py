"""Data the capture lost is reported: TCP segments missing from a SIP stream, frames cut by the snaplen."""

from __future__ import annotations

import struct
from pathlib import Path

from flowviz.analysis.diagnose import diagnose_capture
from flowviz.ingest import read_capture
from tests.conftest import run_tshark

SYNTH = Path(__file__).resolve().parents[2] / "sample_pcaps" / "synth"


def records(data: bytes) -> list[bytes]:
    """The records of a little-endian pcap, header included (walked here, not by flowviz)."""
    out, off = [], 24
    while off + 16 <= len(data):
        end = off + 16 + struct.unpack_from("<I", data, off + 8)[0]
        out.append(data[off:end])
        off = end
    return out


def test_missing_tcp_segment_of_a_sip_stream(tmp_path, tshark):
    data = (SYNTH / "sip_tcp_coalesced_split.pcap").read_bytes()
    recs = records(data)
    # frames 4 and 5 carry the two halves of the INVITE (sample_pcaps/synth/README.md): drop frame 4
    path = tmp_path / "gap.pcap"
    path.write_bytes(data[:24] + b"".join(recs[:3] + recs[4:]))
    flagged = [int(v) for v in run_tshark("-r", str(path), "-Y", "tcp.analysis.lost_segment", "-T", "fields",
                                          "-e", "frame.number").split()]
    assert flagged == [4]  # the second half, now frame 4, follows a segment tshark never saw
    cap = read_capture(path, use_cache=False)
    assert cap.info["tcp_gap_frames"] == [4]
    [finding] = [f for f in diagnose_capture(cap) if f["rule"] == "capture.truncated"]
    assert finding["evidence"]["frames"] == [4] and "gap(s) in SIP TCP streams" in finding["explanation"]


def test_frames_cut_by_the_snapshot_length(tmp_path):
    data = (SYNTH / "basic_call_udp.pcap").read_bytes()
    recs = records(data)
    first = bytearray(recs[0])  # the INVITE: keep 100 bytes of it, as a capture with -s 100 would
    orig = struct.unpack_from("<I", first, 12)[0]
    struct.pack_into("<I", first, 8, 100)
    path = tmp_path / "short.pcap"
    path.write_bytes(data[:24] + bytes(first[:16 + 100]) + b"".join(recs[1:]))
    cap = read_capture(path, use_cache=False)
    assert orig > 100 and cap.info["short_frames"] == 1
    assert any(f["rule"] == "capture.truncated" for f in diagnose_capture(cap))

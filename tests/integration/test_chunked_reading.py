"""Reading through a window far smaller than the file (and than some records) changes nothing.

The packet kernel walks the file in windows of CHUNK_BYTES; records and pcapng blocks cross
window borders and some are longer than the window itself, which must then grow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from flowviz.ingest import capture_file, read_capture

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"


@pytest.mark.parametrize("name", ["lab/reference_call.pcap", "synth/pcapng_two_interfaces.pcapng",
                                  "synth/ipv4_fragmented_sip.pcap", "synth/pcap_big_endian.pcap",
                                  "synth/truncated.pcap"])
def test_small_window_gives_the_same_frames(name, tshark, monkeypatch):
    path = SAMPLES / name
    normal = read_capture(path, use_cache=False)
    monkeypatch.setattr(capture_file, "CHUNK_BYTES", 700)  # smaller than the INVITEs and fragments
    steps = []
    small = read_capture(path, use_cache=False, progress=lambda stage, done: steps.append(done))
    assert small.info["packets"] == normal.info["packets"] and small.info["warnings"] == normal.info["warnings"]
    for frame in ("sip_messages", "rtp_packets", "rtcp_reports"):
        assert_frame_equal(getattr(small, frame), getattr(normal, frame))
    assert steps == sorted(steps) and steps[-1] == 1.0 and len(steps) > 5  # progress moved chunk by chunk

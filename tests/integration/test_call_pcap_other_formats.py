"""A call's own pcap from a capture format flowviz converts on reading (here Sun snoop) is cut by tshark.

Expected frames come from tshark reading the source file.
"""

from __future__ import annotations

import subprocess

from flowviz.export.pcap import write_call_pcap
from flowviz.settings import Settings
from tests.conftest import SAMPLES, run_tshark


def frame_fields(path, frames: list[int] | None = None) -> list[str]:
    args = ["-r", str(path), "-T", "fields", "-e", "frame.len", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "udp.srcport"]
    if frames:
        args += ["-Y", "frame.number in {" + ", ".join(map(str, frames)) + "}"]
    return run_tshark(*args).splitlines()


def test_snoop_capture_frames_are_cut_by_tshark(tmp_path, tshark):
    snoop = tmp_path / "call.snoop"
    subprocess.run(["editcap", "-F", "snoop", str(SAMPLES / "lab" / "reference_call.pcap"), str(snoop)], check=True)
    frames = [1, 2, 5, 40]
    out = tmp_path / "call-frames.pcapng"
    assert write_call_pcap(snoop, frames, out, Settings()) == len(frames)
    want = frame_fields(snoop, frames)
    assert len(want) == len(frames) and frame_fields(out) == want

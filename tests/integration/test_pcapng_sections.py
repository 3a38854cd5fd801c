"""The pcapng block walk of flowviz/ingest/records.py (per-call pcap and redaction) on a file of two sections in
both byte orders: a big-endian section (the synth capture: two interfaces, an SPB, an unknown block, ISBs)
followed by a little-endian one whose only interface is raw IP. Expected values come from tshark reading
the source file, or from the construction."""

from __future__ import annotations

import json
import subprocess

import pytest

from flowviz.export.pcap import write_call_pcap
from flowviz.export.redact import redact_capture
from flowviz.settings import Settings
from tests.conftest import SAMPLES
from tests.synth import packets as P
from tests.synth import writers as W

SECOND_SRC, SECOND_DST = "198.51.100.23", "203.0.113.42"  # addresses only the second section carries
FIELDS = ["frame.section_number", "frame.interface_id", "frame.encap_type", "frame.len", "frame.cap_len"]


def _fields(path, fields, *options: str) -> list[list[str]]:
    args = ["tshark", "-r", str(path), *options, "-T", "fields"]
    for name in fields:
        args += ["-e", name]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


@pytest.fixture()
def two_sections(tmp_path):
    big_endian = (SAMPLES / "synth" / "pcapng_big_endian.pcapng").read_bytes()
    records = [W.Record(1_700_000_000_000_000_000 + i * 1_000_000,
                        P.ip_udp(SECOND_SRC, SECOND_DST, 40000, 9, b"flowviz %d" % i * 4, ident=i + 1))
               for i in range(3)]
    little_endian = W.pcapng_bytes(W.PcapngSection([W.Interface(P.LINKTYPE_RAW, name="raw0")], records))
    path = tmp_path / "two_sections.pcapng"
    path.write_bytes(big_endian + little_endian)
    return path


def test_per_call_pcap_copies_frames_of_both_sections(tshark, two_sections, tmp_path):
    source = _fields(two_sections, ["frame.number", "frame.md5_hash", *FIELDS],
                     "-o", "frame.generate_md5_hash:TRUE")
    assert {row[2] for row in source} == {"1", "2"}
    first_of_second = next(int(row[0]) for row in source if row[2] == "2")
    spb = json.loads((SAMPLES / "synth" / "expected.json").read_text())["pcapng_big_endian.pcapng"]["spb_frame"]
    frames = [1, spb, first_of_second - 1, first_of_second, first_of_second + 2]
    out = tmp_path / "call.pcapng"
    assert write_call_pcap(two_sections, frames, out, Settings()) == len(frames)
    copied = _fields(out, ["frame.number", "frame.md5_hash", *FIELDS],
                     "-o", "frame.generate_md5_hash:TRUE")
    assert [row[0] for row in copied] == [str(n) for n in range(1, len(frames) + 1)]
    assert [row[1:] for row in copied] == [source[n - 1][1:] for n in frames]


def test_redaction_keeps_both_sections_and_redacts_the_second(tshark, two_sections, tmp_path):
    out = tmp_path / "redacted.pcapng"
    counts = redact_capture(two_sections, out)
    source = _fields(two_sections, FIELDS)
    assert counts["packets"] == len(source)
    assert _fields(out, FIELDS) == source
    # the second section's interface 0 is raw IP: its addresses are found only if interfaces restart per section
    second = _fields(out, ["ip.src", "ip.dst"], "-Y", "frame.section_number == 2 and udp.dstport == 9")
    assert len(second) == 3
    assert not {SECOND_SRC, SECOND_DST} & {address for row in second for address in row}

"""Bad input through the real command: one-line errors, exit codes, no traceback, nothing lost.

Each broken file is built here from the lab reference call, so what was cut or damaged
is known exactly.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "sample_pcaps" / "lab" / "reference_call.pcap"


def flowviz(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, FLOWVIZ_CACHE_DIR=os.environ.get("FLOWVIZ_CACHE_DIR", "/tmp/flowviz-test-cache"))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", *args], capture_output=True, text=True,
                          env=full_env, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("flowviz: error: ")
    for word in words:
        assert word in lines[0]


def record_offsets(data: bytes) -> list[int]:
    """Offsets of the records of a little-endian pcap, walked independently of flowviz."""
    offsets, off = [], 24
    while off + 16 <= len(data):
        offsets.append(off)
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
    return offsets


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    assert_one_line_error(flowviz("info", str(path)), "empty")


def test_missing_file(tmp_path):
    assert_one_line_error(flowviz("info", str(tmp_path / "nope.pcap")), "no such file")


def test_not_a_capture(tmp_path):
    path = tmp_path / "notes.pcap"
    path.write_text("INVITE is a word, but this is a text file.\n" * 20)
    assert_one_line_error(flowviz("info", str(path)), "not a capture")


def test_damaged_gzip(tmp_path):
    path = tmp_path / "broken.pcap.gz"
    path.write_bytes(gzip.compress(REFERENCE.read_bytes())[:300])
    assert_one_line_error(flowviz("info", str(path)), "gzip")


def test_truncated_capture_keeps_everything_before_the_cut(tmp_path):
    data = REFERENCE.read_bytes()
    offsets = record_offsets(data)
    cut_record = 100  # cut in the middle of the 101st record
    path = tmp_path / "truncated.pcap"
    path.write_bytes(data[: offsets[cut_record] + 20])
    result = flowviz("info", "--format", "json", str(path))
    assert result.returncode == 0, result.stderr
    assert "cut in the middle of record 101" in result.stderr
    info = json.loads(result.stdout)
    assert info["packets"] == 100
    assert "Traceback" not in result.stderr


def test_record_with_impossible_length(tmp_path):
    data = bytearray(REFERENCE.read_bytes())
    offsets = record_offsets(bytes(data))
    struct.pack_into("<I", data, offsets[50] + 8, 0x7FFFFFFF)  # caplen of record 51
    path = tmp_path / "impossible.pcap"
    path.write_bytes(bytes(data))
    result = flowviz("info", "--format", "json", str(path))
    assert result.returncode == 0, result.stderr
    assert "record 51" in result.stderr and "impossible length" in result.stderr
    assert json.loads(result.stdout)["packets"] == 50


def test_gzip_capture_reads_like_the_original(tmp_path):
    path = tmp_path / "reference_call.pcap.gz"
    path.write_bytes(gzip.compress(REFERENCE.read_bytes()))
    plain = json.loads(flowviz("info", "--format", "json", str(REFERENCE)).stdout)
    zipped = json.loads(flowviz("info", "--format", "json", str(path)).stdout)
    for key in ("packets", "sip_messages", "rtp_packets", "rtp_streams"):
        assert zipped[key] == plain[key]


def test_pcapng_unknown_block_is_skipped(tmp_path, tshark):
    """editcap writes the capture as pcapng; we insert a block of an unassigned type after the IDB."""
    ng = tmp_path / "ref.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(REFERENCE), str(ng)], check=True, capture_output=True)
    data = ng.read_bytes()
    shb_len = struct.unpack_from("<I", data, 4)[0]
    idb_len = struct.unpack_from("<I", data, shb_len + 4)[0]
    at = shb_len + idb_len
    unknown = struct.pack("<II", 0x0BADF00D, 16) + b"\0\0\0\0" + struct.pack("<I", 16)
    path = tmp_path / "unknown_block.pcapng"
    path.write_bytes(data[:at] + unknown + data[at:])
    result = flowviz("info", "--format", "json", str(path))
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    plain = json.loads(flowviz("info", "--format", "json", str(REFERENCE)).stdout)
    assert info["packets"] == plain["packets"] and info["sip_messages"] == plain["sip_messages"]
    assert "skipped 1 pcapng blocks" in result.stderr


def test_capture_without_sip_warns(tmp_path):
    data = REFERENCE.read_bytes()
    offsets = record_offsets(data)
    rtp_only = tmp_path / "rtp_only.pcap"
    # records 16..683 of the reference call are RTP only (SIP is at the start and the end)
    rtp_only.write_bytes(data[:24] + data[offsets[16] : offsets[600]])
    result = flowviz("info", "--format", "json", str(rtp_only))
    assert result.returncode == 0
    assert "no SIP message found" in result.stderr
    assert json.loads(result.stdout)["sip_messages"] == 0


def test_missing_tshark(tmp_path):
    """SIP over TCP needs tshark's reassembly."""
    tcp_sip = REPO / "sample_pcaps" / "synth" / "sip_tcp_coalesced_split.pcap"
    result = flowviz("--no-cache", "--tshark", str(tmp_path / "no-tshark"), "info", str(tcp_sip))
    assert_one_line_error(result, "tshark", "apt-get install tshark")


def test_sip_over_udp_needs_no_tshark(tmp_path):
    """flowviz decodes whole UDP datagrams itself: the lab call is read in full without tshark."""
    result = flowviz("--no-cache", "--tshark", str(tmp_path / "no-tshark"), "info", "--format", "json", str(REFERENCE))
    assert result.returncode == 0, result.stderr
    expected = json.loads((REFERENCE.parent / "expected.json").read_text())["captures"][REFERENCE.name]
    assert json.loads(result.stdout)["sip_messages"] == expected["sip_messages"]
    forced = flowviz("--no-cache", "--tshark", str(tmp_path / "no-tshark"), "--sip-decoder", "tshark", "info",
                     str(REFERENCE))
    assert_one_line_error(forced, "tshark", "apt-get install tshark")


def test_folder_with_a_bad_file_reports_it_and_goes_on(tmp_path):
    (tmp_path / "a.pcap").write_bytes(REFERENCE.read_bytes())
    (tmp_path / "b.pcap").write_text("not a capture")
    result = flowviz("info", "--format", "json", str(tmp_path))
    assert result.returncode == 2
    assert len(json.loads(result.stdout)) == 1
    assert "b.pcap is not a capture" in result.stderr
    assert "Traceback" not in result.stderr


def test_reader_that_stops_early_is_not_an_error():
    """`flowviz messages big.pcap | head -1`: the command stops quietly with exit 0 (3.5 MB of JSON,
    far more than a pipe holds, so flowviz is still writing when the reader goes away)."""
    burst = REPO / "sample_pcaps" / "lab" / "burst_100.pcap"
    proc = subprocess.Popen([sys.executable, "-m", "flowviz", "--no-cache", "messages", str(burst), "--format", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.read(100)
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0
    assert first.startswith(b"[")
    assert proc.stderr.read() == b""


"""Per-call pcap: the frames of one call (SIP of every leg and hop, its RTP and RTCP) copied to a new
file record by record, so bytes and timestamps are the original ones."""

from __future__ import annotations

import gzip
import struct
import subprocess
from pathlib import Path

import polars as pl

from flowviz.errors import CaptureError, ToolMissingError
from flowviz.settings import Settings

STREAM_KEY = ["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]


def call_frames(sip: pl.DataFrame, rtp: pl.DataFrame, rtcp: pl.DataFrame | None, call_ids: list[str],
                streams: pl.DataFrame | None) -> list[int]:
    """Sorted frame numbers of the call: every frame carrying bytes of its SIP messages (all its Call-IDs),
    the RTP packets of its streams (same addresses, ports and SSRC), and RTCP between the same two
    addresses on the streams' ports or the ports + 1."""
    frames = set(sip.filter(pl.col("call_id").is_in(call_ids))["frames"].explode().drop_nulls().to_list())
    if streams is not None and not streams.is_empty():
        keys = streams.select(STREAM_KEY).unique()
        frames |= set(rtp.join(keys, on=STREAM_KEY, how="semi")["frame"].to_list())
        if rtcp is not None and not rtcp.is_empty():
            pairs = set()
            for s in keys.to_dicts():
                for d in (0, 1):
                    pairs.add((s["src_ip"], s["src_port"] + d, s["dst_ip"], s["dst_port"] + d))
            picked = [r["frame"] for r in rtcp.select(["frame", "src_ip", "src_port", "dst_ip", "dst_port"]).to_dicts()
                      if (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"]) in pairs]
            frames |= set(picked)
    return sorted(frames)


PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
PACKET_BLOCKS = (0x00000006, 0x00000003, 0x00000002)  # EPB, SPB, obsolete PB: one frame each


def _open(source: str | Path):
    with open(source, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(source, "rb") if gz else open(source, "rb")


def write_call_pcap(source: str | Path, frames: list[int], output: str | Path, settings: Settings) -> int:
    """Copy `frames` (1-based numbers of `source`) to `output`, records byte for byte: pcap stays pcap
    (same header, timestamps, link type), pcapng keeps its section and interface blocks. Other formats
    (converted on reading) go through tshark. Returns the number of frames written."""
    if not frames:
        raise CaptureError("the call has no frames to write")
    wanted = set(frames)
    with _open(source) as src:
        magic = src.read(4)
        if magic in PCAP_MAGICS:
            return _copy_pcap(src, magic, wanted, output)
        if magic == PCAPNG_SHB:
            return _copy_pcapng(src, magic, wanted, output)
    return _copy_tshark(source, frames, output, settings)


def pcap_records(src, magic: bytes):
    """(record header, packet bytes) of each record of a classic pcap whose 24-byte header is read."""
    endian = ">" if magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d") else "<"
    while True:
        header = src.read(16)
        if len(header) < 16:
            return
        yield header, src.read(struct.unpack(endian + "I", header[8:12])[0])


def _copy_pcap(src, magic: bytes, wanted: set[int], output) -> int:
    written = 0
    with open(output, "wb") as out:
        out.write(magic + src.read(20))
        for number, (header, data) in enumerate(pcap_records(src, magic), start=1):
            if number in wanted:
                out.write(header + data)
                written += 1
    return written


def pcapng_blocks(src, magic: bytes):
    """(block type, byte order, block bytes, frame number or None if not a packet block) of each pcapng
    block. A file cut in the middle of a block ends before that block: ingest has already warned
    about it, and writing half a block would make the output unreadable."""
    head, endian, number = magic, "<", 0
    while len(head) == 4:
        length_bytes = src.read(4)
        if len(length_bytes) < 4:
            return
        if head == PCAPNG_SHB:  # byte order of this section from its byte-order magic
            bom = src.read(4)
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            length = struct.unpack(endian + "I", length_bytes)[0]
            block = head + length_bytes + bom + src.read(max(length - 12, 0))
        else:
            length = struct.unpack(endian + "I", length_bytes)[0]
            block = head + length_bytes + src.read(max(length - 8, 0))
        if len(block) < max(length, 12):
            return
        btype = struct.unpack(endian + "I", head)[0]
        if btype in PACKET_BLOCKS:
            number += 1
            yield btype, endian, block, number
        else:
            yield btype, endian, block, None
        head = src.read(4)


def _copy_pcapng(src, magic: bytes, wanted: set[int], output) -> int:
    written = 0
    with open(output, "wb") as out:
        for _btype, _endian, block, number in pcapng_blocks(src, magic):
            if number is None:
                out.write(block)
            elif number in wanted:
                out.write(block)
                written += 1
    return written


def _copy_tshark(source, frames: list[int], output, settings: Settings) -> int:
    tshark = settings.tshark()
    if not tshark:
        raise ToolMissingError("writing this capture format needs tshark")
    numbers = ", ".join(map(str, frames))  # tshark 4.0 rejects sets without commas
    done = subprocess.run([tshark, "-r", str(source), "-Y", f"frame.number in {{{numbers}}}", "-w", str(output)],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise CaptureError(f"tshark could not write {output}: {done.stderr.strip()[:200]}")
    return len(frames)

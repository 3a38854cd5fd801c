"""Payloads: the RTP payload bytes of chosen packets, read again from the capture file by frame number.

flowviz's frames keep RTP headers only (flowviz/schemas.py rtp_packets); audio needs the bytes after them.
Like flowviz.ingest.payloads (DTMF event words), the packet is read again through ingest's capture reader,
its RTP header found by its timestamp and SSRC, and the CSRCs, header extension (RFC 3550 5.1, 5.3.1) and
padding skipped.
"""

from __future__ import annotations

import mmap
import struct

import numpy as np
import polars as pl

from flowviz.settings import Settings


def rtp_payloads(path, settings: Settings, packets: pl.DataFrame) -> list[bytes]:
    """The payload of each packet (columns frame, rtp_ts, ssrc, payload_len), b"" where it cannot be found."""
    from flowviz.ingest.capture_file import read_packets

    if packets.is_empty():
        return []
    source = read_packets(path, settings)
    try:
        rows = packets["frame"].to_numpy().astype(np.int64) - 1
        offsets = source.table["file_off"][rows].astype(np.int64)
        caplens = source.table["caplen"][rows].astype(np.int64)
        with open(source.plain_path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            starts = payload_starts(data, offsets, caplens, packets)
            ends = np.minimum(starts + packets["payload_len"].to_numpy().astype(np.int64), offsets + caplens)
            return [data[a:b] if a >= 0 else b"" for a, b in zip(starts.tolist(), ends.tolist())]
    finally:
        source.close()


def payload_starts(data, offsets: np.ndarray, caplens: np.ndarray, packets: pl.DataFrame) -> np.ndarray:
    """File offset of each packet's payload (-1 where its RTP header is not found).

    The packets of a stream come in one encapsulation, so the RTP header is where the first packet has it;
    that is checked for every packet at once (timestamp and SSRC at the place), and only those where it fails
    are searched one by one."""
    file = np.frombuffer(data, dtype=np.uint8)
    rtp_ts = packets["rtp_ts"].to_numpy().astype(np.uint32)
    ssrc = packets["ssrc"].to_numpy().astype(np.uint32)
    first = _header_at(bytes(data[offsets[0]:offsets[0] + caplens[0]]), int(rtp_ts[0]), int(ssrc[0]))
    header = offsets + max(first, 0)
    fits = header + 16 <= offsets + caplens
    at = np.where(fits, header, 0)
    found = fits & (_be32(file, at + 4) == rtp_ts) & (_be32(file, at + 8) == ssrc) & (first >= 0)
    for i in np.flatnonzero(~found).tolist():
        inside = _header_at(bytes(data[offsets[i]:offsets[i] + caplens[i]]), int(rtp_ts[i]), int(ssrc[i]))
        header[i] = offsets[i] + inside if inside >= 0 else -1
    ok = header >= 0
    at = np.where(ok, header, 0)
    start = at + 12 + 4 * (file[at] & 0x0F).astype(np.int64)
    extended = ok & (file[at] & 0x10 > 0) & (start + 4 <= offsets + caplens)
    ext_at = np.where(extended, start, 0)
    words = file[ext_at + 2].astype(np.int64) << 8 | file[ext_at + 3]
    start = np.where(extended, start + 4 + 4 * words, start)
    return np.where(ok, start, -1)


def _be32(file: np.ndarray, at: np.ndarray) -> np.ndarray:
    b = [file[at + i].astype(np.uint32) for i in range(4)]
    return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]


def _header_at(frame: bytes, rtp_ts: int, ssrc: int) -> int:
    """Where in the frame the RTP header with this timestamp and SSRC starts, -1 if nowhere."""
    at = frame.find(struct.pack("!II", rtp_ts, ssrc))
    return at - 4 if at >= 4 else -1


def red_primary(payload: bytes) -> tuple[int, bytes] | None:
    """The primary block of an RFC 2198 redundant payload: (its payload type, its bytes); None if malformed.

    Block headers (RFC 2198 3): F bit set, 7-bit PT, 14-bit timestamp offset, 10-bit length for each redundant
    block; the last header is one byte (F clear, PT of the primary). The blocks follow in header order."""
    at, skip = 0, 0
    while at < len(payload) and payload[at] & 0x80:
        if at + 4 > len(payload):
            return None
        skip += struct.unpack_from("!I", payload, at)[0] & 0x3FF
        at += 4
    if at >= len(payload) or at + 1 + skip > len(payload):
        return None
    return payload[at] & 0x7F, payload[at + 1 + skip:]

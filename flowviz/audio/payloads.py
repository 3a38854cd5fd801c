"""Payloads: the RTP payload bytes of chosen packets, read again from the capture file by frame number.

flowviz's frames keep RTP headers only (flowviz/schemas.py rtp_packets); audio needs the bytes after them.
Like flowviz.ingest.payloads (DTMF event words), the packet is read again through ingest's capture reader,
its RTP header found by its timestamp and SSRC, and the CSRCs, header extension (RFC 3550 5.1, 5.3.1) and
padding skipped.
"""

from __future__ import annotations

import struct

import polars as pl

from flowviz.settings import Settings


def rtp_payloads(path, settings: Settings, packets: pl.DataFrame) -> list[bytes]:
    """The payload of each packet (columns frame, rtp_ts, ssrc, payload_len), b"" where it cannot be found."""
    from flowviz.ingest.capture_file import read_packets

    if packets.is_empty():
        return []
    source = read_packets(path, settings)
    try:
        raw = source.read_bytes(packets["frame"].to_numpy().astype("int64") - 1)
    finally:
        source.close()
    return [payload_after_header(data, ts, ssrc, length) for data, ts, ssrc, length in
            zip(raw, packets["rtp_ts"].to_list(), packets["ssrc"].to_list(), packets["payload_len"].to_list())]


def payload_after_header(data: bytes, rtp_ts: int, ssrc: int, length: int) -> bytes:
    """The `length` payload bytes after the RTP header whose timestamp and SSRC are these (b"" if absent)."""
    at = data.find(struct.pack("!II", rtp_ts, ssrc))
    if at < 4:
        return b""
    header = at - 4
    start = header + 12 + 4 * (data[header] & 0x0F)
    if data[header] & 0x10:
        if len(data) < start + 4:
            return b""
        start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
    return data[start:start + length]  # shorter when the capture cut the packet (snap length)


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

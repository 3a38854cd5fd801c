"""Payloads: bytes of chosen RTP packets read again from the capture file (what the index does not keep)."""

from __future__ import annotations

import struct

import polars as pl

from flowviz.settings import Settings


def first_payload_words(path, settings: Settings, packets: pl.DataFrame) -> list[int | None]:
    """First 4 RTP payload bytes of each packet (columns frame, rtp_ts, ssrc), as a big-endian integer.

    The packet is read again from the file by its frame number; its RTP header is found by its timestamp
    and SSRC, then CSRCs and the header extension (RFC 3550 5.1, 5.3.1) are skipped. None where the
    packet is too short to hold the word."""
    from flowviz.ingest.capture_file import read_packets

    if packets.is_empty():
        return []
    source = read_packets(path, settings)
    try:
        raw = source.read_bytes(packets["frame"].to_numpy().astype("int64") - 1)
    finally:
        source.close()
    return [_word_after_header(data, ts, ssrc)
            for data, ts, ssrc in zip(raw, packets["rtp_ts"].to_list(), packets["ssrc"].to_list())]


def _word_after_header(data: bytes, rtp_ts: int, ssrc: int) -> int | None:
    at = data.find(struct.pack("!II", rtp_ts, ssrc))
    if at < 4:
        return None
    header = at - 4
    start = header + 12 + 4 * (data[header] & 0x0F)
    if data[header] & 0x10 and len(data) >= start + 4:
        start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
    if len(data) < start + 4:
        return None
    return struct.unpack_from("!I", data, start)[0]

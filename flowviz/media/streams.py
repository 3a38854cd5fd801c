"""Streams: the RTP stream key (src ip:port, dst ip:port, SSRC), its stable id, and SDP payload maps."""

from __future__ import annotations

import hashlib

import polars as pl

from flowviz.media.codecs import parse_rtpmap

STREAM_KEY = ["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]

PAYLOAD_MAP = pl.Schema(
    {"ip": pl.Utf8, "port": pl.UInt16, "payload_type": pl.UInt8, "encoding": pl.Utf8, "rtpmap_rate": pl.Int64}
)


def stream_id(src_ip: str, src_port: int, dst_ip: str, dst_port: int, ssrc: int) -> str:
    """Stable short id (12 hex digits) of a stream key, the same in every run and on every machine."""
    text = f"{src_ip}|{src_port}|{dst_ip}|{dst_port}|{ssrc}"
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def stream_keys(rtp: pl.DataFrame) -> pl.DataFrame:
    """One row per stream in order of first packet: the key columns, `stream` (0-based index) and `stream_id`."""
    keys = rtp.select(STREAM_KEY).unique(maintain_order=True)
    ids = [stream_id(*row) for row in keys.iter_rows()]
    return keys.with_columns(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("stream"), pl.Series("stream_id", ids, dtype=pl.Utf8)
    )


def sdp_payload_map(sip: pl.DataFrame) -> pl.DataFrame:
    """(address, port, payload type) -> rtpmap encoding and rate, from every SDP in capture order.

    A later SDP for the same address and port replaces an earlier mapping of the same payload type.
    """
    rows: dict[tuple[str, int, int], tuple[str, int]] = {}
    if not sip.is_empty() and "sdp_media" in sip.columns:
        media = (
            sip.filter(pl.col("has_sdp").fill_null(False))
            .select(pl.col("sdp_media").explode())
            .unnest("sdp_media")
            .filter(pl.col("port").is_not_null() & (pl.col("port") > 0) & pl.col("connection").is_not_null())
        )
        for conn, port, maps in media.select(["connection", "port", "rtpmap"]).iter_rows():
            for value in maps or []:
                parsed = parse_rtpmap(value)
                if parsed and 0 <= parsed[0] <= 127:
                    rows[(conn, port, parsed[0])] = (parsed[1], parsed[2])
    return pl.DataFrame(
        [(ip, port, pt, enc, rate) for (ip, port, pt), (enc, rate) in rows.items()],
        schema=PAYLOAD_MAP, orient="row",
    )

"""Media series of one call for the call page: per-packet rows of its streams, ready for figures.media."""

from __future__ import annotations

import polars as pl


def media_series(details: dict) -> pl.DataFrame:
    """Per-packet rows of the call's streams: stream_id, t_s, jitter_ms, delta_ms, lost (cumulative)."""
    from flowviz.media.stats import packet_series
    from flowviz.media.streams import sdp_payload_map

    capture, ids = details["capture"], details["ladder"].media["stream_id"].to_list()
    if not ids or capture.rtp_packets.is_empty():
        return pl.DataFrame(schema={"stream_id": pl.Utf8, "t_s": pl.Float64})
    series = packet_series(capture.rtp_packets, t0_ns=capture.info.get("first_ts_ns"),
                           payload_map=sdp_payload_map(capture.sip_messages))
    return (series.filter(pl.col("stream_id").is_in(ids))
            .with_columns((pl.col("t_ms") / 1e3).alias("t_s"),
                          # expected so far (from the first sequence number) minus received so far
                          ((pl.col("ext_seq") - pl.col("ext_seq").first().over("stream_id") + 1)
                           - (pl.col("idx") + 1)).clip(lower_bound=0).alias("lost"))
            .select("stream_id", "t_s", "jitter_ms", "delta_ms", "lost"))

"""RTCP: SR/RR report blocks bound to the RTP stream they report on, and round-trip times (RFC 3550 6.4).

A report block about SSRC s sent from address a describes the RTP stream with SSRC s received at a
(the stream's dst_ip); when no such stream exists the block is matched on the SSRC alone. Round trip
(RFC 3550 6.4.1) measured like Wireshark: the SR whose NTP middle 32 bits equal the block's LSR is
sent by the reported-on source earlier in the capture, and RTT = (arrival of the block - arrival of that SR) - DLSR.
A capture point beside the reporting endpoint sees a round trip of about 0, which the 1/65536 s units of
LSR/DLSR and the time stamping can put slightly below 0: down to -RTT_TOLERANCE_MS it is reported as 0. A more
negative result (a DLSR longer than the time since the SR: a wrong LSR/DLSR, or the capture's clock going back)
is no round trip: it is left out (rtt_ms null) and counted (rtt_negative).
"""

from __future__ import annotations

import polars as pl

RTT_TOLERANCE_MS = 1.0  # granularity of a round trip measured next to the reporter (seen: -0.06, -0.21 ms)

RTCP_STREAM = pl.Schema({
    "stream_id": pl.Utf8, "rtcp_blocks": pl.Int64, "rtcp_fraction_lost_pct": pl.Float64,
    "rtcp_cumulative_lost": pl.Int64, "rtcp_max_jitter": pl.Int64, "rtcp_max_jitter_ms": pl.Float64,
    "rtt_ms": pl.Float64, "rtt_negative": pl.Int64, "rtt_negative_frame": pl.Int64,
})


def block_rtt(rtcp: pl.DataFrame) -> pl.DataFrame:
    """Report blocks (rows with a source_ssrc) with `rtt_ms` where the LSR's SR is in the capture and the
    result is not below -RTT_TOLERANCE_MS (0 from there to 0); `rtt_negative` marks the blocks whose result
    was (their rtt_ms is null)."""
    blocks = rtcp.filter(pl.col("source_ssrc").is_not_null() & (pl.col("source_ssrc") != 0))
    srs = (
        rtcp.filter((pl.col("packet_type") == "SR") & pl.col("ntp_ts").is_not_null())
        .select(pl.col("frame").alias("sr_frame"), pl.col("ts_ns").alias("sr_ts_ns"), pl.col("sender_ssrc").alias("sr_ssrc"),
                ((pl.col("ntp_ts") * 65536).round().cast(pl.Int64) % 2**32).alias("ntp_mid"))
        .unique(["sr_frame"]).sort("sr_ts_ns")
    )
    with_lsr = blocks.with_row_index("block").filter(pl.col("lsr").is_not_null() & (pl.col("lsr") != 0))
    cand = (
        with_lsr.select(["block", "frame", "ts_ns", "source_ssrc", "lsr", "dlsr"])
        .join(srs, left_on="source_ssrc", right_on="sr_ssrc", how="inner")
        .filter(((pl.col("ntp_mid") - pl.col("lsr").cast(pl.Int64)).abs() <= 1) & (pl.col("sr_frame") < pl.col("frame")))
        .sort(["block", "sr_ts_ns"])
        .group_by("block", maintain_order=True).last()
        .select(["block", ((pl.col("ts_ns") - pl.col("sr_ts_ns")) / 1e6 - pl.col("dlsr") / 65.536).alias("rtt_ms")])
    ) if len(with_lsr) and len(srs) else pl.DataFrame(schema={"block": pl.UInt32, "rtt_ms": pl.Float64})
    return blocks.with_row_index("block").join(cand, on="block", how="left").drop("block").with_columns(
        rtt_negative=(pl.col("rtt_ms") < -RTT_TOLERANCE_MS).fill_null(False),
        rtt_ms=pl.when(pl.col("rtt_ms") >= -RTT_TOLERANCE_MS).then(pl.col("rtt_ms").clip(lower_bound=0.0)))


def rtcp_per_stream(stats: pl.DataFrame, rtcp: pl.DataFrame) -> pl.DataFrame:
    """Per stream_id of stream_stats(): blocks, last fraction lost (%), last cumulative lost, max jitter
    (timestamp units and ms with the stream's clock), mean RTT (its own blocks, else its reverse stream's), and
    `rtt_negative`: its blocks whose round trip came out negative (left out of the RTT), the first in
    `rtt_negative_frame`."""
    if rtcp.is_empty() or stats.is_empty():
        return pl.DataFrame(schema=RTCP_STREAM)
    blocks = block_rtt(rtcp)
    streams = stats.select(["stream_id", "ssrc", "src_ip", "src_port", "dst_ip", "dst_port"])
    exact = blocks.join(streams.select(["stream_id", "ssrc", "dst_ip"]),
                        left_on=["source_ssrc", "src_ip"], right_on=["ssrc", "dst_ip"], how="inner")
    unique_ssrc = streams.group_by("ssrc").agg(pl.col("stream_id").first(), pl.len()).filter(pl.col("len") == 1)
    loose = blocks.join(exact.select("frame", "source_ssrc").unique(), on=["frame", "source_ssrc"], how="anti").join(
        unique_ssrc.select(["ssrc", "stream_id"]), left_on="source_ssrc", right_on="ssrc", how="inner")
    bound = pl.concat([exact.select(loose.columns), loose]).sort("ts_ns")
    khz = stats.select("stream_id", (pl.col("clock_rate") / 1000).alias("khz"))
    per = bound.group_by("stream_id").agg(
        rtcp_blocks=pl.len().cast(pl.Int64),
        rtcp_fraction_lost_pct=(pl.col("fraction_lost").last().cast(pl.Float64) * 100 / 256),
        rtcp_cumulative_lost=pl.col("cumulative_lost").last().cast(pl.Int64),
        rtcp_max_jitter=pl.col("jitter").max().cast(pl.Int64),
        own_rtt=pl.col("rtt_ms").mean(),
        rtt_negative=pl.col("rtt_negative").sum().cast(pl.Int64),
        rtt_negative_frame=pl.col("frame").filter(pl.col("rtt_negative")).first().cast(pl.Int64),
    ).join(khz, on="stream_id", how="left").with_columns(
        rtcp_max_jitter_ms=pl.when(pl.col("khz") > 0).then(pl.col("rtcp_max_jitter") / pl.col("khz")))
    # RTT is a property of the path: a stream without its own measurement takes its reverse stream's
    reverse = streams.join(streams, left_on=["src_ip", "src_port", "dst_ip", "dst_port"],
                           right_on=["dst_ip", "dst_port", "src_ip", "src_port"], how="inner", suffix="_rev")
    rev_rtt = reverse.select(["stream_id", "stream_id_rev"]).join(
        per.select(pl.col("stream_id").alias("stream_id_rev"), pl.col("own_rtt").alias("rev_rtt")),
        on="stream_id_rev", how="inner").group_by("stream_id").agg(pl.col("rev_rtt").mean())
    out = streams.select("stream_id").join(per, on="stream_id", how="left").join(rev_rtt, on="stream_id", how="left")
    out = out.with_columns(rtt_ms=pl.coalesce("own_rtt", "rev_rtt"))
    out = out.filter(pl.col("rtcp_blocks").is_not_null() | pl.col("rtt_ms").is_not_null())
    return out.select(list(RTCP_STREAM)).cast(RTCP_STREAM)


XR_STREAM = pl.Schema({"stream_id": pl.Utf8, "endpoint_mos_lq": pl.Float64, "endpoint_mos_cq": pl.Float64,
                       "endpoint_r_factor": pl.Int64})


def xr_per_stream(stats: pl.DataFrame, xr: pl.DataFrame) -> pl.DataFrame:
    """Per stream_id: the last MOS-LQ, MOS-CQ and R factor the receiving endpoint reported in RTCP XR
    VoIP Metrics (RFC 3611 4.7), matched like report blocks: the block's SSRC is the stream's, sent by
    the address the stream goes to."""
    if xr.is_empty() or stats.is_empty():
        return pl.DataFrame(schema=XR_STREAM)
    bound = xr.sort("ts_ns").join(stats.select(["stream_id", "ssrc", "dst_ip"]),
                                  left_on=["source_ssrc", "src_ip"], right_on=["ssrc", "dst_ip"], how="inner")
    per = bound.group_by("stream_id").agg(
        endpoint_mos_lq=pl.col("mos_lq").drop_nulls().last(),
        endpoint_mos_cq=pl.col("mos_cq").drop_nulls().last(),
        endpoint_r_factor=pl.col("r_factor").drop_nulls().last().cast(pl.Int64),
    )
    return per.select(list(XR_STREAM)).cast(XR_STREAM)

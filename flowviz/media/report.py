"""Report: one row per RTP stream with statistics, MOS and call binding (what `flowviz streams` shows)."""

from __future__ import annotations

import polars as pl

from flowviz.media.binding import BINDING, bind_streams, sdp_endpoints
from flowviz.media.mos import stream_mos
from flowviz.media.rtcp import RTCP_STREAM, XR_STREAM, rtcp_per_stream, xr_per_stream
from flowviz.media.stats import stream_stats
from flowviz.media.streams import sdp_payload_map


def streams_report(sip: pl.DataFrame, rtp: pl.DataFrame, *, t0_ns: int | None = None,
                   group_of_call_id: pl.DataFrame | None = None, rtcp: pl.DataFrame | None = None,
                   xr: pl.DataFrame | None = None) -> pl.DataFrame:
    """stream_stats() + mos/r_factor/burst_ratio/mos_method + call_group_id/sdp_match/bound_by + RTCP.

    RTCP report blocks (`rtcp`) add rtcp_* columns and rtt_ms, whose half is the MOS delay term;
    RTCP XR VoIP Metrics (`xr`) add the endpoint's own endpoint_mos_lq/endpoint_mos_cq/endpoint_r_factor.

    `group_of_call_id` (call_id -> call_group_id, from the correlator) binds streams to calls; without
    it every stream is unbound.
    """
    payload_map = sdp_payload_map(sip)
    stats = stream_stats(rtp, t0_ns=t0_ns, payload_map=payload_map)
    if stats.is_empty() or "stream_id" not in stats.columns:
        return stats
    rtcp_stats = rtcp_per_stream(stats, rtcp) if rtcp is not None else pl.DataFrame(schema=RTCP_STREAM)
    rtt = {sid: v for sid, v in rtcp_stats.select(["stream_id", "rtt_ms"]).iter_rows() if v is not None and v > 0}
    mos = stream_mos(stats, rtt)
    if group_of_call_id is not None:
        binding = bind_streams(stats, sdp_endpoints(sip, group_of_call_id))
    else:
        binding = stats.select("stream_id").join(pl.DataFrame(schema=BINDING), on="stream_id", how="left")
        binding = binding.with_columns(pl.lit("unbound").alias("bound_by"))
    xr_stats = xr_per_stream(stats, xr) if xr is not None else pl.DataFrame(schema=XR_STREAM)
    return (stats.join(mos.drop("loss_pct"), on="stream_id", how="left").join(binding, on="stream_id", how="left")
            .join(rtcp_stats, on="stream_id", how="left").join(xr_stats, on="stream_id", how="left"))

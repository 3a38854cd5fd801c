"""Duplicates: the copies of one packet in a capture set, kept once.

A copy is a packet with the same identity (flowviz.captureset.identity) as the one before it on the
corrected timeline, close enough in time: at another point, within CROSS_POINT_NS plus the clock
offsets' uncertainty (the time a packet takes between two taps, and what the correction may be off by);
at the same point (two interfaces, a SPAN port and a bridge), within SAME_POINT_NS. A sender's real
retransmission is never a copy: SIP over UDP re-sends after T1 = 500 ms at the earliest (RFC 3261
17.1.1.2) with a new IPv4 identification, RTP never repeats a sequence number within seconds, and a
TCP retransmission carries a new IPv4 identification.
"""

from __future__ import annotations

import polars as pl

CROSS_POINT_NS = 200_000_000
SAME_POINT_NS = 5_000_000
MAX_WINDOW_NS = 450_000_000  # below T1, so that an identical IPv6 retransmission stays a packet of its own


def window_ns(uncertainty_ns: int) -> int:
    """How far apart two copies at different points may be once the clocks are corrected."""
    return min(MAX_WINDOW_NS, CROSS_POINT_NS + 2 * uncertainty_ns)


def mark_copies(obs: pl.DataFrame, cross_window_ns: int) -> pl.DataFrame:
    """`obs` (columns point, frame, ident, t = corrected time) with `packet`: the number of the packet each
    row is an observation of (the same for all copies), and `kept`: the one observation kept (the first)."""
    ordered = obs.sort("ident", "t", "point", "frame")
    gap = pl.col("t") - pl.col("t").shift(1)
    same_ident = pl.col("ident") == pl.col("ident").shift(1)
    same_point = pl.col("point") == pl.col("point").shift(1)
    copy = same_ident & pl.when(same_point).then(gap <= SAME_POINT_NS).otherwise(gap <= cross_window_ns)
    return ordered.with_columns(kept=~copy.fill_null(False)).with_columns(
        packet=pl.col("kept").cast(pl.Int64).cum_sum() - 1)


def merged_order(marked: pl.DataFrame) -> pl.DataFrame:
    """The kept observations in merged order (time, then point and frame), numbered `merged_frame` from 1,
    with `seen_at` (the points that saw the packet, in time order) and `copies` (their frames)."""
    seen = (
        marked.sort("t", "point", "frame")
        .group_by("packet", maintain_order=True)
        .agg(seen_at=pl.col("point"), copy_frames=pl.col("frame"))
    )
    kept = marked.filter(pl.col("kept")).join(seen, on="packet")
    return kept.sort("t", "point", "frame").with_row_index("merged_frame", offset=1)


def dropped_per_point(marked: pl.DataFrame, points: int) -> list[int]:
    """How many observations of each point were dropped as copies."""
    counts = dict(marked.filter(~pl.col("kept")).group_by("point").len().iter_rows())
    return [int(counts.get(p, 0)) for p in range(points)]

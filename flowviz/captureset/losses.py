"""Losses between points: a packet seen at one point that never reached the next.

Two points that both saw packets of one direction of a conversation (same addresses, protocol and
ports) are both on its path; the one that saw them first (corrected time) is upstream. A packet of that
direction seen upstream, at a time when the downstream point was capturing (from MARGIN_NS before its
first packet to MARGIN_NS after its last: a request that was lost is often the first packet of its
conversation), but never downstream, was lost between the two (or dropped by the downstream capture:
the finding says both).
"""

from __future__ import annotations

import polars as pl

MARGIN_NS = 200_000_000


def lost_between(marked: pl.DataFrame, merged: pl.DataFrame, points: int) -> pl.DataFrame:
    """Columns merged_frame, upstream, downstream (point numbers) of every packet lost between points.

    `marked`: observations with point, packet, forward, t (flowviz.captureset.duplicates.mark_copies);
    `merged`: the kept observations with merged_frame and packet (duplicates.merged_order)."""
    found = []
    rows = marked.filter(pl.col("forward") != 0).select("point", "packet", "forward", "t")
    spans = rows.group_by("point").agg(first=pl.col("t").min() - MARGIN_NS, last=pl.col("t").max() + MARGIN_NS)
    span = {r["point"]: (r["first"], r["last"]) for r in spans.iter_rows(named=True)}
    at = {p: rows.filter(pl.col("point") == p) for p in range(points)}
    for a in range(points):
        for b in range(a + 1, points):
            if a not in span or b not in span:
                continue
            shared = at[a].join(at[b].select("packet", t_b="t"), on="packet")
            if shared.is_empty():
                continue
            # per direction: which of the two points saw its packets first
            a_first = shared.group_by("forward").agg(a_first=(pl.col("t_b") - pl.col("t")).median() >= 0)
            for up, down, first_is_a in ((a, b, True), (b, a, False)):
                keys = a_first.filter(pl.col("a_first") == first_is_a).select("forward")
                low, high = span[down]
                missing = (at[up].join(keys, on="forward", how="semi")
                           .filter(pl.col("t").is_between(low, high))
                           .join(at[down].select("packet"), on="packet", how="anti"))
                if not missing.is_empty():
                    found.append(missing.select("packet", upstream=pl.lit(up, dtype=pl.Int64),
                                                downstream=pl.lit(down, dtype=pl.Int64)))
    if not found:
        return pl.DataFrame(schema={"merged_frame": pl.UInt32, "upstream": pl.Int64, "downstream": pl.Int64})
    lost = pl.concat(found).unique(["packet", "upstream", "downstream"])
    return (lost.join(merged.select("packet", "merged_frame"), on="packet")
            .select(pl.col("merged_frame").cast(pl.UInt32), "upstream", "downstream").sort("merged_frame"))

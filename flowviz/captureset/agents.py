"""HEP capture agents: the points of observation inside one capture.

A HEP capture (flowviz.ingest.hep) holds what several agents (kamailio's siptrace on each proxy, heplify
on each host) saw, each message stamped by its agent's clock. Two agents on both ends of one link both
report each message that crosses it. The agents are then points of one capture set, at message level: a
message's identity is its addresses, ports, transport and text; clock offsets between agents come from the
messages both saw (or SIP causality), as for the captures of a set (flowviz.captureset), and each message is
kept once, the first on the corrected timeline. Messages that came without HEP (plain SIP in the same
capture) are one more point, "wire".
"""

from __future__ import annotations

import polars as pl

from flowviz.captureset import Point, duplicates, place


def merge_agents(sip: pl.DataFrame) -> tuple[pl.DataFrame, dict | None]:
    """SIP messages with each message once and times on the first agent's clock, and what was done (None
    when the capture has fewer than two points of observation)."""
    if sip.is_empty() or "capture_agent" not in sip.columns:
        return sip, None
    agents = sorted(sip["capture_agent"].drop_nulls().unique().to_list())
    wire = sip["capture_agent"].null_count() > 0
    if len(agents) + wire < 2:
        return sip, None
    names = [f"agent {a}" for a in agents] + (["wire"] if wire else [])
    number = {a: i for i, a in enumerate(agents)}
    ends = [pl.col("src_ip"), pl.col("src_port").cast(pl.Utf8), pl.col("dst_ip"), pl.col("dst_port").cast(pl.Utf8)]
    rows = sip.with_row_index("row").with_columns(
        point=pl.col("capture_agent").replace_strict(number, default=len(agents), return_dtype=pl.Int64),
        ident=pl.concat_str([*ends, pl.col("transport"), pl.col("raw")], separator="|", ignore_nulls=True).hash(),
        forward=pl.concat_str(ends, separator="|", ignore_nulls=True).hash(),
        backward=pl.concat_str([ends[2], ends[3], ends[0], ends[1]], separator="|", ignore_nulls=True).hash(),
    )
    observations = [rows.filter(pl.col("point") == k).select(
        "point", frame=pl.col("row").cast(pl.Int64), ts=pl.col("ts_ns"), ident="ident", forward="forward",
        backward="backward") for k in range(len(names))]
    points = [Point(name, None, len(obs)) for name, obs in zip(names, observations)]
    place(points, observations, {}, lambda k: sip.filter(_of_point(k, agents)))
    corrected = pl.concat([obs.with_columns(t=pl.col("ts") - points[k].offset_ns) for k, obs in enumerate(observations)])
    worst = max((p.uncertainty_ns or 0) for p in points)
    marked = duplicates.mark_copies(corrected, duplicates.window_ns(worst))
    for point, dropped in zip(points, duplicates.dropped_per_point(marked, len(points))):
        point.duplicates = dropped
    kept = marked.filter(pl.col("kept")).select(row=pl.col("frame").cast(pl.UInt32), t="t")
    merged = (rows.join(kept, on="row").with_columns(ts_ns=pl.col("t"))
              .sort("row").drop("row", "point", "ident", "forward", "backward", "t"))
    report = {"points": [p.as_dict() for p in points], "reference": names[0],
              "duplicates_dropped": sum(p.duplicates for p in points)}
    return merged.select(sip.columns), report


def _of_point(k: int, agents: list[int]) -> pl.Expr:
    return pl.col("capture_agent").is_null() if k == len(agents) else pl.col("capture_agent") == agents[k]

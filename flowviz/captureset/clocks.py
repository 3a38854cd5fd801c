"""Clock offsets between the points of a capture set, from what they saw and from causality.

A point's offset is how far its clock is ahead of the reference point's: its corrected time is its
timestamp minus its offset. Estimates are pure functions on polars frames of observations.

Packets seen at both points (flowviz.captureset.identity) give samples d = t_B - t_A of the offset of B
against A plus the packet's transit between the points: for packets that pass A first, d = offset +
transit >= offset; for packets that pass B first, d = offset - transit <= offset. The two directions of
one conversation fall on either side, so the offset lies between the largest sample of the "B first"
directions and the smallest of the "A first" ones (the bound NTP uses for one exchange, RFC 5905
section 8, taken over every shared packet). The estimate is the middle of that interval, its
uncertainty half its width. A conversation seen in one direction only bounds the offset on one side.

Causality (for points that share no packet) uses the SIP hops flowviz already links: a proxy forwards a
request after it received it, and a response after it received it from downstream (RFC 3261 16.6,
16.7). With the received copy at one point and the forwarded copy at the other, each hop bounds the
offset on one side.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

# Samples of one pair of points closer than this count as "the same time": no direction is needed then.
SAME_TIME_NS = 1_000_000


@dataclass
class Estimate:
    """B's clock minus A's clock, in ns, with how it was found."""

    offset_ns: int
    uncertainty_ns: int | None  # None: bounded on one side only
    method: str  # "shared packets", "causality", "forced"
    evidence: str
    samples: int = 0

    def __post_init__(self):  # medians come as floats: offsets are whole nanoseconds
        self.offset_ns = int(round(self.offset_ns))
        if self.uncertainty_ns is not None:
            self.uncertainty_ns = int(round(self.uncertainty_ns))


def paired(a: pl.DataFrame, b: pl.DataFrame) -> pl.DataFrame:
    """The packets seen at both points: one row per pair, columns ident, forward, ts_a, ts_b, frame_a,
    frame_b. A packet seen k times at each point (an identical retransmission) pairs k-th with k-th."""
    def numbered(obs: pl.DataFrame, side: str) -> pl.DataFrame:
        # the k-th observation of each identity, by time: row number minus the row its identity starts at
        # (sorted, no window function: most identities occur once and a window per identity is slow)
        row = pl.int_range(pl.len(), dtype=pl.Int64)
        starts = pl.when(pl.col("ident") != pl.col("ident").shift(1).fill_null(~pl.col("ident"))).then(row)
        return obs.sort("ident", "ts", "frame").select(
            "ident", "forward", pl.col("ts").alias(f"ts_{side}"), pl.col("frame").alias(f"frame_{side}"),
            occurrence=row - starts.forward_fill(),
        )

    left = numbered(a, "a")
    right = numbered(b, "b").drop("forward")
    return left.join(right, on=["ident", "occurrence"], how="inner").drop("occurrence")


def from_shared_packets(pairs: pl.DataFrame, backward_of: dict[int, int]) -> Estimate | None:
    """The offset of B against A from the packets both saw (see the module's note); None without any.

    `backward_of`: each direction key -> the key of its reverse direction (identity.identities)."""
    if pairs.is_empty():
        return None
    samples = pairs.select("forward", d=pl.col("ts_b") - pl.col("ts_a"))
    n = len(samples)
    spread = samples["d"].max() - samples["d"].min()
    if spread <= SAME_TIME_NS:
        middle = (samples["d"].max() + samples["d"].min()) // 2
        return Estimate(int(middle), int(spread // 2), "shared packets",
                        f"{n:,} packets seen at both points, {_ms(spread)} apart at most", n)
    groups = samples.group_by("forward").agg(low=pl.col("d").min(), high=pl.col("d").max(),
                                             middle=pl.col("d").median(), count=pl.len())
    by_key = {r["forward"]: r for r in groups.iter_rows(named=True)}
    first_at_a, first_at_b = [], []  # directions that pass A first (d >= offset), B first (d <= offset)
    for key, row in by_key.items():
        reverse = by_key.get(backward_of.get(key))
        if reverse is None:
            continue
        if row["middle"] > reverse["middle"]:
            first_at_a.append(row)
        elif row["middle"] < reverse["middle"]:
            first_at_b.append(row)
    if not first_at_a or not first_at_b:
        middle = int(samples["d"].median())
        return Estimate(middle, None, "shared packets",
                        f"{n:,} packets seen at both points, in one direction only: the estimate includes "
                        f"their transit between the points (samples {_ms(samples['d'].min())} to "
                        f"{_ms(samples['d'].max())})", n)
    upper = min(r["low"] for r in first_at_a)
    lower = max(r["high"] for r in first_at_b)
    both = sum(r["count"] for r in first_at_a + first_at_b)
    if lower <= upper:
        return Estimate((lower + upper) // 2, (upper - lower) // 2, "shared packets",
                        f"{both:,} packets seen at both points in both directions bound it between "
                        f"{_ms(lower)} and {_ms(upper)}", n)
    # queuing or a clock that drifted: the bounds cross; take the middle of the directions' medians
    up = sorted(r["middle"] for r in first_at_a)[len(first_at_a) // 2]
    down = sorted(r["middle"] for r in first_at_b)[len(first_at_b) // 2]
    return Estimate((up + down) // 2, abs(up - down) // 2, "shared packets",
                    f"{both:,} packets seen at both points; their bounds cross ({_ms(lower)} > {_ms(upper)}: "
                    "variable transit or a drifting clock), so the middle of the two directions' medians", n)


def causal_bounds(sip: pl.DataFrame, point: int) -> tuple[int | None, int | None, int]:
    """Bounds (lower, upper, hops used) on the offset of `point` from SIP hops between it and points whose
    times are already corrected.

    `sip`: SIP messages of the points, with a `point` column; times of `point` raw, all others corrected.
    """
    from flowviz.sip import hops as hop_rules
    from flowviz.sip.transactions import with_transactions

    msgs = with_transactions(sip.sort("ts_ns", "point", "frame"))
    point_of = dict(zip(msgs["msg_id"].to_list(), msgs["point"].to_list()))
    ts_of = dict(zip(msgs["msg_id"].to_list(), msgs["ts_ns"].to_list()))
    requests = hop_rules.request_hops(msgs)
    lower: int | None = None
    upper: int | None = None
    used = 0

    def bound(received: int, forwarded: int) -> None:
        """The message `forwarded` left the proxy after `received` reached it."""
        nonlocal lower, upper, used
        p_in, p_out = point_of[received], point_of[forwarded]
        if (p_in == point) == (p_out == point):
            return
        used += 1
        if p_out == point:  # forwarded raw - offset >= received  ->  offset <= forwarded - received
            value = ts_of[forwarded] - ts_of[received]
            upper = value if upper is None else min(upper, value)
        else:  # forwarded >= received raw - offset  ->  offset >= received - forwarded
            value = ts_of[received] - ts_of[forwarded]
            lower = value if lower is None else max(lower, value)

    for up, down in zip(requests["up_msg"].to_list(), requests["down_msg"].to_list()):
        bound(up, down)
    for down, up in _response_pairs(msgs, requests):
        bound(down, up)
    return lower, upper, used


def _response_pairs(msgs: pl.DataFrame, requests: pl.DataFrame) -> list[tuple[int, int]]:
    """(response received from downstream, the copy forwarded upstream), without the time order
    flowviz.sip.hops.response_hops asks for (the clocks are what is being found)."""
    responses = msgs.filter(~pl.col("is_request") & (pl.col("status_code") > 100) & ~pl.col("is_retransmission"))
    txns = requests.select("up_txn", "down_txn").unique()
    down = responses.select(down_msg="msg_id", down_txn="txn_id", status_code="status_code",
                            to_tag=pl.col("to_tag").fill_null(""))
    up = responses.select(up_msg="msg_id", up_txn="txn_id", status_code="status_code",
                          to_tag=pl.col("to_tag").fill_null(""))
    pairs = down.join(txns, on="down_txn").join(up, on=["up_txn", "status_code", "to_tag"])
    return list(zip(pairs["down_msg"].to_list(), pairs["up_msg"].to_list()))


def from_causality(lower: int | None, upper: int | None, used: int) -> Estimate | None:
    """The offset from causal bounds: the middle of both; with one bound, the smallest correction that
    keeps every hop in order (0 when the clocks already do)."""
    if lower is None and upper is None:
        return None
    what = f"{used} SIP hop{'s' if used != 1 else ''} between this point and the others"
    if lower is not None and upper is not None:
        if lower <= upper:
            return Estimate((lower + upper) // 2, (upper - lower) // 2, "causality",
                            f"{what} bound it between {_ms(lower)} and {_ms(upper)}", used)
        return Estimate((lower + upper) // 2, (lower - upper) // 2, "causality",
                        f"{what} give crossing bounds ({_ms(lower)} > {_ms(upper)}): the middle is taken", used)
    if upper is not None:
        return Estimate(min(0, upper), None, "causality", f"{what} bound it from above only: at most {_ms(upper)}",
                        used)
    return Estimate(max(0, lower), None, "causality", f"{what} bound it from below only: at least {_ms(lower)}",
                    used)


def _ms(ns: int | float) -> str:
    return f"{ns / 1e6:+.3f} ms"

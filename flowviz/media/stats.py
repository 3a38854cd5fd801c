"""Stats: per-packet delta/jitter series and per-stream statistics computed as Wireshark's RTP analysis.

Every rule below is Wireshark's `rtppacket_analyse()` (ui/tap-rtp-analysis.c) written as group-wise
polars expressions over packets sorted by stream (capture order inside a stream); docs/media.md has
the formulas. Times are ms relative to the capture's first packet, like Wireshark's `rel_ts`.
"""

from __future__ import annotations

import polars as pl

from flowviz.media.codecs import COMFORT_NOISE, STATIC, codec_name, dynamic_clock
from flowviz.media.streams import PAYLOAD_MAP, STREAM_KEY, stream_keys

G = "stream"


def _over(expr: pl.Expr) -> pl.Expr:
    return expr.over(G)


def payload_types(keys: pl.DataFrame, rtp: pl.DataFrame, payload_map: pl.DataFrame | None) -> pl.DataFrame:
    """(stream, payload_type) -> encoding, clock_rate (0 = no jitter), is_event; SDP rtpmap for PT >= 96.

    The rtpmap is looked up for the stream's destination ip:port, then its source ip:port (Wireshark
    attaches the SDP mapping to the conversation of the announced address, matched in both directions).
    """
    pairs = rtp.select([G, "payload_type"]).unique().sort([G, "payload_type"])
    pm = payload_map if payload_map is not None else pl.DataFrame(schema=PAYLOAD_MAP)
    maps: dict[tuple[str, int], dict[int, tuple[str, int]]] = {}
    for ip, port, pt, enc, rate in pm.iter_rows():
        maps.setdefault((ip, port), {})[pt] = (enc, rate)
    endpoints = {s: ((si, sp), (di, dp)) for si, sp, di, dp, s in keys.select(
        ["src_ip", "src_port", "dst_ip", "dst_port", G]).iter_rows()}
    rows = []
    for stream, pt in pairs.iter_rows():
        src, dst = endpoints[stream]
        found = maps.get(dst, {}).get(pt) or maps.get(src, {}).get(pt)
        if pt < 96:
            name, clock = STATIC.get(pt, (None, 0))
            encoding = found[0] if found and pt not in STATIC else name
        else:
            encoding = found[0] if found else None
            clock = dynamic_clock(encoding, found[1] if found else 0)
        is_event = pt >= 96 and bool(encoding) and encoding.lower().startswith("telephone-event")
        rows.append((stream, pt, encoding, clock, is_event))
    return pl.DataFrame(rows, orient="row", schema={
        G: pl.UInt32, "payload_type": pl.UInt8, "encoding": pl.Utf8, "clock_rate": pl.Int64, "is_event": pl.Boolean})


def _prepare(rtp: pl.DataFrame, t0_ns: int | None, payload_map: pl.DataFrame | None):
    keys = stream_keys(rtp)
    t0 = int(rtp["ts_ns"].min()) if t0_ns is None and len(rtp) else (t0_ns or 0)
    pk = (
        rtp.with_row_index("row")
        .join(keys.select([*STREAM_KEY, G]), on=STREAM_KEY, how="left")
        .sort([G, "row"])
    )
    pts = payload_types(keys, pk, payload_map)
    pk = pk.join(pts, on=[G, "payload_type"], how="left")
    return keys, pts, pk, t0


def packet_series(rtp: pl.DataFrame, *, t0_ns: int | None = None,
                  payload_map: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per RTP packet, sorted by stream then capture order, with Wireshark's per-packet values.

    Columns added: stream, stream_id, t_ms, idx (position in stream), ext_ts, ext_seq, in_time,
    clock_rate, encoding, delta_ms, jitter_ms, diff_ms, skew_ms, regular, seq_error.
    """
    keys, _, pk, t0 = _prepare(rtp, t0_ns, payload_map)
    return _series(pk, t0).join(keys.select([G, "stream_id"]), on=G, how="left")


def _series(pk: pl.DataFrame, t0: int) -> pl.DataFrame:
    rel = pl.col("ts_ns") - t0
    secs = (rel / 1_000_000_000).cast(pl.Int64)  # truncation toward zero, like nstime_delta
    nsecs = rel - secs * 1_000_000_000
    first = pl.col("idx") == 0
    d_ts = (pl.col("rtp_ts").cast(pl.Int64) - _over(pl.col("rtp_ts").cast(pl.Int64).shift(1)))
    d_seq = (pl.col("seq").cast(pl.Int64) - _over(pl.col("seq").cast(pl.Int64).shift(1)))
    khz = pl.col("clock_rate") // 1000  # integer kHz: `clock_rate/1000` on a guint32 in C
    timed = pl.col("clock_rate") > 0
    timed_in = timed & pl.col("in_time")  # Wireshark 4.0 times only in-time-sequence packets
    df = pk.lazy().with_columns(
        t_ms=secs.cast(pl.Float64) * 1000.0 + nsecs.cast(pl.Float64) / 1_000_000.0,
        idx=_over(pl.int_range(pl.len(), dtype=pl.Int64)),
        # extended timestamp / sequence number: wrap-aware differences accumulated per stream
        d_ts=((d_ts + 2**31) % 2**32 - 2**31).fill_null(0),
        d_seq=((d_seq + 2**15) % 2**16 - 2**15).fill_null(0),
    ).with_columns(
        ext_ts=_over(pl.col("d_ts").cum_sum()) + pl.col("rtp_ts").first().over(G).cast(pl.Int64),
        ext_seq=_over(pl.col("d_seq").cum_sum()) + pl.col("seq").first().over(G).cast(pl.Int64),
    ).with_columns(
        # in time sequence: timestamp at or after the stream's first one, within half the 32-bit range
        in_time=first | ((pl.col("rtp_ts").cast(pl.Int64) - pl.col("rtp_ts").first().over(G).cast(pl.Int64))
                         % 2**32 < 2**31),
    ).with_columns(
        # seq_timestamp: timestamp of the last in-time packet Wireshark could time (a clock rate known:
        # not telephone-event, not an unknown dynamic type)
        seq_ts=_over(pl.when(first | (pl.col("in_time") & timed)).then(pl.col("ext_ts")).shift(1).forward_fill()),
    ).with_columns(
        # time of the last in-time-sequence packet before this one
        t_ref=_over(pl.when(pl.col("in_time")).then(pl.col("t_ms")).shift(1).forward_fill()),
        seq_num=_over(pl.when(pl.col("in_time")).then(pl.col("ext_seq")).cum_max().shift(1).forward_fill()),
        prev_pt=_over(pl.col("payload_type").shift(1)),
        prev_seq=_over(pl.col("seq").shift(1)),
    ).with_columns(
        delta_ms=pl.when(first).then(0.0).otherwise(pl.col("t_ms") - pl.col("t_ref")),
        nominal_ms=pl.when(timed_in & ~first).then((pl.col("ext_ts") - pl.col("seq_ts")).cast(pl.Float64) / khz),
    ).with_columns(
        diff_ms=pl.when(first).then(0.0).when(timed_in).then(
            (pl.col("t_ms") - (pl.col("t_ref") + pl.col("nominal_ms"))).abs()),
    ).with_columns(
        # J += (|D| - J) / 16 on packets with a clock rate; telephone-event and unknown types keep J
        jitter_ms=_over(pl.col("diff_ms").ewm_mean(alpha=1 / 16, adjust=False, ignore_nulls=True).forward_fill()),
        # skew: nominal time minus arrival time, both accumulated over packets with a clock rate
        skew_ms=_over(pl.when(timed_in & ~first).then(pl.col("nominal_ms") - pl.col("delta_ms"))
                      .fill_null(0.0).cum_sum()),
        regular=~first & ~pl.col("marker") & pl.col("in_time")
        & ~pl.col("payload_type").is_in(COMFORT_NOISE) & ~pl.col("prev_pt").is_in(COMFORT_NOISE).fill_null(False),
    )
    df = _seq_errors(df)
    return df.drop(["d_ts", "d_seq", "t_ref", "prev_seq"]).collect()


def _seq_errors(df: pl.LazyFrame) -> pl.LazyFrame:
    """Wireshark's sequence check against the last in-order sequence number (`statinfo->sequence`)."""
    sn = pl.col("seq_num") % 65536
    seq = pl.col("seq").cast(pl.Int64)
    it = pl.col("in_time")
    ok = it & ((seq == sn + 1) | ((sn == 65535) & (seq == 0)))
    bad = (it & ((sn + 1 < seq) | (sn - seq > 0xFF00))) | (sn + 1 > seq)
    return df.with_columns(seq_error=(pl.col("idx") > 0) & ~ok & bad)


def _cycles(series: pl.LazyFrame) -> pl.LazyFrame:
    """Sequence wrap count: Wireshark's `seq_cycles`/`under` toggle, counted per stream."""
    start = pl.col("seq").first().over(G)
    seq = pl.col("seq").cast(pl.Int64)
    a = (seq < start) | ((seq == 0) & (pl.col("prev_seq_any") == 65535))
    b = seq > start
    ev = (
        series.with_columns(prev_seq_any=_over(pl.col("seq").cast(pl.Int64).shift(1)))
        .with_columns(is_a=a.fill_null(False), is_b=b)
        .filter((pl.col("idx") > 0) & pl.col("in_time") & (pl.col("is_a") | pl.col("is_b")))
    )
    return ev.with_columns(rise=pl.col("is_a") & ~_over(pl.col("is_a").shift(1)).fill_null(False)).group_by(G).agg(
        cycles=pl.col("rise").sum().cast(pl.Int64))


def _running_mean(value: pl.Expr, mask: pl.Expr) -> pl.Expr:
    """Wireshark's mean: m = (m * (n - 1) + x) / n on masked packets, n = packets before this one.

    Unrolled: m = sum_k x_k / n_k * prod_{j > k} (n_j - 1) / n_j over masked packets (as an aggregation).
    """
    n = pl.col("idx").cast(pl.Float64)
    log_f = pl.when(n > 1).then((1.0 - 1.0 / n).log()).otherwise(0.0)
    log_f = pl.when(mask).then(log_f).otherwise(0.0)
    after = log_f.cum_sum(reverse=True) - log_f
    term = pl.when(mask).then(value / n * after.exp()).otherwise(0.0)
    return term.sum()


def stream_stats(rtp: pl.DataFrame, *, t0_ns: int | None = None,
                 payload_map: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per stream (order of first packet) with Wireshark's statistics and flowviz extras."""
    keys, pts, pk, t0 = _prepare(rtp, t0_ns, payload_map)
    if pk.is_empty():
        return _empty_stats(keys)
    series = _series(pk, t0).lazy()
    reg = pl.col("regular")
    jreg = reg & (pl.col("clock_rate") > 0)
    agg = series.group_by(G).agg(
        packets=pl.len().cast(pl.Int64),
        start_seq=pl.col("seq").first().cast(pl.Int64),
        stop_seq=pl.col("seq").last().cast(pl.Int64),
        first_frame=pl.col("frame").first(),
        start_ts_ns=pl.col("ts_ns").first(),
        end_ts_ns=pl.col("ts_ns").last(),
        start_ms=pl.col("t_ms").first(),
        end_ms=pl.col("t_ms").last(),
        seq_errors=pl.col("seq_error").sum().cast(pl.Int64),
        min_delta_ms=pl.col("delta_ms").filter(reg).min().fill_null(-1.0),
        mean_delta_ms=_running_mean(pl.col("delta_ms"), reg),
        max_delta_ms=pl.col("delta_ms").filter(reg).max().fill_null(0.0),
        min_jitter_ms=pl.col("jitter_ms").filter(jreg).min().fill_null(-1.0),
        mean_jitter_ms=_running_mean(pl.col("jitter_ms"), jreg),
        max_jitter_ms=pl.col("jitter_ms").filter(jreg).max().fill_null(0.0),
        max_skew_ms=pl.col("skew_ms").get(pl.col("skew_ms").abs().arg_max()),
        markers=pl.col("marker").sum().cast(pl.Int64),
        comfort_noise=pl.col("payload_type").is_in(COMFORT_NOISE).sum().cast(pl.Int64),
        duplicates=(pl.len() - pl.col("ext_seq").n_unique()).cast(pl.Int64),
        out_of_order=(pl.col("ext_seq") < pl.col("ext_seq").cum_max().shift(1)).sum().cast(pl.Int64),
        wrong_timestamps=(~pl.col("in_time")).sum().cast(pl.Int64),
        payload_types=pl.col("payload_type").unique(maintain_order=True),
    )
    out = (
        agg.join(_cycles(series), on=G, how="left")
        .with_columns(pl.col("cycles").fill_null(0))
        .with_columns(expected=pl.col("stop_seq") + pl.col("cycles") * 65536 - pl.col("start_seq") + 1)
        .with_columns(lost=pl.col("expected") - pl.col("packets"))
        .with_columns(lost_pct=pl.when(pl.col("expected") != 0)
                      .then(pl.col("lost") * 100.0 / pl.col("expected")).otherwise(0.0),
                      duration_s=(pl.col("end_ts_ns") - pl.col("start_ts_ns")) / 1e9)
        .collect()
    )
    names = {(s, pt): codec_name(pt, enc) for s, pt, enc in pts.select([G, "payload_type", "encoding"]).iter_rows()}
    codecs = [", ".join(names[(s, pt)] for pt in pts_) for s, pts_ in out.select([G, "payload_types"]).iter_rows()]
    out = out.with_columns(pl.Series("codecs", codecs, dtype=pl.Utf8),
                           pl.col("payload_types").list.first().alias("payload_type"))
    return keys.join(out, on=G, how="left").sort(G)


def _empty_stats(keys: pl.DataFrame) -> pl.DataFrame:
    return keys.with_columns(packets=pl.lit(0, pl.Int64)).head(0)

"""Stats: per-stream statistics and per-packet delta/jitter series computed as Wireshark's RTP analysis.

Every rule is Wireshark 4.0's `rtppacket_analyse()` (ui/tap-rtp-analysis.c), run packet by packet in
the compiled flowviz.media.kernel, each packet updating its own stream's state; this module prepares
the kernel's inputs from an rtp_packets frame and turns its results into frames. docs/media.md has the formulas. Times are ms
relative to the capture's first packet, like Wireshark's `rel_ts`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from flowviz.media import kernel
from flowviz.media.codecs import COMFORT_NOISE, STATIC, codec_name, dynamic_clock
from flowviz.media.streams import PAYLOAD_MAP, STREAM_KEY, stream_id

G = "stream"


def payload_types(keys: pl.DataFrame, pairs: pl.DataFrame, payload_map: pl.DataFrame | None) -> pl.DataFrame:
    """(stream, payload_type) -> encoding, clock_rate (0 = no jitter), is_event; SDP rtpmap for PT >= 96.

    The rtpmap is looked up for the stream's destination ip:port, then its source ip:port (Wireshark
    attaches the SDP mapping to the conversation of the announced address, matched in both directions).
    """
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


def _column(column: pl.Series, dtype) -> np.ndarray:
    """A column as a read-only contiguous array of `dtype` (a view of polars' memory when it can be):
    the kernel is compiled for exactly these types."""
    array = np.ascontiguousarray(column.to_numpy(), dtype=dtype)
    array.flags.writeable = False
    return array


@dataclass
class _Analysis:
    keys: pl.DataFrame  # one row per stream: STREAM_KEY, stream, stream_id
    payload_types: pl.DataFrame  # payload_types() of every (stream, payload type) seen
    stream_of: np.ndarray  # stream index of every packet
    lengths: np.ndarray  # packets per stream
    ints: np.ndarray  # kernel.I_* columns per stream
    floats: np.ndarray  # kernel.F_* columns per stream
    packets: tuple  # per-packet series in capture order (empty arrays unless asked for)


def _analyse(rtp: pl.DataFrame, t0_ns: int | None, payload_map: pl.DataFrame | None, series: bool) -> _Analysis:
    """Group the packets into streams, look up the clock rates of their payload types, run the kernel.

    Addresses are compared by 64-bit hashes of their text (two different addresses of one capture
    sharing a hash: odds about n^2 / 2^65, negligible for any real capture).
    """
    hashes = rtp.select(pl.col("src_ip").hash(seed=1), pl.col("dst_ip").hash(seed=2))
    payload_type = _column(rtp["payload_type"], np.uint8)
    stream_of, heads, lengths, pt_mask = kernel.group_streams(
        _column(hashes["src_ip"], np.uint64), _column(hashes["dst_ip"], np.uint64), _column(rtp["ssrc"], np.uint32),
        _column(rtp["src_port"], np.uint16), _column(rtp["dst_port"], np.uint16), payload_type)
    del hashes  # 16 MB per million packets, not needed any more
    keys = _keys(rtp[heads].select(STREAM_KEY))
    stream_of_pair, pt_of_pair = np.nonzero(np.unpackbits(pt_mask.view(np.uint8), axis=1, bitorder="little"))
    pts = payload_types(keys, pl.DataFrame({G: stream_of_pair.astype(np.uint32),
                                            "payload_type": pt_of_pair.astype(np.uint8)}), payload_map)
    pair_start = np.searchsorted(stream_of_pair, np.arange(len(heads) + 1)).astype(np.int64)
    t0 = int(rtp["ts_ns"].min()) if t0_ns is None else t0_ns
    ints, floats, packets = kernel.analyse_streams(
        stream_of, heads, lengths, _column(rtp["ts_ns"], np.int64), _column(rtp["seq"], np.uint16),
        _column(rtp["rtp_ts"], np.uint32), _column(rtp["marker"], np.bool_), payload_type, t0,
        pair_start, pt_of_pair.astype(np.int64), pts["clock_rate"].to_numpy().astype(np.int64), series)
    return _Analysis(keys, pts, stream_of, lengths, ints, floats, packets)


def packet_series(rtp: pl.DataFrame, *, t0_ns: int | None = None,
                  payload_map: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per RTP packet, sorted by stream then capture order, with Wireshark's per-packet values.

    Columns: stream_id, frame, ts_ns, t_ms, idx (position in stream), seq, ext_seq, ext_ts,
    payload_type, marker, in_time, clock_rate, delta_ms, diff_ms (|D|, null when not timed), jitter_ms,
    skew_ms, regular (counted in min/mean/max), seq_error.
    """
    if rtp.is_empty():
        return pl.DataFrame(schema={"stream_id": pl.Utf8, "frame": pl.UInt32, "ts_ns": pl.Int64})
    a = _analyse(rtp, t0_ns, payload_map, series=True)
    order = kernel.stream_order(a.stream_of, a.lengths)
    t_ms, ext_seq, ext_ts, in_time, clock, delta, diff, jitter, skew, regular, seq_error = (
        values[order] for values in a.packets)
    rows = pl.Series(order)
    return pl.DataFrame({
        "stream_id": a.keys["stream_id"].gather(np.repeat(np.arange(len(a.lengths)), a.lengths)),
        "frame": rtp["frame"].gather(rows), "ts_ns": rtp["ts_ns"].gather(rows), "t_ms": t_ms,
        "idx": np.arange(len(order)) - np.repeat(np.cumsum(a.lengths) - a.lengths, a.lengths),
        "seq": rtp["seq"].gather(rows).cast(pl.Int64), "ext_seq": ext_seq, "ext_ts": ext_ts,
        "payload_type": rtp["payload_type"].gather(rows).cast(pl.UInt8), "marker": rtp["marker"].gather(rows),
        "in_time": in_time, "clock_rate": clock, "delta_ms": delta, "diff_ms": diff, "jitter_ms": jitter,
        "skew_ms": skew, "regular": regular, "seq_error": seq_error,
    }).with_columns(pl.col("diff_ms").fill_nan(None))


def stream_stats(rtp: pl.DataFrame, *, t0_ns: int | None = None,
                 payload_map: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per stream (order of first packet) with Wireshark's statistics and flowviz extras."""
    if rtp.is_empty():
        return _keys(rtp.select(STREAM_KEY).head(0)).with_columns(packets=pl.lit(0, pl.Int64))
    a = _analyse(rtp, t0_ns, payload_map, series=False)
    i, f = a.ints, a.floats
    packets, expected = i[:, kernel.I_PACKETS], i[:, kernel.I_EXPECTED]
    lost = expected - packets
    ts_ns = rtp["ts_ns"]
    start_ns = ts_ns.gather(i[:, kernel.I_FIRST_ROW]).to_numpy()
    end_ns = ts_ns.gather(i[:, kernel.I_LAST_ROW]).to_numpy()
    # expected <= 0: the sequence numbers end below where they started (records reversed or shuffled, time going
    # back): Wireshark still prints expected - packets as lost, but no loss ratio exists then
    measurable = expected > 0
    back_row = i[:, kernel.I_FIRST_BACKWARDS_ROW]
    frames = rtp["frame"]
    stats = pl.DataFrame({
        "packets": packets, "expected": expected, "lost": lost,
        "lost_pct": pl.Series(np.where(measurable, lost * 100.0 / np.where(measurable, expected, 1), np.nan),
                              dtype=pl.Float64).fill_nan(None),
        "seq_errors": i[:, kernel.I_SEQ_ERRORS],
        "min_delta_ms": f[:, kernel.F_MIN_DELTA], "mean_delta_ms": f[:, kernel.F_MEAN_DELTA],
        "max_delta_ms": f[:, kernel.F_MAX_DELTA],
        "min_jitter_ms": f[:, kernel.F_MIN_JITTER], "mean_jitter_ms": f[:, kernel.F_MEAN_JITTER],
        "max_jitter_ms": f[:, kernel.F_MAX_JITTER],
        "max_skew_ms": f[:, kernel.F_MAX_SKEW],
        "first_frame": frames.gather(i[:, kernel.I_FIRST_ROW]),
        "last_frame": frames.gather(i[:, kernel.I_LAST_ROW]),
        "start_ts_ns": start_ns, "end_ts_ns": end_ns,
        "start_ms": f[:, kernel.F_START_MS], "end_ms": f[:, kernel.F_END_MS],
        # the last packet captured before the first one: the capture's clock went back, no duration
        "duration_s": pl.Series((end_ns - start_ns) / 1e9, dtype=pl.Float64).set(pl.Series(end_ns < start_ns), None),
        "markers": i[:, kernel.I_MARKERS], "comfort_noise": i[:, kernel.I_COMFORT_NOISE],
        "duplicates": i[:, kernel.I_DUPLICATES], "loss_bursts": i[:, kernel.I_LOSS_BURSTS],
        "out_of_order": i[:, kernel.I_OUT_OF_ORDER], "wrong_timestamps": i[:, kernel.I_WRONG_TIMESTAMPS],
        "time_backwards": i[:, kernel.I_TIME_BACKWARDS],
        "time_backwards_frame": frames.gather(np.maximum(back_row, 0)).set(pl.Series(back_row < 0), None),
        "max_backwards_ms": f[:, kernel.F_MAX_BACKWARDS_MS],
    })
    return a.keys.hstack(stats).join(_codecs(a.payload_types), on=G, how="left")


def _keys(keys: pl.DataFrame) -> pl.DataFrame:
    return keys.with_columns(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(G),
        pl.Series("stream_id", [stream_id(*r) for r in keys.iter_rows()], dtype=pl.Utf8))


def _codecs(pts: pl.DataFrame) -> pl.DataFrame:
    """Payload types per stream (numeric order) with names, and the main one (first that is neither
    comfort noise nor telephone-event, else the first) with its clock rate (0 = unknown)."""
    names = pl.Series("name", [codec_name(pt, enc) for pt, enc in pts.select("payload_type", "encoding").iter_rows()],
                      dtype=pl.Utf8)
    media = ~pl.col("payload_type").is_in(COMFORT_NOISE) & ~pl.col("name").str.to_lowercase().str.starts_with(
        "telephone-event")

    def main(column: str) -> pl.Expr:
        return pl.col(column).filter(media).first().fill_null(pl.col(column).first())

    return (pts.with_columns(names).sort(G, "payload_type").group_by(G, maintain_order=True)
            .agg(pl.col("payload_type").alias("payload_types"), pl.col("name").str.join(", ").alias("codecs"),
                 main("payload_type"), main("name").alias("codec"), main("clock_rate")))

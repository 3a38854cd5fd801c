"""Stats: per-packet delta/jitter series and per-stream statistics computed as Wireshark's RTP analysis.

Every rule is Wireshark 4.0's `rtppacket_analyse()` (ui/tap-rtp-analysis.c), vectorized: packets are
sorted by stream (capture order inside a stream) and each stateful rule becomes a group-wise numpy
operation (shift, cumulative sum/max, forward fill, a linear filter for the jitter). docs/media.md
has the formulas. Times are ms relative to the capture's first packet, like Wireshark's `rel_ts`.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import polars as pl

from flowviz.media.codecs import COMFORT_NOISE, STATIC, codec_name, dynamic_clock
from flowviz.media.streams import PAYLOAD_MAP, STREAM_KEY, stream_id

G = "stream"


CHUNK_PACKETS = 1 << 16  # streams are analysed in batches of about this many packets (bounded memory)


class Grouped:
    """Packets sorted by stream: `order` (row in the input), group `starts`, `stream` index per packet
    (0-based within this batch; `base` is the index of the batch's first stream)."""

    def __init__(self, order: np.ndarray, lengths: np.ndarray, base: int = 0):
        self.order, self.lengths, self.base = order, lengths, base
        self.starts = (np.cumsum(lengths) - lengths).astype(np.int64)

    @cached_property
    def stream(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    @cached_property
    def idx(self) -> np.ndarray:
        return np.arange(len(self.order)) - np.repeat(self.starts, self.lengths)

    @cached_property
    def first(self) -> np.ndarray:
        return self.idx == 0

    @classmethod
    def of(cls, rtp: pl.DataFrame) -> tuple[pl.DataFrame, "Grouped"]:
        """Stream keys (with `stream` index and `stream_id`, order of first packet) and all packets grouped.

        Streams are told apart by a 64-bit hash of the key and a stable sort (light on memory, unlike a
        group-by on the address strings); every packet's key is then checked against its stream's first
        packet, and an exact group-by is used in the (never seen) case of a hash collision.
        """
        if rtp.is_empty():
            return _keys(rtp.select(STREAM_KEY).head(0)), cls(np.zeros(0, np.int64), np.zeros(0, np.int64))
        parts = _key_parts(rtp)
        h = _mix(parts)
        order = np.argsort(h, kind="stable")  # streams contiguous, capture order inside
        h = h[order]
        starts = np.concatenate([[0], np.flatnonzero(h[1:] != h[:-1]) + 1])
        del h
        lengths = np.diff(np.append(starts, len(order)))
        by_first = np.argsort(order[starts])  # streams in order of their first packet
        lengths = lengths[by_first]
        gather = np.repeat(starts[by_first] - (np.cumsum(lengths) - lengths), lengths)
        gather += np.arange(len(order))
        order = order[gather]
        del gather
        grouped = cls(order, lengths.astype(np.int64))
        heads = order[grouped.starts]
        if not grouped.same_keys(parts, heads):
            g = (rtp.select(STREAM_KEY).with_row_index("row")
                 .group_by(STREAM_KEY, maintain_order=True).agg(pl.col("row")))
            order = g["row"].explode().to_numpy().astype(np.int64)
            grouped = cls(order, g["row"].list.len().to_numpy().astype(np.int64))
            heads = order[grouped.starts]
        return _keys(rtp[heads].select(STREAM_KEY)), grouped

    def same_keys(self, parts: list[np.ndarray], heads: np.ndarray) -> bool:
        """Every packet has the key of its stream's first packet (addresses compared by their hashes)."""
        return all(np.array_equal(v[self.order], np.repeat(v[heads], self.lengths)) for v in parts)

    def batches(self, size: int = CHUNK_PACKETS):
        """Consecutive runs of whole streams of about `size` packets each, as Grouped."""
        if not len(self.lengths):
            return
        batch = self.starts // size
        cuts = [0, *(np.flatnonzero(np.diff(batch)) + 1).tolist(), len(self.lengths)]
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            begin, end = self.starts[lo], self.starts[hi - 1] + self.lengths[hi - 1]
            yield Grouped(self.order[begin:end], self.lengths[lo:hi], self.base + lo)

    def col(self, columns: "Columns", name: str) -> np.ndarray:
        return columns[name][self.order]

    def prev(self, x: np.ndarray, fill=0) -> np.ndarray:
        """Value of the previous packet of the same stream (`fill` on a stream's first packet)."""
        out = np.empty_like(x)
        out[1:] = x[:-1]
        out[self.first] = fill
        return out

    def cumsum(self, x: np.ndarray) -> np.ndarray:
        c = np.cumsum(x)
        base = c[self.starts] - x[self.starts]
        return c - np.repeat(base, self.lengths)

    def ffill_index(self, valid: np.ndarray) -> np.ndarray:
        """Index of the last valid packet at or before each packet (a stream's first packet must be valid)."""
        return np.maximum.accumulate(np.where(valid, np.arange(len(valid)), 0))

    def cummax(self, x: np.ndarray) -> np.ndarray:
        """Running max per stream (int64), by lifting each stream above the previous one."""
        lo = np.minimum.reduceat(x, self.starts)
        span = np.maximum.reduceat(x, self.starts) - lo + 1
        lift = np.repeat(np.concatenate([[0], np.cumsum(span)[:-1]]) - lo, self.lengths)
        return np.maximum.accumulate(x + lift) - lift


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


class Columns:
    """The RTP packet columns as numpy arrays, converted once (not once per batch)."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = self.frame[name].to_numpy()
        return self._arrays[name]


def _key_parts(rtp: pl.DataFrame) -> list[np.ndarray]:
    """The stream key as five arrays: 64-bit hashes of the two addresses, SSRC, the two ports."""
    cols = rtp.select(pl.col("src_ip").hash(seed=1), pl.col("dst_ip").hash(seed=2), "ssrc", "src_port", "dst_port")
    return [c.to_numpy() for c in cols.iter_columns()]


def _mix(parts: list[np.ndarray]) -> np.ndarray:
    """One 64-bit hash per packet from the key parts, computed in place (few temporary arrays)."""
    h = parts[0].astype(np.uint64)  # a copy
    with np.errstate(over="ignore"):
        h *= np.uint64(0x9E3779B97F4A7C15)
        h ^= parts[1]
        h *= np.uint64(0xC2B2AE3D27D4EB4F)
        num = parts[2].astype(np.uint64)
        num <<= np.uint64(32)
        num |= parts[3].astype(np.uint64) << np.uint64(16)
        num |= parts[4]
        h ^= num
    return h


def _keys(keys: pl.DataFrame) -> pl.DataFrame:
    return keys.with_columns(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(G),
        pl.Series("stream_id", [stream_id(*r) for r in keys.iter_rows()], dtype=pl.Utf8))


def _clocks(keys: pl.DataFrame, gr: Grouped, rtp: Columns, payload_map: pl.DataFrame | None):
    """Payload type and clock rate of every packet of a batch, and the batch's payload_types() table."""
    pt = gr.col(rtp, "payload_type").astype(np.int64)
    code = (gr.stream + gr.base) * 128 + (pt & 127)
    pairs = np.unique(code)
    pts = payload_types(keys, pl.DataFrame({G: (pairs // 128).astype(np.uint32),
                                            "payload_type": (pairs % 128).astype(np.uint8)}), payload_map)
    clock = pts["clock_rate"].to_numpy()[np.searchsorted(pairs, code)] if len(pairs) else np.zeros(0, np.int64)
    return pt, clock, pts


def _t0(rtp: pl.DataFrame, t0_ns: int | None) -> int:
    return int(rtp["ts_ns"].min()) if t0_ns is None and len(rtp) else (t0_ns or 0)


def _series(rtp: Columns, gr: Grouped, t0: int, pt: np.ndarray, clock: np.ndarray) -> dict[str, np.ndarray]:
    first, idx = gr.first, gr.idx
    rel = gr.col(rtp, "ts_ns") - t0
    # nstime_delta: seconds and nanoseconds with the same sign, in integers
    secs = np.where(rel < 0, -(-rel // 1_000_000_000), rel // 1_000_000_000)
    t = secs.astype(np.float64) * 1000.0 + (rel - secs * 1_000_000_000).astype(np.float64) / 1_000_000.0
    ts32 = gr.col(rtp, "rtp_ts").astype(np.uint32, copy=False)
    seq16 = gr.col(rtp, "seq").astype(np.uint16, copy=False)
    raw_ts, seq = ts32.astype(np.int64), seq16.astype(np.int64)
    marker = gr.col(rtp, "marker").astype(bool)
    # extended timestamp and sequence number: wrap-aware differences (unsigned subtraction read as
    # signed) accumulated per stream
    d_ts = (ts32 - gr.prev(ts32)).view(np.int32).astype(np.int64)
    d_seq = (seq16 - gr.prev(seq16)).view(np.int16).astype(np.int64)
    d_ts[first], d_seq[first] = raw_ts[first], seq[first]
    ext_ts, ext_seq = gr.cumsum(d_ts), gr.cumsum(d_seq)
    # in time sequence: at or after the stream's first timestamp, within half the 32-bit range
    since_first = ts32 - np.repeat(ts32[gr.starts], gr.lengths)  # (ts - ts_first) mod 2^32
    in_time = first | (since_first < 2**31)
    timed = clock > 0
    timed_in = timed & in_time & ~first  # Wireshark 4.0 times only in-time-sequence packets
    # last in-time packet before this one (its arrival time) and the last one it could time (timestamp)
    ref = gr.prev(gr.ffill_index(in_time))
    ref_ts = gr.prev(gr.ffill_index(first | (in_time & timed)))
    delta = np.where(first, 0.0, t - t[ref])
    khz = np.maximum(clock // 1000, 1)  # integer kHz: `clock_rate/1000` on a guint32 in C
    # nominal time: RTP time since the stream's first packet in ms, each packet with its own clock
    nominal = since_first / khz
    nominal[first] = 0.0
    expected = t[ref] + (nominal - nominal[ref_ts])
    diff = np.where(timed_in, np.abs(t - expected), 0.0)
    jitter = _jitter(gr, diff, first | timed_in)
    # skew: nominal minus arrival time since the first packet, as of the last timed packet
    skew = np.where(first | timed_in, nominal - (t - t[np.repeat(gr.starts, gr.lengths)]), 0.0)
    skew = skew[gr.ffill_index(first | timed_in)]
    prev_pt = gr.prev(pt, fill=-1)
    cn = np.isin(pt, COMFORT_NOISE)
    regular = ~first & ~marker & in_time & ~cn & ~np.isin(prev_pt, COMFORT_NOISE)
    # sequence check against the last in-order sequence number (Wireshark's `statinfo->sequence`)
    # (packets out of time sequence count as the stream's first one: it is in the running max anyway)
    first_seq = np.repeat(ext_seq[gr.starts], gr.lengths)
    seq_num = gr.prev(gr.cummax(np.where(in_time, ext_seq, first_seq))) % 65536
    ok = in_time & ((seq == seq_num + 1) | ((seq_num == 65535) & (seq == 0)))
    bad = (in_time & ((seq_num + 1 < seq) | (seq_num - seq > 0xFF00))) | (seq_num + 1 > seq)
    return {"t_ms": t, "idx": idx, "ext_ts": ext_ts, "ext_seq": ext_seq, "in_time": in_time,
            "clock_rate": clock, "delta_ms": delta, "diff_ms": np.where(timed_in, diff, np.nan),
            "jitter_ms": jitter, "skew_ms": skew, "regular": regular, "seq_error": ~first & ~ok & bad,
            "comfort_noise": cn, "marker": marker, "seq": seq, "payload_type": pt}


def _jitter(gr: Grouped, diff: np.ndarray, step: np.ndarray) -> np.ndarray:
    """J = (15 J + D) / 16 on `step` packets (J kept elsewhere), J = 0 at each stream's first packet.

    A polars exponentially weighted mean per stream (alpha 1/16, not adjusted, nulls skipped): the
    same arithmetic as Wireshark's `(15 * J + D) / 16`, bit for bit.
    """
    x = pl.Series("x", np.where(step, diff, np.nan), nan_to_null=True)
    j = (pl.DataFrame({G: gr.stream, "x": x})
         .select(pl.col("x").ewm_mean(alpha=1 / 16, adjust=False, ignore_nulls=True).over(G))
         .to_series().to_numpy())
    return j[gr.ffill_index(step)]  # packets that do not step keep the last value


def packet_series(rtp: pl.DataFrame, *, t0_ns: int | None = None,
                  payload_map: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per RTP packet, sorted by stream then capture order, with Wireshark's per-packet values.

    Columns: stream_id, frame, ts_ns, t_ms, idx (position in stream), seq, ext_seq, ext_ts,
    payload_type, marker, in_time, clock_rate, delta_ms, diff_ms (|D|, null when not timed), jitter_ms,
    skew_ms, regular (counted in min/mean/max), seq_error.
    """
    keys, gr = Grouped.of(rtp)
    if not len(gr.order):
        return pl.DataFrame(schema={"stream_id": pl.Utf8, "frame": pl.UInt32, "ts_ns": pl.Int64})
    arrays = Columns(rtp)
    pt, clock, _ = _clocks(keys, gr, arrays, payload_map)
    s = _series(arrays, gr, _t0(rtp, t0_ns), pt, clock)
    cols = ["t_ms", "idx", "seq", "ext_seq", "ext_ts", "payload_type", "marker", "in_time", "clock_rate",
            "delta_ms", "diff_ms", "jitter_ms", "skew_ms", "regular", "seq_error"]
    ids = keys["stream_id"].to_numpy()[gr.stream]
    frame = pl.DataFrame({"stream_id": ids, "frame": gr.col(arrays, "frame"), "ts_ns": gr.col(arrays, "ts_ns"),
                          **{c: s[c] for c in cols}})
    return frame.with_columns(pl.col("diff_ms").fill_nan(None), pl.col("payload_type").cast(pl.UInt8))


def _running_mean(gr: Grouped, value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Wireshark's mean: m = (m * (n - 1) + x) / n on masked packets, n = packets before this one.

    Unrolled: m = sum_k x_k / n_k * prod_{j > k} (n_j - 1) / n_j over the masked packets of a stream.
    """
    n = np.maximum(gr.idx, 1).astype(np.float64)
    log_f = np.where(mask & (gr.idx > 1), np.log1p(-1.0 / np.maximum(n, 2.0)), 0.0)
    total = np.add.reduceat(log_f, gr.starts)
    after = np.repeat(total, gr.lengths) - gr.cumsum(log_f)  # sum over later masked packets
    term = np.where(mask, value / n * np.exp(after), 0.0)
    return np.add.reduceat(term, gr.starts)


def _masked(reduce, x: np.ndarray, mask: np.ndarray, starts: np.ndarray, empty: float, neutral: float):
    out = reduce.reduceat(np.where(mask, x, neutral), starts)
    return np.where(out == neutral, empty, out)


def stream_stats(rtp: pl.DataFrame, *, t0_ns: int | None = None, payload_map: pl.DataFrame | None = None,
                 batch_packets: int = CHUNK_PACKETS) -> pl.DataFrame:
    """One row per stream (order of first packet) with Wireshark's statistics and flowviz extras.

    Streams are analysed in batches of about `batch_packets` packets, so memory stays bounded.
    """
    keys, everything = Grouped.of(rtp)
    if not len(everything.order):
        return keys.with_columns(packets=pl.lit(0, pl.Int64))
    t0 = _t0(rtp, t0_ns)
    cols = Columns(rtp)
    parts, codecs = [], []
    for gr in everything.batches(batch_packets):
        pt, clock, pts = _clocks(keys, gr, cols, payload_map)
        parts.append(_batch_stats(cols, gr, t0, pt, clock))
        codecs.append(_codecs(pts))
    return keys.join(pl.concat(parts), on=G, how="left").join(pl.concat(codecs), on=G, how="left").sort(G)


def _batch_stats(rtp: Columns, gr: Grouped, t0: int, pt: np.ndarray, clock: np.ndarray) -> pl.DataFrame:
    s = _series(rtp, gr, t0, pt, clock)
    st, n = gr.starts, gr.lengths
    last = st + n - 1
    reg = s["regular"]
    jreg = reg & (clock > 0)
    inf = np.inf
    start_ns, end_ns = rtp["ts_ns"][gr.order[st]], rtp["ts_ns"][gr.order[last]]
    seq = s["seq"]
    cycles = _cycles(gr, seq, s["in_time"])
    expected = seq[last] + cycles * 65536 - seq[st] + 1
    lost = expected - n
    ext_seq = s["ext_seq"]
    seq_errors = np.add.reduceat(s["seq_error"].astype(np.int64), st)
    duplicates, bursts = _duplicates_and_gaps(gr, ext_seq, seq_errors > 0)
    skew = s["skew_ms"]
    abs_skew = np.where(np.isnan(skew), -1, np.abs(skew))
    skew_at = np.array([st[i] + int(np.argmax(abs_skew[st[i]:st[i] + n[i]])) for i in range(len(st))])
    max_prev = gr.prev(gr.cummax(ext_seq), fill=np.iinfo(np.int64).min)
    return pl.DataFrame({
        G: np.arange(gr.base, gr.base + len(st), dtype=np.uint32),
        "packets": n, "expected": expected, "lost": lost,
        "lost_pct": np.where(expected != 0, lost * 100.0 / np.where(expected != 0, expected, 1), 0.0),
        "seq_errors": seq_errors,
        "min_delta_ms": _masked(np.minimum, s["delta_ms"], reg, st, -1.0, inf),
        "mean_delta_ms": _running_mean(gr, s["delta_ms"], reg),
        "max_delta_ms": _masked(np.maximum, s["delta_ms"], reg, st, 0.0, -inf),
        "min_jitter_ms": _masked(np.minimum, s["jitter_ms"], jreg, st, -1.0, inf),
        "mean_jitter_ms": _running_mean(gr, s["jitter_ms"], jreg),
        "max_jitter_ms": _masked(np.maximum, s["jitter_ms"], jreg, st, 0.0, -inf),
        "max_skew_ms": skew[skew_at],
        "first_frame": rtp["frame"][gr.order[st]],
        "start_ts_ns": start_ns, "end_ts_ns": end_ns,
        "start_ms": s["t_ms"][st], "end_ms": s["t_ms"][last],
        "duration_s": (end_ns - start_ns) / 1e9,
        "markers": np.add.reduceat(s["marker"].astype(np.int64), st),
        "comfort_noise": np.add.reduceat(s["comfort_noise"].astype(np.int64), st),
        "duplicates": duplicates,
        "loss_bursts": bursts,
        "out_of_order": np.add.reduceat((ext_seq < max_prev).astype(np.int64), st),
        "wrong_timestamps": np.add.reduceat((~s["in_time"]).astype(np.int64), st),
    })


def _duplicates_and_gaps(gr: Grouped, ext_seq: np.ndarray, suspect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per stream: packets whose extended sequence number was already seen, and loss bursts (gaps in
    the received numbers). Only streams with sequence errors can have either: a duplicate or a gap is
    never the next expected number."""
    dups, gaps = np.zeros(len(gr.starts), np.int64), np.zeros(len(gr.starts), np.int64)
    rows = suspect[gr.stream]
    if rows.any():
        stream, seq = gr.stream[rows], ext_seq[rows]
        order = np.lexsort((seq, stream))
        s_seq, s_stream = seq[order], stream[order]
        same = s_stream[1:] == s_stream[:-1]
        dups += np.bincount(s_stream[1:][same & (s_seq[1:] == s_seq[:-1])], minlength=len(gr.starts))
        gaps += np.bincount(s_stream[1:][same & (s_seq[1:] > s_seq[:-1] + 1)], minlength=len(gr.starts))
    return dups, gaps


def _cycles(gr: Grouped, seq: np.ndarray, in_time: np.ndarray) -> np.ndarray:
    """Sequence wrap count: Wireshark's `seq_cycles`/`under` toggle, per stream.

    `under` is set by an in-time packet below the first sequence number (or 0 right after 65535) and
    cleared by one above it; each False -> True change is one more cycle.
    """
    start = np.repeat(seq[gr.starts], gr.lengths)
    a = (seq < start) | ((seq == 0) & (gr.prev(seq, fill=-1) == 65535))
    b = seq > start
    ev = ~gr.first & in_time & (a | b)
    ea, es = a[ev], gr.stream[ev]
    rise = ea.copy()
    rise[1:] &= ~(ea[:-1] & (es[1:] == es[:-1]))
    return np.bincount(es[rise], minlength=len(gr.starts)).astype(np.int64)


def _codecs(pts: pl.DataFrame) -> pl.DataFrame:
    """Payload types per stream (numeric order) with names, and the main one (first that is neither
    comfort noise nor telephone-event) with its clock rate (0 = unknown)."""
    rows: dict[int, list] = {}
    for stream, pt, enc, clock in pts.select([G, "payload_type", "encoding", "clock_rate"]).iter_rows():
        rows.setdefault(stream, []).append((pt, codec_name(pt, enc), clock))
    data = []
    for stream, items in rows.items():
        media = [i for i in items if i[0] not in COMFORT_NOISE and not i[1].lower().startswith("telephone-event")]
        main = (media or items)[0]
        data.append((stream, [i[0] for i in items], ", ".join(i[1] for i in items), main[0], main[1], main[2]))
    return pl.DataFrame(data, orient="row", schema={
        G: pl.UInt32, "payload_types": pl.List(pl.UInt8), "codecs": pl.Utf8, "payload_type": pl.UInt8,
        "codec": pl.Utf8, "clock_rate": pl.Int64})

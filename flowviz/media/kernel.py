"""Compiled RTP stream analysis: Wireshark 4.0's rtppacket_analyse() run one packet at a time, per stream.

Two passes over the packets in capture order, compiled by numba (the packet kernel of
flowviz.ingest.kernel is compiled for the same reason: the rules are a per-packet state machine, and a
loop runs it at memory speed, where the vectorized numpy form needed ~30 full-size temporary arrays and
~0.3 s per million packets; docs/architecture.md section 6):

- group_streams(): a stream index per packet (key src ip:port, dst ip:port, SSRC; streams numbered in
  order of their first packet) and which payload types each stream carries (their clock rates come
  from SDP, looked up in Python between the passes).
- analyse_streams(): Wireshark's per-packet rules (formulas and sources: docs/media.md), each packet
  updating its stream's state; per-stream statistics, and optionally the per-packet series for plots.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import njit

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)

CN_NEW, CN_OLD = 13, 19  # comfort noise payload types (PT_CN, PT_CN_OLD): not counted in delta/jitter

# Columns of the integer per-stream result
I_PACKETS, I_EXPECTED, I_SEQ_ERRORS, I_DUPLICATES, I_LOSS_BURSTS, I_FIRST_ROW, I_LAST_ROW = range(7)
I_MARKERS, I_COMFORT_NOISE, I_OUT_OF_ORDER, I_WRONG_TIMESTAMPS = range(7, 11)
# capture time going backwards inside the stream: packets that arrived "before" the packet captured ahead of
# them, and the row of the first one (-1: none); no Wireshark statistic uses them
I_TIME_BACKWARDS, I_FIRST_BACKWARDS_ROW = range(11, 13)
INT_COLUMNS = 13
# Columns of the float per-stream result
(F_MIN_DELTA, F_MEAN_DELTA, F_MAX_DELTA, F_MIN_JITTER, F_MEAN_JITTER, F_MAX_JITTER, F_MAX_SKEW, F_START_MS,
 F_END_MS, F_MAX_BACKWARDS_MS) = range(10)
FLOAT_COLUMNS = 10


@njit(cache=True, nogil=True)
def group_streams(src_h, dst_h, ssrc, sport, dport, payload_type):
    """(stream index per packet, first row of each stream, packets per stream, payload-type masks).

    src_h/dst_h are 64-bit hashes of the address texts, compared as the addresses themselves.
    Streams are numbered in order of their first packet; pt_mask[s, w] has bit b set when stream s
    carries payload type 64 * w + b.
    """
    n = len(ssrc)
    stream_of = np.empty(n, dtype=np.int64)
    capacity = 256
    key_src = np.empty(capacity, dtype=np.uint64)
    key_dst = np.empty(capacity, dtype=np.uint64)
    key_rest = np.empty(capacity, dtype=np.uint64)  # SSRC, source port, destination port in one word
    heads = np.empty(capacity, dtype=np.int64)  # first packet row of each stream
    slot_stream = np.full(4 * capacity, -1, dtype=np.int64)
    done, streams = _number_streams(src_h, dst_h, ssrc, sport, dport, 0, stream_of, slot_stream,
                                    key_src, key_dst, key_rest, heads, 0)
    while done < n:  # the tables are full: double them and go on from the packet that did not fit
        capacity *= 2
        key_src, key_dst, key_rest, heads = _grown(key_src), _grown(key_dst), _grown(key_rest), _grown(heads)
        slot_stream = np.full(4 * capacity, -1, dtype=np.int64)
        for s in range(streams):
            slot = _free_slot(slot_stream, _key_hash(key_src[s], key_dst[s], key_rest[s]))
            slot_stream[slot] = s
        done, streams = _number_streams(src_h, dst_h, ssrc, sport, dport, done, stream_of, slot_stream,
                                        key_src, key_dst, key_rest, heads, streams)
    lengths = np.zeros(streams, dtype=np.int64)
    pt_mask = np.zeros((streams, 2), dtype=np.uint64)
    for i in range(n):
        s = stream_of[i]
        lengths[s] += 1
        pt = np.int64(payload_type[i]) & 127
        pt_mask[s, pt >> 6] |= np.uint64(1) << np.uint64(pt & 63)
    return stream_of, heads[:streams].copy(), lengths, pt_mask


@njit(cache=True, nogil=True)
def _number_streams(src_h, dst_h, ssrc, sport, dport, start, stream_of, slot_stream, key_src, key_dst, key_rest,
                    heads, streams):
    """Stream index of packets from `start` on, until the end or until the tables are full;
    returns (first packet not numbered, streams so far).

    The key table is open addressing with linear probing, kept at most a quarter full, with each
    stream's key stored beside it (one compare per probe). No array is replaced inside the loop:
    that would make numba count references on every packet (5x slower, measured).
    """
    mask = np.uint64(len(slot_stream) - 1)
    for i in range(start, len(ssrc)):
        a, b = src_h[i], dst_h[i]
        c = (np.uint64(ssrc[i]) << np.uint64(32)) | (np.uint64(sport[i]) << np.uint64(16)) | np.uint64(dport[i])
        slot = np.int64(_key_hash(a, b, c) & mask)
        while True:
            s = slot_stream[slot]
            if s < 0 or (key_src[s] == a and key_dst[s] == b and key_rest[s] == c):
                break
            slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)
        if s < 0:  # a new stream
            if streams == len(heads):
                return i, streams
            s = streams
            key_src[s], key_dst[s], key_rest[s], heads[s] = a, b, c, i
            slot_stream[slot] = s
            streams += 1
        stream_of[i] = s
    return len(ssrc), streams


@njit(cache=True, nogil=True)
def _key_hash(a, b, c):
    x = (a * _M1) ^ b
    x = ((x ^ (x >> np.uint64(31))) * _M2) ^ c
    x = (x ^ (x >> np.uint64(29))) * _M3
    return x ^ (x >> np.uint64(32))


@njit(cache=True, nogil=True)
def _free_slot(slot_stream, h):
    mask = np.uint64(len(slot_stream) - 1)
    slot = np.int64(h & mask)
    while slot_stream[slot] >= 0:
        slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)
    return slot


@njit(cache=True, nogil=True)
def _grown(values):
    return np.concatenate((values, np.empty(len(values), dtype=values.dtype)))


@njit(cache=True, nogil=True)
def stream_order(stream_of, lengths):
    """Packet rows stream by stream, capture order inside each stream (a stable counting sort)."""
    fill = np.zeros(len(lengths), dtype=np.int64)
    for s in range(1, len(lengths)):
        fill[s] = fill[s - 1] + lengths[s - 1]
    order = np.empty(len(stream_of), dtype=np.int64)
    for i in range(len(stream_of)):
        s = stream_of[i]
        order[fill[s]] = i
        fill[s] += 1
    return order


@njit(cache=True, nogil=True)
def _ms(ts_ns, t0):
    """Milliseconds since t0 as Wireshark's nstime_delta() + nstime_to_msec() compute them."""
    rel = ts_ns - t0
    secs = rel // 1_000_000_000 if rel >= 0 else -((-rel) // 1_000_000_000)
    return np.float64(secs) * 1000.0 + np.float64(rel - secs * 1_000_000_000) / 1_000_000.0


@njit(cache=True, nogil=True)
def _clock(pair_start, pair_pt, pair_clock, s, pt):
    for k in range(pair_start[s], pair_start[s + 1]):
        if pair_pt[k] == pt:
            return pair_clock[k]
    return 0


@njit(cache=True, nogil=True)
def analyse_streams(stream_of, heads, lengths, ts_ns, seq16, rtp_ts, marker, payload_type, t0,
                    pair_start, pair_pt, pair_clock, series):
    """Per-stream statistics (ints, floats: the I_* and F_* columns) and, when `series` is True, the
    per-packet values in capture order (else arrays of length 0).

    Packets are visited in capture order, each updating its own stream's state (arrays indexed by
    stream, small enough to stay in cache). Clock rate of a packet: pair_clock[k] for the k in
    pair_start[s]..pair_start[s+1] whose pair_pt is its payload type (0 = unknown: no jitter).
    Packets "out of time sequence" (timestamp before the stream's first, modulo 2^32) are not timed
    and do not move the reference, as in Wireshark 4.0.
    """
    n_streams, n = len(heads), len(stream_of)
    ints = np.zeros((n_streams, INT_COLUMNS), dtype=np.int64)
    floats = np.zeros((n_streams, FLOAT_COLUMNS), dtype=np.float64)
    # each stream's state, carried from one of its packets to the next
    seen = np.zeros(n_streams, dtype=np.int64)  # packets so far
    t_first = np.empty(n_streams, dtype=np.float64)
    ts_first = np.empty(n_streams, dtype=np.int64)
    seq_first = np.empty(n_streams, dtype=np.int64)
    t_ref = np.empty(n_streams, dtype=np.float64)  # arrival of the last packet in time sequence
    nominal_ref = np.zeros(n_streams, dtype=np.float64)  # RTP time (ms) of the last packet timed
    jitter = np.zeros(n_streams, dtype=np.float64)
    skew = np.zeros(n_streams, dtype=np.float64)  # as of the last packet timed
    max_skew = np.zeros(n_streams, dtype=np.float64)
    ext_seq = np.empty(n_streams, dtype=np.int64)  # sequence number and timestamp with their wraps
    ext_ts = np.empty(n_streams, dtype=np.int64)
    prev_seq = np.empty(n_streams, dtype=np.int64)
    prev_ts = np.empty(n_streams, dtype=np.int64)
    prev_pt = np.empty(n_streams, dtype=np.int64)
    max_checked = np.empty(n_streams, dtype=np.int64)  # last in-order number: Wireshark's statinfo->sequence
    max_seq = np.empty(n_streams, dtype=np.int64)  # highest extended number so far (out-of-order count)
    under = np.zeros(n_streams, dtype=np.bool_)  # Wireshark's wrap toggle
    prev_ns = np.empty(n_streams, dtype=np.int64)  # arrival of the packet captured before (time order check)
    cycles = np.zeros(n_streams, dtype=np.int64)
    min_d = np.full(n_streams, np.inf)
    max_d = np.full(n_streams, -np.inf)
    mean_d = np.zeros(n_streams, dtype=np.float64)
    min_j = np.full(n_streams, np.inf)
    max_j = np.full(n_streams, -np.inf)
    mean_j = np.zeros(n_streams, dtype=np.float64)
    m = n if series else 0
    t_out = np.empty(m, dtype=np.float64)
    ext_seq_out = np.empty(m, dtype=np.int64)
    ext_ts_out = np.empty(m, dtype=np.int64)
    in_time_out = np.empty(m, dtype=np.bool_)
    clock_out = np.empty(m, dtype=np.int64)
    delta_out = np.empty(m, dtype=np.float64)
    diff_out = np.empty(m, dtype=np.float64)
    jitter_out = np.empty(m, dtype=np.float64)
    skew_out = np.empty(m, dtype=np.float64)
    regular_out = np.empty(m, dtype=np.bool_)
    seq_error_out = np.empty(m, dtype=np.bool_)
    for r in range(n):
        s = stream_of[r]
        k = seen[s]
        t = _ms(ts_ns[r], t0)
        seq = np.int64(seq16[r])
        ts = np.int64(rtp_ts[r])
        pt = np.int64(payload_type[r]) & 127
        clock = _clock(pair_start, pair_pt, pair_clock, s, pt)
        cn = pt == CN_NEW or pt == CN_OLD
        first = k == 0
        if not first and ts_ns[r] < prev_ns[s]:  # the capture's clock went back: counted, never corrected
            if ints[s, I_TIME_BACKWARDS] == 0:
                ints[s, I_FIRST_BACKWARDS_ROW] = r
            ints[s, I_TIME_BACKWARDS] += 1
            floats[s, F_MAX_BACKWARDS_MS] = max(floats[s, F_MAX_BACKWARDS_MS], (prev_ns[s] - ts_ns[r]) / 1e6)
        prev_ns[s] = ts_ns[r]
        if first:
            t_first[s], ts_first[s], seq_first[s], t_ref[s] = t, ts, seq, t
            ext_seq[s], ext_ts[s], max_checked[s], max_seq[s] = seq, ts, seq, seq
            prev_pt[s] = -1
            in_time, nominal, delta = True, 0.0, 0.0
        else:
            d_ts = (ts - prev_ts[s]) & 0xFFFFFFFF  # wrap-aware differences, read as signed
            ext_ts[s] += d_ts - 0x100000000 if d_ts >= 0x80000000 else d_ts
            d_seq = (seq - prev_seq[s]) & 0xFFFF
            ext_seq[s] += d_seq - 0x10000 if d_seq >= 0x8000 else d_seq
            since = (ts - ts_first[s]) & 0xFFFFFFFF
            in_time = since < 0x80000000
            nominal = since / max(clock // 1000, 1)  # integer kHz, as `clock_rate/1000` on a guint32
            delta = t - t_ref[s]
        timed = (not first) and in_time and clock > 0
        diff = np.nan
        if timed:
            diff = abs(t - (t_ref[s] + nominal - nominal_ref[s]))
            jitter[s] = (15.0 * jitter[s] + diff) / 16.0
        if first or timed:
            skew[s] = nominal - (t - t_first[s])
            if abs(skew[s]) > abs(max_skew[s]):
                max_skew[s] = skew[s]
        regular = (not first) and (not marker[r]) and in_time and not cn \
            and prev_pt[s] != CN_NEW and prev_pt[s] != CN_OLD
        seq_error = False
        if not first:
            seq_num = max_checked[s] % 65536
            ok = in_time and (seq == seq_num + 1 or (seq_num == 65535 and seq == 0))
            bad = (in_time and (seq_num + 1 < seq or seq_num - seq > 0xFF00)) or seq_num + 1 > seq
            seq_error = (not ok) and bad
            below = seq < seq_first[s] or (seq == 0 and prev_seq[s] == 65535)
            if in_time and (below or seq > seq_first[s]):
                if below and not under[s]:
                    cycles[s] += 1
                under[s] = below
            if ext_seq[s] < max_seq[s]:
                ints[s, I_OUT_OF_ORDER] += 1
        if regular:  # Wireshark's running means: m = (m * (n - 1) + x) / n, n = packets before this one
            min_d[s] = min(min_d[s], delta)
            max_d[s] = max(max_d[s], delta)
            mean_d[s] = (mean_d[s] * (k - 1) + delta) / k
            if clock > 0:
                min_j[s] = min(min_j[s], jitter[s])
                max_j[s] = max(max_j[s], jitter[s])
                mean_j[s] = (mean_j[s] * (k - 1) + jitter[s]) / k
        ints[s, I_SEQ_ERRORS] += seq_error
        ints[s, I_WRONG_TIMESTAMPS] += not in_time
        ints[s, I_MARKERS] += marker[r]
        ints[s, I_COMFORT_NOISE] += cn
        if series:
            t_out[r], ext_seq_out[r], ext_ts_out[r], in_time_out[r] = t, ext_seq[s], ext_ts[s], in_time
            clock_out[r], delta_out[r], diff_out[r], jitter_out[r] = clock, delta, diff, jitter[s]
            skew_out[r], regular_out[r], seq_error_out[r] = skew[s], regular, seq_error
        # what the stream's next packet compares itself with
        if in_time:
            t_ref[s] = t
            max_checked[s] = max(max_checked[s], ext_seq[s])
        if first or timed:
            nominal_ref[s] = nominal
        max_seq[s] = max(max_seq[s], ext_seq[s])
        prev_seq[s], prev_ts[s], prev_pt[s] = seq, ts, pt
        ints[s, I_LAST_ROW] = r
        seen[s] = k + 1
    for s in range(n_streams):
        r0, r_last = heads[s], ints[s, I_LAST_ROW]
        ints[s, I_PACKETS] = seen[s]
        ints[s, I_EXPECTED] = np.int64(seq16[r_last]) + cycles[s] * 65536 - seq_first[s] + 1
        ints[s, I_FIRST_ROW] = r0
        if ints[s, I_TIME_BACKWARDS] == 0:
            ints[s, I_FIRST_BACKWARDS_ROW] = -1
        floats[s, F_MIN_DELTA] = min_d[s] if min_d[s] != np.inf else -1.0
        floats[s, F_MEAN_DELTA] = mean_d[s]
        floats[s, F_MAX_DELTA] = max_d[s] if max_d[s] != -np.inf else 0.0
        floats[s, F_MIN_JITTER] = min_j[s] if min_j[s] != np.inf else -1.0
        floats[s, F_MEAN_JITTER] = mean_j[s]
        floats[s, F_MAX_JITTER] = max_j[s] if max_j[s] != -np.inf else 0.0
        floats[s, F_MAX_SKEW] = max_skew[s]
        floats[s, F_START_MS] = t_first[s]
        floats[s, F_END_MS] = _ms(ts_ns[r_last], t0)
    if (ints[:, I_SEQ_ERRORS] > 0).any():  # a duplicate or a gap is never the next expected number
        order = stream_order(stream_of, lengths)
        begin = 0
        for s in range(n_streams):
            if ints[s, I_SEQ_ERRORS]:
                ints[s, I_DUPLICATES], ints[s, I_LOSS_BURSTS] = _duplicates_and_gaps(
                    order[begin:begin + lengths[s]], seq16)
            begin += lengths[s]
    packets = (t_out, ext_seq_out, ext_ts_out, in_time_out, clock_out, delta_out, diff_out, jitter_out, skew_out,
               regular_out, seq_error_out)
    return ints, floats, packets


@njit(cache=True, nogil=True)
def _duplicates_and_gaps(rows, seq16):
    """(packets whose extended sequence number was already seen, gaps in the received numbers) of one stream."""
    ext = np.empty(len(rows), dtype=np.int64)
    ext[0] = np.int64(seq16[rows[0]])
    for k in range(1, len(rows)):
        d = (np.int64(seq16[rows[k]]) - np.int64(seq16[rows[k - 1]])) & 0xFFFF
        ext[k] = ext[k - 1] + (d - 0x10000 if d >= 0x8000 else d)
    ext.sort()
    duplicates, gaps = 0, 0
    for k in range(1, len(ext)):
        if ext[k] == ext[k - 1]:
            duplicates += 1
        elif ext[k] > ext[k - 1] + 1:
            gaps += 1
    return duplicates, gaps


def _load() -> None:
    """Load the compiled functions from numba's cache for the argument types stats.py passes (its
    columns are read-only views of polars' memory; another type would load again at the call)."""
    def readonly(dtype):
        array = np.zeros(2, dtype=dtype)
        array.flags.writeable = False
        return array

    i64 = np.zeros(2, dtype=np.int64)
    calls = [
        (group_streams, tuple(readonly(d) for d in (np.uint64, np.uint64, np.uint32, np.uint16, np.uint16, np.uint8))),
        (analyse_streams, (i64, i64, i64, readonly(np.int64), readonly(np.uint16), readonly(np.uint32),
                           readonly(np.bool_), readonly(np.uint8), 0, i64, i64, i64, True)),
        (stream_order, (i64, i64)),
    ]
    for function, args in calls:
        function.compile(tuple(numba.typeof(a) for a in args))


# Loading the compiled code from numba's cache takes 0.02-0.03 s (longer while numba's runtime is still
# starting): begin at import, in the background, so it is done before the statistics are needed.
threading.Thread(target=_load, name="flowviz-media-kernel-load", daemon=True).start()

"""Timeline: where each RTP packet's samples go in a stream's audio, and which spans are gaps.

Packets are put in sequence-number order (extended over wrap-arounds, RFC 3550 A.1; a duplicate keeps its
first copy), and each is placed by its RTP timestamp, counted from the first packet of its segment, which is
placed at its arrival time. A new segment starts where the timestamp and the arrival clock disagree: the
timestamp advanced by more than JUMP_NS more (or less) than the arrival time did (a sender restart, an SBC
rewriting timestamps), or by more than MARKER_JUMP_NS at a packet with the marker bit (the first packet of a
talkspurt, RFC 3551 4.1, is where a sender may start its clock again). Should small disagreements add up to
a packet placed more than DRIFT_LIMIT_NS from its arrival, the timestamps are not trusted and every packet is
placed at its arrival time. Sequence numbers missing between two
packets are lost packets: their span stays silent and is marked. A new SSRC is a new stream (its own
timeline) because flowviz keys streams by SSRC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowviz.audio.jitter_buffer import playout

JUMP_NS = 1_000_000_000
MARKER_JUMP_NS = 100_000_000
BLOCK = 1 << 14  # chunks placed at a time: 16,384 Opus packets of 20 ms are 15.7M samples, 63 MB of indexes
DRIFT_LIMIT_NS = 60_000_000_000  # a packet placed a minute away from its arrival: the timestamps are not a clock


@dataclass
class Placement:
    """The packets of one stream that are played, in sequence order, and where."""

    rows: np.ndarray  # row numbers (into the stream's packets) of the played packets, in sequence order
    start: np.ndarray  # first sample of each, counted from t0 at the output rate (int64)
    lost_before: np.ndarray  # packets missing (sequence numbers never seen) just before each
    late_rows: np.ndarray  # rows dropped by the jitter buffer
    late_start: np.ndarray  # where their samples would have started
    step: int  # the usual packet duration in samples (median timestamp step), for marks of dropped packets


def unwrap(values: np.ndarray, bits: int) -> np.ndarray:
    """Values of a `bits`-bit counter extended to int64, each step taken as the shortest way round."""
    v = values.astype(np.int64)
    if len(v) == 0:
        return v
    half, full = 1 << (bits - 1), 1 << bits
    steps = (np.diff(v) + half) % full - half
    return np.concatenate([v[:1], v[0] + np.cumsum(steps)])


def place(ts_ns: np.ndarray, seq: np.ndarray, rtp_ts: np.ndarray, marker: np.ndarray, clock: int, rate: int,
          t0_ns: int, jitter_buffer_ms: float | None = None, events: np.ndarray | None = None) -> Placement:
    """Placement of a stream's packets (arrays in capture order) at `rate` samples per second from t0_ns.

    `events` marks the packets whose timestamp is not their playout time (RFC 4733 events all carry their
    event's start): a jitter buffer never finds them late."""
    ext_seq = unwrap(seq, 16)
    order = np.argsort(ext_seq, kind="stable")
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = np.diff(ext_seq[order]) != 0  # duplicates: the first copy to arrive plays
    rows = order[keep]
    arrival = ts_ns.astype(np.int64)[rows]
    ext_ts = unwrap(rtp_ts[rows], 32)
    s = ext_seq[rows]
    lost = np.zeros(len(rows), dtype=np.int64)
    lost[1:] = np.diff(s) - 1

    # segments: where the timestamp and the arrival clock disagree, from one timed packet to the next (an event
    # packet's timestamp is its event's start, not its own time)
    timed = np.flatnonzero(~events[rows]) if events is not None else np.arange(len(rows))
    ts_step_ns = np.diff(ext_ts[timed]) * 1_000_000_000 // clock
    mismatch = np.abs(ts_step_ns - np.diff(arrival[timed]))
    new = np.zeros(len(rows), dtype=bool)
    new[timed[1:]] = (mismatch > JUMP_NS) | (marker[rows][timed[1:]] & (mismatch > MARKER_JUMP_NS))
    new[:1] = True
    placed_ns, offset = _anchored(new, arrival, ext_ts, clock)
    if len(rows) and np.abs(placed_ns - arrival).max() > DRIFT_LIMIT_NS:
        # timestamps that drift from the arrival clock by small steps that add up (a broken or hostile sender):
        # every packet is placed at its arrival, so the audio never runs far beyond the capture's time
        placed_ns, offset = _anchored(np.ones(len(rows), dtype=bool), arrival, ext_ts, clock)
    play_ns, late = playout(arrival, placed_ns, jitter_buffer_ms)
    if events is not None:
        late &= ~events[rows]
    # sample positions in integers: the segment's start rounded once, the timestamp offsets exactly
    seg_start = (play_ns - offset * 1_000_000_000 // clock - t0_ns) * rate // 1_000_000_000
    start = seg_start + offset * rate // clock
    steps = np.diff(ext_ts)
    step = int(np.median(steps[steps > 0])) * rate // clock if (steps > 0).any() else rate // 50
    played = ~late
    # packets never seen before a dropped one count toward the next played one (drops are marked on their own)
    seen = np.cumsum(lost)[played]
    lost_before = np.diff(seen, prepend=0)
    return Placement(rows[played], start[played], lost_before, rows[late], start[late], step)


def _anchored(new: np.ndarray, arrival: np.ndarray, ext_ts: np.ndarray, clock: int) -> tuple[np.ndarray, np.ndarray]:
    """(time each packet is placed at, its timestamp offset from its segment's first packet): segments start
    where `new` is set, at their first packet's arrival."""
    segment = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    offset = ext_ts - ext_ts[first][segment]
    return arrival[first][segment] + offset * 1_000_000_000 // clock, offset


def assemble(starts: np.ndarray, samples: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """int16 samples: chunk k (the next lengths[k] of `samples`) written from starts[k] on, later chunks over
    earlier ones, silence where none is."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int((starts + lengths).max()) if len(starts) else 0
    out = np.zeros(max(total, 0), dtype=np.int16)
    if not lengths.sum():
        return out
    first = np.cumsum(lengths) - lengths  # where each chunk begins in `samples`
    ends = starts + lengths
    if (starts >= 0).all() and (starts[1:] >= ends[:-1]).all():  # no overlap: one assignment per block
        index = np.int32 if total < 2**31 else np.int64  # half the memory for anything under 12 hours at 48 kHz
        for b in range(0, len(starts), BLOCK):  # blocks of chunks bound the index arrays (a long Opus call)
            part = slice(b, b + BLOCK)
            dest = np.repeat((starts[part] - first[part]).astype(index), lengths[part])
            begin = int(first[b])
            dest += np.arange(begin, begin + len(dest), dtype=index)
            out[dest] = samples[begin:begin + len(dest)]
        return out
    for s, f, n in zip(starts.tolist(), first.tolist(), lengths.tolist()):  # overlaps (timestamp jumps): in order
        if s < 0:
            f, n, s = f - s, n + s, 0
        if n > 0:
            out[s:s + n] = samples[f:f + n]
    return out

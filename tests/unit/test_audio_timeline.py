"""Placing RTP packets in time (flowviz/audio/timeline.py, jitter_buffer.py) and reading RFC 2198 payloads:
pure functions on arrays built here, so every expected position comes from the construction."""

from __future__ import annotations

import numpy as np
import polars as pl

from flowviz.audio.payloads import payload_starts, red_primary
from flowviz.audio.timeline import assemble, place, unwrap

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def packets(n: int, *, ptime_ms: int = 20, clock: int = 8000, seq0: int = 0, ts0: int = 0):
    """n packets sent every ptime, arriving exactly on time: (ts_ns, seq, rtp_ts, marker)."""
    k = np.arange(n)
    return (T0 + k * ptime_ms * MS, (seq0 + k) % 65536, (ts0 + k * clock * ptime_ms // 1000) % 2**32,
            k == 0)


def test_unwrap_counts_on_over_the_wrap():
    assert unwrap(np.array([65534, 65535, 0, 1]), 16).tolist() == [65534, 65535, 65536, 65537]
    assert unwrap(np.array([2**32 - 160, 0, 160]), 32).tolist() == [2**32 - 160, 2**32, 2**32 + 160]
    assert unwrap(np.array([5, 3, 4]), 16).tolist() == [5, 3, 4]  # reordered, not wrapped


def test_packets_on_time_are_placed_end_to_end_across_wraps():
    ts, seq, rtp_ts, marker = packets(10, seq0=65530, ts0=2**32 - 480)
    where = place(ts, seq, rtp_ts, marker, 8000, 8000, T0)
    assert where.start.tolist() == [160 * k for k in range(10)]
    assert where.lost_before.tolist() == [0] * 10


def test_a_later_start_and_a_higher_output_rate_scale_the_positions():
    ts, seq, rtp_ts, marker = packets(3)
    where = place(ts + 100 * MS, seq, rtp_ts, marker, 8000, 16000, T0)  # 100 ms after t0, G.722: 16 kHz out
    assert where.start.tolist() == [1600, 1600 + 320, 1600 + 640]


def test_removed_packets_leave_their_place_and_are_counted():
    ts, seq, rtp_ts, marker = packets(10)
    keep = np.array([k not in (3, 4, 7) for k in range(10)])
    where = place(ts[keep], seq[keep], rtp_ts[keep], marker[keep], 8000, 8000, T0)
    assert where.start.tolist() == [160 * k for k in range(10) if k not in (3, 4, 7)]
    assert where.lost_before.tolist() == [0, 0, 0, 2, 0, 1, 0]  # kept: 0 1 2 5 6 8 9


def test_reordered_and_duplicated_packets_play_once_in_sequence_order():
    ts, seq, rtp_ts, marker = packets(5)
    order = [0, 2, 1, 3, 3, 4]  # packet 2 overtakes 1; 3 arrives twice
    arrival = np.array([ts[0], ts[1] + 1 * MS, ts[1] + 2 * MS, ts[3], ts[3] + 5 * MS, ts[4]])
    where = place(arrival, seq[order], rtp_ts[order], marker[order], 8000, 8000, T0)
    assert where.rows.tolist() == [0, 2, 1, 3, 5]
    assert where.start.tolist() == [0, 160, 320, 480, 640]


def test_silence_suppression_keeps_the_timestamp_gap():
    # a talkspurt, 1 s of silence (no packets, timestamps run on), then a new talkspurt with the marker bit
    ts, seq, rtp_ts, marker = packets(6)
    ts, rtp_ts = ts.copy(), rtp_ts.copy()
    ts[3:] += 1000 * MS
    rtp_ts[3:] += 8000
    marker = marker.copy()
    marker[3] = True
    where = place(ts, seq, rtp_ts, marker, 8000, 8000, T0)
    assert where.start.tolist() == [0, 160, 320, 8480, 8640, 8800]


def test_a_timestamp_jump_starts_a_new_segment_at_the_arrival_time():
    # the sender's timestamps jump by an hour's worth at packet 3; the packets keep arriving every 20 ms
    ts, seq, rtp_ts, marker = packets(6)
    rtp_ts = rtp_ts.copy()
    rtp_ts[3:] = (rtp_ts[3:] + 3600 * 8000) % 2**32
    where = place(ts, seq, rtp_ts, marker, 8000, 8000, T0)
    assert where.start.tolist() == [0, 160, 320, 480, 640, 800]


def test_the_jitter_buffer_drops_what_arrives_after_its_playout_time():
    ts, seq, rtp_ts, marker = packets(6)
    arrival = ts.copy()
    arrival[2] += 30 * MS  # 30 ms late: played by a 40 ms buffer, dropped by a 20 ms one
    arrival[4] += 50 * MS  # dropped by both
    wide = place(arrival, seq, rtp_ts, marker, 8000, 8000, T0, jitter_buffer_ms=40)
    assert wide.rows.tolist() == [0, 1, 2, 3, 5] and wide.late_rows.tolist() == [4]
    assert wide.start.tolist() == [320 + 160 * k for k in (0, 1, 2, 3, 5)]  # everything 40 ms (320 samples) later
    narrow = place(arrival, seq, rtp_ts, marker, 8000, 8000, T0, jitter_buffer_ms=20)
    assert narrow.late_rows.tolist() == [2, 4] and narrow.late_start.tolist() == [160 + 320, 160 + 640]
    without = place(arrival, seq, rtp_ts, marker, 8000, 8000, T0)
    assert without.rows.tolist() == [0, 1, 2, 3, 4, 5] and len(without.late_rows) == 0


def test_assemble_writes_each_chunk_at_its_start_and_leaves_the_rest_silent():
    samples = np.array([7] * 4 + [-2] * 3, dtype=np.int16)
    assert assemble(np.array([0, 10]), samples, np.array([4, 3])).tolist() == [7] * 4 + [0] * 6 + [-2] * 3
    # overlapping chunks (a timestamp jump back): the later one is written over the earlier
    assert assemble(np.array([2, 0]), samples, np.array([4, 3])).tolist() == [-2, -2, -2, 7, 7, 7]


def test_red_primary_is_the_last_block():
    # RFC 2198 section 3: one redundant block (PT 0, offset 160, 5 bytes), then the primary (PT 0, 3 bytes)
    header = ((1 << 31) | (0 << 24) | (160 << 10) | 5).to_bytes(4, "big") + bytes([0])
    assert red_primary(header + b"REDUN" + b"abc") == (0, b"abc")
    assert red_primary(bytes([96]) + b"xyz") == (96, b"xyz")  # no redundant block
    assert red_primary(header[:3]) is None and red_primary(header + b"RE") is None


def rtp_frame(rtp_ts: int, ssrc: int, payload: bytes, *, csrcs: int = 0, extension_words: int = 0,
              before: int = 42) -> bytes:
    first = 0x80 | (0x10 if extension_words else 0) | csrcs
    fixed = bytes([first, 0]) + (7).to_bytes(2, "big") + rtp_ts.to_bytes(4, "big") + ssrc.to_bytes(4, "big")
    extension = b"\xbe\xde" + extension_words.to_bytes(2, "big") + b"\0" * 4 * extension_words if extension_words else b""
    return b"\xff" * before + fixed + b"\0" * 4 * csrcs + extension + payload + b"\0\0\x02"  # 3 padding bytes


def test_payload_starts_skip_csrcs_and_extensions_and_find_moved_headers():
    ssrc = 0xCAFEBABE
    frames = [rtp_frame(100, ssrc, b"ONE"), rtp_frame(260, ssrc, b"TWO", csrcs=2, extension_words=1),
              rtp_frame(420, ssrc, b"SIX", before=50), rtp_frame(580, ssrc + 1, b"NOT")]
    data = b"HEAD" + b"".join(frames)
    offsets = np.cumsum([4] + [len(f) for f in frames[:-1]])
    caplens = np.array([len(f) for f in frames])
    packets = pl.DataFrame({"rtp_ts": [100, 260, 420, 580], "ssrc": [ssrc] * 4, "payload_len": [3] * 4},
                           schema={"rtp_ts": pl.UInt32, "ssrc": pl.UInt32, "payload_len": pl.UInt16})
    starts = payload_starts(data, offsets, caplens, packets)
    assert [data[s:s + 3] for s in starts[:3].tolist()] == [b"ONE", b"TWO", b"SIX"]
    assert starts[3] == -1  # its SSRC is not the one asked for: no header found


def test_timestamps_that_drift_away_from_the_clock_are_not_trusted():
    # each step claims 0.5 s more than the 20 ms the packets really are apart: under the 1 s jump rule every
    # time, but 150 steps would put the last packet 75 s after it arrived
    ts, seq, rtp_ts, marker = packets(150)
    rtp_ts = (np.arange(150) * (160 + 4000)) % 2**32
    where = place(ts, seq, rtp_ts, marker, 8000, 8000, T0)
    assert where.start.tolist() == [160 * k for k in range(150)]  # each packet at its arrival


def test_waveform_bins_keep_each_bins_extremes_on_the_time_axis():
    from flowviz.audio import Audio
    from flowviz.audio.track import Mark, Track
    from flowviz.audio.waveform import waveform

    samples = np.zeros(8000, dtype=np.int16)  # 1 s at 8 kHz: silence, one click up and one down
    samples[100], samples[7999] = 16384, -32768
    track = Track(samples, 8000, T0, ["s1"], ["PCMA"], [Mark("lost", 0.5, 0.52, "s1", "1 packet lost")])
    drawn = waveform(Audio([track], 8000, T0), points=4, origin_ns=T0 - 250 * MS)
    assert drawn["bin_ms"] == 250 and drawn["t_ms"] == [250, 500, 750, 1000]  # the audio starts 250 ms in
    channel = drawn["channels"][0]
    assert channel["max"] == [0.5, 0, 0, 0] and channel["min"] == [0, 0, 0, -1.0]
    assert channel["marks"] == [{"kind": "lost", "start_ms": 750, "end_ms": 770, "stream_id": "s1",
                                 "text": "1 packet lost"}]


def test_assemble_places_many_chunks_block_by_block():
    from flowviz.audio import timeline

    n = timeline.BLOCK * 2 + 5  # more chunks than one block: chunk k is 3 samples of value k, every 4 samples
    values = np.arange(n) % 30000
    out = assemble(np.arange(n) * 4, np.repeat(values, 3).astype(np.int16), np.full(n, 3))
    expected = np.zeros(4 * n - 1, dtype=np.int16)
    for k in range(3):
        expected[k::4] = values
    assert np.array_equal(out, expected)


def test_a_long_event_does_not_start_a_new_segment():
    # packets 5-84 are one RFC 4733 event of 1.6 s: all carry packet 5's timestamp; voice resumes at packet 85
    ts, seq, rtp_ts, marker = packets(100)
    rtp_ts = rtp_ts.copy()
    rtp_ts[5:85] = rtp_ts[5]
    events = np.zeros(100, dtype=bool)
    events[5:85] = True
    arrival = ts.copy()
    arrival[85:] += 3 * MS  # voice after the event arrives a little late: it must stay where its timestamp says
    where = place(arrival, seq, rtp_ts, marker, 8000, 8000, T0, events=events)
    assert where.start[85:].tolist() == [160 * k for k in range(85, 100)]
    without = place(arrival, seq, rtp_ts, marker, 8000, 8000, T0)  # taken as timed, the event breaks the segment
    assert without.start[85] == 160 * 85 + 24

"""Waveform: a track's samples reduced to `points` (min, max) pairs for drawing, on a time axis in ms.

For a front end that draws each direction of a call on the ladder's time axis: the call's audio starts at
the ladder's time 0 (flowviz.audio.call_audio), so the times here are ms from that origin unless another is
given. Amplitudes are fractions of full scale (-1..1).
"""

from __future__ import annotations

import numpy as np


def envelope(samples: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(min, max) of consecutive bins of samples, as fractions of full scale, and the bin size in samples."""
    if len(samples) == 0 or points <= 0:
        return np.zeros(0), np.zeros(0), 1
    size = max(1, -(-len(samples) // points))
    padded = np.zeros(-(-len(samples) // size) * size, dtype=np.int16)
    padded[:len(samples)] = samples
    bins = padded.reshape(-1, size)
    return bins.min(axis=1) / 32768.0, bins.max(axis=1) / 32768.0, size


def waveform(audio, points: int = 2000, origin_ns: int | None = None) -> dict:
    """{"t_ms": start of each bin, "bin_ms": width of a bin, "channels": [{"min", "max", "marks"}]} of an
    flowviz.audio.Audio; mark times in ms from the same origin (default: the audio's sample 0)."""
    origin = audio.t0_ns if origin_ns is None else origin_ns
    shift_ms = (audio.t0_ns - origin) / 1e6
    channels, size = [], 1
    for track in audio.channels:
        low, high, size = envelope(track.samples, points)
        marks = [{"kind": m.kind, "start_ms": m.start_s * 1000 + shift_ms, "end_ms": m.end_s * 1000 + shift_ms,
                  "stream_id": m.stream_id, "text": m.text} for m in track.marks]
        channels.append({"min": low.tolist(), "max": high.tolist(), "marks": marks, "streams": list(track.streams)})
    length = max((len(c["min"]) for c in channels), default=0)
    bin_ms = size * 1000 / audio.rate
    return {"t_ms": [shift_ms + i * bin_ms for i in range(length)], "bin_ms": bin_ms, "channels": channels}

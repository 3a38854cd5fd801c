"""Resampler: 16-bit mono samples from one rate to another, through PyAV's AudioResampler (FFmpeg's swresample).

Used where two rates meet: a stream whose payload types decode at different rates, and the two channels of a
call's WAV (both go to the higher rate). swresample keeps the timing: sample n at the old rate lands at
n * new / old, and the output has exactly len * new / old samples (checked in tests/unit/test_audio_timeline.py).
"""

from __future__ import annotations

import numpy as np


def resample(samples: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    if rate == to_rate or len(samples) == 0:
        return samples
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1), format="s16",
                                       layout="mono")
    frame.sample_rate = rate
    frames = list(resampler.resample(frame)) + list(resampler.resample(None))
    out = np.concatenate([f.to_ndarray()[0] for f in frames]) if frames else np.zeros(0, dtype=np.int16)
    want = len(samples) * to_rate // rate
    return out[:want] if len(out) >= want else np.concatenate([out, np.zeros(want - len(out), dtype=np.int16)])

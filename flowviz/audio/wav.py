"""WAV: 16-bit PCM RIFF/WAVE bytes of one or two channels (Python's wave module writes the header)."""

from __future__ import annotations

import io
import wave

import numpy as np


def wav_bytes(channels: list[np.ndarray], rate: int) -> bytes:
    """A WAV of these int16 channels at `rate` (the shorter ones padded with silence): mono or stereo."""
    length = max((len(c) for c in channels), default=0)
    frames = np.zeros((length, len(channels)), dtype="<i2")
    for i, c in enumerate(channels):
        frames[:len(c), i] = c
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames.tobytes())
    return out.getvalue()


def read_wav(data: bytes) -> tuple[list[np.ndarray], int]:
    """(channels as int16 arrays, rate) of a 16-bit PCM WAV."""
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError("not a 16-bit WAV")
        n, rate = w.getnchannels(), w.getframerate()
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, n)
    return [frames[:, i].copy() for i in range(n)], rate

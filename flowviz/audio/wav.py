"""WAV: 16-bit PCM RIFF/WAVE bytes of one or two channels (Python's wave module writes the header)."""

from __future__ import annotations

import io
import wave

from pathlib import Path

import numpy as np

FRAMES_AT_ONCE = 1 << 20


def wav_bytes(channels: list[np.ndarray], rate: int) -> bytes:
    """A WAV of these int16 channels at `rate` (the shorter ones padded with silence): mono or stereo."""
    out = io.BytesIO()
    write_wav(out, channels, rate)
    return out.getvalue()


def write_wav(target, channels: list[np.ndarray], rate: int) -> None:
    """The WAV written to a path or a binary file, a block of frames at a time (no second copy of a long call)."""
    length = max((len(c) for c in channels), default=0)
    with wave.open(str(target) if isinstance(target, (str, Path)) else target, "wb") as w:
        w.setnchannels(len(channels))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.setnframes(length)
        for start in range(0, length, FRAMES_AT_ONCE):
            n = min(FRAMES_AT_ONCE, length - start)
            frames = np.zeros((n, len(channels)), dtype="<i2")
            for i, c in enumerate(channels):
                part = c[start:start + n]
                frames[:len(part), i] = part
            w.writeframesraw(frames.tobytes())


def read_wav(data: bytes) -> tuple[list[np.ndarray], int]:
    """(channels as int16 arrays, rate) of a 16-bit PCM WAV."""
    with wave.open(io.BytesIO(data), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError("not a 16-bit WAV")
        n, rate = w.getnchannels(), w.getframerate()
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, n)
    return [frames[:, i].copy() for i in range(n)], rate

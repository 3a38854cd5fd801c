"""Decoder: RTP payloads of one codec -> 16-bit mono samples, through PyAV (FFmpeg's decoders).

Sample-by-sample codecs (G.711, G.722, G.726, L16: a fixed number of samples per payload byte) are decoded
in one call over all payloads joined, then cut back at the packet boundaries: the same samples as packet by
packet (a stateful decoder such as G.722's ADPCM runs on across packets either way), 5x faster. Frame codecs
are decoded a packet at a time. A payload the decoder rejects gives no samples (silence) and is counted.
"""

from __future__ import annotations

import numpy as np

from flowviz.audio.amr import storage_frames
from flowviz.audio.codecs import Codec

G729_FRAME, G729_SID = 10, 2  # RFC 3551 4.5.6: 10-byte frames, then at most one 2-byte Annex B SID frame
ILBC_FRAMES = (38, 50)  # RFC 3952 2: 20 ms frames are 38 bytes, 30 ms frames 50


def decode(codec: Codec, payloads: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(the samples of all payloads one after the other at codec.rate, how many of them each payload gave: 0
    where the decoder rejected it)."""
    if codec.samples_per_byte:
        whole = _decode_joined(codec, payloads)
        if whole is not None:
            return whole
    contexts: dict[int, object] = {}
    out = []
    for payload in payloads:
        frames, variant = _frames(codec, payload)
        if not frames:
            out.append(_EMPTY)
            continue
        ctx = contexts.get(variant) or contexts.setdefault(variant, _context(codec, variant))
        try:
            out.append(np.concatenate([_samples(ctx.decode(_packet(f))) for f in frames]))
        except Exception:  # av.FFmpegError and its kinds: a damaged or foreign payload
            out.append(_EMPTY)
    lengths = np.array([len(c) for c in out], dtype=np.int64)
    return (np.concatenate(out) if out else _EMPTY), lengths


_EMPTY = np.zeros(0, dtype=np.int16)


def _frames(codec: Codec, payload: bytes) -> tuple[list[bytes], int]:
    """The packets the decoder takes for one payload, and which decoder variant (iLBC mode) they need."""
    if codec.decoder == "g729":  # a trailing SID frame is comfort noise: left silent
        whole = payload[:len(payload) // G729_FRAME * G729_FRAME]
        return ([whole] if whole else []), 0
    if codec.decoder == "ilbc":
        size = next((f for f in ILBC_FRAMES if payload and len(payload) % f == 0), 0)
        return ([payload] if size else []), size
    if codec.decoder in ("amrnb", "amrwb"):
        return storage_frames(payload, codec.decoder == "amrwb"), 0
    return ([payload] if payload else []), 0


def _context(codec: Codec, variant: int = 0):
    import av

    ctx = av.CodecContext.create(codec.decoder, "r")
    ctx.sample_rate = codec.rate
    ctx.layout = "mono"
    options = dict(codec.options)
    if variant:
        options["block_align"] = str(variant)
    if options:
        ctx.options = options
    return ctx


def _packet(data: bytes):
    import av

    return av.Packet(data)


def _samples(frames) -> np.ndarray:
    """Decoded frames as one mono int16 array (channels averaged, float formats scaled)."""
    parts = []
    for frame in frames:
        a = frame.to_ndarray()
        channels = len(frame.layout.channels)
        if not frame.format.is_planar and channels > 1:
            a = a.reshape(-1, channels).T
        a = a.mean(axis=0) if a.shape[0] > 1 else a[0]
        if a.dtype.kind == "f":
            a = np.clip(np.round(a * 32768.0), -32768, 32767)
        parts.append(a.astype(np.int16))
    return np.concatenate(parts) if parts else _EMPTY


def _decode_joined(codec: Codec, payloads: list[bytes]) -> tuple[np.ndarray, np.ndarray] | None:
    counts = (np.array([len(p) for p in payloads], dtype=np.int64) * codec.samples_per_byte).astype(np.int64)
    joined = b"".join(payloads)
    if not joined:
        return _EMPTY, counts
    try:
        samples = _samples(_context(codec).decode(_packet(joined)))
    except Exception:
        return None
    if len(samples) != counts.sum():  # not the fixed ratio after all: packet by packet
        return None
    return samples, counts

"""RFC 4867 AMR payloads -> storage-format frames (flowviz/audio/amr.py), on payloads packed here by the
RFC's layout: octet-aligned (4.4) and bandwidth-efficient (4.3), one and several frames."""

from __future__ import annotations

import numpy as np

from flowviz.audio.amr import NB_BITS, WB_BITS, storage_frames


def bits_of(data: bytes, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:n]


def bandwidth_efficient(frames: list[tuple[int, bytes]], sizes: dict[int, int]) -> bytes:
    """CMR 15, one 6-bit ToC per frame (F, FT, Q=1), then each frame's speech bits, zero padded to a byte."""
    parts = [np.array([1, 1, 1, 1], dtype=np.uint8)]
    for i, (ft, _) in enumerate(frames):
        more = 1 if i < len(frames) - 1 else 0
        parts.append(np.array([more, *((ft >> s) & 1 for s in (3, 2, 1, 0)), 1], dtype=np.uint8))
    parts += [bits_of(speech, sizes[ft]) for ft, speech in frames]
    bits = np.concatenate(parts)
    return np.packbits(np.concatenate([bits, np.zeros(-len(bits) % 8, dtype=np.uint8)])).tobytes()


def storage(ft: int, speech: bytes, sizes: dict[int, int]) -> bytes:
    """RFC 4867 5.3: ToC byte (FT, Q=1), then the speech bits padded with zeros to whole bytes."""
    return bytes([ft << 3 | 0x04]) + np.packbits(bits_of(speech, sizes[ft])).tobytes()


def test_octet_aligned_frames_are_cut_at_their_sizes():
    rng = np.random.default_rng(4867)
    a, b = rng.bytes(31), rng.bytes(13)  # 12.2 kbit/s (244 bits -> 31 bytes), 4.75 kbit/s (95 bits -> 12 bytes)
    b = b[:12]
    payload = bytes([0xF0, 0x80 | 7 << 3 | 0x04, 0 << 3 | 0x04]) + a + b
    assert storage_frames(payload, wideband=False) == [bytes([7 << 3 | 0x04]) + a, bytes([0x04]) + b]


def test_bandwidth_efficient_frames_are_unpacked_bit_by_bit():
    rng = np.random.default_rng(4867)
    frames = [(7, rng.bytes(31)), (5, rng.bytes(20))]
    payload = bandwidth_efficient(frames, NB_BITS)
    assert storage_frames(payload, wideband=False) == [storage(ft, s, NB_BITS) for ft, s in frames]
    wide = [(8, rng.bytes(60))]  # AMR-WB 23.85 kbit/s: 477 bits
    assert storage_frames(bandwidth_efficient(wide, WB_BITS), wideband=True) == [storage(8, wide[0][1], WB_BITS)]


def test_a_payload_of_neither_mode_gives_no_frame():
    assert storage_frames(b"\xf0", wideband=False) == []
    assert storage_frames(bytes([0xF0, 0x3C]) + b"\0" * 5, wideband=False) == []  # claims 31 bytes, has 5

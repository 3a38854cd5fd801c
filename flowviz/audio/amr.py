"""AMR: the RTP payload format of AMR and AMR-WB (RFC 4867 4.3, 4.4) turned into the frames FFmpeg's amrnb
and amrwb decoders read, the storage format of RFC 4867 5.3: one table-of-contents byte (FT, Q) then the
speech bits padded to whole bytes.

An RTP payload starts with a 4-bit codec mode request, then one 6-bit table-of-contents entry per frame (F: more
follow, FT: frame type, Q: quality), then the frames' speech bits, in one of two modes the SDP fmtp names
(octet-align=1) and flowviz does not keep. The octet-aligned mode pads each field to whole bytes and leaves
padding bits zero; a payload read that way whose frames fill it exactly, with zero padding, is taken as
octet-aligned, else as bandwidth-efficient (the default mode).
"""

from __future__ import annotations

import numpy as np

# speech bits per frame type (RFC 4867 3.6 and table 1 of 3GPP TS 26.101 / 26.201); 8 and 9 are SID frames
NB_BITS = {0: 95, 1: 103, 2: 118, 3: 134, 4: 148, 5: 159, 6: 204, 7: 244, 8: 39, 15: 0}
WB_BITS = {0: 132, 1: 177, 2: 253, 3: 285, 4: 317, 5: 365, 6: 397, 7: 461, 8: 477, 9: 40, 14: 0, 15: 0}


def storage_frames(payload: bytes, wideband: bool) -> list[bytes]:
    """The payload's frames in storage format, [] when it is neither valid mode."""
    sizes = WB_BITS if wideband else NB_BITS
    return _octet_aligned(payload, sizes) or _bandwidth_efficient(payload, sizes)


def _octet_aligned(payload: bytes, sizes: dict[int, int]) -> list[bytes]:
    if len(payload) < 2 or payload[0] & 0x0F:
        return []
    at, tocs = 1, []
    while at < len(payload):
        toc = payload[at]
        at += 1
        if toc & 0x03 or (toc >> 3) & 0x0F not in sizes:
            return []
        tocs.append(toc)
        if not toc & 0x80:
            break
    else:
        return []
    frames = []
    for toc in tocs:
        n = (sizes[(toc >> 3) & 0x0F] + 7) // 8
        if at + n > len(payload):
            return []
        frames.append(bytes([toc & 0x7C]) + payload[at:at + n])
        at += n
    return frames if at == len(payload) else []


def _bandwidth_efficient(payload: bytes, sizes: dict[int, int]) -> list[bytes]:
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    at, tocs = 4, []
    while at + 6 <= len(bits):
        more, ft, q = bits[at], int(np.packbits(bits[at + 1:at + 5], bitorder="big")[0]) >> 4, int(bits[at + 5])
        at += 6
        if ft not in sizes:
            return []
        tocs.append((ft, q))
        if not more:
            break
    else:
        return []
    frames = []
    for ft, q in tocs:
        n = sizes[ft]
        if at + n > len(bits):
            return []
        frames.append(bytes([ft << 3 | q << 2]) + np.packbits(bits[at:at + n]).tobytes())
        at += n
    return frames if len(bits) - at < 8 else []

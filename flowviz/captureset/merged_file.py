"""The merged capture of a set: one pcapng with every kept packet on the corrected timeline.

Each (point, interface) that has packets becomes one interface of the merged file, named after its
capture (if_name), with nanosecond timestamps (if_tsresol 9); packets are copied byte for byte from
their capture, in merged order, so everything flowviz does with one capture (decoding, the call's own
pcap, payloads read again by frame number) works on the set unchanged.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import polars as pl
from numba import njit
from numba.typed import List

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_OPT_COMMENT, _OPT_IF_NAME, _OPT_IF_TSRESOL = 1, 2, 9


def _option(code: int, value: bytes) -> bytes:
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _block(btype: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", btype, total) + body + struct.pack("<I", total)


def _section_header(comment: str) -> bytes:
    options = _option(_OPT_COMMENT, comment.encode()) + _option(0, b"")
    return _block(_SHB, struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + options)


def _interface(link_type: int, name: str) -> bytes:
    options = _option(_OPT_IF_NAME, name.encode()) + _option(_OPT_IF_TSRESOL, bytes([9])) + _option(0, b"")
    return _block(_IDB, struct.pack("<HHI", link_type, 0, 0) + options)


@njit(cache=True, nogil=True)
def _put32(out, at, value):
    out[at] = value & 0xFF
    out[at + 1] = (value >> 8) & 0xFF
    out[at + 2] = (value >> 16) & 0xFF
    out[at + 3] = (value >> 24) & 0xFF


@njit(cache=True, nogil=True)
def _fill_blocks(out, sources, points, offsets, caplens, origs, ifaces, times):
    """Enhanced Packet Blocks (little-endian) of the given packets into `out`, bytes copied from their
    point's plain capture (`sources[point]`); returns the bytes written."""
    at = 0
    for k in range(len(points)):
        n = caplens[k]
        total = 32 + n + ((4 - n % 4) % 4)
        _put32(out, at, 6)
        _put32(out, at + 4, total)
        _put32(out, at + 8, ifaces[k])
        _put32(out, at + 12, times[k] >> 32)
        _put32(out, at + 16, times[k] & 0xFFFFFFFF)
        _put32(out, at + 20, n)
        _put32(out, at + 24, origs[k])
        src = sources[points[k]]
        off = offsets[k]
        for i in range(n):
            out[at + 28 + i] = src[off + i]
        for i in range(n, total - 32):
            out[at + 28 + i] = 0
        _put32(out, at + total - 4, total)
        at += total
    return at


BATCH_BYTES = 64 << 20  # output written in slices of about this size (memory stays flat for any capture)


def write_merged(output: Path, kept: pl.DataFrame, plain_paths: list[Path], point_names: list[str],
                 comment: str) -> int:
    """Write `kept` (columns point, iface, link_type, file_off, caplen, orig_len, t: the corrected time in
    ns, in merged order) as a pcapng; returns the number of packets written."""
    interfaces = kept.select("point", "iface", "link_type").unique(["point", "iface"], keep="first").sort(
        "point", "iface")
    several = set(interfaces.group_by("point").len().filter(pl.col("len") > 1)["point"].to_list())
    numbered = interfaces.with_row_index("number")
    ids = kept.select("point", "iface").join(numbered.select("point", "iface", "number"), on=["point", "iface"],
                                             how="left", maintain_order="left")["number"].to_numpy()
    points = kept["point"].to_numpy().astype(np.int64)
    offsets = kept["file_off"].to_numpy().astype(np.int64)
    caplens = kept["caplen"].to_numpy().astype(np.int64)
    origs = kept["orig_len"].to_numpy().astype(np.int64)
    times = kept["t"].to_numpy().astype(np.int64)
    ifaces = ids.astype(np.int64)
    sizes = 32 + caplens + (-caplens) % 4
    sources = List()
    for path in plain_paths:
        sources.append(np.memmap(path, dtype=np.uint8, mode="r") if Path(path).stat().st_size else
                       np.zeros(1, dtype=np.uint8))
    with open(output, "wb") as out:
        out.write(_section_header(comment))
        for p, i, lt in interfaces.select("point", "iface", "link_type").iter_rows():
            out.write(_interface(int(lt), point_names[p] + (f" #{i}" if p in several else "")))
        ends = np.cumsum(sizes)
        start = 0
        while start < len(kept):
            stop = int(np.searchsorted(ends, (ends[start - 1] if start else 0) + BATCH_BYTES, side="right"))
            stop = max(stop, start + 1)
            buf = np.empty(int(sizes[start:stop].sum()), dtype=np.uint8)
            written = _fill_blocks(buf, sources, points[start:stop], offsets[start:stop], caplens[start:stop],
                                   origs[start:stop], ifaces[start:stop], times[start:stop])
            out.write(buf[:written].tobytes())
            start = stop
    return len(kept)

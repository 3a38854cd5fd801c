"""The merged capture of a set: one pcapng with every kept packet on the corrected timeline.

Each (point, interface) that has packets becomes one interface of the merged file, named after its
capture (if_name), with nanosecond timestamps (if_tsresol 9); packets are copied byte for byte from
their capture, in merged order, so everything flowviz does with one capture (decoding, the call's own
pcap, payloads read again by frame number) works on the set unchanged.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import polars as pl

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


def write_merged(output: Path, kept: pl.DataFrame, plain_paths: list[Path], point_names: list[str],
                 comment: str) -> int:
    """Write `kept` (columns point, iface, link_type, file_off, caplen, orig_len, t: the corrected time in
    ns, in merged order) as a pcapng; returns the number of packets written."""
    interfaces = kept.select("point", "iface", "link_type").unique(["point", "iface"], keep="first").sort(
        "point", "iface")
    number = {(p, i): n for n, (p, i) in enumerate(zip(interfaces["point"].to_list(), interfaces["iface"].to_list()))}
    several = interfaces.group_by("point").len().filter(pl.col("len") > 1)["point"].to_list()
    points = kept["point"].to_numpy()
    ifaces = kept["iface"].to_numpy()
    offsets = kept["file_off"].to_numpy()
    caplens = kept["caplen"].to_numpy()
    origs = kept["orig_len"].to_numpy()
    times = kept["t"].to_numpy().astype(np.uint64)
    files = [open(p, "rb") for p in plain_paths]
    try:
        with open(output, "wb") as out:
            out.write(_section_header(comment))
            for (p, i), lt in zip(number, interfaces["link_type"].to_list()):
                name = point_names[p] + (f" #{i}" if p in several else "")
                out.write(_interface(int(lt), name))
            fds = [f.fileno() for f in files]
            chunk = []
            for k in range(len(kept)):
                p = int(points[k])
                data = os.pread(fds[p], int(caplens[k]), int(offsets[k]))
                pad = (-len(data)) % 4
                total = 32 + len(data) + pad
                t = int(times[k])
                chunk.append(struct.pack("<IIIIIII", _EPB, total, number[(p, int(ifaces[k]))], t >> 32,
                                         t & 0xFFFFFFFF, len(data), int(origs[k])))
                chunk.append(data + b"\0" * pad + struct.pack("<I", total))
                if len(chunk) >= 8192:
                    out.write(b"".join(chunk))
                    chunk.clear()
            out.write(b"".join(chunk))
    finally:
        for f in files:
            f.close()
    return len(kept)

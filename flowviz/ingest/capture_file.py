"""Capture files: read pcap/pcapng (gzip, or any format editcap converts) into a table of decoded packets.

The file is read in fixed-size chunks, so memory holds one chunk of bytes plus one
compact row per packet (kernel.PACKET), never the whole file. Bytes of the few
packets needed later (SIP candidates) are read again by offset.
"""

from __future__ import annotations

import gzip
import os
import stat
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flowviz.errors import CaptureError, ToolMissingError
from flowviz.ingest import kernel
from flowviz.ingest.addresses import address_text
from flowviz.settings import Settings

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": (False, 1000),  # (big endian, ns per fraction unit): little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (True, 1000),
    b"\x4d\x3c\xb2\xa1": (False, 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (True, 1),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 8 << 20


@dataclass
class Details:
    """Per chosen packet: source and destination address text, and the UDP/TCP payload bytes."""

    src: list[str]
    dst: list[str]
    payloads: list[bytes]


@dataclass
class Packets:
    """Every packet of a capture as one kernel.PACKET row, plus where to read its bytes again."""

    table: np.ndarray  # kernel.PACKET rows in capture order; "ts" is ns since the Unix epoch, UTC
    plain_path: Path  # the pcap/pcapng the offsets point into (a temporary copy for gzip/converted input)
    file_format: str
    warnings: list[str] = field(default_factory=list)
    unknown_blocks: int = 0
    _tmp: tempfile.TemporaryDirectory | None = None

    count_released: int = -1

    @property
    def count(self) -> int:
        return self.count_released if self.count_released >= 0 else len(self.table)

    @property
    def ts_ns(self) -> np.ndarray:
        return self.table["ts"]

    def read_bytes(self, rows: np.ndarray) -> list[bytes]:
        """The captured bytes of the given packets (0-based rows), read from the file by offset."""
        offsets = self.table["file_off"][rows].tolist()
        lengths = self.table["caplen"][rows].tolist()
        with open(self.plain_path, "rb") as f:
            fd = f.fileno()
            return [os.pread(fd, n, off) for off, n in zip(offsets, lengths)]

    def details(self, rows: np.ndarray) -> Details:
        """Addresses and payload position of the given packets, decoded again from their bytes."""
        data = self.read_bytes(rows)
        caplens = np.array([len(d) for d in data], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(caplens)[:-1]]).astype(np.int64) if len(data) else caplens
        buf = np.frombuffer(b"".join(data) + b"\0" * 8, dtype=np.uint8)
        out = np.zeros((len(data), kernel.DETAIL_FIELDS), dtype=np.uint64)
        kernel.decode_many(buf, starts, caplens, self.table["link_type"][rows].astype(np.int64), out)
        return Details(
            src=[address_text(h, l) for h, l in zip(out[:, kernel.D_SRC_HI].tolist(), out[:, kernel.D_SRC_LO].tolist())],
            dst=[address_text(h, l) for h, l in zip(out[:, kernel.D_DST_HI].tolist(), out[:, kernel.D_DST_LO].tolist())],
            payloads=[d[o : o + n] for d, o, n in zip(data, out[:, kernel.D_PAYLOAD_OFF].tolist(),
                                                      out[:, kernel.D_PAYLOAD_LEN].tolist())],
        )

    def release_table(self) -> None:
        """Free the per-packet rows (the largest thing ingest holds) once everything needed is taken."""
        self.count_released = len(self.table)
        self.table = np.zeros(0, dtype=self.table.dtype)  # not a slice: a view would keep the rows alive

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def check_readable(path: Path) -> None:
    """The one-line errors for a path that cannot be a capture at all."""
    if not path.exists():
        raise CaptureError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise CaptureError(f"{path} is a folder; give a capture file (.pcap, .pcapng, .gz)")
    if not os.access(path, os.R_OK):
        raise CaptureError(f"{path}: permission denied; check the file's permissions")
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):  # a FIFO, a device (/dev/zero), a socket: no size, maybe no end
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
            "not a regular file"
        raise CaptureError(f"{path} is {kind}, not a capture file; save the capture to a file first")
    if path.stat().st_size == 0:
        raise CaptureError(f"{path} is empty (0 bytes); it is not a capture, record one again")


def read_packets(path: str | os.PathLike, settings: Settings, progress=None, on_rows=None) -> Packets:
    """All packets of a capture decoded into kernel.PACKET rows; `progress(fraction)` after each chunk.

    `on_rows(table, start, end)` is called each time the kernel has decoded rows start..end-1 (ingest
    starts tshark at the first packet it will need). Rows of old pcapng block types come without it."""
    path = Path(path)
    check_readable(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    tmp = None
    plain, fmt_note = path, ""
    if magic[:2] == GZIP_MAGIC:
        tmp = tempfile.TemporaryDirectory(prefix="flowviz-")
        plain = _gunzip(path, Path(tmp.name) / "capture")
        with open(plain, "rb") as f:
            magic = f.read(4)
        fmt_note = " (gzip)"
    if magic not in PCAP_MAGICS and magic != PCAPNG_SHB or _big_endian_pcapng(plain, magic):
        tmp = tmp or tempfile.TemporaryDirectory(prefix="flowviz-")
        plain, original = _convert(plain, Path(tmp.name), settings, path)
        fmt_note = f" ({original}, converted to pcapng)"
        magic = PCAPNG_SHB
    try:
        if magic in PCAP_MAGICS:
            packets = _read_pcap(plain, path, settings, progress, on_rows)
        else:
            packets = _read_pcapng(plain, path, settings, progress, on_rows)
    except BaseException:
        if tmp:
            tmp.cleanup()
        raise
    packets.file_format += fmt_note
    packets._tmp = tmp
    return packets


def _gunzip(path: Path, target: Path) -> Path:
    try:
        with gzip.open(path, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise CaptureError(f"{path}: the gzip file is damaged ({exc}); decompress it by hand to check") from None
    if target.stat().st_size == 0:
        raise CaptureError(f"{path}: the gzip file holds nothing; it is not a capture")
    return target


def _big_endian_pcapng(path: Path, magic: bytes) -> bool:
    if magic != PCAPNG_SHB:
        return False
    with open(path, "rb") as f:
        head = f.read(12)
    return head[8:12] == b"\x1a\x2b\x3c\x4d"


def _convert(path: Path, folder: Path, settings: Settings, shown: Path) -> tuple[Path, str]:
    """A format tshark knows but the kernel does not (NetMon, big-endian pcapng...): editcap writes pcapng."""
    editcap = settings.editcap()
    if not editcap:
        raise ToolMissingError(
            f"{shown} is not pcap/pcapng and editcap (package tshark) is missing to convert it; "
            "install it with: apt-get install tshark"
        )
    out = folder / "converted.pcapng"
    result = subprocess.run([editcap, "-F", "pcapng", str(path), str(out)], capture_output=True, text=True,
                            timeout=3600)
    if result.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise CaptureError(
            f"{shown} is not a capture file (not pcap, pcapng or another format tshark reads); "
            "check that you picked the right file"
        )
    return out, _capinfos_format(path) or "another format"


def _capinfos_format(path: Path) -> str:
    try:
        out = subprocess.run(["capinfos", "-t", "-M", str(path)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in out.stdout.splitlines():
        if line.startswith("File type:"):
            return line.split(":", 1)[1].strip()
    return ""


class _Chunks:
    """A sliding window over the file: `buf[0:filled]` holds the bytes from file offset `base`."""

    def __init__(self, path: Path, start: int, size: int, progress=None):
        self.size = max(size, 1)
        self.progress = progress
        self.f = open(path, "rb")
        self.f.seek(start)
        self.buf = np.empty(CHUNK_BYTES, dtype=np.uint8)
        self.base = start
        self.filled = 0
        self.eof = False

    def consume(self, n: int) -> None:
        """Drop the first n bytes and read more behind what is left."""
        rest = self.filled - n
        if rest and n:
            self.buf[:rest] = self.buf[n : self.filled]
        self.base += n
        self.filled = rest
        self.fill()
        if self.progress and n:
            self.progress(min(1.0, self.base / self.size))

    def fill(self) -> None:
        while not self.eof and self.filled < len(self.buf):
            got = self.f.readinto(memoryview(self.buf)[self.filled :])
            if not got:
                self.eof = True
            self.filled += got or 0

    def ensure(self, n: int) -> bool:
        """Make the first n bytes available (growing the window for a big block); False at end of file."""
        if n > len(self.buf):
            self.buf = np.concatenate([self.buf, np.empty(n - len(self.buf), dtype=np.uint8)])
        if self.filled < n:
            self.fill()
        return self.filled >= n

    def close(self) -> None:
        self.f.close()


class _Table:
    """A growing array of kernel.PACKET rows."""

    def __init__(self, estimate: int):
        self.rows = np.zeros(max(1024, estimate), dtype=kernel.PACKET)
        self.k = 0

    def grow(self) -> None:
        bigger = np.zeros(len(self.rows) * 3 // 2 + 1024, dtype=kernel.PACKET)
        bigger[: self.k] = self.rows[: self.k]
        self.rows = bigger

    def done(self) -> np.ndarray:
        return self.rows[: self.k]  # a view: copying would double the peak memory


def _read_pcap(plain: Path, shown: Path, settings: Settings, progress=None, on_rows=None) -> Packets:
    size = plain.stat().st_size
    with open(plain, "rb") as f:
        header = f.read(24)
    if len(header) < 24:
        raise CaptureError(f"{shown}: the pcap header is cut short ({len(header)} bytes); the file is damaged")
    big, ns_per_unit = PCAP_MAGICS[header[:4]]
    link_type = struct.unpack_from(">I" if big else "<I", header, 20)[0] & 0xFFFF
    chunks = _Chunks(plain, 24, size, progress)
    table = _Table(size // 200)
    warning = ""
    try:
        chunks.fill()
        while True:
            start = table.k
            used, table.k, status = kernel.walk_pcap(
                chunks.buf, chunks.filled, chunks.base, big, ns_per_unit, link_type, settings.max_record_bytes,
                table.rows, table.k,
            )
            if on_rows and table.k > start:
                on_rows(table.rows, start, table.k)
            if status == kernel.OUT_FULL:
                chunks.consume(used)
                table.grow()
            elif status == kernel.BAD_LENGTH:
                warning = f"record {table.k + 1} at byte {chunks.base + used} has an impossible length"
                break
            elif chunks.eof and used == 0:
                if chunks.filled:
                    warning = f"the file is cut in the middle of record {table.k + 1} (byte {chunks.base})"
                break
            elif used == 0:  # one record longer than the window: widen it
                chunks.ensure(2 * len(chunks.buf))
            else:
                chunks.consume(used)
    finally:
        chunks.close()
    rows = table.done()
    packets = Packets(rows, plain, "pcap" if ns_per_unit == 1000 else "pcap-ns")
    if warning:
        packets.warnings.append(f"{shown}: {warning}; {len(rows)} packets before it were read")
    return packets


def _read_pcapng(plain: Path, shown: Path, settings: Settings, progress=None, on_rows=None) -> Packets:
    size = plain.stat().st_size
    chunks = _Chunks(plain, 0, size, progress)
    table = _Table(size // 200)
    interfaces: list[tuple[int, int, int]] = []  # (link type, tsresol code, tsoffset seconds)
    section_base = 0
    unknown = 0
    warning = ""
    max_block = settings.max_record_bytes + 1024
    try:
        chunks.fill()
        while True:
            links = np.array([i[0] for i in interfaces[section_base:]] or [0], dtype=np.int64)
            if section_base == len(interfaces):
                links = links[:0]
            used, k, status = kernel.walk_pcapng(chunks.buf, chunks.filled, chunks.base, links, max_block,
                                                 table.rows, table.k)
            table.rows["iface"][table.k : k] += section_base
            if on_rows and k > table.k:
                on_rows(table.rows, table.k, k)
            table.k = k
            chunks.consume(used)
            if status == kernel.OUT_FULL:
                table.grow()
                continue
            if status == kernel.BAD_LENGTH:
                warning = f"block at byte {chunks.base} has an impossible length or interface"
                break
            if status == kernel.NEED_MORE:
                if used:
                    continue  # consume() read more behind what is left: walk again
                if chunks.eof:
                    if chunks.filled:
                        warning = f"the file is cut in the middle of a block (byte {chunks.base})"
                    break
                chunks.ensure(2 * len(chunks.buf))  # the next block is longer than the window: widen it
                continue
            # another block type: read it here
            if not chunks.ensure(12):
                warning = f"the file is cut in the middle of a block (byte {chunks.base})"
                break
            btype, blen = struct.unpack_from("<II", chunks.buf, 0)
            if btype == 0x0A0D0D0A:
                section_base = len(interfaces)
            if blen < 12 or blen % 4 or (blen > max_block and btype != 0x0A0D0D0A):
                warning = f"block at byte {chunks.base} has an impossible length ({blen} bytes)"
                break
            if not chunks.ensure(blen):
                warning = f"the file is cut in the middle of a block (byte {chunks.base})"
                break
            block = chunks.buf[:blen].tobytes()
            if btype == 1:
                interfaces.append(_parse_idb(block))
            elif btype in (2, 3):
                if table.k >= len(table.rows):
                    table.grow()
                _decode_old_block(block, btype, chunks.base, interfaces, section_base, table)
            elif btype != 0x0A0D0D0A:
                unknown += 1
            chunks.consume(blen)
    finally:
        chunks.close()
    rows = table.done()
    if len(rows) and not interfaces:
        raise CaptureError(f"{shown}: packets come before any interface description; the pcapng file is damaged")
    _to_ns(rows, interfaces)
    packets = Packets(rows, plain, "pcapng", unknown_blocks=unknown)
    if warning:
        packets.warnings.append(f"{shown}: {warning}; {len(rows)} packets before it were read")
    if unknown:
        packets.warnings.append(f"{shown}: skipped {unknown} pcapng blocks of types flowviz does not use")
    return packets


def _parse_idb(block: bytes) -> tuple[int, int, int]:
    link_type = struct.unpack_from("<H", block, 8)[0]
    resol, tsoffset = 6, 0
    pos, stop = 16, len(block) - 4
    while pos + 4 <= stop:
        code, length = struct.unpack_from("<HH", block, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            resol = block[pos + 4]
        elif code == 14 and length == 8:
            tsoffset = struct.unpack_from("<q", block, pos + 4)[0]
        pos += 4 + ((length + 3) & ~3)
    return link_type, resol, tsoffset


def _decode_old_block(block: bytes, btype: int, base: int, interfaces, section_base: int, table: _Table) -> None:
    """Simple Packet Block (no timestamp, interface 0) and the obsolete Packet Block."""
    if btype == 3:
        orig = struct.unpack_from("<I", block, 8)[0]
        iface, start, ts = section_base, 12, 0
        caplen = min(orig, len(block) - 16)
    else:
        iface, _drops, hi, lo, caplen, orig = struct.unpack_from("<HHIIII", block, 8)
        iface += section_base
        start, ts = 28, (hi << 32) | lo
        caplen = min(caplen, len(block) - 32)
    if iface >= len(interfaces):
        return
    data = np.frombuffer(block, dtype=np.uint8)
    link_type = interfaces[iface][0]
    kernel.decode_one(data, start, caplen, link_type, table.rows, table.k)
    row = table.rows[table.k : table.k + 1]
    row["file_off"], row["caplen"], row["orig_len"] = base + start, caplen, orig
    row["ts"], row["iface"], row["link_type"] = ts, iface, link_type
    table.k += 1


def _to_ns(rows: np.ndarray, interfaces) -> None:
    """Turn each interface's time units into ns since the epoch, in place."""
    ts = rows["ts"]
    for idx, (_lt, resol, tsoffset) in enumerate(interfaces):
        if len(interfaces) == 1:
            ts[:] = _units_to_ns(ts, resol) + tsoffset * 1_000_000_000
            break
        sel = rows["iface"] == idx
        if sel.any():
            ts[sel] = _units_to_ns(ts[sel], resol) + tsoffset * 1_000_000_000


def _units_to_ns(units: np.ndarray, resol: int) -> np.ndarray:
    """pcapng if_tsresol: high bit clear = 10^-v seconds per unit, set = 2^-v."""
    units = units.astype(np.uint64)
    if resol & 0x80:
        shift = resol & 0x7F
        secs = units >> np.uint64(shift)
        frac = units & np.uint64((1 << shift) - 1)
        return secs.astype(np.int64) * 1_000_000_000 + (frac.astype(np.float64) * 1e9 / (1 << shift)).astype(np.int64)
    if resol <= 9:
        return units.astype(np.int64) * (10 ** (9 - resol))
    return (units // np.uint64(10 ** (resol - 9))).astype(np.int64)

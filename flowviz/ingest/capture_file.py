"""Capture files: read pcap/pcapng (gzip, or any format editcap converts) into a table of decoded packets.

The file is read in fixed-size chunks, so memory holds one chunk of bytes plus one
compact row per packet (kernel.PACKET), never the whole file. Bytes of the few
packets needed later (SIP candidates) are read again by offset.

Every length a file states is checked before a buffer is built for it, and what a file can make
flowviz hold is bounded by the limits in Settings (packets, interfaces, decompressed bytes, record
length): docs/robustness.md, "Limits".
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

from flowviz.errors import CaptureError
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
BLOCK_EXTRA = 1024  # what a pcapng block may hold besides its packet's bytes (header, options)
MIN_RECORD = 16  # the shortest record that holds a packet: a pcap record header, a pcapng Simple Packet Block
# pcapng blocks: name and the shortest length that holds the fields flowviz reads (block header and trailer
# included). A block of another type needs only the 12 bytes of header and trailer.
BLOCK_KINDS = {0x0A0D0D0A: ("Section Header Block", 28), 1: ("Interface Description Block", 20),
               2: ("Packet Block", 32), 3: ("Simple Packet Block", 16), 4: ("Name Resolution Block", 12),
               5: ("Interface Statistics Block", 12), 6: ("Enhanced Packet Block", 32),
               10: ("Decryption Secrets Block", 12)}
IFACE_COLUMN = 1 << 16  # kernel.PACKET keeps the interface number in 16 bits: packets on the first 65,536
# ns since the epoch are kept in int64: whole seconds up to this many either side of 1970 (years 1677 to 2262)
MAX_SECONDS = (2**63 - 1) // 1_000_000_000 - 1
UNITS_MAX = 2**64 - 1
TS_STEP = 1 << 20  # rows converted to ns at a time (bounds the temporary arrays)


@dataclass
class Details:
    """Per chosen packet: source and destination address text, and the UDP/TCP payload bytes."""

    src: list[str]
    dst: list[str]
    payloads: list[bytes]
    tcp_seq: list[int] = field(default_factory=list)  # TCP sequence number (0 for other packets), when asked
    ip_off: list[int] = field(default_factory=list)  # where the innermost IP header starts, when asked


@dataclass
class Packets:
    """Every packet of a capture as one kernel.PACKET row, plus where to read its bytes again."""

    table: np.ndarray  # kernel.PACKET rows in capture order; "ts" is ns since the Unix epoch, UTC
    plain_path: Path  # the pcap/pcapng the offsets point into (a temporary copy for gzip/converted input)
    file_format: str
    warnings: list[str] = field(default_factory=list)
    unknown_blocks: int = 0
    # pcapng Decryption Secrets Blocks, as read (TLS key logs embedded with editcap --inject-secrets):
    # handed on to tshark in the sub-capture, before the packets they decrypt
    secrets: list[bytes] = field(default_factory=list)
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

    def details(self, rows: np.ndarray, layout: bool = False) -> Details:
        """Addresses and payload position of the given packets, decoded again from their bytes (and, with
        `layout`, their TCP sequence numbers and where their innermost IP header starts)."""
        data = self.read_bytes(rows)
        caplens = np.array([len(d) for d in data], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(caplens)[:-1]]).astype(np.int64) if len(data) else caplens
        buf = np.frombuffer(b"".join(data) + b"\0" * 8, dtype=np.uint8)
        out = np.zeros((len(data), kernel.DETAIL_FIELDS), dtype=np.uint64)
        kernel.decode_many(buf, starts, caplens, self.table["link_type"][rows].astype(np.int64), out)
        tcp = (self.table["ip_proto"][rows] == 6).tolist() if layout else []
        return Details(
            src=[address_text(h, l) for h, l in zip(out[:, kernel.D_SRC_HI].tolist(), out[:, kernel.D_SRC_LO].tolist())],
            dst=[address_text(h, l) for h, l in zip(out[:, kernel.D_DST_HI].tolist(), out[:, kernel.D_DST_LO].tolist())],
            payloads=[d[o : o + n] for d, o, n in zip(data, out[:, kernel.D_PAYLOAD_OFF].tolist(),
                                                      out[:, kernel.D_PAYLOAD_LEN].tolist())],
            tcp_seq=[int.from_bytes(d[o + 4 : o + 8], "big") if is_tcp else 0
                     for d, o, is_tcp in zip(data, out[:, kernel.D_L4_OFF].tolist(), tcp)],
            ip_off=out[:, kernel.D_IP_OFF].tolist() if layout else [],
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
    starts tshark at the first packet it will need). Rows of old pcapng block types come without it.
    A gzip or converted capture is unpacked into a temporary folder, removed however this ends (an error,
    Ctrl-C, SIGTERM: the `flowviz` command turns it into SystemExit) or, on success, by Packets.close()."""
    path = Path(path)
    check_readable(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    tmp = None
    try:
        plain, fmt_note = path, ""
        if magic[:2] == GZIP_MAGIC:
            tmp = tempfile.TemporaryDirectory(prefix="flowviz-")
            plain = _gunzip(path, Path(tmp.name) / "capture", settings.max_decompressed_bytes)
            with open(plain, "rb") as f:
                magic = f.read(4)
            fmt_note = " (gzip)"
        if magic not in PCAP_MAGICS and magic != PCAPNG_SHB or _big_endian_pcapng(plain, magic):
            tmp = tmp or tempfile.TemporaryDirectory(prefix="flowviz-")
            plain, original = _convert(plain, Path(tmp.name), settings, path)
            fmt_note = f" ({original}, converted to pcapng)"
            magic = PCAPNG_SHB
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


def _gunzip(path: Path, target: Path, limit: int) -> Path:
    """Decompress into target, at most `limit` bytes; the partial file is deleted on any failure."""
    try:
        with gzip.open(path, "rb") as src, open(target, "wb") as dst:
            written = 0
            while True:
                try:
                    chunk = src.read(CHUNK_BYTES)
                except (OSError, EOFError, zlib.error) as exc:
                    raise CaptureError(f"{path}: the gzip file is damaged ({exc}); decompress it by hand to "
                                       "check") from None
                if not chunk:
                    break
                written += len(chunk)
                if written > limit:
                    raise CaptureError(
                        f"{path}: decompresses to more than {_size(limit)}, the limit for gzip captures; raise it "
                        f"with --limit decompressed=SIZE (or FLOWVIZ_MAX_DECOMPRESSED=SIZE), e.g. "
                        f"{-(-4 * limit // (1 << 30))}G, or decompress it yourself (gunzip -k)")
                try:
                    dst.write(chunk)
                except OSError as exc:
                    raise CaptureError(
                        f"{path}: cannot decompress it into {target.parent.parent} ({exc.strerror} after "
                        f"{_size(written - len(chunk))}); make room there or set TMPDIR to a folder with space"
                    ) from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if target.stat().st_size == 0:
        raise CaptureError(f"{path}: the gzip file holds nothing; it is not a capture")
    return target


def _size(n: int) -> str:
    """Bytes as the largest binary unit that divides them, or with one decimal: '8 GiB', '1.5 MiB'."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n // scale} {unit}" if n % scale == 0 else f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _big_endian_pcapng(path: Path, magic: bytes) -> bool:
    if magic != PCAPNG_SHB:
        return False
    with open(path, "rb") as f:
        head = f.read(12)
    return head[8:12] == b"\x1a\x2b\x3c\x4d"


def _convert(path: Path, folder: Path, settings: Settings, shown: Path) -> tuple[Path, str]:
    """A format tshark knows but the kernel does not (NetMon, big-endian pcapng...): written as pcapng by
    the one conversion of flowviz (ingest/records.py), with the settings' tshark."""
    from flowviz.ingest.records import tshark_to_pcapng

    out = folder / "converted.pcapng"
    tshark_to_pcapng(path, out, settings, shown=shown)
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
    """A sliding window over the file: the bytes from file offset `base` are buf[start:filled].

    Taking bytes moves `start` only; what is left is moved to the front when more must be read, once per
    window, so a run of small blocks read one by one costs no copy each. No buffer is ever grown for bytes
    the file does not have."""

    def __init__(self, path: Path, start: int, size: int, progress=None):
        self.size = size
        self.progress = progress
        self.f = open(path, "rb")
        self.f.seek(start)
        self.buf = np.empty(CHUNK_BYTES, dtype=np.uint8)
        self.mv = memoryview(self.buf)
        self.base = start
        self.start = 0
        self.filled = 0
        self.eof = False
        self._fill()

    @property
    def available(self) -> int:
        return self.filled - self.start

    @property
    def left(self) -> int:
        """Bytes of the file from `base` to its end."""
        return self.size - self.base

    def window(self) -> np.ndarray:
        return self.buf[self.start :]

    def unpack(self, fmt: str, at: int = 0) -> tuple:
        """Fields at `at` bytes into the window (which must hold them)."""
        return struct.unpack_from(fmt, self.mv, self.start + at)

    def take(self, n: int) -> bytes:
        """A copy of the next n bytes (which the window must hold)."""
        return self.mv[self.start : self.start + n].tobytes()

    def consume(self, n: int) -> None:
        self.start += n
        self.base += n

    def ensure(self, n: int) -> bool:
        """Make the next n bytes available, widening the window for a block longer than it; False when the
        file ends before them (then nothing is allocated: a length field cannot make flowviz build a buffer)."""
        if self.available >= n:
            return True
        if n > self.left:
            return False
        rest = self.available
        if self.start:
            self.buf[:rest] = self.buf[self.start : self.filled]
            self.start, self.filled = 0, rest
        if n > len(self.buf):
            bigger = np.empty(n, dtype=np.uint8)
            bigger[:rest] = self.buf[:rest]
            self.buf, self.mv = bigger, memoryview(bigger)
        self._fill()
        return self.available >= n

    def _fill(self) -> None:
        while not self.eof and self.filled < len(self.buf):
            got = self.f.readinto(self.mv[self.filled :])
            if not got:
                self.eof = True
            self.filled += got or 0
        if self.progress:
            self.progress(min(1.0, (self.base + self.available) / max(self.size, 1)))

    def close(self) -> None:
        self.f.close()


class _Table:
    """The kernel.PACKET rows (69 bytes each), reserved once for as many packets as the file can hold (a
    record takes at least MIN_RECORD bytes) or the packet limit, whichever is fewer. np.zeros maps pages
    as rows are written, so memory follows the packets read, and rows are never copied to grow."""

    def __init__(self, data_bytes: int, limit: int, shown: Path):
        self.rows = np.zeros(min(limit, data_bytes // MIN_RECORD + 1), dtype=kernel.PACKET)
        self.limit = limit
        self.shown = shown
        self.k = 0

    def full(self) -> None:
        """One more packet than the rows hold: the packet limit is passed."""
        if len(self.rows) < self.limit:  # cannot happen (see above); grow rather than lose packets
            bigger = np.zeros(min(self.limit, len(self.rows) * 3 // 2 + 1024), dtype=kernel.PACKET)
            bigger[: self.k] = self.rows[: self.k]
            self.rows = bigger
            return
        gb = self.limit * kernel.PACKET.itemsize / 1e9
        raise CaptureError(
            f"{self.shown}: more than {self.limit:,} packets, the limit (about {gb:.1f} GB of memory to read them); "
            f"split the capture (editcap -c {max(1, self.limit // 2)} IN OUT) or raise the limit with "
            "--limit packets=N (or FLOWVIZ_MAX_PACKETS=N)")

    def done(self) -> np.ndarray:
        return self.rows[: self.k]  # a view: copying would double the peak memory


def _stop(table: _Table, shown: Path, what: str, advice: str) -> str:
    """A record or block that ends the reading: the capture's error when no packet came before it, else the
    warning (what) that the packets before it are all that was read."""
    if table.k == 0:
        raise CaptureError(f"{shown}: {what}; {advice}")
    return what


DAMAGED = "the file is damaged or was cut short; check it with tshark -r, or record it again"
TOO_LONG = ("the file is damaged, or holds records longer than the limit: raise it with --limit record=SIZE "
            "(or FLOWVIZ_MAX_RECORD_BYTES=SIZE)")


def _read_pcap(plain: Path, shown: Path, settings: Settings, progress=None, on_rows=None) -> Packets:
    size = plain.stat().st_size
    with open(plain, "rb") as f:
        header = f.read(24)
    if len(header) < 24:
        raise CaptureError(f"{shown}: the pcap header is cut short ({len(header)} bytes); the file is damaged")
    big, ns_per_unit = PCAP_MAGICS[header[:4]]
    endian = ">" if big else "<"
    link_type = struct.unpack_from(endian + "I", header, 20)[0] & 0xFFFF
    max_record = settings.max_record_bytes
    table = _Table(size - 24, settings.max_packets, shown)
    chunks = _Chunks(plain, 24, size, progress)
    warning = ""
    try:
        while True:
            start = table.k
            used, table.k, status = kernel.walk_pcap(
                chunks.window(), chunks.available, chunks.base, big, ns_per_unit, link_type, max_record,
                table.rows, table.k,
            )
            if on_rows and table.k > start:
                on_rows(table.rows, start, table.k)
            chunks.consume(used)
            if status == kernel.OUT_FULL:
                table.full()
                continue
            caplen = chunks.unpack(endian + "I", 8)[0] if chunks.available >= 16 else 0
            if status == kernel.BAD_LENGTH:
                warning = _stop(table, shown, f"record {table.k + 1} at byte {chunks.base} has an impossible "
                                f"length ({caplen:,} bytes; records of at most {max_record:,} are read)", TOO_LONG)
                break
            # the next record is not whole in the window: read more, or the file ends in it
            if not chunks.ensure(16 + caplen if chunks.available >= 16 else 16):
                if chunks.left:
                    warning = _stop(table, shown, f"the file is cut in the middle of record {table.k + 1} "
                                    f"(byte {chunks.base})", DAMAGED)
                break
    finally:
        chunks.close()
    rows = table.done()
    packets = Packets(rows, plain, "pcap" if ns_per_unit == 1000 else "pcap-ns")
    if warning:
        packets.warnings.append(f"{shown}: {warning}; {len(rows)} packets before it were read")
    return packets


class _Interfaces:
    """The pcapng interfaces of every section read so far, in growing arrays: constant work per Interface
    Description Block (a list rebuilt for the kernel at each block made 100,000 of them take minutes)."""

    def __init__(self, limit: int, shown: Path):
        self.n = 0
        self.limit = limit
        self.shown = shown
        self.section_base = 0  # index of the current section's interface 0
        self.links = np.zeros(16, dtype=np.int64)
        self.resol = np.zeros(16, dtype=np.int64)  # if_tsresol, 6 when absent
        self.offset = np.zeros(16, dtype=np.int64)  # if_tsoffset, seconds
        self.notes: dict[str, list[int]] = {}  # warning text -> [first interface, interfaces]

    def add(self, block: bytes) -> None:
        if self.n >= self.limit:
            raise CaptureError(
                f"{self.shown}: more than {self.limit:,} interface description blocks, the limit; raise it with "
                "--limit interfaces=N (or FLOWVIZ_MAX_INTERFACES=N)")
        if self.n == len(self.links):
            for name in ("links", "resol", "offset"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.zeros_like(old)]))
        link, resol, offset, notes = _parse_idb(block)
        self.links[self.n], self.resol[self.n], self.offset[self.n] = link, resol, offset
        for note in notes:
            self.notes.setdefault(note, [self.n, 0])[1] += 1
        self.n += 1

    def for_kernel(self) -> np.ndarray:
        """Link types of the current section's interfaces, as far as kernel.PACKET can number them."""
        return self.links[self.section_base : max(self.section_base, min(self.n, IFACE_COLUMN))]

    def warnings(self) -> list[str]:
        return [f"interface {first}" + (f" (and {count - 1:,} more)" if count > 1 else "") + f": {note}"
                for note, (first, count) in self.notes.items()]


def _read_pcapng(plain: Path, shown: Path, settings: Settings, progress=None, on_rows=None) -> Packets:
    reader = _PcapngReader(plain, shown, settings, progress)
    try:
        warning = reader.run(on_rows)
    finally:
        reader.chunks.close()
    rows, ifaces = reader.table.done(), reader.ifaces
    if len(rows) and not ifaces.n:
        raise CaptureError(f"{shown}: packets come before any interface description; the pcapng file is damaged")
    packets = Packets(rows, plain, "pcapng", unknown_blocks=reader.unknown, secrets=reader.secrets)
    packets.warnings += [f"{shown}: {w}" for w in ifaces.warnings() + _to_ns(rows, ifaces)]
    if warning:
        packets.warnings.append(f"{shown}: {warning}; {len(rows)} packets before it were read")
    if reader.unknown:
        packets.warnings.append(f"{shown}: skipped {reader.unknown} pcapng blocks of types flowviz does not use")
    return packets


class _PcapngReader:
    """The kernel decodes runs of Enhanced Packet Blocks; every other block, and every block the kernel
    stops at, is read here. Each block's length is checked before any of its bytes are."""

    def __init__(self, plain: Path, shown: Path, settings: Settings, progress=None):
        size = plain.stat().st_size
        self.shown = shown
        self.max_block = settings.max_record_bytes + BLOCK_EXTRA
        self.table = _Table(size, settings.max_packets, shown)
        self.ifaces = _Interfaces(settings.max_interfaces, shown)
        self.unknown = 0
        self.secrets: list[bytes] = []
        self.chunks = _Chunks(plain, 0, size, progress)

    def run(self, on_rows=None) -> str:
        """Read to the end ("") or to the block that stops the reading (the warning why)."""
        chunks, table, ifaces = self.chunks, self.table, self.ifaces
        while True:
            used, k, status = kernel.walk_pcapng(chunks.window(), chunks.available, chunks.base,
                                                 ifaces.for_kernel(), self.max_block, table.rows, table.k)
            if k > table.k:
                if ifaces.section_base:
                    table.rows["iface"][table.k : k] += ifaces.section_base
                if on_rows:
                    on_rows(table.rows, table.k, k)
            table.k = k
            chunks.consume(used)
            if status == kernel.OUT_FULL:
                table.full()
            elif status == kernel.BAD_LENGTH:
                return self._bad_block()
            elif (warning := self._other_blocks()) is not None:
                return warning

    def _other_blocks(self) -> str | None:
        """Read blocks until an Enhanced Packet Block is whole in the window (None: the kernel's turn; a run
        of Interface Description Blocks costs no kernel call each), or until the reading stops."""
        chunks, table = self.chunks, self.table
        while True:
            if not chunks.ensure(12):
                return _stop(table, self.shown, f"the file is cut in the middle of a block (byte {chunks.base})",
                             DAMAGED) if chunks.left else ""
            btype, blen = chunks.unpack("<II")
            shortest = BLOCK_KINDS[btype][1] if btype in BLOCK_KINDS else 12
            if blen < shortest or blen % 4 or blen > self.max_block:
                return self._bad_block()
            if not chunks.ensure(blen):
                return _stop(table, self.shown, f"the file is cut in the middle of the {_block_name(btype)} at "
                             f"byte {chunks.base} (it claims {blen:,} bytes, {chunks.left:,} are left)", DAMAGED)
            if btype == 6:
                return None
            block = chunks.take(blen)
            if btype == 1:
                self.ifaces.add(block)
            elif btype == 0x0A0D0D0A:
                self.ifaces.section_base = self.ifaces.n
            elif btype in (2, 3):
                if table.k >= len(table.rows):
                    table.full()
                _decode_old_block(block, btype, chunks.base, self.ifaces, table)
            elif btype == 10:
                self.secrets.append(block)
            else:
                self.unknown += 1
            chunks.consume(blen)

    def _bad_block(self) -> str:
        """The warning (or the error, before any packet) for the block at the window's start: its length, or
        the interface of an Enhanced Packet Block."""
        chunks, ifaces = self.chunks, self.ifaces
        btype, blen = chunks.unpack("<II")
        shortest = BLOCK_KINDS[btype][1] if btype in BLOCK_KINDS else 12
        where = f"the {_block_name(btype)} at byte {chunks.base}"
        if blen < shortest or blen % 4 or blen > self.max_block:
            return _stop(self.table, self.shown, f"{where} has an impossible length ({blen:,} bytes; blocks of "
                         f"{shortest} to {self.max_block:,} bytes are read)",
                         TOO_LONG if blen > self.max_block else DAMAGED)
        iface = ifaces.section_base + chunks.unpack("<I", 8)[0]
        if iface < IFACE_COLUMN or iface >= ifaces.n:
            return _stop(self.table, self.shown, f"{where} has an impossible length or interface (interface "
                         f"{iface - ifaces.section_base}; its section describes {ifaces.n - ifaces.section_base})",
                         DAMAGED)
        return _stop(self.table, self.shown, f"{where} is on interface {iface:,} of the file; flowviz reads "
                     f"packets of the first {IFACE_COLUMN:,} interfaces only",
                     "split the capture by interface (tshark -r IN -Y frame.interface_id==N -w OUT)")


def _parse_idb(block: bytes) -> tuple[int, int, int, list[str]]:
    """(link type, if_tsresol, if_tsoffset in seconds, warnings) of an Interface Description Block.

    Values are checked here, where they enter. tshark 4.0 reads every value (wiretap/pcapng.c, checked on
    built files): a resolution finer than a 64-bit count of units per second can hold (10^-20 s and finer,
    2^-64 s and finer) becomes 2^64-1 units per second, which puts every packet within a second of the
    epoch, and any offset is added, its dates shown as "Not representable". flowviz follows it for the
    resolution (with a warning). An offset that puts the times beyond what ns in 64 bits hold (1677 to
    2262) is ignored with a warning: the packets keep their own times, and the intervals between them."""
    link_type = struct.unpack_from("<H", block, 8)[0]
    resol, tsoffset, notes = 6, 0, []
    pos, stop = 16, len(block) - 4
    while pos + 4 <= stop:
        code, length = struct.unpack_from("<HH", block, pos)
        if code == 0 or pos + 4 + length > stop:
            break
        if code == 9 and length >= 1:
            resol = block[pos + 4]
        elif code == 14 and length == 8:
            tsoffset = struct.unpack_from("<q", block, pos + 4)[0]
        pos += 4 + ((length + 3) & ~3)
    if _units_per_second(resol) == UNITS_MAX:
        unit = f"2^-{resol & 0x7F}" if resol & 0x80 else f"10^-{resol}"
        notes.append(f"if_tsresol {resol} ({unit} s) is finer than 64-bit time stamps can count; read as "
                     "2^64-1 units per second like tshark, so its packets' times are not meaningful")
    if abs(tsoffset) > MAX_SECONDS:
        notes.append(f"if_tsoffset {tsoffset} s puts its packets beyond the year 2262 (or before 1677), "
                     "which flowviz cannot represent; the offset is ignored")
        tsoffset = 0
    return link_type, resol, tsoffset, notes


def _decode_old_block(block: bytes, btype: int, base: int, ifaces: _Interfaces, table: _Table) -> None:
    """Simple Packet Block (no timestamp, interface 0) and the obsolete Packet Block."""
    if btype == 3:
        orig = struct.unpack_from("<I", block, 8)[0]
        iface, start, ts = ifaces.section_base, 12, 0
        caplen = min(orig, len(block) - 16)
    else:
        iface, _drops, hi, lo, caplen, orig = struct.unpack_from("<HHIIII", block, 8)
        iface += ifaces.section_base
        start, ts = 28, (hi << 32) | lo
        caplen = min(caplen, len(block) - 32)
    if iface >= min(ifaces.n, IFACE_COLUMN):
        return
    data = np.frombuffer(block, dtype=np.uint8)
    link_type = int(ifaces.links[iface])
    kernel.decode_one(data, start, caplen, link_type, table.rows, table.k)
    row = table.rows[table.k : table.k + 1]
    # the same bits as the kernel's columns: ts as int64 (units until _to_ns), orig_len as int32
    row["file_off"], row["caplen"], row["orig_len"] = base + start, caplen, min(orig, 2**31 - 1)
    row["ts"], row["iface"], row["link_type"] = ts - (1 << 64) if ts >> 63 else ts, iface, link_type
    table.k += 1


def _units_per_second(resol: int) -> int:
    """pcapng if_tsresol: high bit clear = 10^-v seconds per unit, set = 2^-v; at most 2^64-1 (tshark's)."""
    return UNITS_PER_SECOND[resol]


UNITS_PER_SECOND = [min(2 ** (v & 0x7F) if v & 0x80 else 10**v, UNITS_MAX) for v in range(256)]


def _block_name(btype: int) -> str:
    return BLOCK_KINDS[btype][0] if btype in BLOCK_KINDS else f"block of type 0x{btype:08x}"


def _to_ns(rows: np.ndarray, ifaces: _Interfaces) -> list[str]:
    """Turn each interface's time units into ns since the epoch, in place; the warnings it gives.

    One pass per distinct resolution among the interfaces, TS_STEP rows at a time (a pass per interface
    made a file of many interfaces quadratic). Times beyond what int64 ns hold are pinned to the limit."""
    n = min(ifaces.n, IFACE_COLUMN)
    if not len(rows) or not n:
        return []
    kinds, kind_of = np.unique(ifaces.resol[:n], return_inverse=True)
    per_second = [_units_per_second(int(r)) for r in kinds]
    offsets = ifaces.offset[:n] if ifaces.offset[:n].any() else None
    if len(kinds) == 1 and offsets is None and 1_000_000_000 % per_second[0] == 0:  # the usual file: one pass
        ts, scale = rows["ts"], 1_000_000_000 // per_second[0]
        if ts.min() >= 0 and ts.max() <= MAX_SECONDS * per_second[0]:
            ts *= scale
            return []
    pinned = 0
    for lo in range(0, len(rows), TS_STEP):
        part = rows[lo : lo + TS_STEP]
        units = part["ts"].astype(np.uint64)  # the 64 bits as the block held them
        secs = np.empty(len(part), dtype=np.uint64)
        frac = np.empty(len(part), dtype=np.int64)
        which = kind_of[part["iface"]] if len(kinds) > 1 else None
        for kind, ups in enumerate(per_second):
            sel = slice(None) if which is None else which == kind
            secs[sel], frac[sel] = _split_units(units[sel], ups)
        whole = np.minimum(secs, np.uint64(1 << 62)).astype(np.int64)
        if offsets is not None:
            whole += offsets[part["iface"]]
        out = (whole > MAX_SECONDS) | (whole < -MAX_SECONDS)
        if out.any():
            pinned += int(out.sum())
            np.clip(whole, -MAX_SECONDS, MAX_SECONDS, out=whole)
            frac[out] = 0
        part["ts"] = whole * 1_000_000_000 + frac
    if pinned:
        return [f"{pinned:,} packet(s) carry times beyond the year 2262 (or before 1677), which flowviz cannot "
                "represent; they are shown at that limit"]
    return []


def _split_units(units: np.ndarray, per_second: int) -> tuple[np.ndarray, np.ndarray]:
    """Time units -> (whole seconds, ns within the second)."""
    step = np.uint64(per_second)
    secs = units // step
    rest = units - secs * step
    if 1_000_000_000 % per_second == 0:
        return secs, rest.astype(np.int64) * (1_000_000_000 // per_second)
    if per_second % 1_000_000_000 == 0:
        return secs, (rest // np.uint64(per_second // 1_000_000_000)).astype(np.int64)
    ns = (rest.astype(np.float64) * (1e9 / per_second)).astype(np.int64)  # binary fractions
    return secs, np.minimum(ns, 999_999_999)

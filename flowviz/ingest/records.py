"""Capture records: pcap/pcapng (plain or gzip) walked record by record and copied, other formats converted.

The byte-level reader and writer of the per-call pcap (flowviz/export/pcap.py) and of redaction
(flowviz/export/redact/): every record comes back as the bytes the file holds, so a copy keeps timestamps,
lengths, link types and pcapng sections as they were. A format that is neither pcap nor pcapng is
converted by `tshark_to_pcapng`, with the tshark of the settings (--tshark). The numba reader of
ingest/capture_file.py has its own chunked pass for speed; this module is the plain-Python one.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from flowviz.errors import CaptureError, ToolMissingError
from flowviz.settings import Settings

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
BIG_ENDIAN_PCAP = (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
SHB, IDB, PB, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6  # pcapng block types
PACKET_BLOCKS = (EPB, SPB, PB)  # one frame each (PB: the obsolete packet block)
PCAP_HEADER, PCAP_RECORD = -1, -2  # block_type of a classic pcap's file header and of its records


def open_capture(source: str | Path) -> BinaryIO:
    """The capture's bytes: gzip is decompressed on the fly."""
    with open(source, "rb") as f:
        gz = f.read(2) == GZIP_MAGIC
    return gzip.open(source, "rb") if gz else open(source, "rb")


def capture_magic(source: str | Path) -> bytes:
    """The first 4 bytes of the capture (after gzip): one of PCAP_MAGICS, PCAPNG_SHB, or another format."""
    with open_capture(source) as src:
        return src.read(4)


def is_pcap_or_pcapng(magic: bytes) -> bool:
    return magic in PCAP_MAGICS or magic == PCAPNG_SHB


READ_STEP = 1 << 20


def read_up_to(src, length: int) -> bytes:
    """`length` bytes, or fewer where the file ends: read a MiB at a time, so a length field that claims
    gigabytes in a small (or damaged) file never allocates more than the bytes that are there."""
    if length <= READ_STEP:
        return src.read(max(length, 0))
    parts, left = [], length
    while left > 0:
        part = src.read(min(left, READ_STEP))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def pcap_records(src, magic: bytes):
    """(record header, packet bytes) of each record of a classic pcap whose 24-byte header is read."""
    endian = ">" if magic in BIG_ENDIAN_PCAP else "<"
    while True:
        header = src.read(16)
        if len(header) < 16:
            return
        yield header, read_up_to(src, struct.unpack(endian + "I", header[8:12])[0])


def pcapng_blocks(src, magic: bytes):
    """(block type, byte order, block bytes, frame number or None if not a packet block) of each pcapng
    block. A file cut in the middle of a block ends before that block: ingest has already warned
    about it, and writing half a block would make the output unreadable."""
    head, endian, number = magic, "<", 0
    while len(head) == 4:
        length_bytes = src.read(4)
        if len(length_bytes) < 4:
            return
        if head == PCAPNG_SHB:  # byte order of this section from its byte-order magic
            bom = src.read(4)
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            length = struct.unpack(endian + "I", length_bytes)[0]
            block = head + length_bytes + bom + read_up_to(src, length - 12)
        else:
            length = struct.unpack(endian + "I", length_bytes)[0]
            block = head + length_bytes + read_up_to(src, length - 8)
        if len(block) < max(length, 12):
            return
        btype = struct.unpack(endian + "I", head)[0]
        if btype in PACKET_BLOCKS:
            number += 1
            yield btype, endian, block, number
        else:
            yield btype, endian, block, None
        head = src.read(4)


class Record(NamedTuple):
    """One record as the file holds it: a classic pcap's file header or one of its records (header and
    data), or one pcapng block."""

    raw: bytes
    block_type: int  # pcapng block type, or PCAP_HEADER / PCAP_RECORD
    endian: str  # "<" or ">": of the file (pcap) or of the record's section (pcapng)
    number: int | None  # 1-based frame number of a packet record, None for the others
    link_type: int  # packets: the pcap LINKTYPE of the frame's interface (1 when the interface is unknown)

    def data_span(self) -> tuple[int, int]:
        """(offset in `raw`, captured length) of a packet record's frame bytes."""
        if self.block_type == PCAP_RECORD:
            return 16, len(self.raw) - 16
        if self.block_type == SPB:
            origlen = struct.unpack(self.endian + "I", self.raw[8:12])[0]
            return 12, min(origlen, len(self.raw) - 16)
        return 28, struct.unpack(self.endian + "I", self.raw[20:24])[0]  # EPB, PB

    @property
    def data(self) -> bytes:
        """The captured frame, from its link-layer header."""
        start, caplen = self.data_span()
        return bytes(self.raw[start:start + caplen])

    def with_data(self, data: bytes) -> bytes:
        """The record's bytes with its frame replaced by `data` (of the same length)."""
        start, caplen = self.data_span()
        return self.raw[:start] + data + self.raw[start + caplen:]


def records(source: str | Path) -> Iterator[Record]:
    """Every record of a pcap or pcapng capture (gzip or not), in file order; CaptureError for another
    format. A pcapng section numbers its interfaces from 0 again."""
    with open_capture(source) as src:
        magic = src.read(4)
        if magic in PCAP_MAGICS:
            endian = ">" if magic in BIG_ENDIAN_PCAP else "<"
            rest = src.read(20)
            link = struct.unpack(endian + "I", rest[16:20])[0] & 0x0FFFFFFF if len(rest) == 20 else 1
            yield Record(magic + rest, PCAP_HEADER, endian, None, link)
            for number, (header, data) in enumerate(pcap_records(src, magic), start=1):
                yield Record(header + data, PCAP_RECORD, endian, number, link)
            return
        if magic != PCAPNG_SHB:
            raise CaptureError(f"{source}: not a pcap or pcapng file")
        links: list[int] = []
        for btype, endian, block, number in pcapng_blocks(src, magic):
            link = 0
            if btype == SHB:
                links = []
            elif btype == IDB and len(block) >= 10:
                links.append(struct.unpack(endian + "H", block[8:10])[0])
            elif number is not None:
                if btype == EPB:
                    iface = struct.unpack(endian + "I", block[8:12])[0]
                elif btype == PB:
                    iface = struct.unpack(endian + "H", block[8:10])[0]
                else:
                    iface = 0
                link = links[iface] if iface < len(links) else 1
            yield Record(block, btype, endian, number, link)


def copy_frames(source: str | Path, output: str | Path, frames: set[int]) -> int:
    """Copy the records of the frames numbered `frames` (1-based) to `output`, byte for byte, with every
    record that is not a packet (pcap file header; pcapng section, interface, statistics... blocks).
    Returns the number of frames written. The lean walk for big captures (copy_records' per-record
    objects cost twice as much)."""
    written = 0
    with open_capture(source) as src:
        magic = src.read(4)
        if not is_pcap_or_pcapng(magic):
            raise CaptureError(f"{source}: not a pcap or pcapng file")
        with open(output, "wb") as out:
            if magic in PCAP_MAGICS:
                out.write(magic + src.read(20))
                for number, (header, data) in enumerate(pcap_records(src, magic), start=1):
                    if number in frames:
                        out.write(header + data)
                        written += 1
                return written
            for _btype, _endian, block, number in pcapng_blocks(src, magic):
                if number is None:
                    out.write(block)
                elif number in frames:
                    out.write(block)
                    written += 1
    return written


def copy_records(source: str | Path, output: str | Path, pick: Callable[[Record], bytes | None]) -> int:
    """Write to `output` what `pick` gives for each record of `source`, in order (None: leave it out).
    Returns the number of packet records written."""
    written = 0
    with open(output, "wb") as out:
        for record in records(source):
            data = pick(record)
            if data is not None:
                out.write(data)
                written += record.number is not None
    return written


def pcapng_keep_options(block: bytes, btype: int, endian: str, kept: dict[int, tuple[int, set[int]]]) -> bytes:
    """A pcapng block with only the options `kept` names for its type (block type -> (where its options
    start, option codes kept); for an EPB the start is where the packet data starts); blocks of other
    types, and blocks whose options cannot be walked, unchanged."""
    if btype not in kept:
        return bytes(block)
    start, keep = kept[btype]
    if btype == EPB:
        caplen = struct.unpack(endian + "I", block[20:24])[0]
        start += (caplen + 3) & ~3
    end = len(block) - 4
    out, at = b"", start
    while at + 4 <= end:
        code, size = struct.unpack(endian + "HH", block[at:at + 4])
        if code == 0:
            break
        stop = at + 4 + ((size + 3) & ~3)
        if code in keep:
            out += bytes(block[at:stop])
        at = stop
    if at > end or (at == start and start >= end):
        return bytes(block)
    if out:
        out += b"\0\0\0\0"
    body = bytes(block[:start]) + out
    length = len(body) + 4
    packed = struct.pack(endian + "I", length)
    return body[:4] + packed + body[8:] + packed


def tshark_to_pcapng(source: str | Path, output: str | Path, settings: Settings, *,
                     frames: list[int] | None = None, needed_for: str = "reading", shown: str | Path | None = None) -> None:
    """Write `source` (any capture format tshark reads) to `output` as pcapng, only the frames numbered
    `frames` (1-based) when given: the one format conversion of flowviz (ingest, the per-call pcap,
    redaction), run by the settings' tshark (`--tshark`). `shown` names the file in errors."""
    tool = settings.tshark()
    if not tool:
        raise ToolMissingError(f"{shown or source}: {needed_for} this capture format needs tshark (to convert it "
                               "to pcapng); install it with: apt-get install tshark")
    args = [tool, "-r", str(source)]
    if frames is not None:
        args += ["-Y", "frame.number in {" + ", ".join(map(str, frames)) + "}"]  # tshark 4.0 needs the commas
    done = subprocess.run([*args, "-F", "pcapng", "-w", str(output)], capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        said = " ".join(line.removeprefix("tshark: ") for line in done.stderr.splitlines()
                        if line.strip() and not line.startswith("Running as user"))
        raise CaptureError(f"{shown or source} is not a capture file (not pcap, pcapng or another format tshark "
                           f"reads: {said[:160]}); check that you picked the right file")
    if not Path(output).exists() or Path(output).stat().st_size == 0:
        raise CaptureError(f"{shown or source} is not a capture file (tshark wrote nothing from it); check that "
                           "you picked the right file")

"""Capture files: open pcap/pcapng (optionally gzipped) and locate every packet record.

The record walk is the only per-packet Python loop in ingest: it does nothing but
follow length fields, so it runs at several million records per second. Every
field after that is gathered with numpy over the whole file at once.
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import tempfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flowviz.errors import CaptureError, ToolMissingError
from flowviz.settings import Settings

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1000),  # big-endian, microseconds
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),  # big-endian, nanoseconds
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Records:
    """Where each packet's bytes are in `buf`, and when it was captured."""

    buf: np.ndarray  # the whole (decompressed) file as uint8
    data_off: np.ndarray  # int64: offset of the packet's first byte in buf
    caplen: np.ndarray  # int64: bytes captured
    orig_len: np.ndarray  # int64: bytes on the wire
    ts_ns: np.ndarray  # int64: capture time, ns since the Unix epoch
    link_type: np.ndarray  # uint16: LINKTYPE_* of the packet's interface
    iface: np.ndarray  # uint16: interface index (0 for pcap)
    file_format: str  # "pcap", "pcap-ns", "pcapng", or "<format> (converted)"
    warnings: list[str] = field(default_factory=list)
    unknown_blocks: int = 0

    @property
    def count(self) -> int:
        return len(self.data_off)


def read_records(path: str | os.PathLike, settings: Settings) -> Records:
    """Read a capture file into memory and locate its records."""
    path = Path(path)
    if not path.exists():
        raise CaptureError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise CaptureError(f"{path} is a folder; give a capture file (.pcap, .pcapng, .gz)")
    data = path.read_bytes()
    if not data:
        raise CaptureError(f"{path} is empty (0 bytes); it is not a capture, record one again")
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise CaptureError(f"{path}: the gzip file is damaged ({exc}); decompress it by hand to check") from None
    magic = data[:4]
    if magic in PCAP_MAGICS:
        return _walk_pcap(data, path, settings)
    if magic == PCAPNG_SHB:
        return _walk_pcapng(data, path, settings)
    return _convert_and_read(path, data, settings)


def _convert_and_read(path: Path, data: bytes, settings: Settings) -> Records:
    """A format tshark knows but we do not (NetMon, ERF, snoop...): let editcap write pcapng."""
    editcap = settings.editcap()
    if not editcap:
        raise ToolMissingError(
            f"{path} is not pcap/pcapng and editcap (package tshark) is missing to convert it; "
            "install it with: apt-get install tshark"
        )
    with tempfile.TemporaryDirectory(prefix="flowviz-") as tmp:
        src = Path(tmp) / "input"
        src.write_bytes(data)
        out = Path(tmp) / "converted.pcapng"
        result = subprocess.run(
            [editcap, "-F", "pcapng", str(src), str(out)], capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            raise CaptureError(
                f"{path} is not a capture file (not pcap, pcapng or another format tshark reads); "
                "check that you picked the right file"
            )
        fmt = _capinfos_format(src) or "unknown format"
        records = _walk_pcapng(out.read_bytes(), path, settings)
    records.file_format = f"{fmt} (converted to pcapng)"
    return records


def _capinfos_format(path: Path) -> str:
    try:
        out = subprocess.run(["capinfos", "-t", "-M", str(path)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in out.stdout.splitlines():
        if line.startswith("File type:"):
            return line.split(":", 1)[1].strip()
    return ""


def _walk_pcap(data: bytes, path: Path, settings: Settings) -> Records:
    if len(data) < 24:
        raise CaptureError(f"{path}: the pcap header is cut short ({len(data)} bytes); the file is damaged")
    endian, ns_per_unit = PCAP_MAGICS[data[:4]]
    link_type = struct.unpack_from(endian + "I", data, 20)[0] & 0xFFFF
    offsets, warning = _walk_pcap_records(data, endian, settings.max_record_bytes)
    buf = np.frombuffer(data, dtype=np.uint8)
    hdr = offsets
    if endian == "<":
        sec = _u32le(buf, hdr)
        frac = _u32le(buf, hdr + 4)
        caplen = _u32le(buf, hdr + 8)
        orig = _u32le(buf, hdr + 12)
    else:
        sec = _u32be(buf, hdr)
        frac = _u32be(buf, hdr + 4)
        caplen = _u32be(buf, hdr + 8)
        orig = _u32be(buf, hdr + 12)
    ts_ns = sec.astype(np.int64) * 1_000_000_000 + frac.astype(np.int64) * ns_per_unit
    n = len(offsets)
    records = Records(
        buf=buf,
        data_off=hdr + 16,
        caplen=caplen.astype(np.int64),
        orig_len=orig.astype(np.int64),
        ts_ns=ts_ns,
        link_type=np.full(n, link_type, dtype=np.uint16),
        iface=np.zeros(n, dtype=np.uint16),
        file_format="pcap" if ns_per_unit == 1000 else "pcap-ns",
    )
    if warning:
        records.warnings.append(f"{path}: {warning}; {n} packets before it were read")
    return records


def _walk_pcap_records(data: bytes, endian: str, max_record: int) -> tuple[np.ndarray, str]:
    """Offsets of every whole record header; stops at a cut or an impossible length."""
    offsets = array("q")
    append = offsets.append
    unpack = struct.Struct(endian + "I").unpack_from
    off, end = 24, len(data)
    warning = ""
    while off + 16 <= end:
        caplen = unpack(data, off + 8)[0]
        if caplen > max_record:
            warning = f"record {len(offsets) + 1} at byte {off} has an impossible length ({caplen} bytes)"
            break
        nxt = off + 16 + caplen
        if nxt > end:
            warning = f"the file is cut in the middle of record {len(offsets) + 1} (byte {off})"
            break
        append(off)
        off = nxt
    else:
        if off != end:
            warning = f"the file is cut in the middle of a record header (byte {off})"
    return np.frombuffer(offsets, dtype=np.int64).copy(), warning


# pcapng block types
_SHB, _IDB, _PB, _SPB, _EPB = 0x0A0D0D0A, 1, 2, 3, 6


def _walk_pcapng(data: bytes, path: Path, settings: Settings) -> Records:
    """Walk pcapng blocks: EPBs are gathered vectorized, rare SPB/PB blocks one by one."""
    end = len(data)
    off = 0
    endian = "<"
    u32 = struct.Struct("<I").unpack_from
    interfaces: list[tuple[int, int, int, int]] = []  # (link_type, snaplen, tsresol code, tsoffset s)
    section_base = 0  # interface index of the current section's first interface
    epb = array("q")
    epb_section = array("q")
    slow: list[tuple[int, int, int, int, int]] = []  # (data_off, caplen, orig_len, iface, ts_ns)
    unknown = 0
    warning = ""
    max_block = settings.max_record_bytes + 1024
    while off + 12 <= end:
        btype = u32(data, off)[0]
        if btype == _SHB:
            bom = data[off + 8 : off + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            u32 = struct.Struct(endian + "I").unpack_from
            section_base = len(interfaces)
        blen = u32(data, off + 4)[0]
        if blen < 12 or blen % 4 or (blen > max_block and btype != _SHB):
            warning = f"block at byte {off} has an impossible length ({blen} bytes)"
            break
        if off + blen > end:
            warning = f"the file is cut in the middle of a block (byte {off})"
            break
        if btype == _EPB:
            epb.append(off)
            epb_section.append(section_base)
        elif btype == _IDB:
            interfaces.append(_parse_idb(data, off, blen, endian))
        elif btype in (_SPB, _PB):
            slow.append(_parse_old_block(data, off, btype, endian, interfaces, section_base))
        elif btype != _SHB:
            unknown += 1
        off += blen
    if endian == ">" and epb:
        raise CaptureError(f"{path}: big-endian pcapng is not supported yet; convert it with editcap -F pcapng")
    buf = np.frombuffer(data, dtype=np.uint8)
    blocks = np.frombuffer(epb, dtype=np.int64).copy()
    iface = _u32le(buf, blocks + 8).astype(np.int64) + np.frombuffer(epb_section, dtype=np.int64)
    ts_units = (_u32le(buf, blocks + 12).astype(np.uint64) << np.uint64(32)) | _u32le(buf, blocks + 16).astype(
        np.uint64
    )
    caplen = _u32le(buf, blocks + 20).astype(np.int64)
    orig = _u32le(buf, blocks + 24).astype(np.int64)
    data_off = blocks + 28
    if len(interfaces) == 0 and (len(blocks) or slow):
        raise CaptureError(f"{path}: packets come before any interface description; the pcapng file is damaged")
    if len(blocks) and iface.max() >= len(interfaces):
        raise CaptureError(f"{path}: a packet names an interface that was never described; the file is damaged")
    link = np.array([i[0] for i in interfaces] or [0], dtype=np.uint16)
    ts_ns = np.zeros(len(blocks), dtype=np.int64)
    for idx, (_lt, _snap, resol, tsoffset) in enumerate(interfaces):
        sel = iface == idx
        if sel.any():
            ts_ns[sel] = _units_to_ns(ts_units[sel], resol) + tsoffset * 1_000_000_000
    caplen = np.minimum(caplen, np.maximum(0, (_u32le(buf, blocks + 4).astype(np.int64) - 32)))
    if slow:
        extra = np.array(slow, dtype=np.int64)
        data_off = np.concatenate([data_off, extra[:, 0]])
        caplen = np.concatenate([caplen, extra[:, 1]])
        orig = np.concatenate([orig, extra[:, 2]])
        iface = np.concatenate([iface, extra[:, 3]])
        ts_ns = np.concatenate([ts_ns, extra[:, 4]])
        order = np.argsort(data_off, kind="stable")
        data_off, caplen, orig, iface, ts_ns = (a[order] for a in (data_off, caplen, orig, iface, ts_ns))
    records = Records(
        buf=buf,
        data_off=data_off,
        caplen=caplen,
        orig_len=orig,
        ts_ns=ts_ns,
        link_type=link[iface] if len(iface) else np.zeros(0, dtype=np.uint16),
        iface=iface.astype(np.uint16),
        file_format="pcapng",
        unknown_blocks=unknown,
    )
    if warning:
        records.warnings.append(f"{path}: {warning}; {records.count} packets before it were read")
    if unknown:
        records.warnings.append(f"{path}: skipped {unknown} pcapng blocks of types flowviz does not use")
    return records


def _parse_idb(data: bytes, off: int, blen: int, endian: str) -> tuple[int, int, int, int]:
    link_type, _res, snaplen = struct.unpack_from(endian + "HHI", data, off + 8)
    resol, tsoffset = 6, 0
    pos, stop = off + 16, off + blen - 4
    while pos + 4 <= stop:
        code, length = struct.unpack_from(endian + "HH", data, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            resol = data[pos + 4]
        elif code == 14 and length == 8:
            tsoffset = struct.unpack_from(endian + "q", data, pos + 4)[0]
        pos += 4 + ((length + 3) & ~3)
    return link_type, snaplen, resol, tsoffset


def _parse_old_block(data, off, btype, endian, interfaces, section_base):
    if btype == _SPB:  # Simple Packet Block: interface 0 of the section, no timestamp
        orig = struct.unpack_from(endian + "I", data, off + 8)[0]
        blen = struct.unpack_from(endian + "I", data, off + 4)[0]
        return (off + 12, min(orig, blen - 16), orig, section_base, 0)
    iface, _drops, hi, lo, caplen, orig = struct.unpack_from(endian + "HHIIII", data, off + 8)
    iface += section_base
    resol = interfaces[iface][2] if iface < len(interfaces) else 6
    ts = int(_units_to_ns(np.array([(hi << 32) | lo], dtype=np.uint64), resol)[0])
    return (off + 28, caplen, orig, iface, ts)


def _units_to_ns(units: np.ndarray, resol: int) -> np.ndarray:
    """pcapng if_tsresol: high bit clear = 10^-v seconds per unit, set = 2^-v."""
    units = units.astype(np.uint64)
    if resol & 0x80:
        shift = np.uint64(resol & 0x7F)
        secs = units >> shift
        frac = units & ((np.uint64(1) << shift) - np.uint64(1))
        return (secs.astype(np.int64) * 1_000_000_000 + ((frac.astype(np.float64) * 1e9) / float(1 << int(shift))).astype(np.int64))
    if resol <= 9:
        return units.astype(np.int64) * (10 ** (9 - resol))
    return (units // np.uint64(10 ** (resol - 9))).astype(np.int64)


def _u32le(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (
        buf[idx].astype(np.uint32)
        | (buf[idx + 1].astype(np.uint32) << 8)
        | (buf[idx + 2].astype(np.uint32) << 16)
        | (buf[idx + 3].astype(np.uint32) << 24)
    )


def _u32be(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (
        (buf[idx].astype(np.uint32) << 24)
        | (buf[idx + 1].astype(np.uint32) << 16)
        | (buf[idx + 2].astype(np.uint32) << 8)
        | buf[idx + 3].astype(np.uint32)
    )

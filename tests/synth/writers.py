"""pcap / pcapng / gzip writers, struct-based so every variant is under our control.

pcap:   magic a1b2c3d4 (usec) or a1b23c4d (nsec), written little- or big-endian.
pcapng: SHB (either byte order), one IDB per interface (link type, snaplen, if_name,
        if_tsresol), EPBs (optionally with an opt_comment), plus any extra block:
        Simple Packet Block, Interface Statistics Block, or a block of a type no
        reader knows (readers must skip it using its total length).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field

PCAP_MAGIC_USEC = 0xA1B2C3D4
PCAP_MAGIC_NSEC = 0xA1B23C4D
PCAPNG_BOM = 0x1A2B3C4D

BT_IDB = 0x00000001
BT_SPB = 0x00000003
BT_ISB = 0x00000005
BT_EPB = 0x00000006
BT_SHB = 0x0A0D0D0A
# Not assigned by the pcapng spec (nor a custom/local-use type): a reader must skip it.
BT_UNKNOWN = 0x0000_0F0E

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_TSRESOL = 9
SHB_USERAPPL = 4
ISB_IFRECV = 4
ISB_IFDROP = 5


@dataclass
class Record:
    """One captured packet: capture time, link-layer bytes, interface (pcapng only)."""

    ts_ns: int
    data: bytes
    iface: int = 0
    orig_len: int | None = None  # defaults to len(data)
    comment: str | None = None  # pcapng EPB opt_comment


@dataclass
class Interface:
    linktype: int
    tsresol: int = 6  # decimal exponent: 6 = microseconds, 9 = nanoseconds
    name: str = ""
    snaplen: int = 262144


@dataclass
class SimplePacket:
    """pcapng Simple Packet Block: interface 0, no timestamp."""

    data: bytes
    orig_len: int | None = None


@dataclass
class RawBlock:
    """Any pcapng block, written verbatim as type + body (body padded to 4 bytes)."""

    block_type: int
    body: bytes = b""


@dataclass
class InterfaceStats:
    iface: int
    ts_ns: int
    received: int
    dropped: int = 0


@dataclass
class PcapngSection:
    interfaces: list[Interface]
    items: list = field(default_factory=list)  # Record | SimplePacket | RawBlock | InterfaceStats
    byteorder: str = "<"
    user_appl: str = "flowviz tests.synth"


# --------------------------------------------------------------------------- pcap


def pcap_bytes(
    linktype: int,
    records: list[Record],
    *,
    nsec: bool = False,
    byteorder: str = "<",
    snaplen: int = 262144,
    version: tuple[int, int] = (2, 4),
) -> bytes:
    """Classic libpcap file.  usec files floor the timestamps to microseconds."""
    e = byteorder
    magic = PCAP_MAGIC_NSEC if nsec else PCAP_MAGIC_USEC
    out = [struct.pack(e + "IHHiIII", magic, version[0], version[1], 0, 0, snaplen, linktype)]
    for r in records:
        out.append(pcap_record(r, nsec=nsec, byteorder=e))
    return b"".join(out)


def pcap_record(r: Record, *, nsec: bool = False, byteorder: str = "<") -> bytes:
    sec, frac_ns = divmod(r.ts_ns, 1_000_000_000)
    frac = frac_ns if nsec else frac_ns // 1000
    orig = len(r.data) if r.orig_len is None else r.orig_len
    return struct.pack(byteorder + "IIII", sec, frac, len(r.data), orig) + r.data


def stored_ts_ns(ts_ns: int, *, tsresol: int) -> int:
    """The timestamp a reader gets back after writing with resolution 10**-tsresol s."""
    unit = 10 ** (9 - tsresol)
    return ts_ns - ts_ns % unit


# --------------------------------------------------------------------------- pcapng


def _pad4(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def _options(e: str, opts: list[tuple[int, bytes]]) -> bytes:
    if not opts:
        return b""
    out = b"".join(struct.pack(e + "HH", code, len(val)) + _pad4(val) for code, val in opts)
    return out + struct.pack(e + "HH", OPT_ENDOFOPT, 0)


def _block(e: str, block_type: int, body: bytes) -> bytes:
    body = _pad4(body)
    total = 12 + len(body)
    return struct.pack(e + "II", block_type, total) + body + struct.pack(e + "I", total)


def pcapng_bytes(sections: PcapngSection | list[PcapngSection]) -> bytes:
    if isinstance(sections, PcapngSection):
        sections = [sections]
    return b"".join(_section_bytes(s) for s in sections)


def _section_bytes(s: PcapngSection) -> bytes:
    e = s.byteorder
    blocks = []
    shb_body = struct.pack(e + "IHHq", PCAPNG_BOM, 1, 0, -1) + _options(e, [(SHB_USERAPPL, s.user_appl.encode())])
    blocks.append(_block(e, BT_SHB, shb_body))
    for itf in s.interfaces:
        opts = []
        if itf.name:
            opts.append((IF_NAME, itf.name.encode()))
        # if_tsresol 6 is also the default when absent; always written here for clarity.
        opts.append((IF_TSRESOL, bytes([itf.tsresol])))
        body = struct.pack(e + "HHI", itf.linktype, 0, itf.snaplen) + _options(e, opts)
        blocks.append(_block(e, BT_IDB, body))
    for item in s.items:
        if isinstance(item, Record):
            itf = s.interfaces[item.iface]
            units = item.ts_ns // (10 ** (9 - itf.tsresol))
            orig = len(item.data) if item.orig_len is None else item.orig_len
            body = struct.pack(e + "IIIII", item.iface, units >> 32, units & 0xFFFFFFFF, len(item.data), orig)
            body += _pad4(item.data)
            if item.comment:
                body += _options(e, [(OPT_COMMENT, item.comment.encode())])
            blocks.append(_block(e, BT_EPB, body))
        elif isinstance(item, SimplePacket):
            orig = len(item.data) if item.orig_len is None else item.orig_len
            blocks.append(_block(e, BT_SPB, struct.pack(e + "I", orig) + _pad4(item.data)))
        elif isinstance(item, InterfaceStats):
            itf = s.interfaces[item.iface]
            units = item.ts_ns // (10 ** (9 - itf.tsresol))
            body = struct.pack(e + "III", item.iface, units >> 32, units & 0xFFFFFFFF)
            body += _options(e, [(ISB_IFRECV, struct.pack(e + "Q", item.received)), (ISB_IFDROP, struct.pack(e + "Q", item.dropped))])
            blocks.append(_block(e, BT_ISB, body))
        elif isinstance(item, RawBlock):
            blocks.append(_block(e, item.block_type, item.body))
        else:
            raise TypeError(f"unknown pcapng item {item!r}")
    # Section length is left as -1 (unspecified), which every reader must accept.
    return b"".join(blocks)


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (mtime 0, no file name)."""
    return gzip.compress(data, compresslevel=9, mtime=0)

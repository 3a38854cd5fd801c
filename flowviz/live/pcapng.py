"""The pcapng blocks flowviz writes and cuts (pcapng specification, IETF draft-ietf-opsawg-pcapng):
a Section Header Block, one Interface Description Block (Ethernet, microsecond times), Enhanced
Packet Blocks; every block is type (u32), total length (u32), body padded to 4 bytes, total length again."""

from __future__ import annotations

import struct

SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
LINKTYPE_ETHERNET = 1


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def header() -> bytes:
    """Section header (version 1.0, section length unknown) and the one Ethernet interface."""
    shb = _block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1))
    idb = _block(IDB, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 0))  # snaplen 0: no limit
    return shb + idb


def packet(ts: float, frame: bytes) -> bytes:
    """One Enhanced Packet Block on interface 0; the time in microseconds (the IDB's default resolution)."""
    micros = int(round(ts * 1_000_000))
    return _block(EPB, struct.pack("<IIIII", 0, micros >> 32, micros & 0xFFFFFFFF, len(frame), len(frame)) + frame)


def complete_length(data: bytes) -> int:
    """How many leading bytes of a pcapng being written are whole blocks: a reader given more would meet
    a block cut in the middle. Only the byte order of the first section is followed (dumpcap writes one)."""
    if len(data) < 12:
        return 0
    order = "<" if struct.unpack_from("<I", data, 8)[0] == BYTE_ORDER_MAGIC else ">"
    at, size = 0, len(data)
    while at + 8 <= size:
        length = struct.unpack_from(order + "I", data, at + 4)[0]
        if length < 12 or at + length > size:
            break
        at += length
    return at

"""Redacted captures: a whole pcap or pcapng file rewritten with a Redactor, in two passes (learn, rewrite).

The first pass learns every original (so that the pseudonyms avoid them, and so that users found in one
message are also replaced where they appear bare elsewhere: Call-ID, tags, branches, Subject), the second
rewrites. Docs: docs/redact.md.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from flowviz.errors import CaptureError, ToolMissingError
from flowviz.export.redact.redactor import Redactor

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
DROPPED_BLOCKS = (0x00000004, 0x0000000A)  # name resolution (addresses -> names), decryption secrets


def redact_capture(source: str | Path, output: str | Path, redactor: Redactor | None = None,
                   tshark: str = "") -> dict:
    """Write a redacted copy of a whole capture: pcap stays pcap (same header, timestamps, lengths), pcapng
    stays pcapng (packet blocks rewritten; name resolution and decryption secrets blocks dropped). gzip input
    is written uncompressed; other formats are converted to pcapng by tshark first. Two passes: learn, then
    rewrite. `output` may be `source`. Returns counts: packets, addresses, users, names."""
    from flowviz.export.pcap import _open

    redactor = redactor or Redactor()
    source, output = Path(source), Path(output)
    with tempfile.TemporaryDirectory(prefix="flowviz-redact-") as tmp:
        with _open(source) as f:
            magic = f.read(4)
        if magic not in PCAP_MAGICS and magic != PCAPNG_SHB:
            tool = tshark or shutil.which("tshark") or ""
            if not tool:
                raise ToolMissingError("redacting this capture format needs tshark (to convert it to pcapng)")
            converted = Path(tmp) / "converted.pcapng"
            done = subprocess.run([tool, "-r", str(source), "-F", "pcapng", "-w", str(converted)],
                                  capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                said = " ".join(line.removeprefix("tshark: ") for line in done.stderr.splitlines()
                                if line.strip() and not line.startswith("Running as user"))
                raise CaptureError(f"{source}: not a capture tshark can read ({said[:200]})")
            source = converted
        for data, link in _records(source, None):
            redactor.learn_packet(data, link)
        target = Path(tmp) / "out"
        count = _rewrite(source, target, redactor)
        shutil.move(str(target), str(output))
    return {"packets": count, "addresses": len(redactor.ip4) + len(redactor.ip6), "users": len(redactor.users),
            "names": len(redactor.names)}


def _records(source: Path, out):
    """(frame bytes, link type) of every packet; with `out` (a file), every record is also written there,
    packet data replaced by what the caller sends back into the generator."""
    from flowviz.export.pcap import _open, pcap_records, pcapng_blocks

    with _open(source) as src:
        magic = src.read(4)
        if magic in PCAP_MAGICS:
            endian = ">" if magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d") else "<"
            rest = src.read(20)
            link = struct.unpack(endian + "I", rest[16:20])[0] & 0x0FFFFFFF
            if out:
                out.write(magic + rest)
            for header, data in pcap_records(src, magic):
                new = yield data, link
                if out:
                    out.write(header + (new if new is not None else data))
            return
        if magic != PCAPNG_SHB:
            raise CaptureError(f"{source}: not a pcap or pcapng file")
        links = []
        for btype, endian, block, number in pcapng_blocks(src, magic):
            if btype == 0x0A0D0D0A:  # a new section numbers its interfaces from 0 again
                links = []
            if btype == 1 and len(block) >= 10:  # interface description
                links.append(struct.unpack(endian + "H", block[8:10])[0])
            elif btype in DROPPED_BLOCKS:
                continue
            elif number is not None:  # a packet block
                if btype == 6:
                    iface = struct.unpack(endian + "I", block[8:12])[0]
                    caplen = struct.unpack(endian + "I", block[20:24])[0]
                    start = 28
                elif btype == 2:
                    iface = struct.unpack(endian + "H", block[8:10])[0]
                    caplen = struct.unpack(endian + "I", block[20:24])[0]
                    start = 28
                else:
                    iface = 0
                    origlen = struct.unpack(endian + "I", block[8:12])[0]
                    caplen = min(origlen, len(block) - 16)
                    start = 12
                link = links[iface] if iface < len(links) else 1
                data = bytes(block[start:start + caplen])
                new = yield data, link
                if new is not None:
                    block = bytearray(block)
                    block[start:start + caplen] = new
            if out:
                out.write(_strip_options(block, btype, endian))


KEPT_OPTIONS = {  # block type -> (where its options start, option codes kept); comments and the rest dropped
    0x0A0D0D0A: (24, {2, 3, 4}),  # SHB: hardware, OS, application
    1: (16, {9, 13, 14}),  # IDB: timestamp resolution, FCS length, timestamp offset (name, filter... dropped)
    6: (28, {2, 4}),  # EPB: flags, drop count (comments, hashes of the original bytes dropped)
}


def _strip_options(block: bytearray, btype: int, endian: str) -> bytes:
    """A pcapng block with only the options of KEPT_OPTIONS: interface names, capture filters ("host
    192.0.2.7") and comments can name what was redacted."""
    if btype not in KEPT_OPTIONS:
        return bytes(block)
    start, keep = KEPT_OPTIONS[btype]
    if btype == 6:
        caplen = struct.unpack(endian + "I", block[20:24])[0]
        start += (caplen + 3) & ~3
    end = len(block) - 4
    kept, at = b"", start
    while at + 4 <= end:
        code, size = struct.unpack(endian + "HH", block[at:at + 4])
        if code == 0:
            break
        stop = at + 4 + ((size + 3) & ~3)
        if code in keep:
            kept += bytes(block[at:stop])
        at = stop
    if at > end or (at == start and start >= end):
        return bytes(block)
    if kept:
        kept += b"\0\0\0\0"
    body = bytes(block[:start]) + kept
    length = len(body) + 4
    packed = struct.pack(endian + "I", length)
    return body[:4] + packed + body[8:] + packed


def _rewrite(source: Path, target: Path, redactor: Redactor) -> int:
    count = 0
    with open(target, "wb") as out:
        gen = _records(source, out)
        try:
            item = next(gen)
            while True:
                data, link = item
                count += 1
                item = gen.send(redactor.redact_packet(data, link))
        except StopIteration:
            pass
    return count


def redact_file_in_place(path: str | Path, redactor: Redactor) -> dict:
    """Redact a file just written (e.g. the per-call pcap of `flowviz export`) with an existing Redactor."""
    return redact_capture(path, path, redactor)

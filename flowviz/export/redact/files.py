"""Redacted captures: a whole pcap or pcapng file rewritten with a Redactor, in two passes (learn, rewrite).

The first pass learns every original (so that the pseudonyms avoid them, and so that users found in one
message are also replaced where they appear bare elsewhere: Call-ID, tags, branches, Subject), the second
rewrites each packet record. Records are read and written by flowviz.ingest.records; pcapng blocks and
options that can name what was redacted are left out. Docs: docs/redact.md.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from flowviz.export.redact.redactor import Redactor
from flowviz.ingest import records
from flowviz.settings import Settings

DROPPED_BLOCKS = (0x00000004, 0x0000000A)  # name resolution (addresses -> names), decryption secrets
KEPT_OPTIONS = {  # block type -> (where its options start, option codes kept); comments and the rest dropped
    0x0A0D0D0A: (24, {2, 3, 4}),  # SHB: hardware, OS, application
    1: (16, {9, 13, 14}),  # IDB: timestamp resolution, FCS length, timestamp offset (name, filter... dropped)
    6: (28, {2, 4}),  # EPB: flags, drop count (comments, hashes of the original bytes dropped)
}


def redact_capture(source: str | Path, output: str | Path, redactor: Redactor | None = None,
                   tshark: str = "", *, settings: Settings | None = None) -> dict:
    """Write a redacted copy of a whole capture: pcap stays pcap (same header, timestamps, lengths), pcapng
    stays pcapng (packet blocks rewritten; name resolution and decryption secrets blocks dropped). gzip input
    is written uncompressed; other formats are converted to pcapng by tshark first: the one of `settings`
    (--tshark), else `tshark` (a path), else the one on PATH. Two passes: learn, then rewrite. `output` may
    be `source`. Returns counts: packets, addresses, users, names."""
    redactor = redactor or Redactor()
    settings = settings or Settings(tshark_path=tshark)
    source, output = Path(source), Path(output)
    with tempfile.TemporaryDirectory(prefix="flowviz-redact-") as tmp:
        if not records.is_pcap_or_pcapng(records.capture_magic(source)):
            converted = Path(tmp) / "converted.pcapng"
            records.tshark_to_pcapng(source, converted, settings, needed_for="redacting")
            source = converted
        for record in records.records(source):
            if record.number is not None:
                redactor.learn_packet(record.data, record.link_type)
        target = Path(tmp) / "out"
        count = records.copy_records(source, target, lambda record: _rewrite(record, redactor))
        shutil.move(str(target), str(output))
    return {"packets": count, "addresses": len(redactor.ip4) + len(redactor.ip6), "users": len(redactor.users),
            "names": len(redactor.names)}


def _rewrite(record: records.Record, redactor: Redactor) -> bytes | None:
    """The bytes written for one record: packets redacted, blocks that name things dropped or trimmed."""
    if record.block_type in DROPPED_BLOCKS:
        return None
    raw = record.raw
    if record.number is not None:
        raw = record.with_data(redactor.redact_packet(record.data, record.link_type))
    return records.pcapng_keep_options(raw, record.block_type, record.endian, KEPT_OPTIONS)


def redact_file_in_place(path: str | Path, redactor: Redactor) -> dict:
    """Redact a file just written (e.g. the per-call pcap of `flowviz export`) with an existing Redactor."""
    return redact_capture(path, path, redactor)

"""Capture: read one capture file into the frames every later stage works on."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from flowviz.ingest import cache
from flowviz.ingest.capture_file import read_records
from flowviz.ingest.rtp_decode import decode_rtcp, decode_rtp, udp_rtp_like
from flowviz.ingest.sip_decode import TsharkJob, select_candidates
from flowviz.ingest.triage import build_index
from flowviz.settings import Settings

Progress = Callable[[str, float], None]  # (stage, fraction done 0..1)


@dataclass
class Capture:
    path: Path
    sip_messages: pl.DataFrame
    rtp_packets: pl.DataFrame
    rtcp_reports: pl.DataFrame
    info: dict = field(default_factory=dict)


def read_capture(
    path: str | Path,
    settings: Settings | None = None,
    *,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> Capture:
    """Decode a capture (pcap/pcapng/gz, or any format editcap converts) into polars frames."""
    settings = settings or Settings()
    path = Path(path)
    report = progress or (lambda stage, done: None)
    started = time.perf_counter()
    report("reading file", 0.0)
    records = read_records(path, settings)
    key = cache.key_for(records.buf, settings) if use_cache else None
    if key and (hit := cache.load(key)):
        sip, rtp, rtcp, info = hit
        info = dict(info, from_cache=True, decode_seconds=round(time.perf_counter() - started, 3))
        return Capture(path, sip, rtp, rtcp, info)

    report("indexing packets", 0.2)
    index = build_index(records)
    report("decoding SIP", 0.4)
    candidates = select_candidates(index, settings)
    job = TsharkJob(index, candidates, settings)  # tshark runs in the background...
    exclude = candidates.packet_rows
    rtp_rows, rtcp_rows = udp_rtp_like(index, exclude)  # ...while numpy reads RTP headers
    rtcp = decode_rtcp(index, rtcp_rows)
    sip = job.result()
    report("decoding RTP", 0.8)
    rtp = decode_rtp(index, rtp_rows, sdp_endpoints(sip), settings.rtp_min_packets)

    info = _info(path, records, index, sip, rtp, rtcp, candidates)
    if sip.is_empty():
        info["warnings"].append(
            f"{path}: no SIP message found in {records.count} packets; if SIP uses an unusual port "
            "and is not recognised by content (TLS, compressed), name the port with --sip-port"
        )
    info["decode_seconds"] = round(time.perf_counter() - started, 3)
    if key:
        cache.store(key, sip, rtp, rtcp, info)
    report("done", 1.0)
    return Capture(path, sip, rtp, rtcp, info)


def sdp_endpoints(sip: pl.DataFrame) -> set[tuple[str, int]]:
    """Every (address, port) an SDP body announced for media."""
    if sip.is_empty():
        return set()
    media = (
        sip.filter(pl.col("has_sdp"))
        .select(pl.col("sdp_media").explode())
        .unnest("sdp_media")
        .filter(pl.col("port").is_not_null() & (pl.col("port") > 0) & pl.col("connection").is_not_null())
    )
    return set(zip(media["connection"].to_list(), media["port"].to_list()))


def _info(path, records, index, sip, rtp, rtcp, candidates) -> dict:
    ts = records.ts_ns
    link_types = dict(zip(*[a.tolist() for a in np.unique(records.link_type, return_counts=True)]))
    streams = rtp.select(["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]).n_unique() if len(rtp) else 0
    return {
        "file": str(path),
        "file_bytes": path.stat().st_size,
        "file_format": records.file_format,
        "packets": records.count,
        "first_ts_ns": int(ts.min()) if len(ts) else None,
        "last_ts_ns": int(ts.max()) if len(ts) else None,
        "duration_s": round((int(ts.max()) - int(ts.min())) / 1e9, 6) if len(ts) else 0.0,
        "link_types": {str(k): v for k, v in link_types.items()},
        "sip_candidate_packets": int(len(candidates.packet_rows)),
        "sip_messages": len(sip),
        "rtp_packets": len(rtp),
        "rtp_streams": streams,
        "rtcp_reports": len(rtcp),
        "skipped": dict(index.skipped),
        "warnings": list(records.warnings),
        "from_cache": False,
    }

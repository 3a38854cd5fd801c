"""Capture: read one capture file into the frames every later stage works on."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from flowviz import schemas
from flowviz.ingest import cache, hep, kernel, sip_udp, tls
from flowviz.ingest.capture_file import Packets, check_readable, read_packets
from flowviz.ingest.rtp_decode import RtcpPackets, decode_rtcp, find_streams, rtcp_packets, rtp_columns, rtp_frame, select_streams
from flowviz.ingest.sip_decode import feed, select_candidates
from flowviz.ingest.tshark_sip import TsharkRun
from flowviz.settings import Settings

Progress = Callable[[str, float], None]  # (stage, fraction done 0..1)


@dataclass
class Capture:
    path: Path
    sip_messages: pl.DataFrame
    rtp_packets: pl.DataFrame
    rtcp_reports: pl.DataFrame
    info: dict = field(default_factory=dict)
    rtcp_xr: pl.DataFrame = field(default_factory=lambda: schemas.empty(schemas.RTCP_XR))


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
    check_readable(path)
    key = cache.key_for(path, settings) if use_cache else None
    if key and (hit := cache.load(key)):
        sip, rtp, rtcp, xr, info = hit
        info = dict(info, file=str(path), from_cache=True, decode_seconds=round(time.perf_counter() - started, 3))
        return Capture(path, sip, rtp, rtcp, info, xr)

    job = TsharkRun(settings)
    if settings.sip_decoder == "tshark":
        job.start()  # every SIP packet goes to tshark: it loads its dissectors while the file is read
    packets = None
    try:
        packets = read_packets(path, settings, progress=lambda done: report("reading packets", 0.6 * done),
                               on_rows=_tshark_starter(job, settings))
        report("decoding SIP", 0.6)
        hep_rows = hep.hep_rows(packets)
        candidates = select_candidates(packets, settings, exclude=hep_rows)
        if len(keyed := tls.keyed_rows(packets, settings)):  # with keys, tshark looks into every TLS connection
            candidates.packet_rows = np.union1d(candidates.packet_rows, keyed)
            candidates.tshark_rows = np.union1d(candidates.tshark_rows, keyed)
        conns = tls.connections(packets, settings, candidates.tshark_rows)
        candidates.decode_as += [d for d in conns.decode_as() if d not in candidates.decode_as]
        feed(job, packets, candidates)  # tshark decodes the SIP only it can place, a thread parses its output
        own_sip = sip_udp.decode(packets, candidates.own_rows, settings.leg_link_headers)
        carried = hep.decode(packets, hep_rows, settings.leg_link_headers, str(path)) if len(hep_rows) else None
        report("decoding RTP", 0.7)
        # Python-heavy work first: when tshark decodes some of the SIP it needs ~40 ms before its first
        # output line, after which the thread parsing it needs the interpreter lock too; the RTP work
        # after it runs in numba and polars, which release the lock (measured: docs/architecture.md 7).
        info = _packet_info(path, packets, candidates)
        rtcp_in = rtcp_packets(packets, candidates.packet_rows)
        if carried:
            own_sip = _merge_sip(own_sip, carried.sip)
            rtcp_in = RtcpPackets(rtcp_in.base + carried.rtcp_base, rtcp_in.payloads + carried.rtcp_payloads)
            info["hep"] = carried.info
            info["warnings"] += carried.warnings
        rtcp, xr = decode_rtcp(rtcp_in)
        streams = find_streams(packets, candidates.packet_rows)
        columns = rtp_columns(packets, streams)
        packets.release_table()  # lowers the peak memory: the frame is built without the table beside it
        rtp_shaped = rtp_frame(columns, streams)
        sip = _merge_sip(own_sip, job.result())
        rtp, n_streams = select_streams(rtp_shaped, streams, sdp_endpoints(sip), settings.rtp_min_packets)
        info.update(sip_messages=len(sip), sip_udp_messages=len(own_sip) - (len(carried.sip) if carried else 0), rtp_packets=len(rtp),
                    rtp_streams=n_streams, rtcp_reports=len(rtcp), rtcp_xr_blocks=len(xr),
                    tcp_gap_frames=sorted(job.gap_frames))
    finally:
        job.cancel()
        if packets is not None:
            packets.close()
    if len(conns.flows):
        info["tls"], tls_warnings = tls.summary(conns, sip, settings, str(path))
        info["warnings"] += tls_warnings
    if sip.is_empty() and not info.get("tls", {}).get("not_decrypted"):
        info["warnings"].append(
            f"{path}: no SIP message found in {packets.count} packets; if SIP uses an unusual port "
            "and is not recognised by content (TLS, compressed), name the port with --sip-port"
        )
    info["decode_seconds"] = round(time.perf_counter() - started, 3)
    if key:
        cache.store(key, (sip, rtp, rtcp, xr), info)
    report("done", 1.0)
    return Capture(path, sip, rtp, rtcp, info, xr)


def _tshark_starter(job: TsharkRun, settings: Settings):
    """read_packets' hook: start tshark at the first packet it will get, so its ~0.25 s of start-up
    overlaps the rest of the packet pass; a capture whose SIP is all in whole UDP datagrams never
    starts it (no process, no CPU taken from the other core; docs/architecture.md section 10)."""
    ports = np.array(settings.sip_ports, dtype=np.int64)
    wanted = job.proc is not None

    def on_rows(table, start, end):
        nonlocal wanted
        if not wanted and kernel.any_for_tshark(table, start, end, ports, kernel.GET_PREFIX):
            wanted = True
            job.start()

    return on_rows


def _merge_sip(own: pl.DataFrame, from_tshark: pl.DataFrame) -> pl.DataFrame:
    """flowviz's UDP messages and tshark's messages, in capture order."""
    if own.is_empty():
        return from_tshark
    if from_tshark.is_empty():
        return own
    return pl.concat([own, from_tshark]).sort("frame", "msg_index", maintain_order=True)


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


SKIP_REASONS = {kernel.SKIP_LINK: "unsupported link type", kernel.SKIP_TRUNCATED: "truncated headers",
                kernel.SKIP_DEEP: "nested too deep"}


def _skipped(packets: Packets) -> dict[str, int]:
    """Packets the kernel could not place, counted by reason."""
    t = packets.table
    out: dict[str, int] = {}
    skip = t["skip"]
    if not skip.any():
        return out
    for code, name in SKIP_REASONS.items():
        sel = skip == code
        if code == kernel.SKIP_LINK:
            for lt, c in zip(*np.unique(t["link_type"][sel], return_counts=True)):
                out[f"{name} {lt}"] = int(c)
        elif sel.any():
            out[name] = int(sel.sum())
    not_ip = t["ethertype"][t["skip"] == kernel.SKIP_NOT_IP]
    for et, c in zip(*np.unique(not_ip, return_counts=True)):
        out["not IP (802.3 LLC frame)" if et < 0x600 else f"not IP (ethertype 0x{et:04x})"] = \
            out.get("not IP (802.3 LLC frame)" if et < 0x600 else f"not IP (ethertype 0x{et:04x})", 0) + int(c)
    return out


def _packet_info(path, packets: Packets, candidates) -> dict:
    """What the packet table tells about the capture (taken before the table is released).

    One compiled pass (kernel.table_summary) rather than numpy calls on the table's strided fields:
    this runs while the thread parsing tshark's output needs the interpreter lock too."""
    first, last, short, per_link = kernel.table_summary(packets.table)
    has_packets = len(packets.table) > 0
    return {
        "file": str(path),
        "file_bytes": path.stat().st_size,
        "file_format": packets.file_format,
        "packets": packets.count,
        "first_ts_ns": int(first) if has_packets else None,
        "last_ts_ns": int(last) if has_packets else None,
        "duration_s": round((int(last) - int(first)) / 1e9, 6) if has_packets else 0.0,
        "link_types": {str(int(lt)): int(per_link[lt]) for lt in np.flatnonzero(per_link)},
        "sip_candidate_packets": int(len(candidates.packet_rows)),
        # frames the capture cut short (snapshot length): their end is missing
        "short_frames": int(short),
        "skipped": _skipped(packets),
        "warnings": list(packets.warnings),
        "from_cache": False,
    }

"""Per-call pcap: the frames of one call (SIP of every leg and hop, its RTP and RTCP) copied to a new
file record by record, so bytes and timestamps are the original ones."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flowviz.errors import CaptureError
from flowviz.ingest import records
from flowviz.settings import Settings

STREAM_KEY = ["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]


def call_frames(sip: pl.DataFrame, rtp: pl.DataFrame, rtcp: pl.DataFrame | None, call_ids: list[str],
                streams: pl.DataFrame | None) -> list[int]:
    """Sorted frame numbers of the call: every frame carrying bytes of its SIP messages (all its Call-IDs),
    the RTP packets of its streams (same addresses, ports and SSRC), and RTCP between the same two
    addresses on the streams' ports or the ports + 1."""
    frames = set(sip.filter(pl.col("call_id").is_in(call_ids))["frames"].explode().drop_nulls().to_list())
    if streams is not None and not streams.is_empty():
        keys = streams.select(STREAM_KEY).unique()
        frames |= set(rtp.join(keys, on=STREAM_KEY, how="semi")["frame"].to_list())
        if rtcp is not None and not rtcp.is_empty():
            pairs = set()
            for s in keys.to_dicts():
                for d in (0, 1):
                    pairs.add((s["src_ip"], s["src_port"] + d, s["dst_ip"], s["dst_port"] + d))
            picked = [r["frame"] for r in rtcp.select(["frame", "src_ip", "src_port", "dst_ip", "dst_port"]).to_dicts()
                      if (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"]) in pairs]
            frames |= set(picked)
    return sorted(frames)


def write_call_pcap(source: str | Path, frames: list[int], output: str | Path, settings: Settings) -> int:
    """Copy `frames` (1-based numbers of `source`) to `output`, records byte for byte: pcap stays pcap
    (same header, timestamps, link type), pcapng keeps its section and interface blocks. Other formats
    (converted on reading) go through tshark. Returns the number of frames written."""
    if not frames:
        raise CaptureError("the call has no frames to write")
    if not records.is_pcap_or_pcapng(records.capture_magic(source)):
        records.tshark_to_pcapng(source, output, settings, frames=frames, needed_for="writing")
        return len(frames)
    return records.copy_frames(source, output, set(frames))

"""Audio: hear a call. RTP payloads decoded by PyAV (FFmpeg's decoders), placed by RTP timestamp, written as WAV.

    from flowviz.analyze import analyze
    from flowviz.audio import call_audio, stream_audio

    analysis = analyze("call.pcap")
    audio = call_audio(analysis.call("a1b2c3d4"))   # stereo: caller left, callee right, from the call's start
    audio.write_wav("call.wav")
    audio.channels[0].marks                         # lost/late packets, DTMF, comfort noise on the caller's side

The payload bytes are read again from the capture (flowviz/audio/payloads.py); everything else comes from the
Analysis. docs/audio.md says what is decoded and how it is timed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from flowviz.audio.codecs import Codec, codec_for
from flowviz.audio.sides import CALLEE, CALLER, stream_sides
from flowviz.audio.track import Mark, Track, side_track, stream_track, undecodable
from flowviz.audio.wav import wav_bytes, write_wav
from flowviz.errors import FlowvizError, NotFoundError

__all__ = ["Audio", "Mark", "Track", "call_audio", "stream_audio", "call_wav_bytes", "stream_wav_bytes"]

KEY = ["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]
SAME_AUDIO = 0.5  # a stream overlapping a chosen one of its side for more than this share of its time is a copy


@dataclass
class Audio:
    """One channel (a stream) or two (a call: the caller's voice, then the callee's), same rate and t0."""

    channels: list[Track]
    rate: int
    t0_ns: int
    notes: list[str] = field(default_factory=list)  # streams not heard, and why

    @property
    def duration_s(self) -> float:
        return max((len(c.samples) for c in self.channels), default=0) / self.rate

    @property
    def heard(self) -> bool:
        """Whether any channel has decoded samples."""
        return any(len(c.samples) for c in self.channels)

    def wav_bytes(self) -> bytes:
        return wav_bytes([c.samples for c in self.channels], self.rate)

    def write_wav(self, path: str | Path) -> None:
        write_wav(path, [c.samples for c in self.channels], self.rate)


def call_audio(view, jitter_buffer_ms: float | None = None, comfort_noise: bool = True) -> Audio:
    """The call's audio (a flowviz.analyze.CallView): left the caller's voice, right the callee's, sample 0 at the
    call's first SIP message (the ladder's time 0). Each side is the streams of the first leg that has any; a
    stream heard over another hop of the same side at the same time is left out (the same voice twice). Sample 0
    is the first RTP packet instead when the capture holds media from before the call's first message."""
    analysis = view.analysis
    streams = view.stream_frame
    if streams is None or streams.is_empty():
        raise NotFoundError(f"call {view.call_group_id} has no RTP streams, so no audio")
    # the ladder's time 0, unless media came before the first SIP message the capture holds
    t0 = min(int(view.summary["start_ns"]), int(streams["start_ts_ns"].min()))
    packets, codecs = _stream_packets(analysis, streams)
    notes = []
    hearable = set()
    for sid in streams["stream_id"].to_list():  # video, or a codec without decoder: said, and left out
        note = undecodable(sid, codecs.get(sid, {}), packets.filter(pl.col("stream_id") == sid)["payload_type"])
        if note:
            notes.append(note)
        else:
            hearable.add(sid)
    sides = stream_sides(analysis.capture.sip_messages, list(view.summary["call_ids"]), streams)
    chosen, more = _choose(streams.filter(pl.col("stream_id").is_in(sorted(hearable))), sides)
    notes += more + [f"no RTP stream carries the {side}'s voice: its channel is silent" for side in (CALLER, CALLEE)
                     if not chosen[side]]
    tracks = _tracks(analysis, packets.filter(pl.col("stream_id").is_in([s for v in chosen.values() for s in v])),
                     codecs, t0, jitter_buffer_ms, comfort_noise)
    channels = [side_track([tracks[s] for s in chosen[side]], t0) for side in (CALLER, CALLEE)]
    _mark_sip_info(analysis, view.summary["call_ids"], t0, channels)
    rate = max(c.rate for c in channels)
    channels = [c.at_rate(rate) for c in channels]
    return Audio(channels, rate, t0, notes + [n for c in channels for n in c.notes])


def stream_audio(analysis, stream_id: str, jitter_buffer_ms: float | None = None, comfort_noise: bool = True) -> Audio:
    """One stream's audio (mono), sample 0 at its first packet."""
    report = analysis.stream_report
    found = None if report is None else report.filter(pl.col("stream_id") == stream_id)
    if found is None or found.is_empty():
        raise NotFoundError(f"no RTP stream {stream_id!r} in {analysis.name}; list streams with: flowviz streams "
                            f"{analysis.name}")
    t0 = int(found["start_ts_ns"][0])
    packets, codecs = _stream_packets(analysis, found)
    track = _tracks(analysis, packets, codecs, t0, jitter_buffer_ms, comfort_noise)[stream_id]
    return Audio([track], track.rate, t0, list(track.notes))


def call_wav_bytes(analysis, call_ref: str, jitter_buffer_ms: float | None = None) -> bytes:
    """The WAV file of a call (stereo, as call_audio), for a front end to serve; FlowvizError when nothing in it
    can be decoded."""
    audio = call_audio(analysis.call(call_ref), jitter_buffer_ms)
    if not audio.heard:
        raise FlowvizError("; ".join(audio.notes) or f"call {call_ref}: no audio could be decoded")
    return audio.wav_bytes()


def stream_wav_bytes(analysis, stream_id: str, jitter_buffer_ms: float | None = None) -> bytes:
    """The WAV file of one stream (mono, as stream_audio); FlowvizError when it cannot be decoded."""
    audio = stream_audio(analysis, stream_id, jitter_buffer_ms)
    if not audio.heard:
        raise FlowvizError("; ".join(audio.notes) or f"stream {stream_id}: no audio could be decoded")
    return audio.wav_bytes()


def _mark_sip_info(analysis, call_ids: list[str], t0: int, channels: list[Track]) -> None:
    """DTMF digits sent as SIP INFO (flowviz.media.dtmf): a mark on the channel of the side that sent them."""
    from flowviz.audio.sides import caller_tags, sent_by_caller
    from flowviz.media.dtmf import sip_info_digits

    msgs = analysis.capture.sip_messages.filter(pl.col("call_id").is_in(call_ids))
    events = sip_info_digits(msgs)  # the call's own messages: Analysis.dtmf_events would read RTP events too
    if events.is_empty():
        return
    tags, _ = caller_tags(msgs)
    for frame, ts, digit, ms in events.select("frame", "ts_ns", "digit", "duration_ms").iter_rows():
        by_caller = sent_by_caller(msgs, frame, tags)
        if by_caller is None:
            continue
        start = (ts - t0) / 1e9
        channel = channels[0 if by_caller else 1]
        channel.marks.append(Mark("dtmf", start, start + (ms or 0) / 1000, "", f"DTMF {digit} (SIP INFO)"))
        channel.marks.sort(key=lambda m: m.start_s)


def _choose(streams: pl.DataFrame, sides: dict[str, tuple[str, int]]) -> tuple[dict[str, list[str]], list[str]]:
    chosen: dict[str, list[str]] = {CALLER: [], CALLEE: []}
    notes = []
    rows = streams.select("stream_id", "start_ts_ns", "end_ts_ns").sort("start_ts_ns").rows()
    for side in (CALLER, CALLEE):
        mine = [r for r in rows if sides[r[0]][0] == side]
        leg = min((sides[r[0]][1] for r in mine), default=0)
        spans: list[tuple[int, int]] = []
        for sid, start, end in mine:
            if sides[sid][1] != leg:
                notes.append(f"stream {sid}: the {side}'s voice on another leg of the call; not mixed in")
                continue
            overlap = sum(max(0, min(end, e) - max(start, s)) for s, e in spans)
            if overlap > SAME_AUDIO * max(end - start, 1):
                notes.append(f"stream {sid}: the {side}'s voice seen at another hop at the same time; not mixed in")
                continue
            spans.append((start, end))
            chosen[side].append(sid)
    return chosen, notes


def _stream_packets(analysis, streams: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, dict[int, Codec]]]:
    """The rtp_packets of the streams (rows of the streams report) with their stream_id, in capture order, and
    stream_id -> payload type -> Codec."""
    capture = analysis.capture
    keys = streams.select(*KEY, "stream_id").with_columns(
        pl.col("src_port").cast(pl.UInt16), pl.col("dst_port").cast(pl.UInt16), pl.col("ssrc").cast(pl.UInt32))
    packets = capture.rtp_packets.join(keys, on=KEY, how="inner").sort("frame")
    return packets, _codecs(capture.sip_messages, keys)


def _tracks(analysis, packets: pl.DataFrame, codecs, t0: int, jitter_buffer_ms, comfort_noise) -> dict[str, Track]:
    """stream_id -> its Track, for the streams whose packets (from _stream_packets) are given."""
    from flowviz.audio.payloads import rtp_payloads

    payloads = rtp_payloads(analysis.capture_path, analysis.settings, packets)  # a set: its merged capture
    out = {}
    ids = packets["stream_id"].to_numpy()
    for sid in dict.fromkeys(packets["stream_id"].to_list()):
        rows = np.flatnonzero(ids == sid)
        out[sid] = stream_track(sid, packets[rows], [payloads[r] for r in rows.tolist()], codecs.get(sid, {}), t0,
                                jitter_buffer_ms, comfort_noise)
    return out


def _codecs(sip: pl.DataFrame, keys: pl.DataFrame) -> dict[str, dict[int, Codec]]:
    """stream_id -> payload type -> Codec: the SDP rtpmap for the stream's addresses, else the static table
    (the lookup of the streams report, flowviz.media.stats.payload_types). Every payload type 0-127 is looked
    up, not only those in the packets: an RFC 2198 block names the payload type of what it carries."""
    from flowviz.media.stats import payload_types
    from flowviz.media.streams import sdp_payload_map

    numbered = keys.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("stream"))
    pairs = numbered.select("stream").join(pl.DataFrame({"payload_type": range(128)}, schema={"payload_type": pl.UInt8}),
                                           how="cross")
    found = payload_types(numbered, pairs, sdp_payload_map(sip))
    ids = dict(zip(numbered["stream"].to_list(), numbered["stream_id"].to_list()))
    out: dict[str, dict[int, Codec]] = {}
    for stream, pt, encoding, clock, _ in found.iter_rows():
        out.setdefault(ids[stream], {})[pt] = codec_for(pt, encoding, clock)
    return out

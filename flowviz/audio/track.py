"""Track: the audio of one RTP stream, or of one side of a call (its streams together), as 16-bit mono samples
counted from a time t0, with marks where something other than speech is (lost or late packets, DTMF, comfort
noise, payloads that could not be decoded).

Speech payloads are decoded by PyAV (decoder.py) and placed by timeline.py. Not speech: telephone-event
(RFC 4733) packets become DTMF marks over silence; comfort noise (CN, RFC 3389) is FFmpeg's comfort noise
generator at the level the packet gives, held until the next packet (or silence, when asked); RFC 2198
redundancy is unwrapped to its primary block, which is decoded as its own payload type (the redundant copies
of earlier packets are not used to fill losses).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from flowviz.audio.codecs import COMFORT_NOISE, EVENT, REDUNDANCY, SPEECH, Codec, available
from flowviz.audio.decoder import decode
from flowviz.audio.payloads import red_primary
from flowviz.audio.resampler import resample
from flowviz.audio.timeline import assemble, place

LOST, LATE, DTMF, CN, UNDECODED = "lost", "late", "dtmf", "comfort_noise", "undecoded"


@dataclass
class Mark:
    """A span of a track that is not plain speech: kind is one of LOST, LATE, DTMF, CN, UNDECODED."""

    kind: str
    start_s: float  # from the track's t0
    end_s: float
    stream_id: str
    text: str


@dataclass
class Track:
    samples: np.ndarray  # int16, mono
    rate: int  # samples per second
    t0_ns: int  # capture time of sample 0, ns since the Unix epoch
    streams: list[str] = field(default_factory=list)  # stream ids heard in it
    codecs: list[str] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # streams (or parts) that could not be heard, and why

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    def at_rate(self, rate: int) -> "Track":
        return self if rate == self.rate else replace(self, samples=resample(self.samples, self.rate, rate), rate=rate)


def stream_track(stream_id: str, packets: pl.DataFrame, payloads: list[bytes], codecs: dict[int, Codec], t0_ns: int,
                 jitter_buffer_ms: float | None = None, comfort_noise: bool = True) -> Track:
    """The audio of one stream: `packets` are its rtp_packets rows in capture order, `payloads` their bytes,
    `codecs` its payload types. A stream with no decodable speech gives an empty track with a note."""
    pts = packets["payload_type"].to_numpy().astype(np.int64)
    payloads = list(payloads)
    red = [p for p, c in codecs.items() if c.kind == REDUNDANCY]
    for i in np.flatnonzero(np.isin(pts, red)).tolist():
        primary = red_primary(payloads[i])
        if primary is not None and primary[0] in codecs:
            pts[i], payloads[i] = primary
    present = {int(p): int(n) for p, n in zip(*np.unique(pts, return_counts=True))}
    speech = _speech(codecs, present)
    if not speech:
        return Track(np.zeros(0, dtype=np.int16), 8000, t0_ns, [stream_id], [], [],
                     [undecodable(stream_id, codecs, pts)])
    main = max(speech, key=lambda p: present[p])
    rate = max(c.rate for c in speech.values())
    clock = speech[main].clock
    where = place(packets["ts_ns"].to_numpy(), packets["seq"].to_numpy(), packets["rtp_ts"].to_numpy(),
                  packets["marker"].to_numpy(), clock, rate, t0_ns, jitter_buffer_ms,
                  events=np.isin(pts, [p for p, c in codecs.items() if c.kind == EVENT]))
    rows, starts, row_pts = where.rows, where.start, pts[where.rows]
    ends = starts.copy()
    buffers, marks, notes = [], [], []

    def mark(kind: str, begin: int, end: int, text: str) -> None:
        marks.append(Mark(kind, begin / rate, end / rate, stream_id, text))

    for p in sorted(set(row_pts.tolist())):
        codec, sel = codecs.get(p, _NONE), np.flatnonzero(row_pts == p)
        if codec.kind == SPEECH and p in speech or codec.kind == COMFORT_NOISE and comfort_noise and available(codec):
            data = [payloads[r] for r in rows[sel]]
            samples, lengths = decode(codec, data)
            if codec.kind == COMFORT_NOISE:  # each packet's noise held until the next packet
                held = [_hold(c, (_next_start(starts, k, where.step) - starts[k]) * codec.rate // rate)
                        for c, k in zip(np.split(samples, np.cumsum(lengths)[:-1]), sel.tolist())]
                lengths = np.array([len(c) for c in held], dtype=np.int64)
                samples = np.concatenate(held) if held else samples[:0]
            at = starts[sel] * codec.rate // rate
            buffers.append(resample(assemble(at, samples, lengths), codec.rate, rate))
            ends[sel] = (at + lengths) * rate // codec.rate
            if codec.kind == COMFORT_NOISE:
                for k in sel.tolist():
                    mark(CN, starts[k], _next_start(starts, k, where.step), "comfort noise (CN)")
            for k in sel[lengths == 0].tolist():
                payload = payloads[rows[k]]
                if codec.kind == COMFORT_NOISE:
                    continue
                if codec.decoder == "g729" and len(payload) % 10 == 2:
                    mark(CN, starts[k], starts[k] + where.step, "G.729 Annex B SID: comfort noise, silent here")
                else:
                    mark(UNDECODED, starts[k], starts[k] + where.step, f"{codec.name} payload the decoder rejected")
        elif codec.kind == COMFORT_NOISE:
            for k in sel.tolist():
                mark(CN, starts[k], _next_start(starts, k, where.step), "comfort noise (CN), silent here")
        elif codec.kind == EVENT:
            marks += _dtmf_marks(stream_id, packets, payloads, rows[sel], starts[sel], rate, clock)
        else:
            for k in sel.tolist():
                mark(UNDECODED, starts[k], starts[k] + where.step, f"{codec.name} not decoded")
            notes.append(f"stream {stream_id}: {len(sel)} packets of {codec.name} not decoded "
                         f"({'no decoder for it' if codec.kind == SPEECH else 'not speech'})")
    for k in np.flatnonzero(where.lost_before).tolist():
        if k > 0:
            n = int(where.lost_before[k])
            mark(LOST, max(int(ends[k - 1]), int(starts[k - 1])), int(starts[k]), f"{n} packet{'s' * (n > 1)} lost")
    for s in where.late_start.tolist():
        mark(LATE, s, s + where.step, f"arrived after its playout time ({jitter_buffer_ms:g} ms jitter buffer)")
    return Track(_mix(buffers), rate, t0_ns, [stream_id], [speech[p].name for p in sorted(speech)], _merged(marks), notes)


def undecodable(stream_id: str, codecs: dict[int, Codec], payload_types) -> str | None:
    """Why a stream cannot be heard (its codecs named), None if it can: some payload of it is speech that PyAV
    decodes. RFC 2198 redundancy counts as what its primary blocks may be."""
    present = {int(p): int(n) for p, n in zip(*np.unique(np.asarray(payload_types, dtype=np.int64),
                                                             return_counts=True))}
    if _speech(codecs, present) or any(c.kind == REDUNDANCY for p, c in codecs.items() if p in present):
        return None
    return f"stream {stream_id}: {_names(codecs, present) or 'no packets'} cannot be decoded; skipped"


def _speech(codecs: dict[int, Codec], present: dict[int, int]) -> dict[int, Codec]:
    return {p: codecs[p] for p in present if p in codecs and codecs[p].kind == SPEECH and available(codecs[p])}


def side_track(tracks: list[Track], t0_ns: int) -> Track:
    """One side of a call from its streams' tracks (all counted from t0_ns), at the highest of their rates."""
    heard = [t for t in tracks if len(t.samples)]
    rate = max((t.rate for t in heard), default=8000)
    return Track(_mix([t.at_rate(rate).samples for t in heard]), rate, t0_ns,
                 [s for t in tracks for s in t.streams], sorted({c for t in heard for c in t.codecs}),
                 sorted((m for t in tracks for m in t.marks), key=lambda m: m.start_s),
                 [n for t in tracks for n in t.notes])


_NONE = Codec("?", "none")


def _mix(parts: list[np.ndarray]) -> np.ndarray:
    """int16 parts added (they rarely overlap: different times of one stream, or streams of one side)."""
    if len(parts) == 1:
        return parts[0]
    mixed = np.zeros(max((len(p) for p in parts), default=0), dtype=np.int32)
    for p in parts:
        mixed[:len(p)] += p
    return np.clip(mixed, -32768, 32767).astype(np.int16)


def _names(codecs: dict[int, Codec], present: dict[int, int]) -> str:
    names = [codecs[p].name if p in codecs else f"PT {p}" for p in sorted(present, key=lambda p: -present[p])]
    return ", ".join(dict.fromkeys(names))


def _next_start(starts: np.ndarray, k: int, step: int) -> int:
    return int(starts[k + 1]) if k + 1 < len(starts) else int(starts[k]) + step


def _hold(chunk: np.ndarray, length: int) -> np.ndarray:
    """The noise repeated to `length` samples."""
    if len(chunk) == 0 or length <= 0:
        return chunk[:0]
    return np.resize(chunk, length)


def _dtmf_marks(stream_id, packets, payloads, rows, starts, rate, clock) -> list[Mark]:
    """One mark per RFC 4733 event (its packets share the event's timestamp): digit and duration."""
    from flowviz.media.dtmf import event_name

    events: dict[int, tuple[int, int, str]] = {}
    for row, start in zip(rows.tolist(), starts.tolist()):
        payload = payloads[row]
        if len(payload) < 4:
            continue
        ts = int(packets["rtp_ts"][row])
        duration = int.from_bytes(payload[2:4], "big")
        digit = event_name(payload[0]) or f"event {payload[0]}"
        first, longest, _ = events.get(ts, (start, 0, digit))
        events[ts] = (min(first, start), max(longest, duration), digit)
    return [Mark(DTMF, s / rate, (s + d * rate // clock) / rate, stream_id, f"DTMF {digit}")
            for s, d, digit in events.values()]


def _merged(marks: list[Mark]) -> list[Mark]:
    """Marks in time order, touching marks of one kind and text joined into one."""
    out: list[Mark] = []
    for m in sorted(marks, key=lambda m: (m.start_s, m.kind)):
        last = out[-1] if out else None
        if last and last.kind == m.kind and last.text == m.text and m.start_s <= last.end_s + 1e-9 \
                and m.kind != DTMF:
            last.end_s = max(last.end_s, m.end_s)
        else:
            out.append(m)
    return out

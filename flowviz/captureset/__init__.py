"""Capture sets: several captures of the same traffic, taken at several points, read as one timeline.

    capture_set = build_set(["tap1.pcap", "tap2.pcap"], settings)
    capture_set.merged_path    # one pcapng: each packet once, on the reference capture's clock
    capture_set.points         # per capture: clock offset (with evidence), duplicates dropped

The steps (docs/capture-sets.md):
1. every packet of every capture gets an identity (identity.py) from what does not change between taps;
2. packets seen at two points give the clock offset between them (clocks.py); a capture that shares no
   packet with the others is placed by SIP causality, or left uncorrected, and the set says so;
3. copies of one packet (at several points, or twice at one) are kept once (duplicates.py), the first
   on the corrected timeline, remembering every point that saw it;
4. the kept packets are written as one pcapng (merged_file.py), which flowviz then analyses like any
   capture; packets seen upstream but never downstream are reported (losses.py).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from flowviz.captureset import clocks, duplicates, losses
from flowviz.captureset.identity import packet_identities
from flowviz.captureset.merged_file import write_merged
from flowviz.errors import FlowvizError
from flowviz.settings import Settings

Progress = Callable[[str, float], None]

_OPEN: list[tempfile.TemporaryDirectory] = []  # merged files of this process, removed by cleanup()


@dataclass
class Point:
    """One capture of a set: where it was taken is what it saw."""

    name: str
    path: Path
    packets: int
    offset_ns: int = 0  # its clock minus the reference capture's clock
    uncertainty_ns: int | None = 0
    method: str = "reference"  # reference, shared packets, causality, forced, none
    evidence: str = ""
    against: str | None = None  # the point the offset was measured against
    duplicates: int = 0  # its packets dropped as copies of packets kept from it or another point

    def as_dict(self) -> dict:
        return {"capture": self.name, "packets": self.packets, "offset_s": self.offset_ns / 1e9,
                "uncertainty_s": None if self.uncertainty_ns is None else self.uncertainty_ns / 1e9,
                "method": self.method, "against": self.against, "evidence": self.evidence,
                "duplicates_dropped": self.duplicates}


@dataclass
class CaptureSet:
    points: list[Point]
    merged_path: Path
    # per merged frame: the points that saw the packet (seen_at: point numbers) and their frames there
    seen: pl.DataFrame
    # packets lost between points: merged_frame, upstream, downstream (point numbers)
    lost: pl.DataFrame
    warnings: list[str] = field(default_factory=list)
    _folder: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return " + ".join(p.name for p in self.points)

    def info(self) -> dict:
        return {"points": [p.as_dict() for p in self.points], "reference": self.points[0].name,
                "packets_kept": len(self.seen), "duplicates_dropped": sum(p.duplicates for p in self.points),
                "lost_between_points": len(self.lost)}

    def seen_at(self, frames=None) -> dict[int, list[str]]:
        """merged frame -> '<capture>#<frame>' of every observation of the packet, first seen first (only
        the given merged frames, when given)."""
        names = [p.name for p in self.points]
        seen = self.seen if frames is None else self.seen.filter(pl.col("merged_frame").is_in(list(frames)))
        return {frame: [f"{names[p]}#{f}" for p, f in zip(points, frames)]
                for frame, points, frames in seen.iter_rows()}

    def close(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()
            if self._folder in _OPEN:
                _OPEN.remove(self._folder)
            self._folder = None


def cleanup() -> None:
    """Remove this process's merged files (the `flowviz` command leaves through os._exit: no finalizers)."""
    while _OPEN:
        _OPEN.pop().cleanup()


def point_names(paths: list[Path]) -> list[str]:
    """Each capture's name in the set: its file name, or the path as given when two share a name."""
    names = [p.name for p in paths]
    return [p.name if names.count(p.name) == 1 else str(p) for p in paths]


def parse_offsets(items, names: list[str], paths: list[Path]) -> dict[int, int]:
    """`--offset CAPTURE=SECONDS` options -> point number -> offset in ns."""
    out = {}
    for item in items:
        capture, _, value = item.rpartition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = None
        matches = [i for i, (n, p) in enumerate(zip(names, paths)) if capture in (n, str(p), p.name)]
        if not capture or seconds is None or seconds != seconds or abs(seconds) > 86400 * 366:
            raise FlowvizError(f"--offset {item}: give CAPTURE=SECONDS, e.g. --offset tap2.pcap=0.25 (tap2's "
                               "clock 250 ms ahead of the first capture's)")
        if not matches:
            raise FlowvizError(f"--offset {item}: {capture!r} is none of the captures of the set "
                               f"({', '.join(names)})")
        out[matches[0]] = round(seconds * 1e9)
    return out


def build_set(paths, settings: Settings, *, offsets: dict[int, int] | None = None, use_cache: bool = True,
              progress: Progress | None = None) -> CaptureSet:
    """Read the captures, place them on the first one's clock, drop copies and write the merged pcapng."""
    from flowviz.ingest.capture_file import read_packets

    paths = [Path(p) for p in paths]
    names = point_names(paths)
    report = progress or (lambda stage, done: None)
    opened, observations = [], []
    folder = tempfile.TemporaryDirectory(prefix="flowviz-set-")
    _OPEN.append(folder)
    try:
        for k, path in enumerate(paths):
            report(f"reading {names[k]}", 0.5 * k / len(paths))
            packets = read_packets(path, settings)
            opened.append(packets)
            observations.append(_observations(packets, k))
        points = [Point(names[k], paths[k], len(observations[k])) for k in range(len(paths))]
        report("matching packets between captures", 0.5)
        sip_of = _sip_reader(points, settings, use_cache)
        place(points, observations, offsets or {}, sip_of)
        corrected = pl.concat([obs.with_columns(t=pl.col("ts") - points[k].offset_ns)
                               for k, obs in enumerate(observations)])
        worst = max((p.uncertainty_ns or 0) for p in points)
        marked = duplicates.mark_copies(corrected, duplicates.window_ns(worst))
        for point, dropped in zip(points, duplicates.dropped_per_point(marked, len(points))):
            point.duplicates = dropped
        merged = duplicates.merged_order(marked)
        if len(merged) and merged["t"].min() < 0:
            raise FlowvizError("the clock offsets put packets before 1970: check the --offset values "
                               "(SECONDS is how far a capture's clock is ahead of the first capture's)")
        lost = losses.lost_between(marked, merged, len(points))
        report("writing the merged capture", 0.8)
        target = Path(folder.name) / "merged.pcapng"
        comment = "flowviz capture set: " + "; ".join(
            f"{p.name} offset {p.offset_ns / 1e9:+.6f} s ({p.method})" for p in points)
        write_merged(target, merged, [o.plain_path for o in opened], names, comment)
    except BaseException:
        folder.cleanup()
        _OPEN.remove(folder)
        raise
    finally:
        for packets in opened:
            packets.close()
    warnings = [f"{p.name}: {p.evidence}" for p in points if p.method == "none"]
    seen = merged.select(pl.col("merged_frame").cast(pl.UInt32), "seen_at", "copy_frames")
    return CaptureSet(points, target, seen, lost, warnings, folder)


def _observations(packets, point: int) -> pl.DataFrame:
    table = packets.table
    ident, forward, backward = packet_identities(packets)
    return pl.DataFrame({
        "point": np.full(len(table), point, dtype=np.int64),
        "frame": np.arange(1, len(table) + 1, dtype=np.int64),
        "ts": table["ts"].astype(np.int64),
        "ident": ident, "forward": forward, "backward": backward,
        "iface": table["iface"].astype(np.int64), "link_type": table["link_type"].astype(np.int64),
        "file_off": table["file_off"].astype(np.int64), "caplen": table["caplen"].astype(np.int64),
        "orig_len": table["orig_len"].astype(np.int64),
    })


def _sip_reader(points: list[Point], settings: Settings, use_cache: bool):
    """point number -> its SIP messages (decoded only when causality needs them)."""
    def sip_of(k: int) -> pl.DataFrame:
        from flowviz.ingest import read_capture

        return read_capture(points[k].path, settings, use_cache=use_cache).sip_messages

    return sip_of


def place(points: list[Point], observations: list[pl.DataFrame], forced: dict[int, int], sip_of) -> None:
    """Every point's offset against the first: forced, else from packets shared with a placed point (the
    pair sharing the most first), else from SIP causality (`sip_of(k)`: point k's SIP messages), else none
    (uncorrected, and said so). `observations[k]`: point k's packets (frame, ts, ident, forward, backward)."""
    placed = {0}
    for k, offset in forced.items():
        points[k].offset_ns, points[k].uncertainty_ns, points[k].method = offset, 0, "forced"
        points[k].evidence = "given with --offset"
        placed.add(k)
    backward_of = {}
    for obs in observations:
        keys = obs.filter(pl.col("forward") != 0).select("forward", "backward").unique("forward")
        backward_of.update(zip(keys["forward"].to_list(), keys["backward"].to_list()))
    estimates: dict[tuple[int, int], clocks.Estimate | None] = {}
    for a in range(len(points)):
        for b in range(a + 1, len(points)):
            estimates[(a, b)] = clocks.from_shared_packets(clocks.paired(observations[a], observations[b]),
                                                           backward_of)
    while True:
        best = None
        for (a, b), est in estimates.items():
            if est is None or (a in placed) == (b in placed):
                continue
            if best is None or est.samples > best[2].samples:
                best = (a, b, est)
        if best is None:
            break
        a, b, est = best
        known, new, sign = (a, b, 1) if a in placed else (b, a, -1)
        point = points[new]
        point.offset_ns = points[known].offset_ns + sign * est.offset_ns
        point.uncertainty_ns = None if est.uncertainty_ns is None or points[known].uncertainty_ns is None else \
            points[known].uncertainty_ns + est.uncertainty_ns
        point.method, point.evidence, point.against = est.method, est.evidence, points[known].name
        placed.add(new)
    if len(placed) < len(points):
        _place_by_causality(points, placed, sip_of)
    for k, point in enumerate(points):
        if k not in placed:
            point.method = "none"
            point.evidence = ("shares no packet and no SIP hop with the other captures: its clock is not "
                              "corrected (offset 0 assumed); give --offset CAPTURE=SECONDS if you know it")
    points[0].evidence = points[0].evidence or "the reference: other clocks are given against it"


def _place_by_causality(points: list[Point], placed: set[int], sip_of) -> None:
    sip = [sip_of(k).with_columns(point=pl.lit(k, dtype=pl.Int64)) for k in range(len(points))]
    progress = True
    while progress and len(placed) < len(points):
        progress = False
        for k in range(len(points)):
            if k in placed or sip[k].is_empty():
                continue
            frames = [sip[j].with_columns(pl.col("ts_ns") - points[j].offset_ns) for j in sorted(placed)]
            frames = [f for f in frames + [sip[k]] if not f.is_empty()]
            est = clocks.from_causality(*clocks.causal_bounds(pl.concat(frames, how="diagonal_relaxed"), k))
            if est is None:
                continue
            points[k].offset_ns, points[k].uncertainty_ns = est.offset_ns, est.uncertainty_ns
            points[k].method, points[k].evidence, points[k].against = est.method, est.evidence, "the placed captures"
            placed.add(k)
            progress = True

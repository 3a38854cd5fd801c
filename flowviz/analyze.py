"""Analysis of captures: the one place where the stages are chained (ingest -> calls -> streams -> findings
-> KPIs -> DTMF), each part computed once, on first use, and kept. Every front end (CLI, batch, web) asks
an Analysis; none chains the stages itself.

    analysis = analyze("call.pcap")
    analysis.calls          # call rows (flowviz.export.tables.CALL_KEYS)
    view = analysis.call("a1b2c3d4")
    view.ladder()           # flowviz.ladder.Ladder with streams, DTMF and finding markers
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import polars as pl

from flowviz.analysis.diagnose import Thresholds
from flowviz.errors import FlowvizError, NotFoundError
from flowviz.export import tables
from flowviz.settings import Settings

Progress = Callable[[str, float], None]  # (stage, fraction done 0..1)
Source = str | os.PathLike


def analyze(sources: Source | Sequence[Source], settings: Settings | None = None,
            thresholds: Thresholds | None = None, *, use_cache: bool = True,
            progress: Progress | None = None, merge: bool = False, offsets: Sequence[str] = ()) -> "Analysis":
    """The Analysis of one capture (a path), or of a capture set (a sequence of paths, or merge=True):
    several captures of the same traffic read as one timeline (flowviz.captureset). Nothing is read
    until a part is asked for; a bad capture raises FlowvizError (one line) then."""
    return Analysis(sources, settings, thresholds, use_cache=use_cache, progress=progress, merge=merge,
                    offsets=offsets)


def _as_paths(sources: Source | Sequence[Source]) -> tuple[Path, ...]:
    if isinstance(sources, (str, os.PathLike)):
        return (Path(sources),)
    paths = tuple(Path(s) for s in sources)
    if not paths:
        raise FlowvizError("no capture given")
    return paths


class Analysis:
    """Everything flowviz derives from a capture, computed lazily and kept.

    `name` is the capture as the user named it (the `capture` column of every row); for a capture set,
    its captures' names joined by ' + '. `offsets` ('CAPTURE=SECONDS') force clock offsets in a set."""

    def __init__(self, sources: Source | Sequence[Source], settings: Settings | None = None,
                 thresholds: Thresholds | None = None, *, use_cache: bool = True, progress: Progress | None = None,
                 name: str | None = None, merge: bool = False, offsets: Sequence[str] = ()):
        self.sources = _as_paths(sources)
        self.is_set = merge or len(self.sources) > 1
        self.settings = settings or Settings()
        self.thresholds = thresholds or Thresholds()
        self.use_cache = use_cache
        self.progress = progress
        self.forced_offsets = {}
        if self.is_set:
            from flowviz.captureset import parse_offsets, point_names

            self.forced_offsets = parse_offsets(offsets, point_names(list(self.sources)), list(self.sources))
            default_name = " + ".join(point_names(list(self.sources)))
        elif offsets:
            raise FlowvizError("--offset applies to a capture set: give several captures with --merge")
        else:
            default_name = str(self.sources[0])
        self.name = name if name is not None else default_name

    @cached_property
    def capture_set(self):
        """The capture set (flowviz.captureset.CaptureSet: points, clock offsets, copies dropped, packets
        lost between points); None for a single capture."""
        if not self.is_set:
            return None
        from flowviz.captureset import build_set

        return build_set(self.sources, self.settings, offsets=self.forced_offsets, use_cache=self.use_cache,
                         progress=self.progress)

    @cached_property
    def seen_at(self) -> dict[int, list[str]] | None:
        """For a capture set: merged frame -> '<capture>#<frame>' of each point that saw the packet."""
        if not self.is_set:
            return None
        sip = self.capture.sip_messages
        return self.capture_set.seen_at(sip["frame"].unique().to_list() if not sip.is_empty() else [])

    @property
    def capture_path(self) -> Path:
        """The file the frame numbers point into: the capture, or a set's merged capture."""
        return self.capture_set.merged_path if self.is_set else self.sources[0]

    def close(self) -> None:
        """Remove what the analysis wrote to temporary files (a set's merged capture)."""
        if self.is_set and "capture_set" in self.__dict__:
            self.capture_set.close()

    # ------------------------------------------------------------ ingest

    @cached_property
    def capture(self):
        """The decoded frames (flowviz.ingest.Capture)."""
        from flowviz.ingest import read_capture

        if not self.is_set:
            return _merge_agents(read_capture(self.sources[0], self.settings, use_cache=self.use_cache,
                                              progress=self.progress))
        capture_set = self.capture_set
        capture = read_capture(capture_set.merged_path, self.settings, use_cache=self.use_cache,
                               progress=self.progress)
        merged = str(capture_set.merged_path)
        info = dict(capture.info, file=self.name, capture_set=capture_set.info())
        info["warnings"] = [w.replace(merged, self.name) for w in info.get("warnings", [])] + capture_set.warnings
        capture.info = info
        return _merge_agents(capture)

    @property
    def info(self) -> dict:
        return self.capture.info

    @property
    def warnings(self) -> list[str]:
        """The capture's warnings (ingest), then the correlator's (SIP messages no call can hold)."""
        from flowviz.sip.calls import unplaced_warnings

        capture = self.capture
        return list(capture.info.get("warnings", [])) + unplaced_warnings(capture.sip_messages, self.name)

    @cached_property
    def redactor(self):
        """A Redactor that has learned every original of the capture: one set of pseudonyms for every file
        exported from this analysis (flowviz.export.redact)."""
        from flowviz.export.redact import Redactor

        redactor = Redactor(self.settings.sip_ports)
        redactor.learn_capture(self.capture)
        return redactor

    # ------------------------------------------------------------ calls

    @cached_property
    def correlation(self):
        """Transactions, hops, legs and call groups (flowviz.sip.calls.Correlation)."""
        from flowviz.sip.calls import Correlation

        capture = self.capture
        if self.progress:
            self.progress("correlating calls", 0.95)
        # the capture may run on (RTP, other traffic) after its last SIP message: timers count to its end
        return Correlation(capture.sip_messages, capture.info.get("last_ts_ns"))

    @cached_property
    def summaries(self) -> list[dict]:
        """The correlator's call summaries (times in ns), in start order."""
        return self.correlation.summaries()

    @cached_property
    def group_of_call_id(self) -> dict[str, str]:
        if self.capture.sip_messages.is_empty():
            return {}
        return dict(self.correlation.group_of_call_id().iter_rows())

    @cached_property
    def calls(self) -> list[dict]:
        """One row per call (tables.CALL_KEYS) with its problems."""
        problems = self.problems
        return [tables.call_row(s, problems.get(s["call_group_id"], []), self.name) for s in self.summaries]

    def call(self, ref: str) -> "CallView":
        """The call whose call_group_id, or one of whose Call-IDs, is `ref`."""
        found = next((s for s in self.summaries if s["call_group_id"] == ref or ref in s["call_ids"]), None)
        if found is None:
            if self.capture.sip_messages.is_empty():
                raise NotFoundError(f"{self.name}: no SIP messages, so no call {ref!r}")
            raise NotFoundError(f"no call {ref!r} in {self.name}; list calls with: flowviz calls {self.name}")
        return CallView(self, found)

    # ------------------------------------------------------------ media

    @cached_property
    def stream_report(self) -> pl.DataFrame | None:
        """The streams report (flowviz.media.report) with call binding, RTCP and XR; None without RTP."""
        from flowviz.media.report import streams_report

        capture = self.capture
        if capture.rtp_packets.is_empty():
            return None
        groups = None if capture.sip_messages.is_empty() else self.correlation.group_of_call_id()
        report = streams_report(capture.sip_messages, capture.rtp_packets, t0_ns=capture.info.get("first_ts_ns"),
                                group_of_call_id=groups, rtcp=capture.rtcp_reports, xr=capture.rtcp_xr)
        return report if "stream_id" in report.columns else None

    @cached_property
    def streams(self) -> list[dict]:
        """One row per RTP stream (tables.STREAM_KEYS)."""
        report = self.stream_report
        return [] if report is None else [tables.stream_row(r, self.name) for r in report.to_dicts()]

    @cached_property
    def dtmf_events(self) -> pl.DataFrame:
        """RFC 4733 events (payload words read again from the file) and SIP INFO digits, in time order."""
        from flowviz.ingest.payloads import first_payload_words
        from flowviz.media.dtmf import event_packets, rfc4733_events, sip_info_digits
        from flowviz.media.streams import sdp_payload_map

        capture = self.capture
        packets = event_packets(capture.rtp_packets, sdp_payload_map(capture.sip_messages))
        words = first_payload_words(self.capture_path, self.settings, packets)
        packets = packets.with_columns(pl.Series("event_word", words, dtype=pl.UInt32))
        return pl.concat([rfc4733_events(packets), sip_info_digits(capture.sip_messages)]).sort("ts_ns")

    @cached_property
    def dtmf(self) -> list[dict]:
        """One row per DTMF digit (tables.DTMF_KEYS), with the call it belongs to."""
        events = self.dtmf_events
        if events.is_empty():
            return []
        report = self.stream_report
        stream_groups = {} if report is None or "call_group_id" not in report.columns else dict(
            report.select(["stream_id", "call_group_id"]).iter_rows())
        groups = self.group_of_call_id
        return [tables.dtmf_row(e, groups.get(e["call_id"]) if e["call_id"] else stream_groups.get(e["stream_id"]),
                                self.name) for e in events.to_dicts()]

    # ------------------------------------------------------------ findings and KPIs

    @cached_property
    def findings(self) -> list[dict]:
        """Diagnostics findings (flowviz.analysis.diagnose): about the file first, then per call."""
        from flowviz.analysis.diagnose import diagnose_capture

        findings = diagnose_capture(self.capture, self.thresholds, correlation=self.correlation,
                                    report=self.stream_report, summaries=self.summaries)
        if self.is_set and not self.capture_set.lost.is_empty():
            from flowviz.captureset.findings import lost_findings

            findings += lost_findings(self.capture_set, self.capture, self.correlation, self.stream_report)
        return findings

    @cached_property
    def problems(self) -> dict[str | None, list[dict]]:
        """call_group_id (None: the capture file) -> its findings."""
        from flowviz.analysis.diagnose import problems_by_call

        return problems_by_call(self.findings)

    @cached_property
    def registers(self) -> dict:
        """REGISTER attempts (for RRD and IRA), combinable across captures."""
        from flowviz.analysis.kpis import register_attempts

        correlation = self.correlation
        if correlation.messages.is_empty():
            return {"rrd_ms": [], "failed": 0, "total": 0}
        forwarded = set(correlation.request_hops["down_msg"].to_list())
        return register_attempts(correlation.messages, forwarded)

    @cached_property
    def kpis(self) -> list[dict]:
        """RFC 6076 KPIs of this capture's calls."""
        from flowviz.analysis.kpis import compute_kpis

        return compute_kpis(self.summaries, self.registers)


def _merge_agents(capture):
    """A HEP capture from several capture agents: each message once, on one clock (flowviz.captureset.agents)."""
    from flowviz.captureset.agents import merge_agents

    sip, report = merge_agents(capture.sip_messages)
    if report is not None:
        capture.sip_messages = sip
        capture.info = dict(capture.info, sip_messages=len(sip), capture_agents=report)
    return capture


@dataclass
class CallView:
    """One call of an Analysis: its row, streams, findings, ladder, frames and report."""

    analysis: Analysis
    summary: dict
    _ladders: dict = field(default_factory=dict, repr=False)

    @property
    def call_group_id(self) -> str:
        return self.summary["call_group_id"]

    @property
    def row(self) -> dict:
        return next(c for c in self.analysis.calls if c["call_group_id"] == self.call_group_id)

    @property
    def streams(self) -> list[dict]:
        return [s for s in self.analysis.streams if s["call_group_id"] == self.call_group_id]

    @property
    def stream_frame(self) -> pl.DataFrame | None:
        """The call's rows of the streams report (numbers, not text: for plots)."""
        report = self.analysis.stream_report
        if report is None or "call_group_id" not in report.columns:
            return None
        return report.filter(pl.col("call_group_id") == self.call_group_id)

    @property
    def findings(self) -> list[dict]:
        return [f for f in self.analysis.findings if f["call_group_id"] == self.call_group_id]

    def ladder(self, *, aliases: dict[str, str] | None = None, merge_ports: bool = False,
               diagnostics: bool = True):
        """The ladder model (flowviz.ladder.Ladder): arrows, media bands, DTMF digits and, unless
        diagnostics=False, the markers of the call's findings."""
        from flowviz.ladder import build_ladder

        key = (tuple(sorted((aliases or {}).items())), merge_ports, diagnostics)
        if key not in self._ladders:
            analysis = self.analysis
            self._ladders[key] = build_ladder(
                analysis.correlation.messages, self.summary, analysis.stream_report, dtmf=analysis.dtmf_events,
                findings=analysis.findings if diagnostics else None, aliases=aliases, merge_ports=merge_ports,
                seen_at=analysis.seen_at,
                points=[p.name for p in analysis.capture_set.points] if analysis.is_set else None)
        return self._ladders[key]

    def frames(self) -> list[int]:
        """Frame numbers of the call's SIP (all legs and hops), RTP and RTCP packets."""
        from flowviz.export.pcap import call_frames

        capture = self.analysis.capture
        streams = self.stream_frame
        keys = None
        if streams is not None and not streams.is_empty():
            keys = streams.select("src_ip", "src_port", "dst_ip", "dst_port", "ssrc").with_columns(
                pl.col("src_port").cast(pl.UInt16), pl.col("dst_port").cast(pl.UInt16), pl.col("ssrc").cast(pl.UInt32))
        return call_frames(capture.sip_messages, capture.rtp_packets, capture.rtcp_reports, self.summary["call_ids"],
                           keys)

    def audio(self, jitter_buffer_ms: float | None = None):
        """The call's audio (flowviz.audio.call_audio): the caller's voice and the callee's, decoded and
        placed on the call's time."""
        from flowviz.audio import call_audio

        return call_audio(self, jitter_buffer_ms)

    def write_pcap(self, output) -> int:
        """Write the call's own pcap (its frames copied from the capture, or from a set's merged capture);
        returns the number of frames written."""
        from flowviz.export.pcap import write_call_pcap

        return write_call_pcap(self.analysis.capture_path, self.frames(), output, self.analysis.settings)

    def report(self) -> dict:
        """The per-call report (flowviz.export.call_report): the same for `flowviz export --json` and the web."""
        from flowviz.export.call_report import call_report

        return call_report(self.row, self.streams, self.ladder())

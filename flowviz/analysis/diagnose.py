"""The diagnostics runner: every registered rule on every call group -> findings, in plain words, with the
frames that prove each.

A finding is {call_group_id, rule, severity, title, explanation, evidence {frames, values}, hint}. What a
rule is, the thresholds and the registry are in rulebook.py; the rules in rules_capture.py, rules_media.py
and rules_sip.py, imported here so that they are registered. The rulebook names that the CLI, the web and
tests use are re-exported from here. docs/diagnostics.md lists each rule with its trigger, the RFC or
practice behind it and its threshold.
"""

from __future__ import annotations

from typing import Iterable

import polars as pl

from flowviz.analysis import rules_capture, rules_media, rules_sip
from flowviz.analysis.rulebook import (  # noqa: F401  (re-exported: the CLI, web and tests import them from here)
    FINDING_KEYS,
    RULES,
    SEVERITIES,
    THRESHOLD_NOTES,
    CallFacts,
    Hit,
    Rule,
    ThresholdNote,
    Thresholds,
    rule,
)
from flowviz.sip.calls import Correlation

# a call's findings come by rule module in this order, each module's rules in definition order (not in
# registration order, which depends on which module some other code imported first)
RULE_MODULES = (rules_capture, rules_media, rules_sip)


def ordered_rules() -> list[Rule]:
    """The registered rules in the order findings are given (RULE_MODULES, then any rule registered elsewhere)."""
    rank = {m.__name__: i for i, m in enumerate(RULE_MODULES)}
    return sorted(RULES.values(), key=lambda r: rank.get(r.check.__module__, len(rank)))


def run_rules(facts: CallFacts, thresholds: Thresholds, rules: Iterable[Rule] | None = None) -> list[dict]:
    """Every rule (or `rules`, as ordered_rules() gives them) on one call group -> findings."""
    out = []
    for r in ordered_rules() if rules is None else rules:
        for hit in r.check(facts, thresholds):
            out.append({"call_group_id": facts.call["call_group_id"], "rule": r.id, "severity": r.severity,
                        "title": r.title, "explanation": hit.explanation,
                        "evidence": {"frames": sorted(set(hit.frames)), "values": hit.values}, "hint": r.hint})
    return out


def diagnose(sip: pl.DataFrame, rtp: pl.DataFrame, rtcp: pl.DataFrame | None = None, *,
             capture_start_ns: int | None = None, capture_end_ns: int | None = None,
             thresholds: Thresholds = Thresholds(), correlation=None, report: pl.DataFrame | None = None,
             summaries: list[dict] | None = None) -> list[dict]:
    """A capture's frames -> findings of every call group, in call start order.

    `correlation` (flowviz.sip.calls.Correlation of these messages, with capture_end_ns) and `report`
    (flowviz.media.report.streams_report with its call binding and RTCP) are taken when the caller already
    has them, so a command that lists calls with their problems correlates once; `summaries` likewise
    (correlation.summaries())."""
    # imported here, not at the top: the media report loads the numba kernels (about a second), which
    # importers of Thresholds or THRESHOLD_NOTES alone (CLI options, the web's thresholds form) do not need
    from flowviz.media.report import streams_report

    if sip.is_empty():
        return []
    correlation = correlation if correlation is not None else Correlation(sip, capture_end_ns)
    groups = correlation.group_of_call_id()
    if report is None:
        report = streams_report(sip, rtp, t0_ns=capture_start_ns, group_of_call_id=groups, rtcp=rtcp)
    if "call_group_id" in report.columns:
        report = report.join(rules_media.median_deltas(rtp), on=rules_media.STREAM_KEY, how="left")
    streams_of: dict[str, list[dict]] = {}
    for stream in report.to_dicts() if "call_group_id" in report.columns else []:
        streams_of.setdefault(stream["call_group_id"], []).append(stream)
    # one frame sorted by call group (message order kept inside each): each call's messages are a zero-copy
    # slice of it, made when its rules run, never one small frame per call held all at once (issue 19 item 8)
    msgs = correlation.messages.join(groups, on="call_id", how="inner").sort("call_group_id", maintain_order=True)
    spans, offset = {}, 0
    for gid, n in msgs.group_by("call_group_id", maintain_order=True).len().iter_rows():
        spans[gid] = (offset, n)
        offset += n
    start = capture_start_ns if capture_start_ns is not None else int(sip["ts_ns"].min())
    rules = ordered_rules()
    out = []
    for call in summaries if summaries is not None else correlation.summaries():
        gid = call["call_group_id"]
        facts = CallFacts(call, msgs.slice(*spans[gid]), streams_of.get(gid, []), start,
                          correlation.capture_end_ns, not rtp.is_empty())
        out += run_rules(facts, thresholds, rules)
    return out


def diagnose_capture(capture, thresholds: Thresholds = Thresholds(), *, correlation=None,
                     report: pl.DataFrame | None = None, summaries: list[dict] | None = None) -> list[dict]:
    """Findings of a Capture from flowviz.ingest.read_capture: about the file first, then per call
    (`correlation` and `report` as in diagnose())."""
    return rules_capture.capture_findings(capture.info) + diagnose(
        capture.sip_messages, capture.rtp_packets, capture.rtcp_reports, capture_start_ns=capture.info.get("first_ts_ns"),
        capture_end_ns=capture.info.get("last_ts_ns"), thresholds=thresholds, correlation=correlation, report=report,
        summaries=summaries)


def problems_by_call(findings: list[dict]) -> dict[str | None, list[dict]]:
    """call_group_id -> its findings without the group id: the `problems` of each call summary
    (None holds the findings about the capture file itself)."""
    out: dict[str | None, list[dict]] = {}
    for f in findings:
        out.setdefault(f["call_group_id"], []).append({k: v for k, v in f.items() if k != "call_group_id"})
    return out


def at_least(findings: list[dict], severity: str) -> list[dict]:
    """Findings of `severity` or worse."""
    floor = SEVERITIES.index(severity)
    return [f for f in findings if SEVERITIES.index(f["severity"]) >= floor]

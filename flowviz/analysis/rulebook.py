"""The rulebook: what a diagnostics rule is (Rule, Hit, CallFacts), its limits (Thresholds), and the registry.

A rule is one small pure function `(facts, thresholds) -> list[Hit]` registered with `@rule(id, severity,
title, hint)`; the rules themselves live in rules_sip.py, rules_media.py and rules_capture.py, the runner
that turns hits into findings in diagnose.py. This module imports neither: rule modules depend on it,
never the other way round. Severities: `info` (worth knowing, not a fault: hold, cancelled call, capture
cut), `warning`, `error`. docs/diagnostics.md lists each rule and threshold with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable, NamedTuple

import polars as pl

SEVERITIES = ("info", "warning", "error")
FINDING_KEYS = ["call_group_id", "rule", "severity", "title", "explanation", "evidence", "hint"]


@dataclass(frozen=True)
class Thresholds:
    """Limits of the rules (defaults and the practice behind each: docs/diagnostics.md)."""

    invite_retransmissions: int = 2  # INVITE copies re-sent on one link (timer A, 500 ms then doubling)
    ok_retransmissions: int = 2  # 2xx re-sent on one link (13.3.1.4: only until the ACK arrives)
    slow_hop_ms: float = 500.0  # a proxy's fastest forwarding of one message kind (T1 = 500 ms)
    srd_ms: float = 5000.0  # INVITE -> first 18x/2xx (RFC 6076 SRD)
    auth_challenges: int = 2  # 401/407 in a row for the same request (credentials refused)
    bye_answer_s: float = 4.0  # BYE without final response after this long (T2 = 4 s) in the capture
    loss_pct: float = 2.0  # RTP loss (G.113: G.711 quality drops fast above 1-2 %)
    jitter_ms: float = 30.0  # RTP max interarrival jitter (common SLA figure)
    mos: float = 3.6  # E-model MOS below this ("many users dissatisfied", G.107 R < 70)
    rtp_start_s: float = 2.0  # first RTP later than this after the 200 OK
    rtp_after_bye_s: float = 2.0  # RTP still flowing this long after the BYE
    min_media_s: float = 2.0  # answered calls shorter than this are not checked for missing media
    duplicate_ms: float = 2.0  # the same message again within this is a capture duplicate, not a retransmission
    ptime_diff_ms: float = 10.0  # packet time of one direction differs from the other's by this much
    rtp_stop_s: float = 5.0  # one RTP direction ends this long before the other

    def with_overrides(self, **values) -> "Thresholds":
        known = {f.name for f in fields(self)}
        return Thresholds(**{**{f.name: getattr(self, f.name) for f in fields(self)},
                             **{k: v for k, v in values.items() if k in known and v is not None}})


class ThresholdNote(NamedTuple):
    unit: str
    meaning: str  # one line: what exceeding the threshold means
    rules: str  # the rules that use it
    most: float | None = None  # the largest value that makes sense, when there is one


# Unit and meaning of each threshold, for forms and help texts (the web UI's thresholds panel); the reasons
# behind the defaults are in docs/diagnostics.md.
THRESHOLD_NOTES = {
    "invite_retransmissions": ThresholdNote("times", "an INVITE re-sent this many times on one link",
                                            "sip.invite_retransmitted"),
    "ok_retransmissions": ThresholdNote("times", "a 2xx to the INVITE re-sent this many times on one link",
                                        "sip.ok_without_ack"),
    "slow_hop_ms": ThresholdNote("ms", "a proxy forwarding one kind of message slower than this", "sip.slow_hop"),
    "srd_ms": ThresholdNote("ms", "INVITE to first ringing or answer (SRD) longer than this", "sip.long_srd"),
    "auth_challenges": ThresholdNote("in a row", "the same request challenged 401/407 this many times in a row",
                                     "sip.auth_loop"),
    "bye_answer_s": ThresholdNote("s", "a BYE still without final response this long after it", "sip.bye_unanswered"),
    "loss_pct": ThresholdNote("%", "RTP packet loss of a stream above this", "media.packet_loss", 100.0),
    "jitter_ms": ThresholdNote("ms", "a stream's maximum jitter above this", "media.high_jitter"),
    "mos": ThresholdNote("MOS", "a stream's estimated MOS below this", "media.low_mos", 5.0),
    "rtp_start_s": ThresholdNote("s", "the first RTP packet later than this after the 200 OK", "media.late_rtp"),
    "rtp_after_bye_s": ThresholdNote("s", "RTP still flowing this long after the BYE", "media.rtp_after_bye"),
    "min_media_s": ThresholdNote("s", "answered calls shorter than this are not checked for missing RTP",
                                 "media.no_rtp"),
    "duplicate_ms": ThresholdNote("ms", "the same packet again within this is a capture duplicate, not a "
                                  "retransmission", "capture.duplicate_packets"),
    "ptime_diff_ms": ThresholdNote("ms", "the packet times of the two directions differ by this much",
                                   "media.ptime_asymmetry"),
    "rtp_stop_s": ThresholdNote("s", "one RTP direction ends this long before the other", "media.rtp_stopped"),
}


@dataclass
class Hit:
    """One occurrence of a rule: the sentence saying what happened, and its evidence."""

    explanation: str
    frames: list[int]
    values: dict = field(default_factory=dict)


@dataclass
class CallFacts:
    """What the rules look at for one call group."""

    call: dict  # the correlator's summary (flowviz.sip.calls), times still in ns
    msgs: pl.DataFrame  # the group's messages with transaction columns, in time order
    streams: list[dict]  # the group's RTP streams (flowviz.media.report rows)
    capture_start_ns: int
    capture_end_ns: int
    capture_has_rtp: bool
    # what the messages hold, looked up once so that rules can skip calls cheaply
    methods: set[str] = field(init=False)
    codes: set[int] = field(init=False)
    retransmissions: int = field(init=False)
    min_max_forwards: int | None = field(init=False)

    def __post_init__(self):
        self.methods = set(self.msgs["method"].drop_nulls().to_list())
        self.codes = set(self.msgs["status_code"].drop_nulls().to_list())
        self.retransmissions = int(self.msgs["is_retransmission"].sum())
        self.min_max_forwards = self.msgs["max_forwards"].min()


@dataclass(frozen=True)
class Rule:
    """A registered rule: its id (`sip.*`, `media.*`, `capture.*`), what every finding of it says, and its check."""

    id: str
    severity: str
    title: str
    hint: str
    check: Callable[[CallFacts, Thresholds], list[Hit]]


# rule id -> Rule, in registration order (the runner, diagnose.py, fixes the order findings come in)
RULES: dict[str, Rule] = {}


def rule(rule_id: str, severity: str, title: str, hint: str):
    """Register a rule function under its id (registering an id again replaces it)."""
    if severity not in SEVERITIES:
        raise ValueError(f"rule {rule_id}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")

    def register(check):
        RULES[rule_id] = Rule(rule_id, severity, title, hint, check)
        return check
    return register

"""RFC 6076 SIP end-to-end performance metrics over one capture.

Counted per session attempt (call group), at the caller's side, from first transmissions only
(RFC 6076 section 3: retransmissions never restart a timer). A 401/407 challenge is part of the
same attempt: the timer starts at the retry that carries credentials (4.1, 4.3).

Delays (value = mean in ms, with min/median/max and the count measured):
  SRD   4.3.1 INVITE -> first 18x or 2xx
  SRD failed 4.3.2 INVITE -> final failure (not 401/407) when no 18x/2xx came first
  SDD   4.4   BYE -> its final response
  SDT   4.5   2xx of the INVITE -> BYE (completed calls only), in seconds
  RRD   4.1   REGISTER -> 2xx (the REGISTER that got the 2xx: the one with credentials)
Ratios (value = numerator / denominator * 100):
  SER   4.6   INVITEs answered 200 / (INVITEs - INVITEs answered 3xx)
  SEER  4.7   INVITEs answered 200, 480, 486, 600, 603 / (INVITEs - 3xx)
  ISA   4.8   INVITEs answered 408, 500, 503, 504 / INVITEs
  SCR   4.9   INVITEs established then ended by BYE / INVITEs
  IRA   4.2   REGISTERs failed (>= 300 other than 401/407, or no answer) / REGISTERs (challenges excluded)
"""

from __future__ import annotations

import statistics

import polars as pl

from flowviz.sip.transactions import first_transmissions

EFFECTIVE = {200, 480, 486, 600, 603}
SEIZURE_FAILURES = {408, 500, 503, 504}
CHALLENGES = {401, 407}


def compute_kpis(calls: list[dict], registers: dict) -> list[dict]:
    """calls: summaries from flowviz.sip.calls; registers: register_attempts() of the same capture(s)."""
    invites = [c for c in calls if c["method"] == "INVITE"]
    redirected = [c for c in invites if c["final_status"] and 300 <= c["final_status"] < 400]
    finals = [c["final_status"] for c in invites]
    return [
        _delay("SRD", "session request delay: INVITE -> first 18x/2xx", [c["srd_ms"] for c in invites]),
        _delay("SRD failed", "INVITE -> final failure (401/407 excluded)", [c["failed_srd_ms"] for c in invites]),
        _delay("SDD", "session disconnect delay: BYE -> final response", [c["disconnect_ms"] for c in invites]),
        _delay("SDT", "session duration: 2xx -> BYE", [c["duration_s"] for c in invites if c["state"] == "completed"],
               unit="s"),
        _delay("RRD", "registration request delay: REGISTER with credentials -> 2xx", registers["rrd_ms"]),
        _ratio("SER", "session establishment ratio: 200 / (INVITEs - 3xx)", sum(1 for f in finals if f == 200),
               len(invites) - len(redirected)),
        _ratio("SEER", "session establishment effectiveness: 200,480,486,600,603 / (INVITEs - 3xx)",
               sum(1 for f in finals if f in EFFECTIVE), len(invites) - len(redirected)),
        _ratio("ISA", "ineffective session attempts: 408,500,503,504 / INVITEs",
               sum(1 for f in finals if f in SEIZURE_FAILURES), len(invites)),
        _ratio("SCR", "session completion ratio: established and ended by BYE / INVITEs",
               sum(1 for c in invites if c["state"] == "completed"), len(invites)),
        _ratio("IRA", "ineffective registration attempts: failed / REGISTERs", registers["failed"], registers["total"]),
    ]


def register_attempts(messages: pl.DataFrame, forwarded_msgs: set[int]) -> dict:
    """REGISTER transactions as the UA saw them (first link only): {rrd_ms: [...], failed, total}.

    messages: Correlation.messages; forwarded_msgs: msg_ids that are a proxy's forwarded copy.
    Several captures: add the lists and counts (see combine_register_attempts).
    """
    sent = first_transmissions(messages).filter(pl.col("cseq_method") == "REGISTER")
    requests = sent.filter(pl.col("is_request") & ~pl.col("msg_id").is_in(list(forwarded_msgs)))
    answers = sent.filter(~pl.col("is_request") & (pl.col("status_code") >= 200)).group_by("txn_id").agg(
        final_ts=pl.col("ts_ns").first(), final=pl.col("status_code").first()
    )
    txns = requests.select("txn_id", "ts_ns").join(answers, on="txn_id", how="left")
    txns = txns.filter(~pl.col("final").is_in(list(CHALLENGES)).fill_null(False))
    ok = txns.filter((pl.col("final") >= 200) & (pl.col("final") < 300))
    rrd = ((ok["final_ts"] - ok["ts_ns"]) / 1e6).round(3).to_list()
    failed = txns.filter(pl.col("final").is_null() | (pl.col("final") >= 300)).height
    return {"rrd_ms": rrd, "failed": failed, "total": txns.height}


def _delay(name: str, what: str, values: list, unit: str = "ms") -> dict:
    measured = [v for v in values if v is not None]
    stats = {"mean": None, "min": None, "median": None, "max": None}
    if measured:
        stats = {"mean": round(statistics.fmean(measured), 3), "min": min(measured),
                 "median": round(statistics.median(measured), 3), "max": max(measured)}
    return {"kpi": name, "description": what, "kind": "delay", "unit": unit, "value": stats["mean"], **stats,
            "count": len(measured), "numerator": None, "denominator": None}


def _ratio(name: str, what: str, numerator: int, denominator: int) -> dict:
    value = round(100.0 * numerator / denominator, 2) if denominator else None
    return {"kpi": name, "description": what, "kind": "ratio", "unit": "%", "value": value, "mean": None, "min": None,
            "median": None, "max": None, "count": denominator, "numerator": numerator, "denominator": denominator}


def combine_register_attempts(parts: list[dict]) -> dict:
    return {"rrd_ms": [v for p in parts for v in p["rrd_ms"]], "failed": sum(p["failed"] for p in parts),
            "total": sum(p["total"] for p in parts)}


def capture_kpis(sip: pl.DataFrame) -> list[dict]:
    """sip_messages of one capture -> its KPIs (correlates the calls first). A shortcut for tests on frames;
    the product computes KPIs once per analysis with compute_kpis(summaries, register_attempts(...))."""
    from flowviz.sip.calls import Correlation

    correlation = Correlation(sip)
    forwarded = set(correlation.request_hops["down_msg"].to_list())
    return compute_kpis(correlation.summaries(), register_attempts(correlation.messages, forwarded))

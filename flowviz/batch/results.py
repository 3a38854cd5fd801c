"""Results: one capture's result enriched for the dataset (capture id, counts of findings, worst MOS) and
its row in the captures table."""

from __future__ import annotations

from flowviz.batch.schemas import FAILED_STATES, SEVERITIES


def severity_rank(severity: str | None) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def enrich(result: dict) -> dict:
    """Adds capture_id to every row, and to calls: errors, warnings, worst_severity, worst_mos (lowest
    MOS of the call's streams)."""
    cid = result["capture_id"]
    mos_of: dict[str, float] = {}
    for s in result["streams"]:
        s["capture_id"] = cid
        if s.get("call_group_id") and s.get("mos") is not None:
            gid = s["call_group_id"]
            mos_of[gid] = min(mos_of.get(gid, s["mos"]), s["mos"])
    for c in result["calls"]:
        problems = c.get("problems") or []
        c["capture_id"] = cid
        c["errors"] = sum(1 for p in problems if p["severity"] == "error")
        c["warnings"] = sum(1 for p in problems if p["severity"] == "warning")
        worst = max((p["severity"] for p in problems), key=severity_rank, default=None)
        c["worst_severity"] = worst
        c["worst_mos"] = mos_of.get(c["call_group_id"])
    for k in result["kpis"]:
        k["capture_id"] = cid
    return result


def capture_row(result: dict) -> dict:
    calls = result["calls"]
    states: dict[str, int] = {}
    for c in calls:
        states[c["state"]] = states.get(c["state"], 0) + 1
    mos = [s["mos"] for s in result["streams"] if s.get("mos") is not None]
    kpi = {k["kpi"]: k["value"] for k in result["kpis"]}
    return {"capture_id": result["capture_id"], "capture": result["capture"], "ok": result["ok"],
            "error": result["error"], "seconds": result.get("seconds"), "calls": len(calls),
            "streams": len(result["streams"]), "failed_calls": sum(1 for c in calls if c["state"] in FAILED_STATES),
            "errors": sum(c.get("errors", 0) for c in calls), "warnings": sum(c.get("warnings", 0) for c in calls),
            "worst_mos": min(mos) if mos else None,
            "states": ", ".join(f"{n} {s}" for s, n in sorted(states.items(), key=lambda kv: -kv[1])),
            "ser_pct": kpi.get("SER"), "srd_ms": kpi.get("SRD")}

"""Conditions of --fail-on: FIELD OP VALUE, parsed once, matched against call and stream rows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flowviz.batch.results import severity_rank
from flowviz.batch.schemas import SEVERITIES
from flowviz.errors import FlowvizError
from flowviz.sip.states import STATES


_OPS = ("<=", ">=", "!=", "==", "=", "<", ">")
# field -> (table, column, kind); kind: number | state | severity | text
FIELDS = {
    "mos": ("streams", "mos", "number"),
    "lost_pct": ("streams", "lost_pct", "number"),
    "max_jitter_ms": ("streams", "max_jitter_ms", "number"),
    "state": ("calls", "state", "state"),
    "severity": ("calls", "problems", "severity"),
    "rule": ("calls", "problems", "text"),
    "status": ("calls", "final_status", "number"),
    "srd_ms": ("calls", "srd_ms", "number"),
    "setup_ms": ("calls", "setup_ms", "number"),
    "duration_s": ("calls", "duration_s", "number"),
}


@dataclass(frozen=True)
class Condition:
    text: str
    field: str
    op: str
    value: object

    @property
    def table(self) -> str:
        return FIELDS[self.field][0]

    def _compare(self, got, want) -> bool:
        return {"<": got < want, "<=": got <= want, ">": got > want, ">=": got >= want, "=": got == want,
                "!=": got != want}[self.op]

    def matches(self, row: dict) -> bool:
        """Does this call (table calls) or stream (table streams) row match? Missing values never do."""
        _, column, kind = FIELDS[self.field]
        if kind == "severity":
            return any(self._compare(severity_rank(p["severity"]), severity_rank(self.value))
                       for p in row.get("problems") or [])
        if kind == "text" and column == "problems":
            hits = [self._compare(p["rule"], self.value) for p in row.get("problems") or []]
            return any(hits) if self.op == "=" else bool(hits) and all(hits)
        got = row.get(column)
        return got is not None and self._compare(got, self.value)


def parse_condition(text: str) -> Condition:
    """'mos<3.5', 'state=rejected', 'severity>=warning', 'status>=500', 'rule=sip.rejected' -> Condition.
    Raises FlowvizError (one line) for anything else."""
    match = re.fullmatch(r"\s*([A-Za-z_]+)\s*(<=|>=|!=|==|=|<|>)\s*(.*?)\s*", text)
    if not match:
        raise FlowvizError(f"bad --fail-on condition {text!r}: write FIELD OP VALUE, e.g. mos<3.5 or state=rejected")
    field, op, raw = match.group(1).lower(), match.group(2), match.group(3)
    op = "=" if op == "==" else op
    if field not in FIELDS:
        raise FlowvizError(f"bad --fail-on condition {text!r}: unknown field {field!r} "
                           f"(one of: {', '.join(FIELDS)})")
    if raw == "":
        raise FlowvizError(f"bad --fail-on condition {text!r}: no value after {op!r}")
    kind = FIELDS[field][2]
    value: object = raw
    if kind == "number":
        try:
            value = float(raw)
        except ValueError:
            raise FlowvizError(f"bad --fail-on condition {text!r}: {raw!r} is not a number") from None
    elif kind == "state":
        if op not in ("=", "!="):
            raise FlowvizError(f"bad --fail-on condition {text!r}: state takes = or != only")
        if raw.lower() not in STATES:
            raise FlowvizError(f"bad --fail-on condition {text!r}: unknown state {raw!r} (one of: {', '.join(STATES)})")
        value = raw.lower()
    elif kind == "severity":
        if raw.lower() not in SEVERITIES:
            raise FlowvizError(f"bad --fail-on condition {text!r}: unknown severity {raw!r} "
                               f"(one of: {', '.join(SEVERITIES)})")
        value = raw.lower()
    elif op not in ("=", "!="):
        raise FlowvizError(f"bad --fail-on condition {text!r}: {field} takes = or != only")
    return Condition(text.strip(), field, op, value)


def match_conditions(conditions: list[Condition], results: list[dict]) -> list[dict]:
    """Per condition: {condition, table, matched (rows), captures (capture_ids with a match)}."""
    out = []
    for cond in conditions:
        rows = [r for res in results for r in res[cond.table] if cond.matches(r)]
        out.append({"condition": cond.text, "table": cond.table, "matched": len(rows),
                    "captures": sorted({r["capture_id"] for r in rows})})
    return out

"""Batch analysis: many captures -> calls, streams and KPIs as one Parquet/CSV dataset plus a report.

Library side of `flowviz batch` (docs/batch.md). `analyze_capture` runs in a worker process (spawn)
and returns plain, picklable rows; everything else here is pure (tables, conditions, report) except
the `write_*` functions, which write into the output folder.
"""

from __future__ import annotations

import csv
import glob
import html
import itertools
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

# Reused, not copied: the rows of `flowviz calls` / `flowviz streams` and the reader of the CLI.
# (_calls_of is private to cli_calls; it is the one place that adds `problems` and ISO times.)
from flowviz.cli import Context, expand_paths
from flowviz.cli_calls import CALL_KEYS, _calls_of
from flowviz.cli_streams import STREAM_KEYS, streams_of
from flowviz.errors import FlowvizError
from flowviz.settings import Settings
from flowviz.sip.states import STATES

SEVERITIES = ("info", "warning", "error")
FAILED_STATES = ("rejected", "busy", "timed out", "cancelled")

# ---------------------------------------------------------------- schemas (documented in docs/batch.md)

_S, _I, _F, _B = pl.Utf8, pl.Int64, pl.Float64, pl.Boolean
PROBLEM = pl.Struct({"rule": _S, "severity": _S, "title": _S})
# Nested call details that vary in shape are stored as JSON text.
CALL_JSON = ("legs", "forwarding", "forks", "in_dialog")
_CALL_TYPES = {
    "call_group_id": _S, "call_ids": pl.List(_S), "method": _S, "from_user": _S, "to_user": _S, "from_uri": _S,
    "to_uri": _S, "state": _S, "final_status": _I, "start_ts": _S, "srd_ms": _F, "setup_ms": _F, "duration_s": _F,
    "hosts": pl.List(_S), "hop_delays_ms": pl.List(_F), "legs": _S, "messages": _I, "retransmissions": _I,
    "final_reason": _S, "from_display": _S, "to_display": _S, "answer_ts": _S, "end_ts": _S, "failed_srd_ms": _F,
    "disconnect_ms": _F, "hung_up_by": _S, "host_roles": pl.List(_S), "host_names": pl.List(_S), "forwarding": _S,
    "forks": _S, "in_dialog": _S, "dialogs": _I, "first_frame": _I, "capture": _S, "problems": pl.List(PROBLEM),
}
CALL_EXTRA = {"capture_id": _S, "errors": _I, "warnings": _I, "worst_severity": _S, "worst_mos": _F}
CALL_SCHEMA = pl.Schema({**{k: _CALL_TYPES[k] for k in CALL_KEYS}, **CALL_EXTRA})

_STREAM_INT = {"src_port", "dst_port", "payload_type", "packets", "expected", "lost", "seq_errors", "loss_bursts",
               "markers", "comfort_noise", "duplicates", "out_of_order", "wrong_timestamps", "first_frame",
               "clock_rate", "rtcp_blocks", "rtcp_cumulative_lost", "rtcp_max_jitter", "endpoint_r_factor"}
_STREAM_STR = {"stream_id", "call_group_id", "src", "dst", "ssrc", "codec", "mos_method", "start_ts", "end_ts",
               "bound_by", "sdp_announced", "codecs", "capture"}


def _stream_type(key: str) -> pl.DataType:
    if key == "payload_types":
        return pl.List(_I)
    if key == "sdp_match":
        return _B
    return _I if key in _STREAM_INT else _S if key in _STREAM_STR else _F


STREAM_SCHEMA = pl.Schema({**{k: _stream_type(k) for k in STREAM_KEYS}, "capture_id": _S})
KPI_SCHEMA = pl.Schema({"capture_id": _S, "kpi": _S, "description": _S, "kind": _S, "unit": _S, "value": _F,
                        "mean": _F, "min": _F, "median": _F, "max": _F, "count": _I, "numerator": _I,
                        "denominator": _I})
CAPTURE_SCHEMA = pl.Schema({"capture_id": _S, "capture": _S, "ok": _B, "error": _S, "seconds": _F, "calls": _I,
                            "streams": _I, "failed_calls": _I, "errors": _I, "warnings": _I, "worst_mos": _F,
                            "states": _S, "ser_pct": _F, "srd_ms": _F})
DATASETS = {"calls": CALL_SCHEMA, "streams": STREAM_SCHEMA, "kpis": KPI_SCHEMA}
# Everything `batch` writes into OUTDIR (what --force replaces).
OUTPUTS = ("calls", "streams", "kpis", "calls.csv", "streams.csv", "kpis.csv", "kpis_all.csv", "kpis_all.parquet",
           "captures.csv", "captures.parquet", "report.md", "report.html")

# ---------------------------------------------------------------- inputs


def find_inputs(paths: tuple[str, ...] | list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders (searched like the other commands) and globs -> (capture files, [(input, why unusable)]).

    A glob is expanded here (for shells that did not); duplicates are dropped, first one kept."""
    found: list[Path] = []
    bad: list[tuple[str, str]] = []
    for name in paths:
        names = [name]
        if not Path(name).exists() and any(c in name for c in "*?["):
            names = sorted(glob.glob(name, recursive=True))
            if not names:
                bad.append((name, "no file matches this pattern"))
                continue
        for each in names:
            try:
                found += expand_paths((each,))
            except FlowvizError as exc:
                bad.append((each, exc.message))
    seen: set[str] = set()
    unique = []
    for path in found:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique, bad


def capture_ids(paths: list[Path]) -> list[str]:
    """A short, unique, filesystem-safe name per capture: its path below the inputs' common folder,
    folders joined by '__' (lab/burst_100.pcap -> lab__burst_100.pcap); '-2', '-3' on a clash."""
    if not paths:
        return []
    absolute = [Path(os.path.abspath(p)) for p in paths]
    common = Path(os.path.commonpath([str(p.parent) for p in absolute]))
    out: list[str] = []
    used: set[str] = set()
    for path in absolute:
        rel = path.relative_to(common)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(rel.parts)).strip("._") or "capture"
        unique, n = name, 1
        while unique in used:
            n += 1
            unique = f"{name}-{n}"
        used.add(unique)
        out.append(unique)
    return out


# ---------------------------------------------------------------- the worker


class _OnceContext(Context):
    """The CLI's reader, reading each capture once (calls and streams share it), quiet on stderr."""

    def __init__(self, use_cache: bool, settings: Settings):
        super().__init__(use_cache, settings)
        self.captures: dict[str, object] = {}
        self.warnings: list[str] = []

    def read(self, path: str):
        from flowviz.ingest import read_capture

        if path not in self.captures:
            capture = read_capture(path, self.settings, use_cache=self.use_cache)
            self.warnings += capture.info.get("warnings", [])
            self.captures[path] = capture
        return self.captures[path]


def analyze_capture(path: str, capture_id: str, settings: Settings, use_cache: bool = True) -> dict:
    """One capture -> {capture_id, capture, ok, error, seconds, warnings, calls, streams, kpis, registers}.

    Runs in a worker process: never raises for a bad capture, the error is in the result."""
    from flowviz.analysis.kpis import compute_kpis, register_attempts

    started = time.perf_counter()
    result = {"capture_id": capture_id, "capture": path, "ok": False, "error": None, "warnings": [], "calls": [],
              "streams": [], "kpis": [], "registers": {"rrd_ms": [], "failed": 0, "total": 0}}
    obj = _OnceContext(use_cache, settings)
    try:
        calls, correlation = _calls_of(obj, path)
        streams, _ = streams_of(obj, path)
        registers = register_attempts(correlation.messages, set(correlation.request_hops["down_msg"].to_list()))
        kpis = compute_kpis(calls, registers)
    except FlowvizError as exc:
        result["error"] = exc.message
    except Exception as exc:  # a bug in one capture's analysis must not stop the batch
        result["error"] = f"internal error: {type(exc).__name__}: {exc}"
    else:
        result.update(ok=True, calls=calls, streams=streams, kpis=kpis, registers=registers)
    result["warnings"] = obj.warnings
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def failed_result(path: str, capture_id: str, error: str) -> dict:
    return {"capture_id": capture_id, "capture": path, "ok": False, "error": error, "warnings": [], "calls": [],
            "streams": [], "kpis": [], "registers": {"rrd_ms": [], "failed": 0, "total": 0}, "seconds": 0.0}


# ---------------------------------------------------------------- tables


def _severity_rank(severity: str | None) -> int:
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
        worst = max((p["severity"] for p in problems), key=_severity_rank, default=None)
        c["worst_severity"] = worst
        c["worst_mos"] = mos_of.get(c["call_group_id"])
    for k in result["kpis"]:
        k["capture_id"] = cid
    return result


def _frame(rows: list[dict], schema: pl.Schema) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=schema)
    prepared = []
    for row in rows:
        r = {k: row.get(k) for k in schema}
        for key in CALL_JSON:
            if key in r and schema[key] == _S and not isinstance(r[key], (str, type(None))):
                r[key] = json.dumps(r[key], ensure_ascii=False)
        prepared.append(r)
    return pl.DataFrame(prepared, schema=schema, orient="row", strict=False)


def kpis_frame(rows: list[dict]) -> pl.DataFrame:
    return _frame(rows, KPI_SCHEMA)


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


# ---------------------------------------------------------------- --fail-on conditions

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
            return any(self._compare(_severity_rank(p["severity"]), _severity_rank(self.value))
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


# ---------------------------------------------------------------- worst calls and the report


def worst_calls(calls: list[dict], limit: int = 20) -> list[dict]:
    """Calls with something wrong, worst first: errors, then warnings, then failed state, then lowest MOS."""

    def bad(c: dict) -> bool:
        return bool(c["errors"] or c["warnings"] or c["state"] in FAILED_STATES
                    or (c["worst_mos"] is not None and c["worst_mos"] < 4.0))

    def key(c: dict):
        mos = c["worst_mos"] if c["worst_mos"] is not None else 5.0
        return (-c["errors"], -c["warnings"], c["state"] not in FAILED_STATES, mos, c["capture_id"],
                c["start_ts"] or "", c["call_group_id"])

    return sorted((c for c in calls if bad(c)), key=key)[:limit]


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def report_model(captures: list[dict], worst: list[dict], kpis_all: list[dict], matches: list[dict],
                 inputs_bad: list[tuple[str, str]], seconds: float) -> dict:
    """Title, summary lines and tables (header, rows of strings) shared by the Markdown and HTML reports.

    captures: capture_row() of every capture, in input order; worst: worst_calls() of all calls."""
    ok = [c for c in captures if c["ok"]]
    summary = [f"{len(captures)} captures: {len(ok)} analysed, {len(captures) - len(ok)} failed; "
               f"{sum(c['calls'] for c in ok)} calls, {sum(c['streams'] for c in ok)} RTP streams; {seconds:.1f} s"]
    for m in matches:
        summary.append(f"--fail-on {m['condition']}: {m['matched']} {m['table']} matched"
                       + (f" in {', '.join(m['captures'])}" if m["captures"] else ""))
    for name, why in inputs_bad:
        summary.append(f"input {name}: {why}")
    per_capture = [[c["capture_id"], "ok" if c["ok"] else "FAILED", _fmt(c["calls"]), c["states"] or "-",
                    _fmt(c["streams"]), _fmt(c["failed_calls"]), _fmt(c["errors"]), _fmt(c["warnings"]),
                    _fmt(c["worst_mos"]), _fmt(c["ser_pct"], 1), _fmt(c["srd_ms"], 1), _fmt(c["seconds"], 1)]
                   for c in captures]
    failures = [[c["capture_id"], c["capture"], c["error"] or ""] for c in captures if not c["ok"]]
    worst_rows = [[c["capture_id"], c["call_group_id"], f"{c['from_user'] or c['from_uri'] or '-'} -> "
                   f"{c['to_user'] or c['to_uri'] or '-'}", c["state"], _fmt(c["final_status"]), _fmt(c["worst_mos"]),
                   "; ".join(f"{p['severity']}: {p['title']}" for p in c["problems"] if p["severity"] != "info")
                   or "-"] for c in worst]
    kpi_rows = [[k["kpi"], _fmt(k["value"], 3), k["unit"], f"{k['numerator']}/{k['denominator']}"
                 if k["kind"] == "ratio" else f"n={k['count']}", k["description"]] for k in kpis_all]
    tables = [
        ("Captures", ["capture", "status", "calls", "states", "streams", "failed calls", "errors", "warnings",
                      "worst MOS", "SER %", "SRD ms", "seconds"], per_capture),
        ("Failed captures", ["capture", "path", "error"], failures),
        ("Worst calls", ["capture", "call", "from -> to", "state", "final", "worst MOS", "problems"], worst_rows),
        ("KPIs across all captures (RFC 6076)", ["KPI", "value", "unit", "count", "description"], kpi_rows),
    ]
    return {"title": "flowviz batch report", "summary": summary, "tables": tables}


def report_markdown(model: dict) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [f"# {model['title']}", ""] + [f"- {s}" for s in model["summary"]] + [""]
    for title, header, rows in model["tables"]:
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["none", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:0 0 2em}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:90%}th{background:#f0f0f0}"
        "td.FAILED{color:#b00;font-weight:bold}")


def report_html(model: dict) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{e(model['title'])}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{e(model['title'])}</h1>", "<ul>"]
    parts += [f"<li>{e(s)}</li>" for s in model["summary"]] + ["</ul>"]
    for title, header, rows in model["tables"]:
        parts.append(f"<h2>{e(title)}</h2>")
        if not rows:
            parts.append("<p>none</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f'<td class="{e(str(v))}">{e(str(v))}</td>' if v == "FAILED"
                                          else f"<td>{e(str(v))}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- writing


def check_outdir(outdir: Path, force: bool) -> None:
    """Refuse an existing non-empty OUTDIR unless force; with force, remove only what batch writes."""
    if outdir.exists() and not outdir.is_dir():
        raise FlowvizError(f"{outdir} exists and is not a folder; choose another -o OUTDIR")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not force:
            raise FlowvizError(f"{outdir} exists and is not empty; choose another -o OUTDIR "
                               "or add --force to replace it")
        import shutil

        for name in OUTPUTS:
            target = outdir / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v):
        return ";".join("" if x is None else str(x) for x in v)
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return v


def write_csv(path: Path, frame: pl.DataFrame, more=()) -> None:
    """CSV of a frame (and of `more` frames of the same columns, one at a time): lists of plain values
    joined by ';', nested values as JSON, null as empty."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(frame.columns)
        for each in itertools.chain([frame], more):
            for row in each.select(frame.columns).iter_rows():
                writer.writerow([_csv_value(v) for v in row])


def write_partitions(outdir: Path, result: dict) -> None:
    """calls, streams and kpis of one analysed capture -> OUTDIR/<table>/capture_id=<id>/part.parquet."""
    for name, schema in DATASETS.items():
        part = outdir / name / f"capture_id={result['capture_id']}"
        part.mkdir(parents=True, exist_ok=True)
        _frame(result[name], schema).write_parquet(part / "part.parquet")


# What the totals and the report keep of each call (not the whole row).
KPI_CALL_KEYS = ("method", "final_status", "state", "srd_ms", "failed_srd_ms", "disconnect_ms", "duration_s")
WORST_KEYS = ("capture_id", "call_group_id", "from_user", "from_uri", "to_user", "to_uri", "state", "final_status",
              "start_ts", "worst_mos", "errors", "warnings", "problems")


class Collector:
    """Takes each capture's result as it arrives: writes its partitions at once and keeps only what the
    totals and the report need, so the parent's memory does not grow with the rows of every capture."""

    def __init__(self, outdir: Path, conditions: list[Condition], worst_limit: int = 20):
        self.outdir = Path(outdir)
        self.conditions = conditions
        self.worst_limit = worst_limit
        self.registers: list[dict] = []
        self.kpi_calls: list[dict] = []
        self.worst: list[dict] = []
        self.matches = [{"condition": c.text, "table": c.table, "matched": 0, "captures": set()} for c in conditions]

    def add(self, result: dict) -> dict:
        """One capture's result (analyze_capture or failed_result) -> its capture_row()."""
        enrich(result)
        if result["ok"]:
            write_partitions(self.outdir, result)
            self.registers.append(result["registers"])
            self.kpi_calls += [{k: c.get(k) for k in KPI_CALL_KEYS} for c in result["calls"]]
            self.worst = worst_calls(self.worst + [{k: c.get(k) for k in WORST_KEYS} for c in result["calls"]],
                                     self.worst_limit)
            for total, found in zip(self.matches, match_conditions(self.conditions, [result])):
                total["matched"] += found["matched"]
                total["captures"].update(found["captures"])
        return capture_row(result)

    def finish(self, captures: list[dict], inputs_bad: list[tuple[str, str]], seconds: float) -> list[dict]:
        """captures: the capture_row()s in input order. Writes the CSVs, the totals and the report;
        returns the --fail-on results."""
        from flowviz.analysis.kpis import combine_register_attempts, compute_kpis

        out = self.outdir
        out.mkdir(parents=True, exist_ok=True)
        ok = [c["capture_id"] for c in captures if c["ok"]]
        for name, schema in DATASETS.items():
            (out / name).mkdir(exist_ok=True)
            parts = (pl.read_parquet(out / name / f"capture_id={cid}" / "part.parquet") for cid in ok)
            write_csv(out / f"{name}.csv", pl.DataFrame(schema=schema), more=parts)
        kpis_all = compute_kpis(self.kpi_calls, combine_register_attempts(self.registers)) if ok else []
        total = kpis_frame([{**k, "capture_id": None} for k in kpis_all])
        total.write_parquet(out / "kpis_all.parquet")
        write_csv(out / "kpis_all.csv", total)
        frame = pl.DataFrame(captures, schema=CAPTURE_SCHEMA, orient="row")
        frame.write_parquet(out / "captures.parquet")
        write_csv(out / "captures.csv", frame)
        matches = [{**m, "captures": sorted(m["captures"])} for m in self.matches]
        model = report_model(captures, self.worst, kpis_all, matches, inputs_bad, seconds)
        (out / "report.md").write_text(report_markdown(model), encoding="utf-8")
        (out / "report.html").write_text(report_html(model), encoding="utf-8")
        return matches


def read_dataset(outdir: str | Path, name: str) -> pl.DataFrame:
    """calls, streams or kpis of a batch output folder, all captures, with the documented schema."""
    root = Path(outdir) / name
    if not any(root.glob("capture_id=*/part.parquet")):
        return pl.DataFrame(schema=DATASETS[name])
    frame = pl.read_parquet(root / "**" / "*.parquet", hive_partitioning=True, hive_schema={"capture_id": pl.Utf8})
    return frame.select(list(DATASETS[name]))


def schema_markdown() -> str:
    """The column tables of docs/batch.md (name and polars type of every column)."""
    out = []
    for name, schema in {**DATASETS, "kpis_all": KPI_SCHEMA, "captures": CAPTURE_SCHEMA}.items():
        out += [f"### {name}", "", "| column | type |", "|---|---|"]
        out += [f"| {col} | {dtype} |" for col, dtype in schema.items()]
        out.append("")
    return "\n".join(out)

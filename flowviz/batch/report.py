"""Report: the worst calls and the batch report as Markdown and HTML (one model, two renderings)."""

from __future__ import annotations

import html

from flowviz.batch.schemas import FAILED_STATES


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

"""`flowviz calls` and `flowviz kpis`: the call list and the RFC 6076 KPIs of captures."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import click

from flowviz.cli import Context, cli, expand_paths
from flowviz.errors import FlowvizError
from flowviz.sip.states import STATES

TABLE_WIDTH = 120
# JSON keys in a stable order: the ones issue 3 promises first, then the details.
CALL_KEYS = [
    "call_group_id", "call_ids", "method", "from_user", "to_user", "from_uri", "to_uri", "state", "final_status",
    "start_ts", "srd_ms", "setup_ms", "duration_s", "hosts", "hop_delays_ms", "legs", "messages", "retransmissions",
    "final_reason", "from_display", "to_display", "answer_ts", "end_ts", "failed_srd_ms", "disconnect_ms",
    "hung_up_by", "host_roles", "host_names", "forwarding", "forks", "in_dialog", "dialogs", "first_frame", "capture",
    "problems",
]


def _iso(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    return datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).isoformat(timespec="microseconds")


def _calls_of(obj: Context, path: str) -> tuple[list[dict], object]:
    from flowviz.sip.calls import Correlation

    capture = obj.read(path)
    # the capture may run on (RTP, other traffic) after its last SIP message: timers count to its end
    correlation = Correlation(capture.sip_messages, capture.info.get("last_ts_ns"))
    calls = correlation.summaries()
    problems = _problems(capture, correlation)
    for call in calls:
        call["problems"] = problems.get(call["call_group_id"], [])
        call["start_ts"] = _iso(call.pop("start_ns"))
        call["answer_ts"] = _iso(call.pop("answer_ns"))
        call["end_ts"] = _iso(call.pop("end_ns"))
        call["capture"] = path
    return [{key: call.get(key) for key in CALL_KEYS} for call in calls], correlation


def _problems(capture, correlation) -> dict[str, list[dict]]:
    """call_group_id -> its diagnostics (rule, severity, title), as `flowviz diagnose` finds them."""
    from flowviz.analysis.diagnose import diagnose_capture, problems_by_call

    by_call = problems_by_call(diagnose_capture(capture, correlation=correlation))
    return {gid: [{k: f[k] for k in ("rule", "severity", "title")} for f in found] for gid, found in by_call.items()}


def _matches(call: dict, text: str) -> bool:
    """--search: case-insensitive, in Call-IDs, parties (user, URI, display name), hosts and host names."""
    fields = [*call["call_ids"], call["from_user"], call["to_user"], call["from_uri"], call["to_uri"],
              call["from_display"], call["to_display"], *call["hosts"], *call["host_names"]]
    needle = text.lower()
    return any(needle in str(f).lower() for f in fields if f)


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--state", "states", type=click.Choice(STATES), multiple=True, help="Only calls in this state (repeatable).")
@click.option("--search", default=None, metavar="TEXT", help="Only calls whose Call-ID, user, URI or host contains TEXT.")
@click.pass_obj
def calls(obj: Context, captures: tuple[str, ...], fmt: str, states: tuple[str, ...], search: str | None) -> None:
    """One row per call: legs and proxy hops of a call joined into one path, state, timings.

    A call group is every Call-ID of one call: proxies keep the Call-ID, a B2BUA's legs are
    joined by X-CID/X-Call-ID/Session-ID headers or a kept Via stack, else by caller, callee,
    host and time. CAPTURES are files or folders. Rules: docs/correlation.md.
    """
    rows: list[dict] = []
    paths = expand_paths(captures)
    unreadable = 0
    for path in paths:
        try:
            found, _ = _calls_of(obj, str(path))
        except FlowvizError as exc:  # one bad file among several: say so and go on, like `info`
            if len(paths) == 1:
                raise
            click.echo(f"flowviz: error: {exc.message}", err=True)
            unreadable += 1
            continue
        rows += found
    if states:
        rows = [r for r in rows if r["state"] in states]
    if search:
        rows = [r for r in rows if _matches(r, search)]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(_calls_csv(rows), nl=False)
    else:
        click.echo(_calls_table(rows))
    if unreadable:
        raise FlowvizError(f"{unreadable} of {len(paths)} captures could not be read (see above)")


def _calls_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CALL_KEYS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (";".join(map(str, v)) if isinstance(v, list) and all(not isinstance(x, dict) for x in v)
                             else json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
                         for k, v in row.items()})
    return out.getvalue()


# (header, width, right-aligned): 14 columns + 13 separating spaces = 120 characters.
COLUMNS = [("ID", 10, False), ("START", 12, False), ("METHOD", 8, False), ("FROM", 12, False), ("TO", 12, False),
           ("STATE", 9, False), ("CODE", 4, True), ("SRD ms", 7, True), ("SETUP ms", 8, True), ("DUR s", 7, True),
           ("MSGS", 5, True), ("HOSTS", 5, True), ("LEGS", 4, True), ("PROB", 4, True)]


def _calls_table(rows: list[dict]) -> str:
    if not rows:
        return "no calls"
    lines = [" ".join(f"{h:>{w}}" if right else f"{h:<{w}}" for h, w, right in COLUMNS).rstrip()]
    for r in rows:
        values = [
            r["call_group_id"], (r["start_ts"] or "")[11:23], r["method"], _party(r, "from"), _party(r, "to"),
            r["state"], r["final_status"] if r["final_status"] is not None else "-", _num(r["srd_ms"], 1),
            _num(r["setup_ms"], 1), _num(r["duration_s"], 1),
            f"{r['messages']}" + ("*" if r["retransmissions"] else ""), len(r["hosts"]), len(r["call_ids"]),
            _problem_count(r["problems"]),
        ]
        cells = [_cell(v, w, right) for v, (_, w, right) in zip(values, COLUMNS)]
        lines.append(" ".join(cells).rstrip()[:TABLE_WIDTH])
    lines.append(f"{len(rows)} call(s); MSGS* = includes retransmissions; PROB = warnings and errors "
                 "(flowviz diagnose); details: --format json")
    return "\n".join(lines)


def _problem_count(problems: list[dict]) -> str:
    faults = sum(1 for p in problems if p["severity"] in ("warning", "error"))
    return str(faults) if faults else "-"


def _party(r: dict, side: str) -> str:
    return r[f"{side}_user"] or r[f"{side}_uri"] or "-"


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cell(value, width: int, right: bool) -> str:
    text = str(value)
    if len(text) > width:
        text = text[: width - 1] + "~"
    return f"{text:>{width}}" if right else f"{text:<{width}}"


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def kpis(obj: Context, captures: tuple[str, ...], fmt: str) -> None:
    """RFC 6076 KPIs (SRD, SDD, SDT, RRD, SER, SEER, ISA, SCR, IRA) with their counts.

    Several captures are measured together, as one population of calls.
    """
    from flowviz.analysis.kpis import combine_register_attempts, compute_kpis, register_attempts

    all_calls: list[dict] = []
    registers = []
    for path in expand_paths(captures):
        found, correlation = _calls_of(obj, str(path))
        all_calls += found
        forwarded = set(correlation.request_hops["down_msg"].to_list())
        registers.append(register_attempts(correlation.messages, forwarded))
    result = compute_kpis(all_calls, combine_register_attempts(registers))
    if fmt == "json":
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(_kpi_table(result))


def _kpi_table(result: list[dict]) -> str:
    lines = [f"{'KPI':<11} {'value':>10} {'unit':<4} {'count':>14}  description"]
    for k in result:
        value = "-" if k["value"] is None else f"{k['value']:.3f}" if k["kind"] == "delay" else f"{k['value']:.2f}"
        count = f"{k['numerator']}/{k['denominator']}" if k["kind"] == "ratio" else f"n={k['count']}"
        if k["kind"] == "delay" and k["count"]:
            count += f" ({k['min']}..{k['max']})"
            count = count if len(count) <= 14 else f"n={k['count']}"
        lines.append(f"{k['kpi']:<11} {value:>10} {k['unit']:<4} {count:>14}  {k['description']}"[:TABLE_WIDTH])
    return "\n".join(lines)


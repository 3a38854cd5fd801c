"""`flowviz calls` and `flowviz kpis`: the call list and the RFC 6076 KPIs of captures."""

from __future__ import annotations

import click

from flowviz.cli.common import CaptureRun, Context, set_options
from flowviz.export.tables import CALL_KEYS, csv_text, json_text
from flowviz.sip.states import STATES

TABLE_WIDTH = 120


def _matches(call: dict, text: str) -> bool:
    """--search: case-insensitive, in Call-IDs, parties (user, URI, display name), hosts and host names."""
    fields = [*call["call_ids"], call["from_user"], call["to_user"], call["from_uri"], call["to_uri"],
              call["from_display"], call["to_display"], *call["hosts"], *call["host_names"]]
    needle = text.lower()
    return any(needle in str(f).lower() for f in fields if f)


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURES...")
@set_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--state", "states", type=click.Choice(STATES), multiple=True, help="Only calls in this state (repeatable).")
@click.option("--search", default=None, metavar="TEXT", help="Only calls whose Call-ID, user, URI or host contains TEXT.")
@click.pass_obj
def calls(obj: Context, captures: tuple[str, ...], merge: bool, offsets: tuple[str, ...], fmt: str,
          states: tuple[str, ...], search: str | None) -> None:
    """One row per call: legs and proxy hops of a call joined into one path, state, timings.

    A call group is every Call-ID of one call: proxies keep the Call-ID, a B2BUA's legs are
    joined by X-CID/X-Call-ID/Session-ID headers or a kept Via stack, else by caller, callee,
    host and time. CAPTURES are files or folders. Rules: docs/correlation.md.
    """
    run = CaptureRun(obj, captures, merge=merge, offsets=offsets)
    rows: list[dict] = []
    for analysis in run:
        rows += analysis.calls
    if states:
        rows = [r for r in rows if r["state"] in states]
    if search:
        rows = [r for r in rows if _matches(r, search)]
    if fmt == "json":
        click.echo(json_text(rows))
    elif fmt == "csv":
        click.echo(csv_text(rows, CALL_KEYS), nl=False)
    else:
        click.echo(calls_table(rows))
    run.finish()


# (header, width, right-aligned): 14 columns + 13 separating spaces = 120 characters.
COLUMNS = [("ID", 10, False), ("START", 12, False), ("METHOD", 8, False), ("FROM", 12, False), ("TO", 12, False),
           ("STATE", 9, False), ("CODE", 4, True), ("SRD ms", 7, True), ("SETUP ms", 8, True), ("DUR s", 7, True),
           ("MSGS", 5, True), ("HOSTS", 5, True), ("LEGS", 4, True), ("PROB", 4, True)]


def calls_table(rows: list[dict]) -> str:
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


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURES...")
@set_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def kpis(obj: Context, captures: tuple[str, ...], merge: bool, offsets: tuple[str, ...], fmt: str) -> None:
    """RFC 6076 KPIs (SRD, SDD, SDT, RRD, SER, SEER, ISA, SCR, IRA) with their counts.

    Several captures are measured together, as one population of calls.
    """
    from flowviz.analysis.kpis import combine_register_attempts, compute_kpis

    run = CaptureRun(obj, captures, merge=merge, offsets=offsets)
    summaries: list[dict] = []
    registers = []
    for analysis in run:
        summaries += analysis.summaries
        registers.append(analysis.registers)
    result = compute_kpis(summaries, combine_register_attempts(registers))
    if fmt == "json":
        click.echo(json_text(result))
    else:
        click.echo(_kpi_table(result))
    run.finish()


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

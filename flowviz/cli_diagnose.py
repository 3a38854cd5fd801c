"""`flowviz diagnose`: what went wrong in each call, with the frames that prove it."""

from __future__ import annotations

import json
from dataclasses import fields

import click

from flowviz.analysis.diagnose import FINDING_KEYS, SEVERITIES, Thresholds
from flowviz.cli import Context, cli, expand_paths
from flowviz.errors import FlowvizError, NotFoundError


def _threshold_options(command):
    """One --<name> option per Thresholds field, defaulting to the dataclass default."""
    for f in reversed(fields(Thresholds)):
        command = click.option(f"--{f.name.replace('_', '-')}", f.name, type=type(f.default), default=None,
                               help=f"Threshold (default {f.default}); see docs/diagnostics.md.")(command)
    return command


def findings_of(obj: Context, path: str, thresholds: Thresholds) -> tuple[list[dict], dict[str, str]]:
    """Findings of one capture (with its path), and its Call-ID -> call_group_id map."""
    from flowviz.analysis.diagnose import diagnose_capture
    from flowviz.sip.calls import Correlation

    capture = obj.read(path)
    correlation = Correlation(capture.sip_messages, capture.info.get("last_ts_ns"))
    found = diagnose_capture(capture, thresholds, correlation=correlation)
    groups = {}
    if not capture.sip_messages.is_empty():
        groups = dict(correlation.group_of_call_id().iter_rows())
    return [{**{k: f[k] for k in FINDING_KEYS}, "capture": path} for f in found], groups


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@click.option("--call", "call", default=None, metavar="ID", help="Only this call (call_group_id or a Call-ID).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--min-severity", type=click.Choice(SEVERITIES), default="info", show_default=True,
              help="Hide findings below this severity.")
@_threshold_options
@click.pass_obj
def diagnose(obj: Context, captures: tuple[str, ...], call: str | None, fmt: str, min_severity: str,
             **overrides) -> None:
    """Problems of each call (rejections, timeouts, retransmissions, slow hops, one-way audio, loss...),
    each with an explanation, the frames that prove it and a hint. Rules: docs/diagnostics.md."""
    from flowviz.analysis.diagnose import at_least

    thresholds = Thresholds().with_overrides(**overrides)
    rows: list[dict] = []
    groups: dict[str, str] = {}
    paths = expand_paths(captures)
    for path in paths:
        try:
            found, call_ids = findings_of(obj, str(path), thresholds)
        except FlowvizError as exc:
            if len(paths) == 1:
                raise
            click.echo(f"flowviz: error: {exc.message}", err=True)
            continue
        rows += found
        groups.update(call_ids)
    if call is not None:
        group = groups.get(call, call)
        if group not in groups.values():
            raise NotFoundError(f"no call {call!r} in the capture(s); list calls with: flowviz calls {captures[0]}")
        rows = [r for r in rows if r["call_group_id"] == group]
    rows = at_least(rows, min_severity)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
    else:
        click.echo(_table(rows))


def _table(rows: list[dict]) -> str:
    if not rows:
        return "no findings"
    lines = [f"{'call':<10} {'severity':<8} {'rule':<26} explanation"]
    for r in rows:
        frames = r["evidence"]["frames"]
        shown = ",".join(map(str, frames[:6])) + ("..." if len(frames) > 6 else "")
        lines.append(f"{r['call_group_id'] or '(capture)':<10} {r['severity']:<8} {r['rule']:<26} {r['explanation']}")
        lines.append(f"{'':<10} {'':<8} {'':<26} frames {shown}; hint: {r['hint']}")
    counts = {s: sum(1 for r in rows if r["severity"] == s) for s in SEVERITIES}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) + "; details: --format json")
    return "\n".join(lines)

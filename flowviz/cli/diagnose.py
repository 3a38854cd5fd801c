"""`flowviz diagnose`: what went wrong in each call, with the frames that prove it."""

from __future__ import annotations

from dataclasses import fields

import click

from flowviz.analysis.diagnose import FINDING_KEYS, SEVERITIES, Thresholds
from flowviz.cli.common import CaptureRun, Context, set_options
from flowviz.errors import NotFoundError
from flowviz.export.tables import json_text


def _threshold_options(command):
    """One --<name> option per Thresholds field, defaulting to the dataclass default."""
    for f in reversed(fields(Thresholds)):
        command = click.option(f"--{f.name.replace('_', '-')}", f.name, type=type(f.default), default=None,
                               help=f"Threshold (default {f.default}); see docs/diagnostics.md.")(command)
    return command


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURES...")
@set_options
@click.option("--call", "call", default=None, metavar="ID", help="Only this call (call_group_id or a Call-ID).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--min-severity", type=click.Choice(SEVERITIES), default="info", show_default=True,
              help="Hide findings below this severity.")
@_threshold_options
@click.pass_obj
def diagnose(obj: Context, captures: tuple[str, ...], merge: bool, offsets: tuple[str, ...], call: str | None, fmt: str, min_severity: str,
             **overrides) -> None:
    """Problems of each call (rejections, timeouts, retransmissions, slow hops, one-way audio, loss...),
    each with an explanation, the frames that prove it and a hint. Rules: docs/diagnostics.md."""
    from flowviz.analysis.diagnose import at_least

    thresholds = Thresholds().with_overrides(**overrides)
    run = CaptureRun(obj, captures, thresholds, merge=merge, offsets=offsets)
    rows: list[dict] = []
    known = False
    for analysis in run:
        found = analysis.findings
        if call is not None:
            group = analysis.group_of_call_id.get(call, call)
            known = known or group in analysis.group_of_call_id.values()
            found = [f for f in found if f["call_group_id"] == group]
        rows += [{**{k: f[k] for k in FINDING_KEYS}, "capture": analysis.name} for f in found]
    if call is not None and not known:
        run.finish()
        raise NotFoundError(f"no call {call!r} in the capture(s); list calls with: flowviz calls {captures[0]}")
    rows = at_least(rows, min_severity)
    if fmt == "json":
        click.echo(json_text(rows))
    else:
        click.echo(_table(rows))
    run.finish()


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

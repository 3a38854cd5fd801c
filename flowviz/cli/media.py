"""`flowviz streams` and `flowviz dtmf`: RTP streams with Wireshark-equal statistics, MOS and call binding,
and DTMF digits."""

from __future__ import annotations

import click

from flowviz.cli.capture import endpoint
from flowviz.cli.common import CaptureRun, Context, set_options
from flowviz.errors import NotFoundError
from flowviz.export.tables import DTMF_KEYS, STREAM_KEYS, csv_text, json_text


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURES...")
@set_options
@click.option("--call", "call", default=None, metavar="ID", help="Only streams of this call (call_group_id or a Call-ID).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
def streams(obj: Context, captures: tuple[str, ...], merge: bool, offsets: tuple[str, ...], call: str | None,
            fmt: str) -> None:
    """One row per RTP stream (src ip:port, dst ip:port, SSRC): packets, loss, delta and jitter
    computed as Wireshark's RTP analysis, E-model MOS, and the call it belongs to (by SDP).

    Delta and jitter in ms; lost = expected - received (negative with duplicates). See docs/media.md.
    """
    run = CaptureRun(obj, captures, merge=merge, offsets=offsets)
    rows: list[dict] = []
    for analysis in run:
        found = analysis.streams
        if call is not None:
            group = analysis.group_of_call_id.get(call, call)
            found = [r for r in found if r["call_group_id"] == group]
        rows += found
    if call is not None and not rows:
        run.finish()
        raise NotFoundError(f"no RTP stream belongs to call {call!r}; list calls with: flowviz calls {captures[0]}")
    if fmt == "json":
        click.echo(json_text(rows))
    elif fmt == "csv":
        click.echo(csv_text(rows, STREAM_KEYS), nl=False)
    else:
        click.echo(_table(rows))
    run.finish()


def _table(rows: list[dict]) -> str:
    if not rows:
        return "no RTP streams"
    head = (f"{'stream':<12} {'call':<10} {'source':<21} {'destination':<21} {'SSRC':<10} {'codec':<8} {'pkts':>6} "
            f"{'lost':>9} {'max delta':>9} {'mean J':>7} {'max J':>7} {'MOS':>4} {'SDP':<5}")
    lines = [head]
    for r in rows:
        lost = f"{r['lost']} ({'-' if r['lost_pct'] is None else format(r['lost_pct'], '.1f')}%)"
        mos = "-" if r["mos"] is None else f"{r['mos']:.2f}"
        sdp = {True: "yes", False: "no", None: "-"}[r["sdp_match"]]
        lines.append(
            f"{r['stream_id']:<12} {(r['call_group_id'] or '-'):<10.10} {endpoint(r['src'], r['src_port']):<21.21} "
            f"{endpoint(r['dst'], r['dst_port']):<21.21} {r['ssrc']:<10} {(r['codec'] or '?'):<8.8} {r['packets']:>6} "
            f"{lost:>9} {r['max_delta_ms']:>9.3f} {r['mean_jitter_ms']:>7.3f} {r['max_jitter_ms']:>7.3f} {mos:>4} "
            f"{sdp:<5}"
        )
    return "\n".join(lines)


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURES...")
@set_options
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
def dtmf(obj: Context, captures: tuple[str, ...], merge: bool, offsets: tuple[str, ...], fmt: str) -> None:
    """DTMF digits: RFC 4733 telephone-events in RTP (digit, start, duration, volume) and SIP INFO digits."""
    run = CaptureRun(obj, captures, merge=merge, offsets=offsets)
    rows: list[dict] = []
    for analysis in run:
        rows += analysis.dtmf
    if fmt == "json":
        click.echo(json_text(rows))
    elif fmt == "csv":
        click.echo(csv_text(rows, DTMF_KEYS), nl=False)
    elif not rows:
        click.echo("no DTMF digits")
    else:
        click.echo(f"{'time':<28} {'digit':<6} {'ms':>6} {'dBm0':>5} {'via':<9} {'source':<21} {'destination':<21} call")
        for r in rows:
            ms = "-" if r["duration_ms"] is None else f"{r['duration_ms']:.0f}"
            vol = "-" if r["volume_dbm0"] is None else str(r["volume_dbm0"])
            click.echo(f"{r['ts']:<28} {(r['digit'] or '?'):<6} {ms:>6} {vol:>5} {r['source']:<9} {r['src']:<21.21} "
                       f"{r['dst']:<21.21} {r['call_group_id'] or '-'}")
    run.finish()

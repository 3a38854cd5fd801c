"""`flowviz streams`: RTP streams of captures with Wireshark-equal statistics, MOS and call binding."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import click

from flowviz.cli import Context, cli, expand_paths
from flowviz.errors import NotFoundError

# JSON keys promised by issue 4 first, then the details.
STREAM_KEYS = [
    "stream_id", "call_group_id", "src", "src_port", "dst", "dst_port", "ssrc", "payload_type", "codec", "packets",
    "expected", "lost", "lost_pct", "seq_errors", "min_delta_ms", "mean_delta_ms", "max_delta_ms", "min_jitter_ms",
    "mean_jitter_ms", "max_jitter_ms", "mos", "r_factor", "mos_method", "start_ts", "end_ts", "sdp_match",
    "burst_ratio", "loss_bursts", "bound_by", "sdp_announced", "codecs", "payload_types", "max_skew_ms",
    "duration_s", "markers", "comfort_noise", "duplicates", "out_of_order", "wrong_timestamps", "first_frame",
    "clock_rate", "rtt_ms", "rtcp_blocks", "rtcp_fraction_lost_pct", "rtcp_cumulative_lost", "rtcp_max_jitter",
    "rtcp_max_jitter_ms", "capture",
]
ROUND3 = ["lost_pct", "min_delta_ms", "mean_delta_ms", "max_delta_ms", "min_jitter_ms", "mean_jitter_ms",
          "max_jitter_ms", "max_skew_ms", "burst_ratio", "rtt_ms", "rtcp_fraction_lost_pct", "rtcp_max_jitter_ms"]


def _iso(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    return datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).isoformat(timespec="microseconds")


def streams_of(obj: Context, path: str) -> tuple[list[dict], dict[str, str]]:
    """Rows with STREAM_KEYS for one capture, and its Call-ID -> call_group_id map."""
    from flowviz.media.report import streams_report
    from flowviz.sip.calls import Correlation

    capture = obj.read(path)
    groups = Correlation(capture.sip_messages).group_of_call_id() if not capture.sip_messages.is_empty() else None
    report = streams_report(capture.sip_messages, capture.rtp_packets, t0_ns=capture.info.get("first_ts_ns"),
                            group_of_call_id=groups, rtcp=capture.rtcp_reports)
    rows = []
    for r in report.to_dicts() if "stream_id" in report.columns else []:
        r["src"], r["dst"] = r.pop("src_ip"), r.pop("dst_ip")
        r["ssrc"] = f"0x{r['ssrc']:08X}"
        r["start_ts"], r["end_ts"] = _iso(r["start_ts_ns"]), _iso(r["end_ts_ns"])
        r["capture"] = path
        for key in ROUND3:
            if r.get(key) is not None:
                r[key] = round(r[key], 3)
        rows.append({key: r.get(key) for key in STREAM_KEYS})
    return rows, dict(groups.iter_rows()) if groups is not None else {}


def _select(rows: list[dict], call: str | None, groups_by_call_id: dict[str, str]) -> list[dict]:
    if call is None:
        return rows
    group = groups_by_call_id.get(call, call)
    return [r for r in rows if r["call_group_id"] == group]


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@click.option("--call", "call", default=None, metavar="ID", help="Only streams of this call (call_group_id or a Call-ID).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
def streams(obj: Context, captures: tuple[str, ...], call: str | None, fmt: str) -> None:
    """One row per RTP stream (src ip:port, dst ip:port, SSRC): packets, loss, delta and jitter
    computed as Wireshark's RTP analysis, E-model MOS, and the call it belongs to (by SDP).

    Delta and jitter in ms; lost = expected - received (negative with duplicates). See docs/media.md.
    """
    rows: list[dict] = []
    groups_by_call_id: dict[str, str] = {}
    for path in expand_paths(captures):
        found, call_ids = streams_of(obj, str(path))
        rows += found
        groups_by_call_id.update(call_ids)
    if call is not None:
        rows = _select(rows, call, groups_by_call_id)
        if not rows:
            raise NotFoundError(f"no RTP stream belongs to call {call!r}; list calls with: flowviz calls {captures[0]}")
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
    elif fmt == "csv":
        click.echo(_csv(rows), nl=False)
    else:
        click.echo(_table(rows))


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=STREAM_KEYS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else ("" if v is None else v) for k, v in r.items()})
    return out.getvalue()


def _table(rows: list[dict]) -> str:
    if not rows:
        return "no RTP streams"
    head = (f"{'stream':<12} {'call':<10} {'source':<21} {'destination':<21} {'SSRC':<10} {'codec':<8} {'pkts':>6} "
            f"{'lost':>9} {'max delta':>9} {'mean J':>7} {'max J':>7} {'MOS':>4} {'SDP':<5}")
    lines = [head]
    for r in rows:
        lost = f"{r['lost']} ({r['lost_pct']:.1f}%)"
        mos = "-" if r["mos"] is None else f"{r['mos']:.2f}"
        sdp = {True: "yes", False: "NAT?", None: "-"}[r["sdp_match"]]
        lines.append(
            f"{r['stream_id']:<12} {(r['call_group_id'] or '-'):<10.10} {_ep(r['src'], r['src_port']):<21.21} "
            f"{_ep(r['dst'], r['dst_port']):<21.21} {r['ssrc']:<10} {(r['codec'] or '?'):<8.8} {r['packets']:>6} "
            f"{lost:>9} {r['max_delta_ms']:>9.3f} {r['mean_jitter_ms']:>7.3f} {r['max_jitter_ms']:>7.3f} {mos:>4} {sdp:<5}"
        )
    return "\n".join(lines)


def _ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


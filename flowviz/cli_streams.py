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
    "rtcp_max_jitter_ms", "endpoint_mos_lq", "endpoint_mos_cq", "endpoint_r_factor", "capture",
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
                            group_of_call_id=groups, rtcp=capture.rtcp_reports, xr=capture.rtcp_xr)
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
        sdp = {True: "yes", False: "no", None: "-"}[r["sdp_match"]]
        lines.append(
            f"{r['stream_id']:<12} {(r['call_group_id'] or '-'):<10.10} {_ep(r['src'], r['src_port']):<21.21} "
            f"{_ep(r['dst'], r['dst_port']):<21.21} {r['ssrc']:<10} {(r['codec'] or '?'):<8.8} {r['packets']:>6} "
            f"{lost:>9} {r['max_delta_ms']:>9.3f} {r['mean_jitter_ms']:>7.3f} {r['max_jitter_ms']:>7.3f} {mos:>4} {sdp:<5}"
        )
    return "\n".join(lines)


def _ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"



DTMF_KEYS = ["source", "ts", "digit", "duration_ms", "volume_dbm0", "end_seen", "packets", "src", "dst", "stream_id",
             "call_id", "call_group_id", "frame", "event", "capture"]


def _event_words(obj: Context, path: str, packets) -> list[int | None]:
    """First 4 RTP payload bytes of each packet (by frame), read again from the file: the RTP header is
    found by its timestamp and SSRC, then CSRCs and the header extension are skipped."""
    import struct

    from flowviz.ingest.capture_file import read_packets

    if packets.is_empty():
        return []
    source = read_packets(path, obj.settings)
    try:
        raw = source.read_bytes(packets["frame"].to_numpy().astype("int64") - 1)
    finally:
        source.close()
    words: list[int | None] = []
    for data, ts, ssrc in zip(raw, packets["rtp_ts"].to_list(), packets["ssrc"].to_list()):
        at = data.find(struct.pack("!II", ts, ssrc))
        word = None
        if at >= 4:
            h = at - 4
            start = h + 12 + 4 * (data[h] & 0x0F)
            if data[h] & 0x10 and len(data) >= start + 4:
                start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
            if len(data) >= start + 4:
                word = struct.unpack_from("!I", data, start)[0]
        words.append(word)
    return words


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
def dtmf(obj: Context, captures: tuple[str, ...], fmt: str) -> None:
    """DTMF digits: RFC 4733 telephone-events in RTP (digit, start, duration, volume) and SIP INFO digits."""
    import polars as pl

    from flowviz.media.dtmf import event_packets, rfc4733_events, sip_info_digits
    from flowviz.media.streams import sdp_payload_map
    from flowviz.sip.calls import Correlation

    rows: list[dict] = []
    for path in map(str, expand_paths(captures)):
        capture = obj.read(path)
        packets = event_packets(capture.rtp_packets, sdp_payload_map(capture.sip_messages))
        packets = packets.with_columns(pl.Series("event_word", _event_words(obj, path, packets), dtype=pl.UInt32))
        events = pl.concat([rfc4733_events(packets), sip_info_digits(capture.sip_messages)]).sort("ts_ns")
        groups = {}
        if not capture.sip_messages.is_empty():
            groups = dict(Correlation(capture.sip_messages).group_of_call_id().iter_rows())
        stream_groups = {}
        if not capture.rtp_packets.is_empty() and len(events):
            from flowviz.media.report import streams_report

            group_frame = pl.DataFrame(list(groups.items()), schema={"call_id": pl.Utf8, "call_group_id": pl.Utf8},
                                       orient="row")
            report = streams_report(capture.sip_messages, capture.rtp_packets, t0_ns=capture.info.get("first_ts_ns"),
                                    group_of_call_id=group_frame)
            stream_groups = dict(report.select(["stream_id", "call_group_id"]).iter_rows())
        for r in events.to_dicts():
            r["ts"] = _iso(r["ts_ns"])
            r["call_group_id"] = groups.get(r["call_id"]) if r["call_id"] else stream_groups.get(r["stream_id"])
            r["capture"] = path
            rows.append({k: r.get(k) for k in DTMF_KEYS})
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=DTMF_KEYS, lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: "" if v is None else v for k, v in r.items()} for r in rows])
        click.echo(out.getvalue(), nl=False)
    elif not rows:
        click.echo("no DTMF digits")
    else:
        click.echo(f"{'time':<28} {'digit':<6} {'ms':>6} {'dBm0':>5} {'via':<9} {'source':<21} {'destination':<21} call")
        for r in rows:
            ms = "-" if r["duration_ms"] is None else f"{r['duration_ms']:.0f}"
            vol = "-" if r["volume_dbm0"] is None else str(r["volume_dbm0"])
            click.echo(f"{r['ts']:<28} {(r['digit'] or '?'):<6} {ms:>6} {vol:>5} {r['source']:<9} {r['src']:<21.21} "
                       f"{r['dst']:<21.21} {r['call_group_id'] or '-'}")

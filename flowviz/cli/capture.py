"""`flowviz info`, `messages`, `frame`, `schemas` and `redact`: a capture as a whole, its SIP messages, one
packet, the output columns, and a redacted copy."""

from __future__ import annotations

import json
from pathlib import Path

import click
import polars as pl

from flowviz.cli.common import CaptureRun, Context, check_output, set_options
from flowviz.errors import FlowvizError
from flowviz.export.tables import csv_text, iso, json_text

LINK_NAMES = {"0": "BSD loopback", "1": "Ethernet", "101": "raw IP", "108": "OpenBSD loopback",
              "113": "Linux cooked (SLL)", "197": "ERF", "228": "raw IPv4", "229": "raw IPv6",
              "276": "Linux cooked v2 (SLL2)"}


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURES...")
@set_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def info(obj: Context, captures: tuple[str, ...], merge: bool, offsets: tuple[str, ...], fmt: str) -> None:
    """Summary of captures: packets, time span, link types, SIP and RTP found, what was skipped.

    CAPTURES are files or folders (searched for .pcap/.pcapng/.cap/.gz).
    """
    run = CaptureRun(obj, captures, merge=merge, offsets=offsets)
    results = []
    for analysis in run:
        if fmt == "json":
            results.append(analysis.info)
            continue
        if results:
            click.echo()
        results.append(analysis.info)
        click.echo(_info_table(analysis.info))
    if fmt == "json":
        click.echo(json.dumps(results[0] if run.total == 1 and results else results, indent=2))
    run.finish()


def _losses(data: dict) -> str:
    parts = []
    if data.get("short_frames"):
        parts.append(f"{data['short_frames']:,} frames cut by the snapshot length")
    if data.get("tcp_gap_frames"):
        parts.append(f"{len(data['tcp_gap_frames']):,} missing TCP segments in SIP streams")
    return ", ".join(parts) or "none seen"


def _decoded_by(data: dict) -> str:
    """Who decoded the SIP: flowviz reads whole UDP datagrams and HEP packets itself, tshark the rest."""
    own = data.get("sip_udp_messages")
    if own is None or not data["sip_messages"]:
        return ""
    hep = (data.get("hep") or {}).get("sip_messages", 0)
    parts = [f"{own:,} from UDP datagrams read by flowviz"] + ([f"{hep:,} from HEP packets"] if hep else [])
    return f" ({', '.join(parts)}, {data['sip_messages'] - own - hep:,} decoded by tshark)"


def _hep(hep: dict) -> str:
    """HEP encapsulation: packets per version and agent, what they carried, what could not be read."""
    versions = ", ".join(f"{v}" for v in hep.get("versions", {}))
    agents = ", ".join(f"{a} ({n:,})" for a, n in hep.get("agents", {}).items()) or "-"
    carried = ", ".join(f"{k} {n:,}" for k, n in hep.get("payload_types", {}).items())
    return (f"{hep['packets']:,} packets ({versions}) from agents {agents}; {carried}; "
            f"{hep.get('unreadable', 0):,} unreadable")


def _tls(tls: dict) -> str:
    """TLS on SIP ports: connections decrypted with the keys given (--tls-keylog, Decryption Secrets Blocks)."""
    keys = tls.get("keys", "none")
    advice = " (give the keys with --tls-keylog)" if tls.get("not_decrypted") and keys == "none" else ""
    return (f"{tls['connections']:,} connection(s) on SIP ports: {tls.get('decrypted', 0):,} decrypted, "
            f"{tls.get('not_decrypted', 0):,} not; keys: {keys}{advice}")


def _info_table(data: dict) -> str:
    rows = [
        ("file", data["file"]),
        ("format", data["file_format"]),
        ("size", f"{data['file_bytes']:,} bytes"),
        ("packets", f"{data['packets']:,}"),
        ("first packet", iso(data["first_ts_ns"]) or "-"),
        ("last packet", iso(data["last_ts_ns"]) or "-"),
        ("duration", f"{data['duration_s']:.3f} s"),
        ("link types", ", ".join(f"{_link_name(k)} ({v:,})" for k, v in data["link_types"].items()) or "-"),
        ("SIP messages", f"{data['sip_messages']:,}" + _decoded_by(data)),
        ("RTP packets", f"{data['rtp_packets']:,} in {data['rtp_streams']} streams"),
        ("RTCP reports", f"{data['rtcp_reports']:,}"),
        *([("HEP", _hep(data["hep"]))] if data.get("hep") else []),
        *([("TLS", _tls(data["tls"]))] if data.get("tls") else []),
        ("skipped", ", ".join(f"{v:,} {k}" for k, v in data["skipped"].items()) or "none"),
        ("capture losses", _losses(data)),
        ("decode time", f"{data['decode_seconds']:.3f} s" + (" (from cache)" if data.get("from_cache") else "")),
    ]
    rows += _set_rows(data.get("capture_set")) + _set_rows(data.get("capture_agents"), "HEP agents")
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def _set_rows(capture_set: dict | None, title: str = "capture set") -> list[tuple[str, str]]:
    """A capture set's points (or a HEP capture's agents): clock offset against the reference with its
    evidence, copies dropped."""
    if not capture_set:
        return []
    if "packets_kept" in capture_set:
        summary = (f"{len(capture_set['points'])} captures, {capture_set['packets_kept']:,} packets kept, "
                   f"{capture_set['duplicates_dropped']:,} copies dropped, "
                   f"{capture_set['lost_between_points']:,} lost between points")
    else:  # agents: messages seen by two agents kept once
        summary = (f"{len(capture_set['points'])} points of observation, "
                   f"{capture_set['duplicates_dropped']:,} messages seen twice kept once")
    rows = [(title, summary)]
    for point in capture_set["points"]:
        if point["method"] == "reference":
            clock = "reference clock"
        elif point["method"] == "none":
            clock = "clock not corrected"
        else:
            spread = point["uncertainty_s"]
            clock = f"clock {point['offset_s'] * 1e3:+.3f} ms" + (
                f" ± {spread * 1e3:.3f} ms" if spread is not None else " (one-sided)") + f" ({point['method']})"
        unit = "packets" if "packets_kept" in capture_set else "messages"
        rows.append((f"  {point['capture']}", f"{point['packets']:,} {unit}, {clock}, "
                                              f"{point['duplicates_dropped']:,} copies dropped"))
        if point["method"] not in ("reference",):
            rows.append(("", f"    {point['evidence']}"))
    return rows


def _link_name(code: str) -> str:
    return LINK_NAMES.get(code, f"link type {code}")


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@set_options
@click.option("--call-id", default=None, help="Only messages with this Call-ID.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
def messages(obj: Context, captures: tuple[str, ...], merge: bool, offsets: tuple[str, ...], call_id: str | None,
             fmt: str) -> None:
    """Every SIP message of a capture, in capture order. With --merge (a capture set): in merged order, and
    where each message was seen (capture#frame)."""
    analysis = obj.analyze_one(captures, merge=merge, offsets=offsets)
    sip = analysis.capture.sip_messages
    if analysis.is_set:
        seen = analysis.seen_at or {}
        sip = sip.with_columns(pl.col("frame").map_elements(lambda f: ", ".join(seen.get(f, [])),
                                                            return_dtype=pl.Utf8).alias("seen_at"))
    if call_id is not None:
        sip = sip.filter(pl.col("call_id") == call_id)
        if sip.is_empty():
            raise FlowvizError(f"no SIP message has Call-ID {call_id!r}; list them with: flowviz messages "
                               f"{' '.join(captures)}")
    if fmt == "json":
        rows = sip.to_dicts()
        for row in rows:
            row["ts"] = iso(row["ts_ns"])
        click.echo(json_text(rows))
    elif fmt == "csv":
        click.echo(csv_text(sip.to_dicts(), sip.columns), nl=False)
    else:
        click.echo(_messages_table(sip))


def _messages_table(sip: pl.DataFrame) -> str:
    if sip.is_empty():
        return "no SIP messages"
    t0 = sip["ts_ns"].min()
    lines = [f"{'frame':>7} {'time s':>10}  {'source':<21} {'destination':<21} {'proto':<5} {'message':<28} call-id"]
    for r in sip.iter_rows(named=True):
        what = r["method"] if r["is_request"] else f"{r['status_code']} {r['reason'] or ''}"
        if r["has_sdp"]:
            what += " (SDP)"
        lines.append(
            f"{r['frame']:>7} {(r['ts_ns'] - t0) / 1e9:>10.3f}  {endpoint(r['src_ip'], r['src_port']):<21.21} "
            f"{endpoint(r['dst_ip'], r['dst_port']):<21.21} {r['transport']:<5} {what:<28.28} "
            f"{(r['call_id'] or '-')[:22]}" + (f"  at {r['seen_at']}" if r.get("seen_at") else "")
        )
    return "\n".join(lines)


def endpoint(ip: str | None, port: int | None) -> str:
    """'ip:port', IPv6 in brackets."""
    if ip and ":" in ip:
        return f"[{ip}]:{port}"
    return f"{ip}:{port}"


@click.command()
@click.argument("capture")
@click.argument("number", type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def frame(obj: Context, capture: str, number: int, fmt: str) -> None:
    """Every protocol and field of frame NUMBER, as Wireshark decodes it (its packet details view)."""
    from flowviz.ingest.dissect import dissect_frame

    layers = dissect_frame(capture, number, obj.settings)
    if fmt == "json":
        click.echo(json_text(layers))
        return
    for layer in layers:
        click.echo(layer["layer"].upper())
        for field in layer["fields"]:
            click.echo(f"    {field['text']}")


@click.command()
def schemas() -> None:
    """Columns of every frame flowviz produces (JSON, CSV and Parquet use the same names), as Markdown."""
    from flowviz.schemas import markdown

    click.echo(markdown(), nl=False)


@click.command()
@click.argument("capture")
@click.option("-o", "--output", required=True, metavar="OUT",
              help="Redacted capture to write (pcap stays pcap, pcapng stays pcapng).")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.pass_obj
def redact(obj: Context, capture: str, output: str, force: bool) -> None:
    """Write a redacted copy of CAPTURE for a third party.

    Phone numbers and users (sip:, sips:, tel: URIs, Digest usernames, SDP o=), display names, IPv4/IPv6
    addresses (IP headers, SIP and SDP text), Digest realm/nonce/response are replaced; the same original
    gets the same pseudonym everywhere in the file, of the same length, so the copy still opens in
    Wireshark and still correlates in flowviz. Media payloads are kept. Details: docs/redact.md.
    """
    from flowviz.export.redact import Redactor, redact_capture
    from flowviz.ingest.capture_file import check_readable

    source, target = Path(capture), Path(output)
    check_readable(source)
    check_output(output, force, inputs=(capture,))
    settings = obj.settings
    counts = redact_capture(source, target, Redactor(settings.sip_ports), settings=settings)
    click.echo(f"wrote {target}: {counts['packets']:,} packets; replaced {counts['addresses']} addresses, "
               f"{counts['users']} users/numbers, {counts['names']} display names")

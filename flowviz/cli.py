"""Command line: thin commands over the library (parse options, call, format)."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
import polars as pl

from flowviz.errors import FlowvizError
from flowviz.settings import Settings

FORMATS = click.Choice(["table", "json", "csv"])


class Context:
    def __init__(self, use_cache: bool, settings: Settings):
        self.use_cache = use_cache
        self.settings = settings

    def read(self, path: str):
        from flowviz.ingest import read_capture

        show = _progress_printer() if sys.stderr.isatty() else None
        capture = read_capture(path, self.settings, use_cache=self.use_cache, progress=show)
        if show:
            click.echo("\r" + " " * 60 + "\r", nl=False, err=True)
        for warning in capture.info.get("warnings", []):
            click.echo(f"flowviz: warning: {warning}", err=True)
        return capture


def _progress_printer():
    def show(stage: str, done: float) -> None:
        click.echo(f"\r{stage:<30} {done * 100:5.1f}%", nl=False, err=True)

    return show


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--no-cache", is_flag=True, help="Decode the capture again instead of reusing the cached frames.")
@click.option("--tshark", "tshark_path", default="", metavar="PATH", help="tshark program to use (default: from PATH).")
@click.option("--sip-port", "sip_ports", multiple=True, type=click.IntRange(1, 65535), metavar="PORT",
              help="Extra UDP/TCP port carrying SIP (repeatable); 5060 and 5061 always are.")
@click.option("--sip-decoder", type=click.Choice(["auto", "tshark"]), default="auto", show_default=True,
              help="Who decodes SIP in whole UDP datagrams: flowviz itself, by tshark's rules (auto), or "
                   "tshark, as for TCP, fragments and tunnels (to compare the two).")
@click.version_option(package_name="flowviz")
@click.pass_context
def cli(ctx: click.Context, no_cache: bool, tshark_path: str, sip_ports: tuple[int, ...], sip_decoder: str) -> None:
    """flowviz: turn a SIP/RTP capture into calls, ladders, media quality and diagnostics.

    CAPTURE is a pcap or pcapng file, optionally gzip-compressed; other formats that
    Wireshark reads (Network Monitor, ERF, snoop...) are converted on the fly.
    """
    ports = tuple(sorted({5060, 5061, *sip_ports}))
    ctx.obj = Context(use_cache=not no_cache, settings=Settings(tshark_path=tshark_path, sip_ports=ports,
                                                                   sip_decoder=sip_decoder))


CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".erf", ".snoop", ".trc")


def expand_paths(paths: tuple[str, ...]) -> list[Path]:
    """Files as given; folders searched (recursively) for capture files, in name order."""
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CAPTURE_SUFFIXES)
            if not found:
                raise FlowvizError(f"{path}: no capture files (.pcap, .pcapng, .cap, .gz) in this folder")
            out += found
        else:
            out.append(path)
    return out


@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def info(obj: Context, captures: tuple[str, ...], fmt: str) -> None:
    """Summary of captures: packets, time span, link types, SIP and RTP found, what was skipped.

    CAPTURES are files or folders (searched for .pcap/.pcapng/.cap/.gz). A capture that
    cannot be read is reported and the others go on; the exit code is then 2.
    """
    failed = 0
    results = []
    paths = expand_paths(captures)
    for i, path in enumerate(paths):
        try:
            data = obj.read(str(path)).info
        except FlowvizError as exc:
            if len(paths) == 1:
                raise
            click.echo(f"flowviz: error: {exc.message}", err=True)
            failed += 1
            continue
        if fmt == "json":
            results.append(data)
            continue
        if i:
            click.echo()
        click.echo(_info_table(data))
    if fmt == "json":
        click.echo(json.dumps(results[0] if len(paths) == 1 else results, indent=2))
    if failed:
        raise FlowvizError(f"{failed} of {len(paths)} captures could not be read (see above)")


def _losses(data: dict) -> str:
    parts = []
    if data.get("short_frames"):
        parts.append(f"{data['short_frames']:,} frames cut by the snapshot length")
    if data.get("tcp_gap_frames"):
        parts.append(f"{len(data['tcp_gap_frames']):,} missing TCP segments in SIP streams")
    return ", ".join(parts) or "none seen"


def _decoded_by(data: dict) -> str:
    """Who decoded the SIP: flowviz reads whole UDP datagrams itself, tshark the rest."""
    own = data.get("sip_udp_messages")
    if own is None or not data["sip_messages"]:
        return ""
    return f" ({own:,} from UDP datagrams read by flowviz, {data['sip_messages'] - own:,} decoded by tshark)"


def _info_table(data: dict) -> str:
    rows = [
        ("file", data["file"]),
        ("format", data["file_format"]),
        ("size", f"{data['file_bytes']:,} bytes"),
        ("packets", f"{data['packets']:,}"),
        ("first packet", _iso(data["first_ts_ns"])),
        ("last packet", _iso(data["last_ts_ns"])),
        ("duration", f"{data['duration_s']:.3f} s"),
        ("link types", ", ".join(f"{_link_name(k)} ({v:,})" for k, v in data["link_types"].items()) or "-"),
        ("SIP messages", f"{data['sip_messages']:,}" + _decoded_by(data)),
        ("RTP packets", f"{data['rtp_packets']:,} in {data['rtp_streams']} streams"),
        ("RTCP reports", f"{data['rtcp_reports']:,}"),
        ("skipped", ", ".join(f"{v:,} {k}" for k, v in data["skipped"].items()) or "none"),
        ("capture losses", _losses(data)),
        ("decode time", f"{data['decode_seconds']:.3f} s" + (" (from cache)" if data.get("from_cache") else "")),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


@cli.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--call-id", default=None, help="Only messages with this Call-ID.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_obj
def messages(obj: Context, capture: str, call_id: str | None, fmt: str) -> None:
    """Every SIP message of a capture, in capture order."""
    sip = obj.read(capture).sip_messages
    if call_id is not None:
        sip = sip.filter(pl.col("call_id") == call_id)
        if sip.is_empty():
            raise FlowvizError(f"no SIP message has Call-ID {call_id!r}; list them with: flowviz messages {capture}")
    if fmt == "json":
        click.echo(json.dumps(_json_rows(sip), indent=1, ensure_ascii=False))
    elif fmt == "csv":
        click.echo(_csv(sip), nl=False)
    else:
        click.echo(_messages_table(sip))


@cli.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.argument("number", type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def frame(capture: str, number: int, fmt: str) -> None:
    """Every protocol and field of frame NUMBER, as Wireshark decodes it (its packet details view)."""
    from flowviz.ingest.dissect import dissect_frame

    layers = dissect_frame(capture, number, click.get_current_context().obj.settings)
    if fmt == "json":
        click.echo(json.dumps(layers, indent=1, ensure_ascii=False))
        return
    for layer in layers:
        click.echo(layer["layer"].upper())
        for field in layer["fields"]:
            click.echo(f"    {field['text']}")


@cli.command()
def schemas() -> None:
    """Columns of every frame flowviz produces (JSON, CSV and Parquet use the same names), as Markdown."""
    from flowviz.schemas import markdown

    click.echo(markdown(), nl=False)


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
            f"{r['frame']:>7} {(r['ts_ns'] - t0) / 1e9:>10.3f}  {_ep(r['src_ip'], r['src_port']):<21.21} "
            f"{_ep(r['dst_ip'], r['dst_port']):<21.21} {r['transport']:<5} {what:<28.28} {(r['call_id'] or '-')[:22]}"
        )
    return "\n".join(lines)


def _ep(ip: str | None, port: int | None) -> str:
    if ip and ":" in ip:
        return f"[{ip}]:{port}"
    return f"{ip}:{port}"


def _iso(ts_ns: int | None) -> str:
    if ts_ns is None:
        return "-"
    return datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).isoformat(timespec="microseconds")


LINK_NAMES = {"0": "BSD loopback", "1": "Ethernet", "101": "raw IP", "108": "OpenBSD loopback", "113": "Linux cooked (SLL)",
              "197": "ERF", "228": "raw IPv4", "229": "raw IPv6", "276": "Linux cooked v2 (SLL2)"}


def _link_name(code: str) -> str:
    return LINK_NAMES.get(code, f"link type {code}")


def _json_rows(frame: pl.DataFrame) -> list[dict]:
    rows = frame.to_dicts()
    for row in rows:
        if "ts_ns" in row:
            row["ts"] = _iso(row["ts_ns"])
    return rows


def _csv(frame: pl.DataFrame) -> str:
    flat = frame.with_columns(
        [pl.col(c).map_elements(lambda v: json.dumps(v.to_list() if hasattr(v, "to_list") else v), return_dtype=pl.Utf8)
         for c, t in frame.schema.items() if isinstance(t, (pl.List, pl.Struct))]
    )
    return flat.write_csv()


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="flowviz", standalone_mode=False)
    except FlowvizError as exc:
        click.echo(f"flowviz: error: {exc.message}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("flowviz: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line, details on request
        if os.environ.get("FLOWVIZ_DEBUG"):
            raise
        click.echo(f"flowviz: internal error: {type(exc).__name__}: {exc} (run with FLOWVIZ_DEBUG=1 for details)", err=True)
        return 3
    return 0


def run() -> None:
    """The `flowviz` command: main(), then leave without the interpreter's teardown.

    Tearing down polars and numba at exit took 0.3-0.4 s of every command (measured against
    os._exit: docs/architecture.md). Everything a command writes is closed before main() returns;
    the standard streams are flushed here.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # the reader went away (`| head`), or a stream is closed
        pass
    os._exit(code)


if __name__ == "__main__":
    run()
from flowviz import cli_calls  # noqa: E402,F401
from flowviz import cli_streams  # noqa: E402,F401
from flowviz import cli_ladder  # noqa: E402,F401
from flowviz import cli_diagnose  # noqa: E402,F401
from flowviz import cli_serve  # noqa: E402,F401
from flowviz import cli_batch  # noqa: E402,F401
from flowviz import cli_redact  # noqa: E402,F401

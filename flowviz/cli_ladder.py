"""`flowviz ladder`: one call's ladder diagram as SVG, PNG, PDF, offline HTML, text, Mermaid or PlantUML."""

from __future__ import annotations

from pathlib import Path

import click

from flowviz.cli import Context, cli
from flowviz.errors import FlowvizError, NotFoundError

TEXT_FORMATS = ("txt", "mermaid", "plantuml")
FILE_FORMATS = ("svg", "png", "pdf", "html")


def check_output(output: str, force: bool) -> None:
    """An output file may be written: its folder exists, and it does not exist unless --force."""
    path = Path(output)
    if path.is_dir():
        raise FlowvizError(f"{output} is a folder; give a file name")
    if not path.parent.is_dir():
        raise FlowvizError(f"{path.parent}: no such folder for {path.name}")
    if path.exists() and not force:
        raise FlowvizError(f"{output} exists; use --force to overwrite it")


def load_ladder(obj: Context, path: str, call_ref: str, *, aliases: dict[str, str] | None = None,
                merge_ports: bool = False, diagnostics: bool = True):
    """The ladder of the call whose call_group_id or one of whose Call-IDs is `call_ref`, with its
    streams, DTMF digits and (unless diagnostics=False) the findings of `flowviz diagnose`."""
    from flowviz.ladder import build_ladder, call_inputs

    capture = obj.read(path)
    if capture.sip_messages.is_empty():
        raise NotFoundError(f"{path}: no SIP messages, so no call {call_ref!r}")
    correlation, call, streams = call_inputs(capture, call_ref)
    if call is None:
        raise NotFoundError(f"no call {call_ref!r} in {path}; list calls with: flowviz calls {path}")
    findings = None
    if diagnostics:
        from flowviz.analysis.diagnose import diagnose_capture

        findings = diagnose_capture(capture)
    return build_ladder(correlation.messages, call, streams, dtmf=_dtmf_events(obj, path, capture),
                        findings=findings, aliases=aliases, merge_ports=merge_ports)


def _dtmf_events(obj: Context, path: str, capture):
    """RFC 4733 digits (payload words read again from the file, as `flowviz dtmf`) and SIP INFO digits."""
    import polars as pl

    from flowviz.cli_streams import _event_words
    from flowviz.media.dtmf import event_packets, rfc4733_events, sip_info_digits
    from flowviz.media.streams import sdp_payload_map

    packets = event_packets(capture.rtp_packets, sdp_payload_map(capture.sip_messages))
    packets = packets.with_columns(pl.Series("event_word", _event_words(obj, path, packets), dtype=pl.UInt32))
    return pl.concat([rfc4733_events(packets), sip_info_digits(capture.sip_messages)])


@cli.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--call", "call_ref", required=True, metavar="ID", help="call_group_id (from `flowviz calls`) or a Call-ID.")
@click.option("--format", "fmt", type=click.Choice([*FILE_FORMATS, *TEXT_FORMATS]), default="txt", show_default=True)
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False), help="File to write (text formats: stdout without it).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--width", "max_width", default=120, show_default=True, type=click.IntRange(40, 1000),
              help="txt: maximum line width; labels are cut with '~' to fit.")
@click.option("--unicode", "use_unicode", is_flag=True, help="txt: draw with box-drawing characters instead of ASCII.")
@click.option("--alias", "alias_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="File of 'ip[:port] name' lines naming the columns.")
@click.option("--merge-ports", is_flag=True, help="One column per IP address instead of per ip:port.")
@click.option("--no-diagnostics", is_flag=True, help="Leave out the '!n' marks of `flowviz diagnose` findings.")
@click.option("--redact", is_flag=True,
              help="Replace addresses, users, numbers, names and credentials by consistent pseudonyms (docs/redact.md).")
@click.option("--theme", "theme_name", type=click.Choice(["light", "dark"]), default="light", show_default=True,
              help="Colours of svg/png/pdf/html.")
@click.pass_obj
def ladder(obj: Context, capture: str, call_ref: str, fmt: str, output: str | None, force: bool, max_width: int,
           use_unicode: bool, alias_file: str | None, merge_ports: bool, no_diagnostics: bool, redact: bool,
           theme_name: str) -> None:
    """Ladder (sequence) diagram of one call: every SIP message as an arrow between hosts in path
    order, RTP streams as bands between the media endpoints. See docs/ladder.md.

    svg/png/pdf use kaleido with the system Chromium; without it, svg is drawn by flowviz itself
    and png/pdf are refused. html is self-contained and works offline.
    """
    from flowviz.ladder import parse_aliases

    if fmt not in TEXT_FORMATS and output is None:
        raise FlowvizError(f"--format {fmt} writes a file: give one with -o FILE")
    if output is not None:
        check_output(output, force)
    aliases = parse_aliases(Path(alias_file).read_text(encoding="utf-8")) if alias_file else None
    model = load_ladder(obj, capture, call_ref, aliases=aliases, merge_ports=merge_ports,
                        diagnostics=not no_diagnostics)
    if redact:  # the model itself is redacted, so every format (images too) is drawn from pseudonyms
        from flowviz.export.redact import redact_ladder

        model = redact_ladder(model, redactor_for(obj, capture))
    if fmt in TEXT_FORMATS:
        from flowviz.export import text

        charset = "unicode" if use_unicode else "ascii"
        rendered = {"txt": lambda: text.to_txt(model, max_width=max_width, charset=charset),
                    "mermaid": lambda: text.to_mermaid(model),
                    "plantuml": lambda: text.to_plantuml(model)}[fmt]()
        if output is None:
            click.echo(rendered, nl=False)
        else:
            Path(output).write_text(rendered, encoding="utf-8")
        return
    from flowviz.figures.theme import THEMES

    if fmt == "html":
        from flowviz.export.html import write_html

        write_html(model, output, theme=THEMES[theme_name])
        return
    from flowviz.export.image import write_image

    write_image(model, output, fmt, theme=THEMES[theme_name])


@cli.command("export")
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--call", "call_ref", required=True, metavar="ID", help="call_group_id (from `flowviz calls`) or a Call-ID.")
@click.option("--pcap", "pcap_out", default=None, type=click.Path(dir_okay=False),
              help="Write the call's SIP, RTP and RTCP frames (all legs and hops) here, original bytes and times.")
@click.option("--json", "json_out", default=None, type=click.Path(dir_okay=False),
              help="Write the call's report here: summary, streams, ladder columns and messages.")
@click.option("--force", is_flag=True, help="Overwrite output files that exist.")
@click.option("--redact", is_flag=True,
              help="Replace addresses, users, numbers, names and credentials by consistent pseudonyms (docs/redact.md).")
@click.pass_obj
def export(obj: Context, capture: str, call_ref: str, pcap_out: str | None, json_out: str | None, force: bool,
           redact: bool) -> None:
    """One call out of a capture, for a ticket: its own pcap and/or its full JSON report."""
    import json

    import polars as pl

    from flowviz.cli_calls import _calls_of
    from flowviz.cli_streams import streams_of
    from flowviz.export.pcap import call_frames, write_call_pcap

    if not pcap_out and not json_out:
        raise FlowvizError("nothing to write: give --pcap FILE and/or --json FILE")
    for out in filter(None, (pcap_out, json_out)):
        check_output(out, force)
    model = load_ladder(obj, capture, call_ref)
    redactor = redactor_for(obj, capture) if redact else None  # one set of pseudonyms for both files
    calls, _ = _calls_of(obj, capture)
    call = next(c for c in calls if c["call_group_id"] == model.call_group_id)
    streams = [s for s in streams_of(obj, capture)[0] if s["call_group_id"] == model.call_group_id]
    if pcap_out:
        data = obj.read(capture)
        keys = pl.DataFrame([{"src_ip": s["src"], "src_port": s["src_port"], "dst_ip": s["dst"],
                              "dst_port": s["dst_port"], "ssrc": int(s["ssrc"], 16)} for s in streams],
                            schema={"src_ip": pl.Utf8, "src_port": pl.UInt16, "dst_ip": pl.Utf8,
                                    "dst_port": pl.UInt16, "ssrc": pl.UInt32})
        frames = call_frames(data.sip_messages, data.rtp_packets, data.rtcp_reports, call["call_ids"], keys)
        written = write_call_pcap(capture, frames, pcap_out, obj.settings)
        if redact:
            from flowviz.export.redact import redact_file_in_place

            redact_file_in_place(pcap_out, redactor)
        click.echo(f"{pcap_out}: {written} frames of call {model.call_group_id}" + (", redacted" if redact else ""),
                   err=True)
    if json_out:
        report = {"call": call, "streams": streams, "columns": model.columns.to_dicts(),
                  "messages": model.arrows.drop("summary").to_dicts(), "media": model.media.to_dicts()}
        if redact:
            report = redactor.redact_obj(report)
        Path(json_out).write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        click.echo(f"{json_out}: report of call {model.call_group_id}", err=True)


def redactor_for(obj: Context, capture: str):
    """A Redactor that has learned every original of the capture (the same pseudonyms in every file)."""
    from flowviz.export.redact import Redactor

    redactor = Redactor(obj.settings.sip_ports)
    redactor.learn_capture(obj.read(capture))
    return redactor

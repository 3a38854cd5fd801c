"""`flowviz ladder` and `flowviz export`: one call for a ticket, as a ladder diagram (SVG, PNG, PDF, offline
HTML, text, Mermaid, PlantUML), its own pcap and its JSON report."""

from __future__ import annotations

from pathlib import Path

import click

from flowviz.cli.common import Context, check_output, set_options
from flowviz.errors import FlowvizError

TEXT_FORMATS = ("txt", "mermaid", "plantuml")
FILE_FORMATS = ("svg", "png", "pdf", "html")


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@set_options
@click.option("--call", "call_ref", required=True, metavar="ID", help="call_group_id (from `flowviz calls`) or a Call-ID.")
@click.option("--format", "fmt", type=click.Choice([*FILE_FORMATS, *TEXT_FORMATS]), default="txt", show_default=True)
@click.option("-o", "--output", default=None, metavar="FILE", help="File to write (text formats: stdout without it).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--width", "max_width", default=120, show_default=True, type=click.IntRange(40, 1000),
              help="txt: maximum line width; labels are cut with '~' to fit.")
@click.option("--unicode", "use_unicode", is_flag=True, help="txt: draw with box-drawing characters instead of ASCII.")
@click.option("--alias", "alias_file", default=None, metavar="FILE",
              help="File of 'ip[:port] name' lines naming the columns.")
@click.option("--merge-ports", is_flag=True, help="One column per IP address instead of per ip:port.")
@click.option("--no-diagnostics", is_flag=True, help="Leave out the '!n' marks of `flowviz diagnose` findings.")
@click.option("--redact", is_flag=True,
              help="Replace addresses, users, numbers, names and credentials by consistent pseudonyms (docs/redact.md).")
@click.option("--theme", "theme_name", type=click.Choice(["light", "dark"]), default="light", show_default=True,
              help="Colours of svg/png/pdf/html.")
@click.pass_obj
def ladder(obj: Context, captures: tuple[str, ...], merge: bool, offsets: tuple[str, ...], call_ref: str, fmt: str, output: str | None, force: bool, max_width: int,
           use_unicode: bool, alias_file: str | None, merge_ports: bool, no_diagnostics: bool, redact: bool,
           theme_name: str) -> None:
    """Ladder (sequence) diagram of one call: every SIP message as an arrow between hosts in path
    order, RTP streams as bands between the media endpoints. See docs/ladder.md.

    svg/png/pdf use kaleido with the system Chromium; without it, svg is drawn by flowviz itself
    and png/pdf are refused. html is self-contained and works offline.
    """
    from flowviz.export.render import render_ladder
    from flowviz.figures.theme import THEMES
    from flowviz.ladder import parse_aliases

    if fmt not in TEXT_FORMATS and output is None:
        raise FlowvizError(f"--format {fmt} writes a file: give one with -o FILE")
    if output is not None:
        check_output(output, force, inputs=captures)
    aliases = parse_aliases(_read_text(alias_file)) if alias_file else None
    analysis = obj.analyze_one(captures, merge=merge, offsets=offsets)
    model = analysis.call(call_ref).ladder(aliases=aliases, merge_ports=merge_ports, diagnostics=not no_diagnostics)
    if redact:  # the model itself is redacted, so every format (images too) is drawn from pseudonyms
        from flowviz.export.redact import redact_ladder

        model = redact_ladder(model, analysis.redactor)
    data = render_ladder(model, fmt, theme=THEMES[theme_name], max_width=max_width,
                         charset="unicode" if use_unicode else "ascii")
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        _write(output, data)


@click.command("export")
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@set_options
@click.option("--call", "call_ref", required=True, metavar="ID", help="call_group_id (from `flowviz calls`) or a Call-ID.")
@click.option("--pcap", "pcap_out", default=None, metavar="FILE",
              help="Write the call's SIP, RTP and RTCP frames (all legs and hops) here, original bytes and times.")
@click.option("--json", "json_out", default=None, metavar="FILE",
              help="Write the call's report here: summary, streams, ladder columns and messages.")
@click.option("--force", is_flag=True, help="Overwrite output files that exist.")
@click.option("--redact", is_flag=True,
              help="Replace addresses, users, numbers, names and credentials by consistent pseudonyms (docs/redact.md).")
@click.pass_obj
def export(obj: Context, captures: tuple[str, ...], merge: bool, offsets: tuple[str, ...], call_ref: str,
           pcap_out: str | None, json_out: str | None, force: bool,
           redact: bool) -> None:
    """One call out of a capture, for a ticket: its own pcap and/or its full JSON report."""
    from flowviz.export.call_report import report_json

    if not pcap_out and not json_out:
        raise FlowvizError("nothing to write: give --pcap FILE and/or --json FILE")
    for out in filter(None, (pcap_out, json_out)):
        check_output(out, force, inputs=captures)
    if pcap_out and json_out and Path(pcap_out).absolute() == Path(json_out).absolute():
        raise FlowvizError("--pcap and --json name the same file; give two files")
    analysis = obj.analyze_one(captures, merge=merge, offsets=offsets)
    view = analysis.call(call_ref)
    if pcap_out:
        try:
            written = view.write_pcap(pcap_out)
            if redact:
                from flowviz.export.redact import redact_file_in_place

                redact_file_in_place(pcap_out, analysis.redactor)
        except OSError as exc:
            raise FlowvizError(f"cannot write {pcap_out}: {exc.strerror or exc}") from None
        click.echo(f"{pcap_out}: {written} frames of call {view.call_group_id}" + (", redacted" if redact else ""),
                   err=True)
    if json_out:
        report = view.report()
        if redact:
            report = analysis.redactor.redact_obj(report)
        _write(json_out, report_json(report).encode("utf-8"))
        click.echo(f"{json_out}: report of call {view.call_group_id}", err=True)


def _write(output: str, data: bytes) -> None:
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise FlowvizError(f"cannot write {output}: {exc.strerror or exc}") from None


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise FlowvizError(f"cannot read the alias file {path}: {why}") from None

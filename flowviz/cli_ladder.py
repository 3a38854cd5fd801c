"""`flowviz ladder`: one call's ladder diagram as SVG, PNG, PDF, offline HTML, text, Mermaid or PlantUML."""

from __future__ import annotations

from pathlib import Path

import click

from flowviz.cli import Context, cli
from flowviz.errors import FlowvizError, NotFoundError

TEXT_FORMATS = ("txt", "mermaid", "plantuml")
FILE_FORMATS = ("svg", "png", "pdf", "html")


def load_ladder(obj: Context, path: str, call_ref: str, *, aliases: dict[str, str] | None = None,
                merge_ports: bool = False):
    """The ladder of the call whose call_group_id or one of whose Call-IDs is `call_ref`."""
    from flowviz.ladder import build_ladder
    from flowviz.media.report import streams_report
    from flowviz.sip.calls import Correlation

    capture = obj.read(path)
    if capture.sip_messages.is_empty():
        raise NotFoundError(f"{path}: no SIP messages, so no call {call_ref!r}")
    correlation = Correlation(capture.sip_messages, capture.info.get("last_ts_ns"))
    calls = correlation.summaries()
    call = next((c for c in calls if c["call_group_id"] == call_ref or call_ref in c["call_ids"]), None)
    if call is None:
        raise NotFoundError(f"no call {call_ref!r} in {path}; list calls with: flowviz calls {path}")
    streams = None
    if not capture.rtp_packets.is_empty():
        streams = streams_report(capture.sip_messages, capture.rtp_packets, t0_ns=capture.info.get("first_ts_ns"),
                                 group_of_call_id=correlation.group_of_call_id(), rtcp=capture.rtcp_reports)
    return build_ladder(correlation.messages, call, streams, aliases=aliases, merge_ports=merge_ports)


@cli.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("--call", "call_ref", required=True, metavar="ID", help="call_group_id (from `flowviz calls`) or a Call-ID.")
@click.option("--format", "fmt", type=click.Choice([*FILE_FORMATS, *TEXT_FORMATS]), default="txt", show_default=True)
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False), help="File to write (text formats: stdout without it).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--width", "max_width", default=120, show_default=True, type=click.IntRange(40, 1000),
              help="txt: maximum line width; labels are cut with '~' to fit.")
@click.option("--alias", "alias_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="File of 'ip[:port] name' lines naming the columns.")
@click.option("--merge-ports", is_flag=True, help="One column per IP address instead of per ip:port.")
@click.pass_obj
def ladder(obj: Context, capture: str, call_ref: str, fmt: str, output: str | None, force: bool, max_width: int,
           alias_file: str | None, merge_ports: bool) -> None:
    """Ladder (sequence) diagram of one call: every SIP message as an arrow between hosts in path
    order, RTP streams as bands between the media endpoints. See docs/ladder.md.

    svg/png/pdf use kaleido with the system Chromium; without it, svg is drawn by flowviz itself
    and png/pdf are refused. html is self-contained and works offline.
    """
    from flowviz.ladder import parse_aliases

    if fmt not in TEXT_FORMATS and output is None:
        raise FlowvizError(f"--format {fmt} writes a file: give one with -o FILE")
    if output is not None and Path(output).exists() and not force:
        raise FlowvizError(f"{output} exists; use --force to overwrite it")
    aliases = parse_aliases(Path(alias_file).read_text(encoding="utf-8")) if alias_file else None
    model = load_ladder(obj, capture, call_ref, aliases=aliases, merge_ports=merge_ports)
    if fmt in TEXT_FORMATS:
        from flowviz.export import text

        rendered = {"txt": lambda: text.to_txt(model, max_width=max_width), "mermaid": lambda: text.to_mermaid(model),
                    "plantuml": lambda: text.to_plantuml(model)}[fmt]()
        if output is None:
            click.echo(rendered, nl=False)
        else:
            Path(output).write_text(rendered, encoding="utf-8")
        return
    if fmt == "html":
        from flowviz.export.html import write_html

        write_html(model, output)
        return
    from flowviz.export.image import write_image

    write_image(model, output, fmt)

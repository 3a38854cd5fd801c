"""`flowviz redact`: a copy of a whole capture with users, numbers, names, addresses and credentials replaced
by consistent same-length pseudonyms (flowviz/export/redact.py, docs/redact.md)."""

from __future__ import annotations

from pathlib import Path

import click

from flowviz.cli import Context, cli
from flowviz.errors import FlowvizError


@cli.command()
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="OUT",
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
    if target.exists() and not force:
        raise FlowvizError(f"{target} exists; add --force to overwrite it")
    settings = obj.settings
    counts = redact_capture(source, target, Redactor(settings.sip_ports), tshark=settings.tshark() or "")
    click.echo(f"wrote {target}: {counts['packets']:,} packets; replaced {counts['addresses']} addresses, "
               f"{counts['users']} users/numbers, {counts['names']} display names")

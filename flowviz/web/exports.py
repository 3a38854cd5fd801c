"""Exports of one call for download: ladder as SVG/PNG/PDF/HTML/txt/Mermaid/PlantUML, call pcap, JSON report."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from flowviz.figures.theme import LIGHT
from flowviz.settings import Settings

FORMATS = {  # format -> (file suffix, MIME type, button label)
    "svg": (".svg", "image/svg+xml", "SVG"), "png": (".png", "image/png", "PNG"), "pdf": (".pdf", "application/pdf", "PDF"),
    "html": (".html", "text/html", "HTML"), "txt": (".txt", "text/plain", "txt"),
    "mermaid": (".mmd", "text/plain", "Mermaid"), "plantuml": (".puml", "text/plain", "PlantUML"),
    "pcap": (".pcap", "application/vnd.tcpdump.pcap", "call pcap"), "json": (".json", "application/json", "JSON"),
}



def export_bytes(details: dict, fmt: str, settings: Settings, *, redact: bool = False) -> bytes:
    """The file's content; `details` as from flowviz.web.analysis.call_details. With `redact`, personal data
    (addresses, users, names, credentials) get the consistent pseudonyms of flowviz.export.redact."""
    if not redact:
        return _export(details, fmt, settings)
    from flowviz.export.redact import Redactor, redact_file_in_place, redact_ladder

    redactor = Redactor(settings.sip_ports)
    redactor.learn_capture(details["capture"])
    if fmt in ("png", "pdf"):  # pixels cannot be redacted afterwards: drawn from a redacted ladder, as the CLI does
        return _export({**details, "ladder": redact_ladder(details["ladder"], redactor)}, fmt, settings)
    data = _export(details, fmt, settings)
    if fmt != "pcap":
        return redactor.redact_text(data.decode()).encode()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "call.pcap"
        path.write_bytes(data)
        redact_file_in_place(path, redactor)
        return path.read_bytes()


def _export(details: dict, fmt: str, settings: Settings) -> bytes:
    ladder = details["ladder"]
    if fmt in ("svg", "png", "pdf"):
        from flowviz.export.image import browser_path, render, to_svg
        from flowviz.figures.ladder import create_ladder

        # always light, whatever theme the page shows: these files go into tickets and get printed
        if fmt == "svg" and browser_path() is None:
            return to_svg(ladder, theme=LIGHT).encode()
        return render(create_ladder(ladder, theme=LIGHT), fmt)
    if fmt == "html":
        from flowviz.export.html import to_html

        return to_html(ladder, theme=LIGHT, title=f"call {ladder.call_group_id}").encode()
    if fmt in ("txt", "mermaid", "plantuml"):
        from flowviz.export import text

        return {"txt": text.to_txt, "mermaid": text.to_mermaid, "plantuml": text.to_plantuml}[fmt](ladder).encode()
    if fmt == "pcap":
        return _pcap(details, settings)
    streams = details["streams"].to_dicts() if details["streams"] is not None else []
    report = {"call": details["call"], "streams": streams, "columns": ladder.columns.to_dicts(),
              "messages": ladder.arrows.drop("summary").to_dicts(), "media": ladder.media.to_dicts()}
    return json.dumps(report, indent=1, ensure_ascii=False, default=str).encode()


def _pcap(details: dict, settings: Settings) -> bytes:
    import polars as pl

    from flowviz.export.pcap import call_frames, write_call_pcap

    capture, streams = details["capture"], details["streams"]
    keys = None
    if streams is not None and not streams.is_empty():
        keys = streams.select("src_ip", "src_port", "dst_ip", "dst_port", "ssrc").with_columns(
            pl.col("src_port").cast(pl.UInt16), pl.col("dst_port").cast(pl.UInt16), pl.col("ssrc").cast(pl.UInt32))
    frames = call_frames(capture.sip_messages, capture.rtp_packets, capture.rtcp_reports,
                         details["call"]["call_ids"], keys)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "call.pcap"
        write_call_pcap(details["path"], frames, out, settings)
        return out.read_bytes()

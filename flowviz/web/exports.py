"""Exports of one call for download: the same files as `flowviz ladder` and `flowviz export` (one renderer,
one call report), drawn light whatever theme the page shows."""

from __future__ import annotations

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


def export_bytes(details: dict, fmt: str, settings: Settings, *, redact: bool = False, renderers=None) -> bytes:
    """The file's content; `details` as from flowviz.web.analysis.CallCache.get. With `redact`, personal data
    (addresses, users, names, credentials) get the consistent pseudonyms of flowviz.export.redact, as with
    the CLI's --redact. Images are drawn by `renderers` (flowviz.web.renderers.Renderers) when given, so
    several downloads are drawn at once."""
    from flowviz.export.call_report import report_json
    from flowviz.export.render import render_ladder

    view = details["view"]
    redactor = view.analysis.redactor if redact else None
    if fmt == "pcap":
        return _pcap(details, settings, redactor)
    if fmt == "json":
        report = view.report()
        return report_json(redactor.redact_obj(report) if redactor else report).encode("utf-8")
    ladder = view.ladder()
    if redactor:  # the model itself is redacted, so every format (images too) is drawn from pseudonyms
        from flowviz.export.redact import redact_ladder

        ladder = redact_ladder(ladder, redactor)
    if renderers is not None and fmt in ("svg", "png", "pdf"):
        return renderers.render(ladder, fmt)
    return render_ladder(ladder, fmt, theme=LIGHT)


def _pcap(details: dict, settings: Settings, redactor) -> bytes:
    from flowviz.export.pcap import write_call_pcap

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "call.pcap"
        write_call_pcap(details["path"], details["view"].frames(), out, settings)
        if redactor:
            from flowviz.export.redact import redact_file_in_place

            redact_file_in_place(out, redactor)
        return out.read_bytes()

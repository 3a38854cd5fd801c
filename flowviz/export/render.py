"""Render: a ladder model as the bytes of one file format. `flowviz ladder` and the web's downloads both
draw through here, so the same call gives the same file."""

from __future__ import annotations

from flowviz.errors import FlowvizError
from flowviz.figures.theme import LIGHT, Theme
from flowviz.ladder import Ladder

FORMATS = ("svg", "png", "pdf", "html", "txt", "mermaid", "plantuml")


def render_ladder(ladder: Ladder, fmt: str, *, theme: Theme = LIGHT, max_width: int = 120,
                  charset: str = "ascii") -> bytes:
    """svg/png/pdf (kaleido and Chromium; svg is drawn by flowviz itself without Chromium), html (offline,
    plotly.js inside), txt (max_width, charset 'ascii' or 'unicode'), mermaid or plantuml."""
    if fmt in ("svg", "png", "pdf"):
        from flowviz.export.image import browser_path, render, to_svg
        from flowviz.figures.ladder import create_ladder

        if fmt == "svg" and browser_path() is None:
            return to_svg(ladder, theme=theme).encode("utf-8")
        return render(create_ladder(ladder, theme=theme), fmt)
    if fmt == "html":
        from flowviz.export.html import to_html

        return to_html(ladder, theme=theme).encode("utf-8")
    from flowviz.export import text

    if fmt == "txt":
        return text.to_txt(ladder, max_width=max_width, charset=charset).encode("utf-8")
    if fmt == "mermaid":
        return text.to_mermaid(ladder).encode("utf-8")
    if fmt == "plantuml":
        return text.to_plantuml(ladder).encode("utf-8")
    raise FlowvizError(f"unknown ladder format {fmt!r}: one of {', '.join(FORMATS)}")

"""Image exports of a ladder: SVG, PNG, PDF through kaleido and the system Chromium, with an SVG
writer that needs no browser when Chromium is absent.

One kaleido sync server per process, started on first use (2-4 s) and guarded by a lock: the server
is not thread-safe. Kaleido's own Chrome download is never used (no internet); it finds
/usr/bin/chromium on PATH, or BROWSER_PATH.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
from html import escape
from pathlib import Path

from flowviz.errors import FlowvizError, ToolMissingError
from flowviz.figures.theme import LIGHT, Theme
from flowviz.ladder import Ladder

_LOCK = threading.Lock()
_STARTED = False
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def browser_path() -> str | None:
    """The Chromium kaleido will use: BROWSER_PATH, else the first of BROWSERS on PATH."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).exists():
        return env
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def stop() -> None:
    """Stop the kaleido server if this process started it: Chromium and its profile folder in $TMPDIR go
    with it. atexit runs this, and so does the `flowviz` command, which leaves through os._exit."""
    global _STARTED
    import sys

    with _LOCK:
        if _STARTED:
            _STARTED = False
            sys.modules["kaleido"].stop_sync_server(silence_warnings=True)


def render(fig, fmt: str) -> bytes:
    """Bytes of a plotly figure as svg/png/pdf, through the process's single kaleido server."""
    global _STARTED
    import kaleido

    path = browser_path()
    if path is None:
        raise ToolMissingError(f"{fmt.upper()} export needs Chromium (apt-get install chromium); SVG works without it")
    with _LOCK:
        try:
            if not _STARTED:
                kaleido.start_sync_server(mathjax=False, silence_warnings=True)
                atexit.register(stop)
                _STARTED = True
            opts = {"format": fmt, "width": fig.layout.width, "height": fig.layout.height}
            return kaleido.calc_fig_sync(fig, opts=opts)
        except Exception as exc:  # Chromium missing libraries, sandbox refused, crashed...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FlowvizError(f"{fmt.upper()} export failed in kaleido/Chromium ({path}): {first}") from exc


# --- browser-free SVG ------------------------------------------------------------------------------

LEFT_PX, TOP_PX, COL_PX, ROW_PX = 150, 70, 230, 30


def to_svg(ladder: Ladder, *, theme: Theme = LIGHT) -> str:
    """The same ladder as create_ladder, written directly as SVG text (no browser, no plotly)."""
    columns = ladder.columns.to_dicts()
    rows = ladder.rows()
    marks = ladder.markers_of()
    loose = ladder.markers.filter(ladder.markers["seq"].is_null()).to_dicts()
    width = LEFT_PX + COL_PX * max(len(columns) - 1, 1) + 120
    height = TOP_PX + ROW_PX * (max(len(rows), 1) + len(loose)) + 20
    x = [LEFT_PX + COL_PX * c["col"] for c in columns]
    font = f'font-family="{escape(theme.font_family)}" font-size="{theme.font_size}"'
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" {font}>',
           '<defs>' + "".join(
               f'<marker id="head-{i}" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
               f'<path d="M0,0 L10,4 L0,8 z" fill="{colour}"/></marker>'
               for i, colour in enumerate([*theme.classes.values(), theme.media, theme.dtmf])) + '</defs>',
           f'<rect width="100%" height="100%" fill="{theme.paper}"/>']
    for c, cx in zip(columns, x):
        out.append(f'<text x="{cx}" y="22" text-anchor="middle" font-weight="bold" fill="{theme.text}">'
                   f'{escape(c["name"])}</text>')
        out.append(f'<text x="{cx}" y="40" text-anchor="middle" fill="{theme.text}">{escape(c["key"])}</text>')
        out.append(f'<line x1="{cx}" y1="50" x2="{cx}" y2="{height - 10}" stroke="{theme.lifeline}" '
                   'stroke-dasharray="2,3"/>')
    heads = {k: i for i, k in enumerate([*theme.classes, "rtp", "dtmf"])}
    for i, r in enumerate(rows):
        y = TOP_PX + ROW_PX * i + 12
        a, b = x[r["src_col"]], x[r["dst_col"]]
        if r["kind"] == "rtp":
            colour, label, marker = theme.media, r["label"], heads["rtp"]
            out.append(f'<rect x="{min(a, b)}" y="{y - 17}" width="{abs(b - a)}" height="22" fill="{theme.media_fill}"/>')
        elif r["kind"] == "dtmf":
            colour, label, marker = theme.dtmf, r["label"], heads["dtmf"]
        else:
            colour, label, marker = theme.classes[r["klass"]], r["text"], heads[r["klass"]]
            out.append(f'<text x="{LEFT_PX - 40}" y="{y + 4}" text-anchor="end" font-size="{theme.font_size - 2}" '
                       f'fill="{theme.text}">{r["t_ms"] / 1e3:.3f} s  +{r["delta_ms"]:.1f} ms</text>')
        dash = ' stroke-dasharray="5,3"' if r["kind"] == "sip" and r["klass"] == "1xx" else ""
        out.append(f'<line x1="{a}" y1="{y}" x2="{b}" y2="{y}" stroke="{colour}" stroke-width="1.6"{dash} '
                   f'marker-end="url(#head-{marker})"/>')
        out.append(f'<text x="{(a + b) / 2}" y="{y - 5}" text-anchor="middle" font-size="{theme.font_size - 1}" '
                   f'fill="{colour}">{escape(label)}</text>')
        for k, m in enumerate(marks.get(r.get("seq"), []) if r["kind"] == "sip" else []):
            out.append(f'<text x="{max(a, b) + 12 + 24 * k}" y="{y + 4}" font-weight="bold" '
                       f'fill="{theme.severities.get(m["severity"], theme.text)}">!{m["number"]}'
                       f'<title>{escape(m["title"])}</title></text>')
    for k, m in enumerate(loose):
        y = TOP_PX + ROW_PX * (len(rows) + k) + 12
        out.append(f'<text x="{LEFT_PX}" y="{y}" fill="{theme.severities.get(m["severity"], theme.text)}">'
                   f'!{m["number"]} {escape(m["severity"])}: {escape(m["title"])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"

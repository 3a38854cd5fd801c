"""Offline HTML export of a ladder: the plotly figure with plotly.js embedded (no network needed), and
the raw SIP message of an arrow shown below the diagram when its label is clicked."""

from __future__ import annotations

import json
from html import escape

from flowviz.figures.theme import LIGHT, Theme
from flowviz.ladder import Ladder

# Runs after the plot exists; plotly replaces {plot_id} with the div's id.
CLICK_SCRIPT = """
var raw = JSON.parse(document.getElementById('flowviz-raw').textContent);
var plot = document.getElementById('{plot_id}');
plot.on('plotly_click', function (data) {
  var point = data.points[0];
  if (point.customdata === undefined || point.customdata < 0) { return; }
  var message = raw[point.customdata];
  document.getElementById('flowviz-message-title').textContent = message.title;
  document.getElementById('flowviz-message').textContent = message.raw;
});
"""


def to_html(ladder: Ladder, *, theme: Theme = LIGHT, title: str | None = None) -> str:
    """A self-contained page (~5 MB with plotly.js) for the ladder."""
    from flowviz.figures.ladder import create_ladder

    fig = create_ladder(ladder, theme=theme, title=title)
    raw = [{"title": f"#{a['seq']} frame {a['frame']}: {a['text']} ({a['src']} -> {a['dst']})", "raw": a["raw"] or ""}
           for a in ladder.arrows.to_dicts()]
    # '</' cannot end the script element early once escaped as '<\/', which JSON reads back as '</'
    data = json.dumps(raw, ensure_ascii=False).replace("</", "<\\/")
    plot = fig.to_html(include_plotlyjs=True, full_html=False, post_script=CLICK_SCRIPT,
                       config={"displaylogo": False, "responsive": False})
    heading = escape(title or f"flowviz ladder: call {ladder.call_group_id}")
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{heading}</title>"
        f"<style>body{{background:{theme.paper};color:{theme.text};font-family:{theme.font_family};margin:1em}}"
        "pre{border:1px solid #999;padding:.6em;white-space:pre-wrap;max-width:110ch}</style></head><body>\n"
        f"<h3>{heading}</h3><p>Click an arrow's label to see its raw SIP message below.</p>\n"
        f"<script type=\"application/json\" id=\"flowviz-raw\">{data}</script>\n"
        f"<div id=\"flowviz-detail\"><h4 id=\"flowviz-message-title\">(no message selected)</h4>"
        f"<pre id=\"flowviz-message\"></pre></div>\n{plot}\n</body></html>\n"
    )

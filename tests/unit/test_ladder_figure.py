"""Plotly ladder figure: traces and their data (no rendering)."""

from __future__ import annotations

from flowviz.figures.ladder import create_ladder
from flowviz.figures.theme import DARK, LIGHT
from flowviz.ladder import build_ladder
from tests.unit.test_ladder_model import CALL, MESSAGES


def traces(fig):
    return {t.name: t for t in fig.data}


def test_arrows_are_scatter_traces_per_class_not_annotations():
    fig = create_ladder(build_ladder(MESSAGES, CALL), theme=LIGHT)
    assert not fig.layout.annotations
    by_name = traces(fig)
    assert {"lifelines", "request", "1xx", "4xx-6xx", "labels", "times", "columns"} <= set(by_name)
    assert "2xx" not in by_name  # no 2xx in this call
    requests = by_name["request"]
    # INVITE A->P row 0, INVITE P->B rows 2 and 3 (the retransmission)
    assert list(requests.x) == [0, 1, None, 1, 2, None, 1, 2, None]
    assert list(requests.y) == [0, 0, None, 2, 2, None, 3, 3, None]
    assert list(requests.marker.symbol)[:3] == ["circle", "triangle-right", "circle"]
    assert list(requests.marker.size)[:3] == [0, 11, 0]
    assert list(by_name["4xx-6xx"].marker.symbol)[1] == "triangle-left"
    assert requests.line.color == LIGHT.classes["request"]


def test_labels_carry_hover_and_the_arrow_seq_for_clicks():
    fig = create_ladder(build_ladder(MESSAGES, CALL))
    labels = traces(fig)["labels"]
    assert list(labels.text) == ["INVITE (SDP PCMU/8000)", "100 Trying", "INVITE (SDP PCMU/8000)",
                                 "INVITE (SDP PCMU/8000) [retransmission]", "486 Busy Here", "486 Busy Here"]
    assert list(labels.customdata) == [0, 1, 2, 3, 4, 5]
    assert "10.0.0.1:5060 -> 10.0.0.2:5060" in labels.hovertext[0]
    assert list(labels.textfont.color)[4] == LIGHT.classes["4xx-6xx"]


def test_columns_header_and_theme():
    fig = create_ladder(build_ladder(MESSAGES, CALL), theme=DARK)
    header = traces(fig)["columns"]
    assert list(header.x) == [0, 1, 2]
    assert header.text[0] == "<b>Linphone</b><br>10.0.0.1:5060"
    assert fig.layout.paper_bgcolor == DARK.paper
    assert list(fig.layout.yaxis.range)[0] > list(fig.layout.yaxis.range)[1]  # time runs down

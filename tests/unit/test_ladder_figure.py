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


def test_dtmf_events_get_their_own_traces_and_the_plain_svg_draws_them():
    import xml.etree.ElementTree as ET

    from flowviz.export.image import to_svg
    from tests.unit.test_ladder_model import A, MS, P, dtmf_frame

    dtmf = dtmf_frame([{"source": "sip-info", "stream_id": None, "call_id": "c1", "frame": 9,
                        "ts_ns": 1_000 * 10**9 + 650 * MS, "digit": "5", "event": None, "duration_ms": 160.0,
                        "volume_dbm0": None, "end_seen": True, "packets": 1, "src": A, "dst": P}])
    ladder = build_ladder(MESSAGES, CALL, dtmf=dtmf)
    by_name = traces(create_ladder(ladder))
    assert list(by_name["dtmf"].x) == [0, 1, None] and list(by_name["dtmf"].y) == [6, 6, None]
    assert list(by_name["event labels"].text) == ["DTMF 5 (sip-info, 160 ms)"]
    assert list(by_name["event labels"].customdata) == [-1]  # nothing to show on click
    root = ET.fromstring(to_svg(ladder))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts[-1] == "DTMF 5 (sip-info, 160 ms)"


def test_diagnostics_are_diamonds_beside_their_arrow_or_listed_under_the_ladder():
    import xml.etree.ElementTree as ET

    from flowviz.export.image import to_svg
    from tests.unit.test_ladder_model import FINDINGS

    ladder = build_ladder(MESSAGES, CALL, findings=FINDINGS)
    marks = traces(create_ladder(ladder))["diagnostics"]
    assert list(marks.text) == ["!1", "!2 error: No media"]
    assert list(marks.x) == [2.08, 0] and list(marks.y) == [4, 6]
    assert list(marks.marker.color) == [LIGHT.severities["warning"], LIGHT.severities["error"]]
    texts = [t.text for t in ET.fromstring(to_svg(ladder)).iter("{http://www.w3.org/2000/svg}text")]
    assert "!1" in texts and texts[-1] == "!2 error: No media"


def test_a_kaleido_failure_is_a_one_line_flowviz_error(monkeypatch):
    import kaleido
    import pytest

    from flowviz.errors import FlowvizError
    from flowviz.export import image

    def broken(*args, **kwargs):
        raise RuntimeError("Chromium exited: missing libnss3.so\nstack...")

    monkeypatch.setattr(image, "browser_path", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(image, "_STARTED", True)
    monkeypatch.setattr(kaleido, "calc_fig_sync", broken)
    with pytest.raises(FlowvizError, match=r"^PNG export failed in kaleido/Chromium \(/usr/bin/chromium\): "
                                           r"Chromium exited: missing libnss3.so$"):
        image.render(create_ladder(build_ladder(MESSAGES, CALL)), "png")

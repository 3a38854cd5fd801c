"""Capture sets in the browser: two captures of the reference call taken at two points, one clock 250 ms
ahead (sample_pcaps/points, made by lab/make_capture_points.sh; offsets from its expected.json), are one call
whose ladder says where each message was seen, whether they are uploaded as one set or the second is added to
the first."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

POINTS = Path(__file__).resolve().parents[2] / "sample_pcaps" / "points"
P1, P2 = POINTS / "p1.pcap", POINTS / "p2_plus250ms.pcap"
TIMEOUT = 90_000  # a set is analysed twice when a point is added; the suite runs two files at once

pytestmark = pytest.mark.lab
expect.set_options(timeout=TIMEOUT)


def check_set(page) -> None:
    """On the capture page: one call, the second point's clock offset as made; on its call page, the
    ladder's hover text naming both captures."""
    expected = json.loads((POINTS / "expected.json").read_text())["points"][P2.name]["offset_s"] * 1e3
    row = page.locator("#points-table tr[data-point='p2_plus250ms.pcap']")
    offset = row.locator(".point-offset")
    expect(offset).to_contain_text(" ms")
    measured = float(re.match(r"([+-][\d.]+) ms", offset.inner_text()).group(1))
    assert abs(measured - expected) <= 1.0, (measured, expected)
    expect(page.locator("#points-table tr[data-point='p1.pcap']")).to_have_count(1)
    rows = page.locator("#calls-table tr:has(td)")
    expect(rows).to_have_count(1)
    rows.first.locator("a").click()
    expect(page.locator("#ladder-points")).to_contain_text(f"1 = {P1.name}")
    expect(page.locator("#ladder-points")).to_contain_text(f"2 = {P2.name}")
    expect(page.locator("#ladder text", has_text=re.compile(r"^INVITE")).first).to_be_visible()
    hover = page.evaluate("""() => document.querySelector('#ladder .js-plotly-plot').data
        .flatMap(t => [].concat(t.hovertext || [], t.text || [])).join('\\n')""")
    assert re.search(r"seen at p1\.pcap#\d+, p2_plus250ms\.pcap#\d+", hover), hover[:2000]
    expect(page.locator("#ladder text", has_text="@1,2").first).to_be_visible()  # the row's marker
    expect(page.locator("#messages-table td[data-dash-column='seen_at']", has_text="p2_plus250ms.pcap#").first
           ).to_be_visible()


def test_two_points_uploaded_as_one_set(page, base_url_app):
    page.goto(base_url_app)
    page.locator("#as-set input[type=checkbox]").check()
    with page.expect_file_chooser() as chooser:
        page.click("#choose-files")
    chooser.value.set_files([str(P1), str(P2)])
    name = f"{P1.name} + {P2.name}"
    row = page.locator("tr[data-state='done']", has=page.locator(".capture-name", has_text=name))
    expect(row).to_have_count(1)
    expect(row).to_contain_text("1")  # one call
    row.locator("a").click()
    check_set(page)


def test_point_added_to_an_uploaded_capture(page, base_url_app):
    page.goto(base_url_app)
    with page.expect_file_chooser() as chooser:
        page.click("#choose-files")
    chooser.value.set_files([str(P1)])
    row = page.locator("tr[data-state='done']", has=page.locator(".capture-name", has_text=re.compile(r"^p1\.pcap$")))
    expect(row).to_have_count(1)
    row.locator("a").click()
    with page.expect_file_chooser() as chooser:
        page.click("#add-point")
    chooser.value.set_files([str(P2)])
    expect(page.locator("h1")).to_have_text(f"{P1.name} + {P2.name}")
    check_set(page)

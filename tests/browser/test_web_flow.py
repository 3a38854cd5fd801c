"""The README's main flow in a real browser: upload a capture, see its calls, open one.

Expected values come from how the lab captures were made (sample_pcaps/lab/expected.json): the
reference capture is 1 call, completed, INVITE / 180 Ringing / 200 OK / ACK / BYE; burst_100 is 100
calls, 90 completed and 10 busy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from playwright.sync_api import expect

LAB = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab"
REFERENCE = LAB / "reference_call.pcap"
SHOTS = os.environ.get("FLOWVIZ_WEB_SCREENSHOTS")  # a folder: save screenshots of the main pages there
TIMEOUT = 30_000

pytestmark = pytest.mark.lab
expect.set_options(timeout=TIMEOUT)  # every wait, not only the long ones: CI machines can be busy


def shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / name), full_page=False)


def upload(page, *paths: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.click("#choose-files")
    chooser.value.set_files([str(p) for p in paths])


def done_row(page, name: str):
    row = page.locator("tr[data-state='done']", has=page.locator(".capture-name", has_text=name))
    expect(row).to_have_count(1, timeout=TIMEOUT)
    return row


def test_upload_reference_capture_list_its_call_and_open_it(page, base_url_app):
    page.goto(base_url_app)
    upload(page, REFERENCE)
    expect(page.locator("#upload-status")).to_contain_text("reference_call.pcap: uploaded", timeout=TIMEOUT)
    row = done_row(page, "reference_call.pcap")
    expect(row).to_contain_text("analysed")
    shot(page, "web_captures.png")
    row.locator("a").click()

    expect(page.locator(".kpi", has_text="calls")).to_contain_text("1", timeout=TIMEOUT)
    rows = page.locator("#calls-table tr:has(td)")
    expect(rows).to_have_count(1, timeout=TIMEOUT)
    expect(rows.first).to_contain_text("completed")
    expect(rows.first).to_contain_text("ua1")
    rows.first.locator("a").click()

    expect(page).to_have_url(re.compile(r"/capture/[0-9a-f]{16}/call/[0-9a-f]+$"))
    expect(page.locator("#fact-state")).to_have_text("completed", timeout=TIMEOUT)
    expect(page.locator("#problems")).to_contain_text("No problems found")
    label_cells = page.locator("#messages-table td[data-dash-column='label']")
    expect(label_cells).to_have_count(21, timeout=TIMEOUT)
    labels = label_cells.all_inner_texts()
    firsts = [next(i for i, t in enumerate(labels) if t == want)
              for want in ("INVITE", "180 Ringing", "200 OK", "ACK", "BYE")]
    assert firsts == sorted(firsts), labels
    assert len(labels) == 21
    # the ladder figure: labels in order; clicking INVITE shows its raw text with the Call-ID
    invite = page.locator("#ladder text", has_text=re.compile(r"^INVITE")).first
    expect(invite).to_be_visible(timeout=TIMEOUT)
    shot(page, "web_call.png")
    box = invite.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    raw = page.locator("#raw-message")
    expect(raw).to_contain_text("INVITE sip:ua2@127.0.0.13:5060 SIP/2.0", timeout=TIMEOUT)
    expect(raw).to_contain_text("Call-ID: lab")
    expect(raw.locator(".sdp")).to_contain_text("m=audio")
    # path: the four hosts in order with their roles; one leg
    expect(page.locator("#path-table tbody tr")).to_have_count(4)
    assert page.locator("#path-table tbody td:nth-child(2)").all_inner_texts() == ["UA", "proxy", "proxy", "UA"]
    expect(page.locator("#legs-table tbody tr")).to_have_count(1)
    # the media panel: the two RTP directions, 334 packets each
    media = page.locator("#media-table tr:has(td)")
    expect(media).to_have_count(2)
    assert media.locator("td[data-dash-column='packets']").all_inner_texts() == ["334", "334"]
    expect(page.locator("#media-plots .legendtext")).to_have_count(2)  # jitter/delta/loss over time, per stream
    expect(page.locator("#media-plots .gtitle, #media-plots .annotation-text")).to_contain_text(
        ["jitter ms", "delta ms", "lost (cumulative)"])
    if SHOTS:  # docs/web_call_media.png: the same page scrolled to its media panel
        page.locator("#media-table").scroll_into_view_if_needed()
        shot(page, "web_call_media.png")
        page.evaluate("window.scrollTo(0, 0)")
    # downloads: the ladder as SVG and the call's own pcap
    with page.expect_download(timeout=TIMEOUT) as svg:
        page.click("#export-svg")
    svg_text = Path(svg.value.path()).read_text()
    ElementTree.fromstring(svg_text)  # well-formed
    assert svg.value.suggested_filename.endswith(".svg")
    positions = [svg_text.index(label) for label in ("INVITE", "180 Ringing", "200 OK", "ACK", "BYE")]
    assert positions == sorted(positions)
    page.get_by_label("redacted", exact=False).check()
    expect(page.locator("#export-pcap")).to_have_attribute("href", re.compile(r"/export/pcap\?redact=1$"))
    page.get_by_label("redacted", exact=False).uncheck()
    expect(page.locator("#export-pcap")).to_have_attribute("href", re.compile(r"/export/pcap$"))
    with page.expect_download(timeout=TIMEOUT) as pcap:
        page.click("#export-pcap")
    assert pcap.value.suggested_filename.endswith(".pcap")
    from flowviz.ingest import read_capture

    call = read_capture(pcap.value.path(), use_cache=False)
    assert (len(call.sip_messages), len(call.rtp_packets)) == (21, 668)


def test_a_non_capture_and_an_over_limit_file_are_refused_and_earlier_results_stay(page, base_url_app, tmp_path):
    page.goto(base_url_app)
    page.get_by_role("button", name="busy_486.pcap").click()
    done_row(page, "busy_486.pcap")
    text = tmp_path / "notes.pcap"
    text.write_text("this is not a capture\n")
    upload(page, text, LAB / "cancel.pcap")  # several files at once: one refused, one taken
    status = page.locator("#upload-status")
    expect(status.locator(".error")).to_contain_text("notes.pcap: not a capture file", timeout=TIMEOUT)
    done_row(page, "cancel.pcap")
    big = tmp_path / "big.pcap"
    big.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(5 << 20))
    upload(page, big)
    expect(status.locator(".error", has_text="big.pcap")).to_contain_text("the limit is 4 MiB")
    done_row(page, "busy_486.pcap")  # still there, still analysed
    expect(page.locator("tr[data-capture]")).to_have_count(2)


def test_a_second_browser_context_does_not_see_the_first_ones_captures(browser, base_url_app):
    first = browser.new_context()
    second = browser.new_context()
    try:
        page = first.new_page()
        page.goto(base_url_app)
        page.get_by_role("button", name="cancel.pcap").click()
        row = done_row(page, "cancel.pcap")
        href = row.locator("a").get_attribute("href")
        other = second.new_page()
        other.goto(base_url_app)
        expect(other.locator("#captures-list")).to_contain_text("No captures yet", timeout=TIMEOUT)
        other.goto(base_url_app + href)
        expect(other.locator("#page")).to_contain_text("No such capture in this browser session", timeout=TIMEOUT)
    finally:
        first.close()
        second.close()


def test_the_hundred_call_capture_lists_every_call_and_filters_by_state(page, base_url_app):
    page.goto(base_url_app)
    page.get_by_role("button", name="burst_100.pcap").click()
    done_row(page, "burst_100.pcap").locator("a").click()
    expect(page.locator(".kpi", has_text="calls").first).to_contain_text("100", timeout=TIMEOUT)
    expect(page.locator("#state-filter")).to_contain_text("completed (90)")
    expect(page.locator("#calls-table")).to_contain_text("1 / 4")  # 100 calls, 25 a page
    shot(page, "web_calls.png")
    page.get_by_label("busy (10)").check()
    rows = page.locator("#calls-table tr:has(td)")
    expect(rows).to_have_count(10, timeout=TIMEOUT)
    assert set(rows.locator("td[data-dash-column='state']").all_inner_texts()) == {"busy"}
    assert set(rows.locator("td[data-dash-column='mos']").all_inner_texts()) == {""}  # no media, no MOS
    assert set(rows.locator("td[data-dash-column='problems']").all_inner_texts()) == {"warning: Call rejected"}
    page.get_by_label("all (100)").check()
    expect(page.locator("#calls-table")).to_contain_text("1 / 4")
    code_sort = page.locator("th[data-dash-column='final_status'] .column-header--sort")
    code_sort.click()
    code_sort.click()  # descending: the busy calls first
    expect(rows.first.locator("td[data-dash-column='final_status']")).to_have_text("486")
    page.get_by_role("button", name="Next").or_(page.locator(".next-page")).first.click()
    expect(page.locator("#calls-table")).to_contain_text("2 / 4")
    expect(rows.first.locator("td[data-dash-column='final_status']")).to_have_text("200")  # page 2's data is in
    assert set(rows.locator("td[data-dash-column='final_status']").all_inner_texts()) == {"200"}
    assert all(float(m) > 4 for m in rows.locator("td[data-dash-column='mos']").all_inner_texts())


def tab_to(page, selector: str, limit: int = 40) -> None:
    """Press Tab until the focused element matches `selector` (keyboard-only use)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached with Tab")


def test_the_main_flow_works_with_the_keyboard_alone(page, base_url_app):
    page.goto(base_url_app)
    expect(page.locator("#choose-files")).to_be_visible()
    tab_to(page, "#choose-files")  # reachable; the file picker it opens is driven by the other tests
    tab_to(page, "button.sample[id*='busy_486.pcap']")
    page.keyboard.press("Enter")
    done_row(page, "busy_486.pcap")
    tab_to(page, "tr[data-state='done'] a")
    page.keyboard.press("Enter")
    expect(page.locator("#calls-table a")).to_have_count(1)
    tab_to(page, "#calls-table a")
    page.keyboard.press("Enter")
    expect(page.locator("#fact-state")).to_have_text("busy")
    expect(page.locator("#problems")).to_contain_text("Call rejected")

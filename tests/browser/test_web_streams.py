"""The capture's stream list in a real browser: every RTP stream with its numbers, filters, and a way to its call.

Expected values come from how the captures were made: sample_pcaps/synth/expected.json for
rtp_loss_reorder_jitter.pcap (one stream, 490 of 500 packets, 10 lost, and Wireshark 4.0's max jitter and
delta) and sample_pcaps/lab/expected.json for burst_100.pcap (180 streams of 34 packets, two per answered
call, with their addresses and SSRC).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.test_web_flow import LAB, TIMEOUT, done_row, shot, tab_to, upload

pytestmark = pytest.mark.lab
SYNTH = LAB.parent / "synth"
LOSS = SYNTH / "rtp_loss_reorder_jitter.pcap"
PCMU = 0  # RFC 3551's static payload type of G.711 mu-law


def cell(row, column: str):
    return row.locator(f"td[data-dash-column='{column}']")


def open_streams(page, base_url: str, name: str) -> None:
    done_row(page, name).locator("a").click()
    page.locator("#streams-link").click()
    expect(page).to_have_url(re.compile(r"/capture/[0-9a-f]{16}/streams$"))


def test_a_lossy_stream_shows_its_numbers_and_the_loss_filter_keeps_it(page, base_url_app):
    expected = json.loads((SYNTH / "expected.json").read_text())[LOSS.name]["rtp_streams"][0]
    page.goto(base_url_app)
    upload(page, LOSS)
    open_streams(page, base_url_app, LOSS.name)
    rows = page.locator("#streams-table tr:has(td)")
    expect(rows).to_have_count(1, timeout=TIMEOUT)
    expect(page.locator("#streams-status")).to_have_text("1 stream")
    row = rows.first
    expect(cell(row, "flow")).to_have_text(f"{expected['src']} \u2192 {expected['dst']}")
    expect(cell(row, "ssrc")).to_have_text("0x" + expected["ssrc_hex"][2:].upper())  # as Wireshark writes it
    assert expected["payload_type"] == PCMU
    expect(cell(row, "codec")).to_have_text("PCMU")
    expect(cell(row, "packets")).to_have_text(str(expected["packets"]))
    expect(cell(row, "lost")).to_have_text(str(expected["lost"]))
    lost_pct = 100 * expected["lost"] / expected["expected"]
    expect(cell(row, "lost_pct")).to_have_text(f"{lost_pct:g}")
    expect(cell(row, "max_jitter_ms")).to_have_text(f"{expected['wireshark_4_0']['max_jitter_ms']:.2f}")
    expect(cell(row, "max_delta_ms")).to_have_text(f"{expected['wireshark_4_0']['max_delta_ms']:.2f}")
    expect(cell(row, "sdp_match")).to_have_text("yes")  # the SDP announced its destination
    expect(page.locator("#streams-figure .point")).to_have_count(1)

    loss = page.locator("#stream-loss-above")
    loss.fill(f"{lost_pct - 1:g}")
    loss.press("Enter")
    expect(page.locator("#streams-status")).to_have_text("1 of 1 stream")
    expect(rows).to_have_count(1)
    loss.fill(f"{lost_pct:g}")  # "above" is strict: its own loss is not above itself
    loss.press("Enter")
    expect(page.locator("#streams-status")).to_have_text("0 of 1 stream")
    expect(rows).to_have_count(0)
    loss.fill("lots")
    loss.press("Enter")
    expect(page.locator("#streams-status .error")).to_have_text(
        "Filter not applied: loss % above: 'lots' is not a number (write it like 3.6)")
    loss.fill("")
    loss.press("Enter")
    expect(rows).to_have_count(1)
    page.get_by_label("unbound only").check()
    expect(rows).to_have_count(0)
    page.get_by_label("unbound only").uncheck()
    expect(rows).to_have_count(1)

    cell(row, "call").locator("a").click()
    expect(page).to_have_url(re.compile(r"/capture/[0-9a-f]{16}/call/[0-9a-f]+$"))
    expect(page.locator("#fact-callids")).to_have_text(expected_call_id(LOSS.name), timeout=TIMEOUT)


def expected_call_id(name: str) -> str:
    return json.loads((SYNTH / "expected.json").read_text())[name]["call_ids"][0]


def test_the_hundred_call_capture_lists_its_180_streams_and_a_call_opens_from_its_stream(page, base_url_app):
    burst = json.loads((LAB / "expected.json").read_text())["captures"]["burst_100.pcap"]
    page.goto(base_url_app)
    page.get_by_role("button", name="burst_100.pcap").click()
    done_row(page, "burst_100.pcap").locator("a").click()
    expect(page.locator(".kpi", has_text="RTP streams")).to_contain_text(str(burst["rtp_streams"]), timeout=TIMEOUT)
    tab_to(page, "#streams-link")  # keyboard alone, like the rest of the UI
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/capture/[0-9a-f]{16}/streams$"))
    status = page.locator("#streams-status")
    expect(status).to_have_text(f"{burst['rtp_streams']} streams", timeout=TIMEOUT)
    expect(page.locator("#streams-table")).to_contain_text(f"1 / {-(-burst['rtp_streams'] // 25)}")
    rows = page.locator("#streams-table tr:has(td)")
    expect(rows).to_have_count(25)
    packets = rows.locator("td[data-dash-column='packets']").all_inner_texts()
    assert set(packets) == {str(burst["rtp_packets_per_stream"])}
    assert set(rows.locator("td[data-dash-column='lost']").all_inner_texts()) == {"0"}  # loopback: no loss
    expect(page.locator("#streams-figure .point")).to_have_count(burst["rtp_streams"])
    shot(page, "web_streams.png")

    loss = page.locator("#stream-loss-above")
    loss.fill("0")
    loss.press("Enter")
    expect(status).to_have_text(f"0 of {burst['rtp_streams']} streams")
    loss.fill("")
    loss.press("Enter")
    call_id = "lab-burst-7@127.0.0.10"
    mine = [s for s in burst["rtp"] if s["call_id"] == call_id]
    search = page.locator("#stream-search")
    search.fill(call_id)
    search.press("Enter")
    expect(status).to_have_text(f"{len(mine)} of {burst['rtp_streams']} streams")
    expect(rows).to_have_count(len(mine))
    flows = sorted(rows.locator("td[data-dash-column='flow']").all_inner_texts())
    assert flows == sorted(f"{s['src']} \u2192 {s['dst']}" for s in mine)
    assert set(rows.locator("td[data-dash-column='ssrc']").all_inner_texts()) == {"0x" + s["ssrc"][2:].upper()
                                                                                   for s in mine}
    assert len(set(rows.locator("td[data-dash-column='call']").all_inner_texts())) == 1  # both: the same call

    # keyboard: Tab to the first call link of the table and Enter opens the call page
    tab_to(page, "#streams-table a")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/call/[0-9a-f]+$"))
    expect(page.locator("#fact-callids")).to_have_text(call_id, timeout=TIMEOUT)


def test_a_point_of_the_overview_opens_its_call(page, base_url_app):
    page.goto(base_url_app)
    page.get_by_role("button", name="reference_call.pcap").click()
    open_streams(page, base_url_app, "reference_call.pcap")
    reference = json.loads((LAB / "expected.json").read_text())["captures"]["reference_call.pcap"]
    expect(page.locator("#streams-figure .point")).to_have_count(reference["rtp_streams"], timeout=TIMEOUT)
    box = page.locator("#streams-figure .point").first.bounding_box()  # plotly takes clicks on its drag layer
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page).to_have_url(re.compile(r"/call/[0-9a-f]+$"))
    expect(page.locator("#fact-callids")).to_have_text(reference["call_ids"][0], timeout=TIMEOUT)

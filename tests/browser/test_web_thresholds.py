"""Diagnostics thresholds changed in the browser: the rules run again and the findings follow.

The reference call's SRD is 4.7 ms (INVITE at UA1 -> its 180 Ringing, sample_pcaps/lab: all hosts on
loopback), far under the 5000 ms default, so it has no finding; with srd_ms = 1 the rule sip.long_srd
("Long session request delay") must fire, and go away again at the defaults.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_web_flow import TIMEOUT, done_row

pytestmark = pytest.mark.lab
LONG_SRD = "Long session request delay"


def open_reference_capture(page, base_url):
    page.goto(base_url)
    page.get_by_role("button", name="reference_call.pcap").click()
    done_row(page, "reference_call.pcap").locator("a").click()
    expect(page.locator("#calls-table tr:has(td)")).to_have_count(1, timeout=TIMEOUT)


def problems_cell(page):
    return page.locator("#calls-table tr:has(td) td[data-dash-column='problems']")


def test_a_threshold_changed_in_the_panel_makes_a_finding_appear_and_reset_removes_it(browser, base_url_app):
    context, other = browser.new_context(), browser.new_context()
    try:
        page = context.new_page()
        open_reference_capture(page, base_url_app)
        expect(problems_cell(page)).to_have_text("")
        badge = page.locator("#thresholds-badge")
        expect(badge).to_have_text("defaults")

        page.locator("#thresholds-panel summary").click()
        srd = page.get_by_label("srd_ms")
        expect(srd).to_have_value("5000")
        row = page.locator("#thresholds-panel tbody tr", has=srd)
        expect(row).to_contain_text("ms")
        expect(row).to_contain_text("INVITE to first ringing or answer")
        expect(page.locator("#thresholds-panel tbody tr")).to_have_count(15)  # every Thresholds field

        # bad values: one clear line, nothing applied
        srd.fill("-5")
        page.get_by_label("invite_retransmissions").fill("1.5")
        page.click("#thresholds-apply")
        status = page.locator("#thresholds-status .error")
        expect(status).to_have_text("Thresholds not applied: invite_retransmissions: must be a whole number "
                                    "(got 1.5); srd_ms: must not be negative (got -5)")  # in the panel's order
        expect(badge).to_have_text("defaults")
        page.get_by_label("invite_retransmissions").fill("2")
        srd.fill("abc")
        page.click("#thresholds-apply")
        expect(status).to_contain_text("srd_ms: 'abc' is not a number")

        # a valid value: the rules run again and the call list shows the finding
        srd.fill("1")
        page.click("#thresholds-apply")
        expect(page.locator("#thresholds-status")).to_have_text("Applied: 1 threshold(s) differ from the defaults.")
        expect(badge).to_have_text("1 changed: srd_ms = 1 ms (default 5000 ms)")
        expect(problems_cell(page)).to_have_text(f"warning: {LONG_SRD}", timeout=TIMEOUT)

        # the call page shows it too, and says which thresholds are in effect
        page.locator("#calls-table a").click()
        expect(page).to_have_url(re.compile(r"/call/[0-9a-f]+$"))
        expect(page.locator("#problems")).to_contain_text(LONG_SRD, timeout=TIMEOUT)
        expect(page.locator("#problems")).to_contain_text("The first ringing or answer came")
        expect(page.locator("#thresholds-note")).to_contain_text("srd_ms = 1 ms (default 5000 ms)")

        # another browser session keeps the defaults, on the same capture
        other_page = other.new_page()
        open_reference_capture(other_page, base_url_app)
        expect(other_page.locator("#thresholds-badge")).to_have_text("defaults")
        expect(problems_cell(other_page)).to_have_text("")

        # a reload keeps this session's thresholds; Reset brings the defaults and the finding goes
        page.locator("#thresholds-note a").click()
        expect(badge).to_have_text("1 changed: srd_ms = 1 ms (default 5000 ms)", timeout=TIMEOUT)
        expect(problems_cell(page)).to_have_text(f"warning: {LONG_SRD}", timeout=TIMEOUT)
        page.locator("#thresholds-panel summary").click()
        expect(page.get_by_label("srd_ms")).to_have_value("1")
        page.click("#thresholds-reset")
        expect(badge).to_have_text("defaults")
        expect(page.get_by_label("srd_ms")).to_have_value("5000")
        expect(problems_cell(page)).to_have_text("", timeout=TIMEOUT)
        page.locator("#calls-table a").click()
        expect(page.locator("#problems")).to_contain_text("No problems found", timeout=TIMEOUT)
        expect(page.locator("#thresholds-note")).to_have_count(0)
    finally:
        context.close()
        other.close()

"""The dark theme in a real browser: switched with the header's toggle, remembered, and the browser's
prefers-color-scheme followed when nothing was chosen.

"Dark" is measured, not assumed: the body's computed background must have a low relative luminance (WCAG
2.x), the figures' paper must be the DARK theme's (flowviz/figures/theme.py, read from the figure Plotly
drew), and text on the call page and in the thresholds panel must keep a WCAG contrast of 4.5:1 or more.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from flowviz.figures.theme import DARK, LIGHT
from tests.browser.test_web_flow import TIMEOUT, done_row, shot, tab_to

pytestmark = pytest.mark.lab
DARK_BELOW = 0.05  # relative luminance: #121417 is about 0.007, the light page's #f4f6f8 about 0.92
READABLE = 4.5  # WCAG AA contrast for normal text

# Colour helpers run in the page: the effective background of an element is the first opaque one up its tree.
COLOUR_JS = """
window.flowvizColour = (() => {
  const rgba = text => (text.match(/[\\d.]+/g) || []).map(Number);
  const channel = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  const contrast = el => {
    const a = luminance(rgba(getComputedStyle(el).color)), b = luminance(background(el));
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  };
  return {luminance, background, contrast, bodyLuminance: () => luminance(background(document.body))};
})();
"""


def body_luminance(page) -> float:
    page.evaluate(COLOUR_JS)
    return page.evaluate("flowvizColour.bodyLuminance()")


def contrasts(page, selectors: list[str]) -> dict[str, float]:
    """The lowest text contrast among the visible elements of each selector (each must match one)."""
    page.evaluate(COLOUR_JS)
    found = page.evaluate("""sels => Object.fromEntries(sels.map(s => {
        const seen = [...document.querySelectorAll(s)].filter(e => e.offsetParent !== null);
        return [s, seen.length ? Math.min(...seen.map(flowvizColour.contrast)) : null];
    }))""", selectors)
    assert None not in found.values(), {s: c for s, c in found.items() if c is None}
    return found


def expect_paper(page, graph_id: str, colour: str) -> None:
    """The paper colour of the figure Plotly drew in dcc.Graph `graph_id` becomes `colour`."""
    page.wait_for_function("""([id, colour]) => {
        const gd = document.querySelector('#' + id + ' .js-plotly-plot');
        return gd && gd._fullLayout && gd._fullLayout.paper_bgcolor === colour;
    }""", arg=[graph_id, colour], timeout=TIMEOUT)


def open_reference_call(page, base_url: str) -> None:
    page.goto(base_url)
    page.get_by_role("button", name="reference_call.pcap").click()
    done_row(page, "reference_call.pcap").locator("a").click()
    page.locator("#calls-table a").click()
    expect(page).to_have_url(re.compile(r"/call/[0-9a-f]+$"))
    expect(page.locator("#ladder text", has_text=re.compile(r"^INVITE")).first).to_be_visible(timeout=TIMEOUT)


def test_the_toggle_switches_the_call_page_to_dark_remembers_it_and_switches_back(page, base_url_app):
    open_reference_call(page, base_url_app)
    toggle = page.get_by_role("button", name="Dark theme")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("document.documentElement.classList.contains('dark')") is False
    assert body_luminance(page) > 0.5
    expect_paper(page, "ladder", LIGHT.paper)

    tab_to(page, "#theme-toggle")  # reachable with the keyboard
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert body_luminance(page) < DARK_BELOW
    expect_paper(page, "ladder", DARK.paper)  # the visible figures are drawn again, in the DARK theme
    expect_paper(page, "media-plots", DARK.paper)
    invite = page.locator("#ladder text", has_text=re.compile(r"^INVITE")).first
    box = invite.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#raw-message .sdp")).to_contain_text("m=audio", timeout=TIMEOUT)
    low = {s: c for s, c in contrasts(page, [
        "h1", "h1 .subtitle", "a.back", "dl.facts dt", "dl.facts dd", "a.button", ".hint", "#problems",
        "pre.raw", "pre.raw .sdp", "#messages-table td", "#messages-table th", "#media-table td",
        "#path-table td", "#path-table th", "#theme-toggle", "header.top .brand"]).items() if c < READABLE}
    assert not low, f"text below {READABLE}:1 in dark: {low}"
    page.evaluate("window.scrollTo(0, 0); document.activeElement.blur()")
    page.mouse.move(1340, 740)  # no hover label in the screenshot
    shot(page, "web_call_dark.png")

    # the downloads stay light: they go into tickets and get printed
    svg = page.request.get(base_url_app + page.locator("#export-svg").get_attribute("href")).text()
    assert "rgb(255, 255, 255)" in svg and "rgb(30, 30, 30)" not in svg  # LIGHT / DARK paper as Plotly writes it

    page.reload()  # remembered by this browser: dark from the first paint, figures included
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "true")
    expect_paper(page, "ladder", DARK.paper)
    assert body_luminance(page) < DARK_BELOW

    page.get_by_role("button", name="Dark theme").click()
    expect(page.locator("html")).not_to_have_class(re.compile(r"\bdark\b"))
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "false")
    assert body_luminance(page) > 0.5
    expect_paper(page, "ladder", LIGHT.paper)
    expect_paper(page, "media-plots", LIGHT.paper)


def test_a_browser_that_prefers_dark_starts_dark_until_light_is_chosen(browser, base_url_app):
    context = browser.new_context(color_scheme="dark", viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        page.goto(base_url_app)  # nothing stored in this new context: the browser's preference decides
        expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))
        expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "true")
        assert body_luminance(page) < DARK_BELOW
        page.get_by_role("button", name="reference_call.pcap").click()
        done_row(page, "reference_call.pcap").locator("a").click()
        expect(page.locator("#calls-table tr:has(td)")).to_have_count(1, timeout=TIMEOUT)

        # the call list and its thresholds panel, with an error line, are readable in dark
        page.locator("#thresholds-panel summary").click()
        page.get_by_label("srd_ms").fill("-5")
        page.click("#thresholds-apply")
        expect(page.locator("#thresholds-status .error")).to_contain_text("srd_ms: must not be negative")
        low = {s: c for s, c in contrasts(page, [
            "h1", ".kpi-value", ".kpi-label", "#streams-link", "#thresholds-panel summary", "#thresholds-panel td",
            "#thresholds-panel th", "#thresholds-panel code", "#thresholds-panel input", "#thresholds-status .error",
            "#thresholds-apply", "#thresholds-reset", ".state-filter label", "#call-search", "#calls-table td",
            "#calls-table td a", "#calls-table th"]).items() if c < READABLE}
        assert not low, f"text below {READABLE}:1 in dark: {low}"
        link_colour = "e => getComputedStyle(e).color"  # links in tables look like the page's other links
        assert page.locator("#calls-table td a").evaluate(link_colour) == page.locator("#streams-link").evaluate(
            link_colour)

        # the stream list's overview figure is drawn dark, and again light once light is chosen
        page.locator("#streams-link").click()
        expect(page.locator("#streams-figure .point")).to_have_count(2, timeout=TIMEOUT)
        expect_paper(page, "streams-figure", DARK.paper)
        page.get_by_role("button", name="Dark theme").click()
        expect(page.locator("html")).not_to_have_class(re.compile(r"\bdark\b"))
        expect_paper(page, "streams-figure", LIGHT.paper)
        page.reload()  # the choice now wins over the browser's preference
        expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "false")
        expect_paper(page, "streams-figure", LIGHT.paper)
        assert body_luminance(page) > 0.5
    finally:
        context.close()


def test_a_finding_and_its_severity_badge_are_readable_in_dark(browser, base_url_app):
    context = browser.new_context(color_scheme="dark", viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        page.goto(base_url_app)
        page.get_by_role("button", name="busy_486.pcap").click()  # a 486 Busy Here: "Call rejected", a warning
        done_row(page, "busy_486.pcap").locator("a").click()
        page.locator("#calls-table a").click()
        expect(page.locator("#problems .severity")).to_have_text("warning", timeout=TIMEOUT)
        low = {s: c for s, c in contrasts(page, ["#problems li", "#problems .severity", "#problems b",
                                                 "#problems .hint"]).items() if c < READABLE}
        assert not low, f"text below {READABLE}:1 in dark: {low}"
    finally:
        context.close()

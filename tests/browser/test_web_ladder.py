"""The call page's ladder (docs/web.md, "The ladder"): every message on the page (no inner scroll box), the
column header in view while the page scrolls, the clicked message highlighted with its frame, time and
addresses, a time-proportional view, and a 2,000-message call (tests/kit/long_call.py) paged so that each of
its messages is reachable. Expected values come from tshark on the same files and from the generator."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.kit.long_call import long_call_messages, write_long_call

LAB = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab"
REFERENCE = LAB / "reference_call.pcap"
TIMEOUT = 60_000  # analyses queue behind each other in the shared app: a busy machine needs the time
LABELS = "#ladder g.trace text"  # every text of the figure's traces: the message labels among them

pytestmark = pytest.mark.lab
expect.set_options(timeout=TIMEOUT)


def tshark_sip(path: Path) -> list[dict]:
    if not shutil.which("tshark"):
        pytest.skip("tshark is not installed")
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "sip", "-T", "fields", "-e", "frame.number",
                          "-e", "frame.time_relative", "-e", "ip.src", "-e", "udp.srcport", "-e", "ip.dst",
                          "-e", "udp.dstport", "-e", "sip.Method", "-e", "sip.Status-Code"],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        frame, t, src, sport, dst, dport, method, code = line.split("\t")
        rows.append({"frame": int(frame), "t": float(t), "src": f"{src}:{sport}", "dst": f"{dst}:{dport}",
                     "label": method or code})
    return rows


def open_call(page, base_url: str, path: Path) -> None:
    page.goto(base_url)
    with page.expect_file_chooser() as chooser:
        page.click("#choose-files")
    chooser.value.set_files(str(path))
    row = page.locator("tr[data-state='done']", has=page.locator(".capture-name", has_text=path.name)).first
    expect(row).to_have_count(1)
    row.locator("a").click()
    expect(page.locator("#calls-table a")).to_have_count(1)
    page.locator("#calls-table a").click()
    expect(page.locator("#ladder .main-svg").first).to_be_visible()


def sip_labels(page, expected: list[dict]):
    """The figure's texts that are message labels, in row order (labels start with the method or code)."""
    wanted = {m["label"] for m in expected}
    texts = page.locator(LABELS)
    out = []
    for i, text in enumerate(texts.all_text_contents()):
        word = text.split(" ", 1)[0]
        if word in wanted:
            out.append((i, text))
    return out


def png_height(data: bytes) -> int:
    return struct.unpack(">I", data[20:24])[0]


def test_every_message_of_the_reference_call_is_on_the_page_and_the_header_stays(page, base_url_app):
    expected = tshark_sip(REFERENCE)
    open_call(page, base_url_app, REFERENCE)
    labels = sip_labels(page, expected)
    assert [t.split(" ", 1)[0] for _, t in labels] == [m["label"] for m in expected]
    # no inner scroll box: the ladder's box shows all of its figure, and a full-page screenshot holds the
    # last label
    box = page.locator("#ladder-box")
    assert box.evaluate("e => e.scrollHeight <= e.clientHeight + 1 && getComputedStyle(e).overflowY === 'visible'")
    last = page.locator(LABELS).nth(labels[-1][0])
    bottom = page.evaluate("e => e.getBoundingClientRect().bottom + window.scrollY", last.element_handle())
    shot = page.screenshot(full_page=True)
    assert png_height(shot) >= bottom > 768  # below the first screen, inside the full page
    # the column header names every endpoint tshark saw, and stays at the top while the page scrolls
    head = page.locator("#ladder-head")
    for endpoint in {m["src"] for m in expected} | {m["dst"] for m in expected}:
        expect(head).to_contain_text(endpoint)
    page.evaluate("e => window.scrollTo(0, e.getBoundingClientRect().top + window.scrollY + 400)",
                  box.element_handle())
    top = head.bounding_box()["y"]
    assert -1 <= top <= 1, top
    expect(head).to_be_in_viewport()

    # a click on the first INVITE: highlighted, and its frame, time and addresses above its text
    first = expected[0]
    label = page.locator(LABELS).nth(labels[0][0])
    label.scroll_into_view_if_needed()
    spot = label.bounding_box()
    page.mouse.click(spot["x"] + spot["width"] / 2, spot["y"] + spot["height"] / 2)
    raw = page.locator("#raw-head")
    expect(raw).to_contain_text(f"frame {first['frame']}")
    expect(raw).to_contain_text(f"{first['t']:.3f} s")
    expect(raw).to_contain_text(f"{first['src']} -> {first['dst']}")
    expect(page.locator("#ladder .shapelayer path")).to_have_count(1)
    band = page.locator("#ladder .shapelayer path").bounding_box()
    spot = label.bounding_box()
    assert band["y"] <= spot["y"] + spot["height"] / 2 <= band["y"] + band["height"]


def test_the_time_proportional_view_places_messages_by_their_time(page, base_url_app):
    expected = tshark_sip(REFERENCE)
    open_call(page, base_url_app, REFERENCE)
    texts = page.locator(LABELS)

    def positions():
        ys = texts.evaluate_all("es => es.map(e => e.getBoundingClientRect().top + window.scrollY)")
        return [ys[i] for i, _ in sip_labels(page, expected)]

    second = positions()[1]
    page.get_by_label("time-proportional").check()
    # redrawn: frame 2 (0.5 ms after the first) moves up next to it, as the gap before BYE takes the space
    page.wait_for_function("""y => {
        const t = [...document.querySelectorAll('#ladder g.trace text')].map(e => e.getBoundingClientRect().top
                                                                               + window.scrollY);
        return t.length > 1 && !t.some(v => Math.abs(v - y) < 0.5);
    }""", arg=second)
    ys = positions()
    t0, t1 = expected[0]["t"], expected[-1]["t"]
    for y, m in zip(ys, expected):
        share = (y - ys[0]) / (ys[-1] - ys[0])
        assert share == pytest.approx((m["t"] - t0) / (t1 - t0), abs=0.01), m
    page.get_by_label("evenly spaced").check()
    page.wait_for_function("""() => {
        const t = [...document.querySelectorAll('#ladder g.trace text')].map(e => e.getBoundingClientRect().top);
        const s = t.slice().sort((a, b) => a - b);
        return s.length > 3 && Math.abs((s[2] - s[1]) - (s[3] - s[2])) < 2;
    }""")


def test_a_two_thousand_message_call_opens_with_every_message_reachable(page, base_url_app, tmp_path):
    path = tmp_path / "long_call.pcap"
    n = write_long_call(path)
    built = long_call_messages(997)
    assert n == len(built) == 2000
    open_call(page, base_url_app, path)
    pager = page.locator("#ladder-range")
    expect(pager).to_have_text("rows 1-200 of 2,000")
    seen = []
    for k in range(10):
        if k:
            page.locator("#ladder-next").click()
            expect(pager).to_have_text(f"rows {k * 200 + 1:,}-{(k + 1) * 200:,} of 2,000")
        times = page.locator("#ladder g.trace text", has_text=re.compile(r"^\d+\.\d{3} s")).all_text_contents()
        assert len(times) == 200
        seen += [float(t.split(" ")[0]) for t in times]
    expect(page.locator("#ladder-next")).to_be_disabled()
    # every message, in order, at its built time (ms written to the ladder with 3 decimals in s)
    assert seen == [round(t_ms / 1e3, 3) for t_ms, *_ in built]
    # the message table pages too, and the search finds a message deep in the call
    expect(page.locator("#messages-table")).to_contain_text("1 / 10")
    page.locator("#message-search").fill("X-Step: 996")
    page.locator("#message-search").press("Enter")
    expect(page.locator("#messages-table tr:has(td)")).to_have_count(1)
    expect(page.locator("#messages-table td[data-dash-column='label']")).to_have_text("INFO")

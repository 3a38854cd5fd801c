"""Damaged and empty captures explained on the page (docs/web.md, "When a capture is damaged or empty").

The captures are built here: the reference call cut two thirds in (in the middle of a record), a pcap of
UDP packets that carry no SIP (dpkt), and a pcap with its header only. The pages must say what happened
and what to try, in words a browser user can act on: no server path, no command-line option.
"""

from __future__ import annotations

import socket
from pathlib import Path

import dpkt
import pytest
from playwright.sync_api import expect

LAB = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab"
TIMEOUT = 60_000  # analyses queue behind each other in the shared app: a busy machine needs the time

pytestmark = pytest.mark.lab
expect.set_options(timeout=TIMEOUT)


def cut_reference(folder: Path) -> tuple[Path, int]:
    """The reference call cut in the middle of a record; returns the file and how many whole records it holds
    (counted with dpkt on the uncut file: records whose end is before the cut)."""
    data = (LAB / "reference_call.pcap").read_bytes()
    cut_at = len(data) * 2 // 3
    whole, offset = 0, 24
    with open(LAB / "reference_call.pcap", "rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            offset += 16 + len(buf)
            if offset > cut_at:
                break
            whole += 1
    assert offset > cut_at  # the cut falls inside a record
    path = folder / "cut_call.pcap"
    path.write_bytes(data[:cut_at])
    return path, whole


def udp_without_sip(folder: Path, count: int = 20) -> Path:
    path = folder / "no_sip.pcap"
    with open(path, "wb") as f:
        writer = dpkt.pcap.Writer(f)
        for i in range(count):
            udp = dpkt.udp.UDP(sport=40000 + i, dport=9999, data=b"telemetry %d" % i)
            udp.ulen = len(udp)
            ip = dpkt.ip.IP(src=socket.inet_aton("10.1.0.1"), dst=socket.inet_aton("10.1.0.2"), p=17, data=udp)
            ip.len = len(ip)
            writer.writepkt(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip), ts=1_700_000_000 + i)
    return path


def header_only(folder: Path) -> Path:
    path = folder / "empty.pcap"
    with open(path, "wb") as f:
        dpkt.pcap.Writer(f)
    return path


def upload(page, path: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.click("#choose-files")
    chooser.value.set_files(str(path))


def done_row(page, name: str):
    row = page.locator("tr[data-state='done']", has=page.locator(".capture-name", has_text=name))
    expect(row).to_have_count(1)
    return row


def no_server_words(text: str, app) -> None:
    store = app.flowviz["store"]
    assert str(store.root) not in text and "/tmp" not in text and "sessions/" not in text
    assert "--" not in text, text  # no command-line option


def test_a_cut_capture_shows_its_cut_warning(page, base_url_app, web_app, tmp_path):
    path, whole = cut_reference(tmp_path)
    page.goto(base_url_app)
    upload(page, path)
    row = done_row(page, "cut_call.pcap")
    expect(row).to_contain_text("analysed: Capture damaged or cut")
    row.locator("a").click()
    notice = page.locator("#capture-notices li[data-kind='cut']")
    expect(notice).to_contain_text("Capture damaged or cut")
    expect(notice).to_contain_text(f"the file is cut in the middle of record {whole + 1}")
    expect(notice).to_contain_text(f"{whole} packets before it were read")
    expect(notice).to_contain_text("Upload an uncut copy")
    no_server_words(page.locator("#capture-notices").inner_text(), web_app)
    expect(page.locator("#calls-table tr:has(td)")).to_have_count(1)  # what was before the cut is analysed


def test_a_capture_without_sip_says_why_and_what_to_try(page, base_url_app, web_app, tmp_path):
    page.goto(base_url_app)
    upload(page, udp_without_sip(tmp_path))
    row = done_row(page, "no_sip.pcap")
    expect(row).to_contain_text("analysed: No SIP found")
    expect(row.locator("td").nth(3)).to_have_text("0")
    row.locator("a").click()
    notice = page.locator("#capture-notices li[data-kind='no-sip']")
    expect(notice).to_contain_text("No SIP message was found in the 20 packets")
    expect(notice).to_contain_text("extra SIP ports")
    no_server_words(page.locator("#capture-notices").inner_text(), web_app)
    # what it points at is on the upload form, and is used: the page says which ports were read as SIP
    page.goto(base_url_app)
    page.fill("#sip-ports", "5080, 9999")
    upload(page, udp_without_sip(tmp_path, 5))
    expect(page.locator("tr[data-state='done']")).to_have_count(2)
    page.locator("tr[data-state='done'] a").first.click()
    expect(page.locator("#capture-notices")).to_contain_text("Analysed with SIP on ports 5060, 5061 and 5080, 9999")
    page.goto(base_url_app)
    page.fill("#sip-ports", "70000")
    upload(page, udp_without_sip(tmp_path, 3))
    expect(page.locator("#upload-status .error")).to_contain_text("70000' is not a port number")


def test_a_capture_with_no_packet_says_so(page, base_url_app, web_app, tmp_path):
    page.goto(base_url_app)
    upload(page, header_only(tmp_path))
    row = done_row(page, "empty.pcap")
    expect(row).to_contain_text("analysed: No packets")
    row.locator("a").click()
    expect(page.locator("#capture-notices li[data-kind='empty']")).to_contain_text("holds no packet at all")


def test_library_messages_lose_server_paths_and_command_options(tmp_path):
    """Real messages of the library on damaged files stored where the web app stores them: what the pages
    show of them names no server path and no command-line option."""
    from flowviz.analyze import Analysis
    from flowviz.errors import FlowvizError
    from flowviz.settings import Settings
    from flowviz.web.notices import capture_notices, for_browser

    folder = tmp_path / "data dir" / "sessions" / ("A" * 32) / "0123456789abcdef"
    folder.mkdir(parents=True)
    data = (LAB / "reference_call.pcap").read_bytes()
    big_record = bytearray(data[:24 + 16])
    big_record[24 + 8:24 + 12] = (10 << 20).to_bytes(4, "little")  # incl_len 10 MiB > the record limit
    cases = {"cut": data[: len(data) // 2 + 5], "record": bytes(big_record) + data[40:2000]}
    texts = []
    for name, content in cases.items():
        path = folder / "capture"
        path.write_bytes(content)
        try:
            texts += Analysis(path, Settings(max_record_bytes=1 << 20)).warnings
        except FlowvizError as exc:
            texts.append(exc.message)
    assert any(str(folder) in t for t in texts) and any("--limit" in t for t in texts)  # the library's words
    for text in texts:
        shown = for_browser(text)
        assert str(tmp_path) not in shown and "sessions" not in shown and "--" not in shown, shown
    notices = capture_notices({"info": {"warnings": texts, "packets": 10}, "calls": []})
    assert notices and all("--" not in n["text"] + n["advice"] and "/" + "tmp" not in n["text"] for n in notices)

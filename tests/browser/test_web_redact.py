"""Redacted PNG and PDF downloads of a call page: drawn from a redacted ladder, like `flowviz ladder --redact`.

The reference call's hosts are 127.0.0.10-13 and its users ua1/ua2 (sample_pcaps/lab/expected.json). The
PDF's text is read back with pdftotext (poppler-utils): the plain download must show those addresses (so
the check can see them at all), the redacted one none of them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.test_web_flow import TIMEOUT, done_row

pytestmark = pytest.mark.lab
HOSTS = ("127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13")


def pdf_text(path: str) -> str:
    return subprocess.run(["pdftotext", "-layout", path, "-"], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def download(page, selector: str):
    with page.expect_download(timeout=TIMEOUT) as item:
        page.click(selector)
    return item.value


def test_redacted_png_and_pdf_of_a_call_are_images_without_its_addresses(page, base_url_app):
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    page.goto(base_url_app)
    page.get_by_role("button", name="reference_call.pcap").click()
    done_row(page, "reference_call.pcap").locator("a").click()
    page.locator("#calls-table a").click()
    expect(page.locator("#fact-state")).to_have_text("completed", timeout=TIMEOUT)

    plain = pdf_text(download(page, "#export-pdf").path())
    assert all(host in plain for host in HOSTS), plain  # pdftotext sees the ladder's text

    page.get_by_label("redacted", exact=False).check()
    expect(page.locator("#export-pdf")).to_have_attribute("href", re.compile(r"/export/pdf\?redact=1$"))
    png = download(page, "#export-png")
    assert png.suggested_filename.endswith("-redacted.png")
    data = Path(png.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    pdf = download(page, "#export-pdf")
    assert pdf.suggested_filename.endswith("-redacted.pdf")
    assert Path(pdf.path()).read_bytes()[:5] == b"%PDF-"
    text = pdf_text(pdf.path())
    assert "INVITE" in text and "200 OK" in text  # still the call's ladder...
    assert not [word for word in (*HOSTS, "ua1", "ua2", "127.0.0.") if word in text], text  # ...under pseudonyms
    assert "10.0.0." in text  # the pseudonym hosts (same length as 127.0.0.1x)

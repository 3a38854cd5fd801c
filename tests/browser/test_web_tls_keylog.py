"""SIP over TLS in the browser: the lab TLS call (sample_pcaps/transports/tls, made by lab/make_tls_capture.sh:
UA1 over TLS to kamailio P1, then UDP to the sipp UAS) uploaded with its key log is one complete call through
three hosts; without the key log the page says the keys are missing and how to give them. A file that is
not a key log is refused with a reason. Expected values: the capture's README and tshark with the same keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import run_tshark

TLS = Path(__file__).resolve().parents[2] / "sample_pcaps" / "transports" / "tls"
CAPTURE, KEYS = TLS / "sip_tls_call.pcap", TLS / "sip_tls_call.keys"
TIMEOUT = 30_000

pytestmark = pytest.mark.usefixtures("tshark")
expect.set_options(timeout=TIMEOUT)


def choose_keylog(page, path: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.click("#choose-keylog")
    chooser.value.set_files([str(path)])
    expect(page.locator("#keylog-name")).to_contain_text(path.name)


def upload(page, base_url_app, keylog: Path | None):
    page.goto(base_url_app)
    if keylog is not None:
        choose_keylog(page, keylog)
    with page.expect_file_chooser() as chooser:
        page.click("#choose-files")
    chooser.value.set_files([str(CAPTURE)])
    row = page.locator("tr[data-state='done']", has=page.locator(".capture-name", has_text=CAPTURE.name)).last
    expect(row).to_have_count(1)
    row.locator("a").click()


def test_with_its_key_log_the_tls_call_is_complete(page, base_url_app):
    decrypted = run_tshark("-r", str(CAPTURE), "-o", f"tls.keylog_file:{KEYS}", "-Y", "sip", "-T", "fields",
                           "-e", "frame.number").split()
    upload(page, base_url_app, KEYS)
    rows = page.locator("#calls-table tr:has(td)")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("completed")
    rows.first.locator("a").click()
    expect(page.locator("#messages-table tr:has(td)")).to_have_count(len(decrypted))


def test_without_keys_the_page_says_what_is_missing(page, base_url_app):
    upload(page, base_url_app, None)
    notices = page.locator("#capture-notices")
    expect(notices).to_contain_text("TLS key log")
    assert "--tls-keylog" not in notices.inner_text()


def test_a_file_that_is_not_a_key_log_is_refused(page, base_url_app, tmp_path):
    wrong = tmp_path / "notes.txt"
    wrong.write_text("these are not keys\n")
    page.goto(base_url_app)
    choose_keylog(page, wrong)
    with page.expect_file_chooser() as chooser:
        page.click("#choose-files")
    chooser.value.set_files([str(CAPTURE)])
    expect(page.locator("#upload-status")).to_contain_text("not a TLS key log")

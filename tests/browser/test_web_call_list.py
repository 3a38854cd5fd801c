"""The call list's Call-ID and date-time columns, its method and final-response filters, and the call page's
search over the messages (docs/web.md). The capture is built here (tests/kit/long_call.mixed_methods): an
INVITE answered 486, a REGISTER answered 200 and an OPTIONS answered 404, at known times."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests.kit.long_call import mixed_methods_messages, write_mixed_methods
from tests.kit.sip_ladders import T0_NS

TIMEOUT = 60_000  # analyses queue behind each other in the shared app: a busy machine needs the time

pytestmark = pytest.mark.lab
expect.set_options(timeout=TIMEOUT)


def upload(page, path) -> None:
    with page.expect_file_chooser() as chooser:
        page.click("#choose-files")
    chooser.value.set_files(str(path))


def pick(page, dropdown: str, label: str) -> None:
    page.locator(f"#{dropdown}").click()
    page.get_by_role("option", name=label).click()


def test_call_ids_dates_and_the_method_and_response_filters(page, base_url_app, tmp_path):
    path = tmp_path / "mixed_methods.pcap"
    write_mixed_methods(path)
    ladder = mixed_methods_messages()
    # each dialog starts with its request: (method, Call-ID, its time as the page writes it, UTC)
    starts = {}
    for t_ms, _, _, text in ladder:
        if not text.startswith("SIP/2.0"):
            method = text.split(" ", 1)[0]
            if method != "ACK":
                call_id = next(h for h in text.split("\r\n") if h.startswith("Call-ID:")).split(" ", 1)[1]
                when = dt.datetime.fromtimestamp(T0_NS / 1e9 + t_ms / 1e3, dt.timezone.utc)
                starts[method] = (call_id, when.strftime("%Y-%m-%d %H:%M:%S.%f")[:23])
    page.goto(base_url_app)
    upload(page, path)
    row = page.locator("tr[data-state='done']", has=page.locator(".capture-name", has_text="mixed_methods.pcap"))
    expect(row).to_have_count(1)
    row.locator("a").click()
    rows = page.locator("#calls-table tr:has(td)")
    expect(rows).to_have_count(3)

    def shown():
        return sorted(zip(rows.locator("td[data-dash-column='method']").all_inner_texts(),
                          rows.locator("td[data-dash-column='call_id']").all_inner_texts(),
                          rows.locator("td[data-dash-column='start']").all_inner_texts()))

    assert shown() == sorted((m, *v) for m, v in starts.items())
    pick(page, "method-filter", "REGISTER (1)")
    expect(rows).to_have_count(1)
    assert shown() == [("REGISTER", *starts["REGISTER"])]
    pick(page, "method-filter", "any")
    expect(rows).to_have_count(3)
    pick(page, "code-filter", "404 (1)")
    expect(rows).to_have_count(1)
    assert shown() == [("OPTIONS", *starts["OPTIONS"])]
    pick(page, "code-filter", "486 (1)")
    expect(rows.locator("td[data-dash-column='final_status']")).to_have_text(["486"])
    pick(page, "method-filter", "OPTIONS (1)")  # both filters at once: nothing is an OPTIONS answered 486
    expect(rows).to_have_count(0)
    pick(page, "method-filter", "INVITE (1)")
    expect(rows).to_have_count(1)

    # the INVITE's call page: search its messages' text
    rows.first.locator("a").click()
    messages = page.locator("#messages-table tr:has(td)")
    expect(messages).to_have_count(3)
    search = page.locator("#message-search")
    search.fill("busy here")  # case ignored: only the 486 response says it
    search.press("Enter")
    expect(messages).to_have_count(1)
    expect(messages.first.locator("td[data-dash-column='label']")).to_have_text("486 Busy Here")
    expect(page.locator("#message-search-status")).to_have_text('1 of 3 messages hold "busy here"')
    search.fill("z9hG4bK-m1")  # the INVITE's Via branch: in the INVITE, the response and the ACK
    search.press("Enter")
    expect(messages).to_have_count(3)
    search.fill("no such text")
    search.press("Enter")
    expect(messages).to_have_count(0)
    search.fill("")
    search.press("Enter")
    expect(messages).to_have_count(3)

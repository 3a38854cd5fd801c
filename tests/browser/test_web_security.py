"""Cross-site safety of the web app in a real browser (docs/web.md, "Security").

An attack page is served by a second HTTP server on another port of 127.0.0.1 (another origin, same site:
the browser sends the app's SameSite=Lax cookie with its requests). It tries what issue 18 found working: form
POSTs to delete and cancel, a no-cors fetch upload, and replays of the Dash callbacks (delete, thresholds)
recorded from the user's own page, which work when the page sends them (checked first, so the replays are
known to be real requests). Afterwards the user's captures, running analysis, thresholds and cookie are as
they were.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

LAB = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab"
TCP_SIP = LAB.parent / "synth" / "sip_tcp_coalesced_split.pcap"  # SIP over TCP: only tshark decodes it
TIMEOUT = 60_000  # analyses queue behind each other in the shared app: a busy machine needs the time
HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "SAMEORIGIN", "referrer-policy": "same-origin"}

pytestmark = pytest.mark.lab
expect.set_options(timeout=TIMEOUT)


def serve(app) -> tuple[str, object]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


class AttackSite:
    """Pages of another origin: path -> HTML, set by the test."""

    def __init__(self):
        pages: dict[str, str] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path, "not here").encode()
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.pages = pages
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def slow_app(tmp_path, monkeypatch):
    """An app whose tshark never answers: a SIP-over-TCP capture stays 'running' until cancelled (UDP lab
    captures are read without tshark and finish)."""
    from flowviz.settings import Settings
    from flowviz.web import create_app

    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path / "cache"))  # no decode cache hit for the TCP capture
    slow = tmp_path / "slow-tshark"
    slow.write_text("#!/bin/sh\nexec sleep 120\n")
    slow.chmod(0o755)
    app = create_app(tmp_path / "data", settings=Settings(tshark_path=str(slow)), max_upload_bytes=4 << 20)
    app.answers = []  # what the server answered to each POST (seen from the server, whatever the browser shows)

    @app.server.after_request
    def note(response):
        from flask import request

        if request.method == "POST":
            app.answers.append((request.path, response.status_code, "Set-Cookie" in response.headers))
        return response

    base, server = serve(app.server)
    yield app, base
    server.shutdown()
    app.flowviz["analyzer"].shutdown()


@pytest.fixture()
def attacker():
    site = AttackSite()
    yield site
    site.close()


def done_row(page, name: str):
    row = page.locator("tr[data-state='done']", has=page.locator(".capture-name", has_text=name))
    expect(row).to_have_count(1)
    return row


def record_callback(page, action) -> str:
    """The body of the Dash callback request the page sends when `action` runs."""
    with page.expect_request(lambda r: "/_dash-update-component" in r.url and r.method == "POST") as req:
        action()
    return req.value.post_data


def sid_of(app, context) -> str:
    from flowviz.web.routes import COOKIE

    cookie = next(c["value"] for c in context.cookies() if c["name"] == COOKIE)
    return app.server.extensions["flowviz_sessions"].sid(cookie)


def test_another_origin_cannot_upload_delete_cancel_or_change_thresholds(browser, slow_app, attacker):
    app, base = slow_app
    store = app.flowviz["store"]
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(base)
        page.get_by_role("button", name="busy_486.pcap").click()
        keep = done_row(page, "busy_486.pcap").get_attribute("data-capture")
        page.get_by_role("button", name="cancel.pcap").click()
        throwaway = done_row(page, "cancel.pcap").get_attribute("data-capture")
        with page.expect_file_chooser() as chooser:
            page.click("#choose-files")
        chooser.value.set_files(str(TCP_SIP))
        running = page.locator("tr[data-state='running']")
        expect(running).to_have_count(1)
        busy = running.get_attribute("data-capture")

        # The user's own page: a delete and a thresholds change through Dash callbacks work (recorded to replay)
        delete_body = record_callback(page, lambda: page.locator(f"tr[data-capture='{throwaway}'] button",
                                                                 has_text="delete").click())
        expect(page.locator("#sample-status")).to_have_text("Capture deleted.")
        expect(page.locator(f"tr[data-capture='{throwaway}']")).to_have_count(0)
        sid = sid_of(app, context)
        page.locator(f"tr[data-capture='{keep}'] a").click()
        page.locator("#thresholds-panel summary").click()
        page.locator("input[name='srd_ms']").fill("1")
        thresholds_body = record_callback(page, lambda: page.get_by_role("button", name="Apply").click())
        expect(page.locator("#thresholds-status")).to_contain_text("Applied: 1 threshold")
        assert store.thresholds(sid) == {"srd_ms": 1.0}
        page.get_by_role("button", name="Reset to defaults").click()
        expect(page.locator("#thresholds-status")).to_have_text("Defaults in effect.")
        assert store.thresholds(sid) == {}
        cookies_before = sorted((c["name"], c["value"]) for c in context.cookies())
        before = {c["id"]: c["state"] for c in store.captures(sid)}
        assert before == {keep: "done", busy: "running"}

        replay_delete = delete_body.replace(throwaway, keep)
        replay_thresholds = thresholds_body
        assert keep in replay_delete and '"1"' in replay_thresholds
        attacker.pages["/attack"] = f"""<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe><iframe name="sink3"></iframe>
<form id="del" method="post" action="{base}/api/capture/{keep}/delete" target="sink1"></form>
<form id="cancel" method="post" action="{base}/api/capture/{busy}/cancel" target="sink2"></form>
<form id="sample" method="post" action="{base}/api/sample/burst_100.pcap" target="sink3"></form>
<script>
async function attack() {{
  document.getElementById("del").submit();
  await new Promise(r => setTimeout(r, 300));
  document.getElementById("cancel").submit();
  await new Promise(r => setTimeout(r, 300));
  document.getElementById("sample").submit();
  const form = new FormData();
  form.append("file", new Blob([new Uint8Array([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0])]), "planted.pcap");
  // each answer is opaque here, or a network error (the app's Cross-Origin-Resource-Policy): sent either way
  await fetch("{base}/api/upload", {{method: "POST", mode: "no-cors", credentials: "include", body: form}})
    .catch(() => null);
  const dash = "{base}/_dash-update-component";
  for (const body of [{json.dumps(replay_delete)}, {json.dumps(replay_thresholds)}]) {{
    await fetch(dash, {{method: "POST", mode: "no-cors", credentials: "include",
                        headers: {{"Content-Type": "text/plain"}}, body: body}}).catch(() => null);
  }}
  document.title = "attack sent";
}}
attack();
</script></body></html>"""
        evil = context.new_page()
        page.close()  # the user's page polls: only the attack's requests reach the server now
        app.answers.clear()  # after the close: a poll answered meanwhile is not counted as the attack's
        evil.goto(attacker.url + "/attack")
        expect(evil).to_have_title("attack sent")
        end = time.monotonic() + 10
        while len(app.answers) < 6 and time.monotonic() < end:  # the forms' answers arrive in their iframes
            evil.wait_for_timeout(100)
        # each request reached the app and was refused: 403, no cookie set
        assert sorted(app.answers) == sorted(
            (path, 403, False) for path in [f"/api/capture/{keep}/delete", f"/api/capture/{busy}/cancel",
                                            "/api/sample/burst_100.pcap", "/api/upload", "/_dash-update-component",
                                            "/_dash-update-component"])
        page = context.new_page()

        assert {c["id"]: c["state"] for c in store.captures(sid)} == before  # nothing deleted, cancelled, planted
        assert store.thresholds(sid) == {}
        assert sorted((c["name"], c["value"]) for c in context.cookies()) == cookies_before
        page.goto(base)
        expect(page.locator("tr[data-capture]")).to_have_count(2)
        done_row(page, "busy_486.pcap")

        # the same request from the user's own page works: the check refuses other origins, not the user
        # (assets/csrf.js adds the page's token to the page's fetch)
        status = page.evaluate("cid => fetch(`/api/capture/${cid}/cancel`, {method: 'POST'}).then(r => r.status)",
                               busy)
        assert status == 200 and store.meta(store.capture_dir(sid, busy))["state"] == "cancelled"
    finally:
        context.close()


def test_another_session_gets_not_found_never_a_false_success(browser, slow_app):
    """A second browser (its own session and its own valid token) replays the first one's delete callback:
    the answer says there is no such capture, and the capture stays."""
    app, base = slow_app
    store = app.flowviz["store"]
    first, second = browser.new_context(), browser.new_context()
    try:
        page = first.new_page()
        page.goto(base)
        page.get_by_role("button", name="busy_486.pcap").click()
        keep = done_row(page, "busy_486.pcap").get_attribute("data-capture")
        page.get_by_role("button", name="cancel.pcap").click()
        throwaway = done_row(page, "cancel.pcap").get_attribute("data-capture")
        body = record_callback(page, lambda: page.locator(f"tr[data-capture='{throwaway}'] button",
                                                          has_text="delete").click())
        expect(page.locator(f"tr[data-capture='{throwaway}']")).to_have_count(0)

        other = second.new_page()
        other.goto(base)
        answer = other.evaluate("""async body => {
            const r = await fetch("/_dash-update-component", {method: "POST", body: body,
                                  headers: {"Content-Type": "application/json"}});
            return [r.status, await r.text()];
        }""", body.replace(throwaway, keep))
        assert answer[0] == 200
        assert "No such capture" in answer[1] and "Capture deleted" not in answer[1]
        other.goto(f"{base}/capture/{keep}")
        expect(other.locator("#page")).to_contain_text("No such capture in this browser session")
        assert other.request.post(f"{base}/api/capture/{keep}/delete").status == 403  # no token: refused
        assert [c["id"] for c in store.captures(sid_of(app, first))] == [keep]
    finally:
        first.close()
        second.close()


def test_a_forged_or_unknown_cookie_gets_a_fresh_session(browser, slow_app):
    app, base = slow_app
    store = app.flowviz["store"]
    first = browser.new_context()
    try:
        page = first.new_page()
        page.goto(base)
        page.get_by_role("button", name="busy_486.pcap").click()
        done_row(page, "busy_486.pcap")
        sid = sid_of(app, first)
        assert store.captures(sid)
        for forged in (sid, sid + ".forgedsignature", "A" * 32):  # the bare id (accepted before), a made-up one
            context = browser.new_context()
            try:
                context.add_cookies([{"name": "flowviz_session", "value": forged, "url": base}])
                other = context.new_page()
                response = other.goto(base)
                assert "set-cookie" in response.all_headers()
                expect(other.locator("#captures-list")).to_contain_text("No captures yet")
                fresh = sid_of(app, context)
                assert fresh and fresh != sid and store.captures(fresh) == []
            finally:
                context.close()
        assert store.captures(sid)  # the real session is untouched
    finally:
        first.close()


def test_every_response_carries_the_security_headers_and_the_pages_obey_the_csp(page, base_url_app, attacker):
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: violations.append(str(e)))
    page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation', "
                         "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
    responses = []
    page.on("response", lambda r: responses.append(r) if r.url.startswith(base_url_app) else None)
    page.goto(base_url_app)
    page.get_by_role("button", name="reference_call.pcap").click()
    done_row(page, "reference_call.pcap").locator("a").click()
    page.locator("#calls-table a").first.click()
    expect(page.locator("#ladder .main-svg").first).to_be_visible()
    page.click("#theme-toggle")  # redraws the figures (a callback, plotly again)
    expect(page.locator("html.dark")).to_have_count(1)
    page.locator("#streams-link, .back").first.click()
    page.goto(base_url_app + "/capture/0000000000000000")
    expect(page.locator("#page")).to_contain_text("No such capture")
    assert page.evaluate("window.__csp") == [] and violations == []
    kinds = {r.request.resource_type for r in responses}
    assert {"document", "script", "stylesheet", "fetch"} <= kinds
    for r in responses:
        headers = r.all_headers()
        for name, value in HEADERS.items():
            assert headers.get(name) == value, (r.url, name)
        csp = headers.get("content-security-policy", "")
        assert "frame-ancestors 'self'" in csp and "default-src 'self'" in csp and "unsafe-eval" not in csp
        assert re.search(r"script-src 'self' ('sha256-[A-Za-z0-9+/=]+' ?)+;", csp), csp
    # framed by another origin: the browser shows nothing of the app
    attacker.pages["/frame"] = f'<!doctype html><iframe id="app" src="{base_url_app}/"></iframe>'
    page.goto(attacker.url + "/frame")
    time.sleep(1)
    frame = page.frame_locator("#app")
    expect(frame.locator("#page")).to_have_count(0)

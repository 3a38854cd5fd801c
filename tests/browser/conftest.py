"""Browser tests: the real web app on 127.0.0.1 (temporary data dir) driven by pytest-playwright and the
system Chromium."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

CHROMIUM = "/usr/bin/chromium"
MAX_UPLOAD = 4 << 20  # small, so the over-limit test stays quick; the lab's biggest capture is 2.95 MB


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not os.path.exists(CHROMIUM):
        pytest.skip("no system Chromium at /usr/bin/chromium")
    return {"executable_path": CHROMIUM, "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                                  "--disable-component-update", "--disable-sync", "--no-first-run",
                                                  # the call page's player is started by the test, not a click
                                                  "--autoplay-policy=no-user-gesture-required"]}


@pytest.fixture(scope="package")
def browser_context_args():
    return {"viewport": {"width": 1366, "height": 768}}


@pytest.fixture(scope="session")
def web_app(tmp_path_factory):
    if not shutil.which("tshark"):
        pytest.skip("tshark is not installed")
    from flowviz.web import create_app

    return create_app(tmp_path_factory.mktemp("web-data"), max_upload_bytes=MAX_UPLOAD)


@pytest.fixture(scope="session")
def base_url_app(web_app):
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, web_app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    web_app.flowviz["analyzer"].shutdown()


# pytest-playwright keeps one Playwright (and its event loop) for the whole session, which breaks later
# tests that start their own sync_playwright() (tests/integration/test_ladder_exports.py). Scoped to this
# package instead, Playwright is stopped once these tests are done.
@pytest.fixture(scope="package")
def playwright(_pw_api_request_contexts):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    if _pw_api_request_contexts:
        _pw_api_request_contexts.instrument(pw)
    yield pw
    pw.stop()


@pytest.fixture(scope="package")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args, browser_type):
    def launch(**kwargs):
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser):
    browser = launch_browser()
    yield browser
    browser.close()

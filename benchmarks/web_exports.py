#!/usr/bin/env python3
"""The web app under load: N concurrent PNG downloads of one call, and how long call pages take to open.

    .venv/bin/python benchmarks/web_exports.py [--exports 50] [--renderers 1,2] [--pages]

Serves the real app (werkzeug, threaded, 127.0.0.1, a temporary data dir), adds sample_pcaps/lab/
reference_call.pcap the way the page does (GET / for the cookie and token, then POST /api/upload with the
Origin and X-CSRF-Token headers), waits for its analysis, draws one PNG per renderer untimed (the renderers start
their Chromium), then sends --exports GET /capture/<id>/call/<call>/export/png requests at once from as many
threads and reports each request's wall time: p50, p95, max and the whole batch. --renderers runs the batch
once per pool size (FLOWVIZ_RENDERERS; 1 = the one-at-a-time drawing before the pool), each in a new app.
The memory of each renderer (its process and its Chromium's, PSS) is read from /proc after each batch.

--pages also opens call pages in Chromium (Playwright): the reference call and a 2,000-message call built by
tests/kit/long_call.py, each three times; the time is from navigation to the ladder's labels drawn. The first
open includes the call's analysis read back from the decode cache. --capture BIG.pcap (e.g. one made by
benchmarks/make_capture.py --packets 1000000) adds that capture's first, middle and last call pages.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCE = ROOT / "sample_pcaps" / "lab" / "reference_call.pcap"


def serve(renderers: int):
    import logging

    from werkzeug.serving import make_server

    os.environ["FLOWVIZ_RENDERERS"] = str(renderers)
    os.environ["FLOWVIZ_RENDER_MEMORY_MB"] = str(10 ** 6)  # the pool size is the option here
    from flowviz.web import create_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(tempfile.mkdtemp(prefix="flowviz-bench-"))
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return app, server, f"http://127.0.0.1:{server.server_port}"


class Browser:
    """What the page does, with urllib: the session cookie, the token, the Origin."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = self.opener.open(base + "/").read().decode()
        found = re.search(r'name="flowviz-csrf" content="([0-9a-f]+)"', page)
        self.token = found.group(1) if found else ""  # versions before the token (benchmarking them too)

    def upload(self, path: Path) -> str:
        boundary = "flowvizbench"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + \
            f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(self.base + "/api/upload", data=body, method="POST", headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}", "Origin": self.base,
            "X-CSRF-Token": self.token})
        import json

        return json.loads(self.opener.open(request).read())["added"][0]

    def get(self, path: str) -> bytes:
        return self.opener.open(self.base + path, timeout=600).read()


def wait_done(app, timeout: float = 300) -> dict:
    store = app.flowviz["store"]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for sid_dir in (store.root / "sessions").iterdir():
            for capture in store.captures(sid_dir.name):
                if capture["state"] == "done":
                    return store.result(store.capture_dir(sid_dir.name, capture["id"]))
                if capture["state"] == "error":
                    raise SystemExit(f"analysis failed: {capture['error']}")
        time.sleep(0.2)
    raise SystemExit("analysis did not finish")


def renderer_pss_mb(app) -> list[float]:
    """Each renderer's proportional set size with its Chromium processes (PSS: pages shared between them
    counted once in all, unlike a sum of RSS)."""
    out = []
    for process in app.flowviz["renderers"].all if "renderers" in app.flowviz else []:
        total = 0
        for pid in [process.pid] + _children(process.pid):
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        out.append(round(total / 1024, 1))
    return out


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found += [int(entry.name)] + _children(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def exports(n: int, renderers: int) -> None:
    app, server, base = serve(renderers)
    try:
        browser = Browser(base)
        cid = browser.upload(REFERENCE)
        gid = wait_done(app)["calls"][0]["call_group_id"]
        url = f"/capture/{cid}/call/{gid}/export/png"
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=renderers) as pool:  # every renderer started, untimed
            assert all(d[:8] == b"\x89PNG\r\n\x1a\n" for d in pool.map(lambda _: browser.get(url), range(renderers)))
        warm = time.perf_counter() - started

        def one(_):
            t = time.perf_counter()
            data = browser.get(url)
            assert data[:4] == b"\x89PNG"
            return time.perf_counter() - t

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool:
            times = sorted(pool.map(one, range(n)))
        batch = time.perf_counter() - started
        p95 = times[min(n - 1, int(round(0.95 * n)) - 1)]
        print(f"renderers={renderers}: {n} concurrent PNG exports: p50 {statistics.median(times):.2f} s, "
              f"p95 {p95:.2f} s, max {times[-1]:.2f} s, batch {batch:.2f} s "
              f"(first export, renderers starting: {warm:.2f} s); renderer PSS MB {renderer_pss_mb(app)}",
              flush=True)
    finally:
        server.shutdown()
        if "renderers" in app.flowviz:
            app.flowviz["renderers"].shutdown()
        app.flowviz["analyzer"].shutdown()


def pages(big: Path | None) -> None:
    from playwright.sync_api import sync_playwright

    from tests.kit.long_call import write_long_call

    app, server, base = serve(1)
    long_call = Path(tempfile.mkdtemp(prefix="flowviz-bench-")) / "long_call.pcap"
    write_long_call(long_call)
    try:
        if big:
            big_capture(app, base, big)
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = chromium.new_page(viewport={"width": 1366, "height": 768})
            page.goto(base)
            for path in (REFERENCE, long_call):
                with page.expect_file_chooser() as chooser:
                    page.click("#choose-files")
                chooser.value.set_files(str(path))
                row = page.locator("tr[data-state='done']", has=page.locator(".capture-name", has_text=path.name))
                row.wait_for(timeout=300_000)
                row.locator("a").click()
                page.wait_for_selector("#calls-table a", timeout=60_000)
                href = page.locator("#calls-table a").first.get_attribute("href")
                opens = []
                for _ in range(3):
                    t = time.perf_counter()
                    page.goto(base + href)
                    page.wait_for_function("() => document.querySelectorAll('#ladder g.trace text').length > 0",
                                           timeout=120_000)
                    opens.append(time.perf_counter() - t)
                rows = page.locator("#ladder-range").inner_text()
                print(f"call page {path.name} ({rows}): opens " + ", ".join(f"{t:.2f} s" for t in opens), flush=True)
                page.goto(base)
            chromium.close()
    finally:
        server.shutdown()
        app.flowviz["analyzer"].shutdown()


def big_capture(app, base: str, path: Path) -> None:
    """A big capture (added on the server, as a bundled sample is: no 200 MB through the browser): the time
    to open its first, middle and last call, each twice, after its capture page was shown (which warms it)."""
    from playwright.sync_api import sync_playwright

    from flowviz.web.routes import COOKIE, add_sample

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": 1366, "height": 768})
        page.goto(base)
        cookie = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)
        sid = app.server.extensions["flowviz_sessions"].sid(cookie)
        started = time.perf_counter()
        cid = add_sample(app.flowviz["store"], app.flowviz["analyzer"], sid, path.name, path)
        result = wait_done(app, timeout=1800)
        print(f"{path.name}: analysed in {time.perf_counter() - started:.1f} s, {len(result['calls'])} calls",
              flush=True)
        calls = result["calls"]
        t = time.perf_counter()
        page.goto(f"{base}/capture/{cid}")
        page.wait_for_selector("#calls-table a", timeout=120_000)
        print(f"  capture page: {time.perf_counter() - t:.2f} s", flush=True)
        for which, call in (("first", calls[0]), ("middle", calls[len(calls) // 2]), ("last", calls[-1])):
            opens = []
            for _ in range(2):
                t = time.perf_counter()
                page.goto(f"{base}/capture/{cid}/call/{call['call_group_id']}")
                page.wait_for_function("() => document.querySelectorAll('#ladder g.trace text').length > 0",
                                       timeout=120_000)
                opens.append(time.perf_counter() - t)
            print(f"  {which} call: opens " + ", ".join(f"{x:.2f} s" for x in opens), flush=True)
        chromium.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--exports", type=int, default=50)
    parser.add_argument("--renderers", default="1,2")
    parser.add_argument("--pages", action="store_true")
    parser.add_argument("--capture", type=Path, help="with --pages: also a big capture's call pages")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} cores={os.cpu_count()} load={os.getloadavg()[0]:.2f}", flush=True)
    for size in (int(s) for s in args.renderers.split(",") if s):
        exports(args.exports, size)
    if args.pages:
        pages(args.capture)
    return 0


if __name__ == "__main__":
    sys.exit(main())

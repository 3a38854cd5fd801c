"""The analysis queue: it survives a restart, a failed or cancelled analysis runs again from the page, and
one session's long analysis does not hold another session's capture. A tshark that never answers keeps a
SIP-over-TCP capture running (only tshark decodes it); UDP lab captures are read without tshark."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.test_web_server import client, sid_of, upload

LAB = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab"
REFERENCE = LAB / "reference_call.pcap"
TCP_SIP = LAB.parent / "synth" / "sip_tcp_coalesced_split.pcap"


@pytest.fixture()
def slow_tshark(tmp_path, monkeypatch):
    from flowviz.settings import Settings

    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path / "cache"))  # no decode cache hit: tshark must run
    slow = tmp_path / "slow-tshark"
    slow.write_text("#!/bin/sh\nexec sleep 120\n")
    slow.chmod(0o755)
    return Settings(tshark_path=str(slow))


def wait_for(condition, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def states(store, sid: str, cids: list[str]) -> list[str]:
    return [store.meta(store.capture_dir(sid, cid)).get("state") for cid in cids]


def test_captures_left_queued_or_running_are_analysed_after_a_restart(tmp_path, slow_tshark):
    from flowviz.web import create_app

    app = create_app(tmp_path / "data", settings=slow_tshark)
    store, analyzer = app.flowviz["store"], app.flowviz["analyzer"]
    c = client(app)
    running = upload(c, "tcp.pcap", TCP_SIP.read_bytes()).json["added"][0]
    queued = upload(c, "reference_call.pcap", REFERENCE.read_bytes()).json["added"][0]
    sid = sid_of(c)
    wait_for(lambda: store.capture_dir(sid, running) in analyzer.running)
    assert states(store, sid, [running, queued]) == ["running", "queued"]  # one at a time per session
    analyzer.shutdown()  # the server stops: its analysis with it
    assert states(store, sid, [running, queued]) == ["running", "queued"]

    again = create_app(tmp_path / "data")  # the real tshark this time
    try:
        wait_for(lambda: states(store, sid, [running, queued]) == ["done", "done"], 60)
        assert [store.meta(store.capture_dir(sid, cid))["calls"] for cid in (running, queued)] == [1, 1]
    finally:
        again.flowviz["analyzer"].shutdown()


def test_a_long_analysis_of_one_session_does_not_hold_another_sessions_capture(tmp_path, slow_tshark):
    from flowviz.web import create_app

    app = create_app(tmp_path / "data", settings=slow_tshark)
    store, analyzer = app.flowviz["store"], app.flowviz["analyzer"]
    try:
        busy = client(app)
        mine = [upload(busy, "tcp.pcap", TCP_SIP.read_bytes()).json["added"][0]]
        mine += [upload(busy, f"ref{i}.pcap", REFERENCE.read_bytes()).json["added"][0] for i in range(2)]
        wait_for(lambda: store.capture_dir(sid_of(busy), mine[0]) in analyzer.running)
        other = client(app)
        theirs = upload(other, "reference_call.pcap", REFERENCE.read_bytes()).json["added"][0]
        wait_for(lambda: states(store, sid_of(other), [theirs]) == ["done"], 60)
        # the other session's capture went past the first session's two waiting ones
        assert states(store, sid_of(busy), mine) == ["running", "queued", "queued"]
    finally:
        analyzer.shutdown()


def test_a_cancelled_analysis_runs_again_from_the_page(page, tmp_path, slow_tshark):
    from werkzeug.serving import make_server

    from flowviz.web import create_app

    app = create_app(tmp_path / "data", settings=slow_tshark)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        with page.expect_file_chooser() as chooser:
            page.click("#choose-files")
        chooser.value.set_files([str(TCP_SIP)])
        row = page.locator("tr[data-capture]")
        expect(row).to_have_attribute("data-state", "running", timeout=30_000)
        row.get_by_role("button", name="cancel").click()
        expect(row).to_have_attribute("data-state", "cancelled", timeout=30_000)
        row.get_by_role("button", name="run again").click()
        expect(row).to_have_attribute("data-state", "running", timeout=30_000)
        folder = next(iter(app.flowviz["analyzer"].running))
        assert app.flowviz["store"].meta(folder)["state"] == "running"
    finally:
        app.flowviz["analyzer"].shutdown()
        server.shutdown()


def gzip_bomb(plain_bytes: int) -> bytes:
    """A pcap header, then zeros: `plain_bytes` once decompressed, a few KiB as gzip."""
    import gzip
    import io
    import struct

    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb") as gz:
        gz.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        zeros = bytes(1 << 20)
        for _ in range(plain_bytes >> 20):
            gz.write(zeros)
    return out.getvalue()


def test_a_gzip_bomb_is_refused_past_the_limit_and_a_session_keeps_to_its_quota(tmp_path):
    """The upload limit is 1 MiB, so a gzip may expand to 4 MiB (app.web_limits); this one expands to 64 MiB.
    The session quota holds two reference calls (plus the bomb of another session: quotas are per session)
    but not a third."""
    from flowviz.web import create_app
    from flowviz.web.notices import for_browser

    reference = REFERENCE.read_bytes()
    app = create_app(tmp_path / "data", max_upload_bytes=1 << 20, session_quota_bytes=len(reference) * 5 // 2)
    store, analyzer = app.flowviz["store"], app.flowviz["analyzer"]
    try:
        c = client(app)
        bomb = gzip_bomb(64 << 20)
        cid = upload(c, "bomb.pcap.gz", bomb).json["added"][0]
        wait_for(lambda: states(store, sid_of(c), [cid]) == ["error"], 60)
        shown = for_browser(store.meta(store.capture_dir(sid_of(c), cid))["error"])  # as the pages show it
        assert "decompresses to more than 4 MiB" in shown and "--limit" not in shown and str(tmp_path) not in shown
        assert store.usage(sid_of(c)) < len(bomb) + (16 << 10)  # the upload and its meta: nothing decompressed kept

        other = client(app)
        for _ in range(2):
            assert upload(other, "reference_call.pcap", reference).status_code == 200
        refused = upload(other, "reference_call.pcap", reference)
        assert refused.status_code == 413 and "delete some" in refused.json["error"], refused.json
        assert len(store.captures(sid_of(other))) == 2
    finally:
        analyzer.shutdown()

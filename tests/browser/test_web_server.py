"""The web app's server rules without a browser: upload checks, sessions, ids and paths."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from flowviz.web.store import Store, is_capture

LAB = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab"
PCAP_MAGIC = b"\xd4\xc3\xb2\xa1"


@pytest.fixture()
def app(tmp_path):
    from flowviz.web import create_app

    app = create_app(tmp_path / "data", max_upload_bytes=1 << 20)
    yield app
    app.flowviz["analyzer"].shutdown()


def client(app):
    """A test client that acts as the app's own page: it sends the page's token and its origin."""
    import re

    c = app.server.test_client()
    page = c.get("/").text
    token = re.search(r'<meta name="flowviz-csrf" content="([0-9a-f]{64})">', page).group(1)
    c.environ_base.update({"HTTP_ORIGIN": "http://localhost", "HTTP_X_CSRF_TOKEN": token})
    return c


def upload(c, name: str, data: bytes):
    return c.post("/api/upload", data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def wait_done(store: Store, sid: str, timeout: float = 30.0) -> list[dict]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = store.captures(sid)
        if found and all(c["state"] in ("done", "error") for c in found):
            return found
        time.sleep(0.1)
    raise AssertionError("analysis did not finish")


def sid_of(c) -> str:
    """The session id in the client's signed cookie."""
    from flowviz.web.routes import COOKIE

    return c.application.extensions["flowviz_sessions"].sid(c.get_cookie(COOKIE).value)


def test_magic_numbers():
    for head in (PCAP_MAGIC, b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\x0a\x0d\x0d\x0a", b"\x1f\x8b\x08"):
        assert is_capture(head + b"rest")
    assert not is_capture(b"GIF89a") and not is_capture(b"")


def test_a_session_cookie_is_set_once_and_random(app):
    a, b = client(app), client(app)
    assert sid_of(a) != sid_of(b) and len(sid_of(a)) == 32
    r = a.get("/")
    assert "Set-Cookie" not in r.headers


def test_refusals_leave_nothing_behind(app):
    c = client(app)
    r = upload(c, "notes.txt", b"hello")
    assert r.status_code == 400 and "not a capture file" in r.json["error"]
    r = upload(c, "big.pcap", PCAP_MAGIC + bytes(2 << 20))
    assert r.status_code == 413 and "the limit is 1 MiB" in r.json["error"]
    r = c.post("/api/upload", data={}, content_type="multipart/form-data")
    assert r.status_code == 400
    assert app.flowviz["store"].captures(sid_of(c)) == []
    assert list((app.flowviz["store"].session_dir(sid_of(c))).iterdir()) == []


def test_file_names_never_become_paths_and_sessions_are_apart(app):
    c, other = client(app), client(app)
    store = app.flowviz["store"]
    r = upload(c, "../../../etc/evil.pcap", (LAB / "busy_486.pcap").read_bytes())
    assert r.status_code == 200
    cid = r.json["added"][0]
    found = wait_done(store, sid_of(c))
    assert found[0]["name"] == "../../../etc/evil.pcap" and found[0]["calls"] == 1
    folder = store.capture_dir(sid_of(c), cid)
    assert folder.parent.parent == store.root / "sessions" and (folder / "capture").is_file()
    assert not any(p.name == "evil.pcap" for p in store.root.rglob("*"))
    assert store.capture_dir(sid_of(other), cid) is None
    for bad in ("../" + cid, cid.upper(), "..", "", "a" * 16):
        assert store.capture_dir(sid_of(c), bad) is None
    call = store.result(folder)["calls"][0]
    gid = call["call_group_id"]
    assert (call["state"], [p["rule"] for p in call["problems"]]) == ("busy", ["sip.rejected"])
    url = f"/capture/{cid}/call/{gid}/export/"
    r = c.get(url + "txt")
    assert r.status_code == 200 and "486 Busy Here" in r.text
    assert r.headers["Content-Disposition"] == f'attachment; filename="call-{gid}.txt"'
    assert other.get(url + "txt").status_code == 404
    r = c.get(url + "txt?redact=1")
    assert r.status_code == 200 and "486 Busy Here" in r.text and "127.0.0." not in r.text and "ua1" not in r.text
    assert r.headers["Content-Disposition"] == f'attachment; filename="call-{gid}-redacted.txt"'
    r = c.get(url + "json?redact=1")
    assert r.status_code == 200 and "127.0.0." not in r.text and r.json["call"]["state"] == "busy"
    r = c.get(url + "pcap?redact=1")
    assert r.status_code == 200 and r.data[:4] == PCAP_MAGIC and b"127.0.0." not in r.data and b"ua1" not in r.data
    assert c.get(url + "exe").status_code == 404
    assert c.get(f"/capture/{cid}/call/nosuchcall/export/txt").status_code == 404
    assert other.post(f"/api/capture/{cid}/delete").status_code == 404
    assert c.post(f"/api/capture/{cid}/delete").status_code == 200
    assert store.captures(sid_of(c)) == []


def test_session_thresholds_drive_the_analysis_and_a_change_reruns_the_rules_from_the_cache(tmp_path, monkeypatch):
    """The reference call's SRD is 4.7 ms: srd_ms = 1 gives it sip.long_srd. A capture analysed after the
    change uses the session's thresholds; one analysed before is re-diagnosed from the decode cache."""
    from flowviz.web import create_app
    from flowviz.web.analysis import diagnostics_fresh, rediagnose_folder

    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path / "cache"))
    app = create_app(tmp_path / "data")
    store, analyzer = app.flowviz["store"], app.flowviz["analyzer"]
    try:
        c, other = client(app), client(app)
        store.set_thresholds(sid_of(c), {"srd_ms": 1.0})
        assert store.thresholds(sid_of(c)) == {"srd_ms": 1.0} and store.thresholds(sid_of(other)) == {}
        data = (LAB / "reference_call.pcap").read_bytes()
        mine = store.capture_dir(sid_of(c), upload(c, "ref.pcap", data).json["added"][0])
        theirs = store.capture_dir(sid_of(other), upload(other, "ref.pcap", data).json["added"][0])
        wait_done(store, sid_of(c))
        wait_done(store, sid_of(other))

        def rules(folder):
            return [p["rule"] for p in store.result(folder)["calls"][0]["problems"]]

        assert (rules(mine), store.result(mine)["thresholds"]) == (["sip.long_srd"], {"srd_ms": 1.0})
        assert (rules(theirs), store.result(theirs)["thresholds"]) == ([], {})  # the other session: defaults
        cache = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*") if p.is_file()}
        assert cache

        store.set_thresholds(sid_of(c), {})  # back to the defaults: the stored findings are stale now
        assert not diagnostics_fresh(store, mine, store.result(mine))
        rediagnose_folder(store, mine, analyzer.settings)
        assert diagnostics_fresh(store, mine, store.result(mine)) and rules(mine) == []
        assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*") if p.is_file()} == cache  # no ingest

        store.set_thresholds(sid_of(c), {"srd_ms": 1.0})  # through the worker thread this time
        analyzer.rediagnose(mine)
        end = time.monotonic() + 30
        while not diagnostics_fresh(store, mine, store.result(mine)) and time.monotonic() < end:
            time.sleep(0.05)
        assert rules(mine) == ["sip.long_srd"]
        (store.session_dir(sid_of(c)) / "thresholds.json").write_text('{"srd_ms": "-1"}')  # damaged: defaults
        assert store.thresholds(sid_of(c)) == {}
    finally:
        analyzer.shutdown()


def test_a_forged_cookie_is_replaced(app):
    c = app.server.test_client()
    c.set_cookie("flowviz_session", "../../etc")
    c.get("/")
    assert sid_of(c) != "../../etc" and len(sid_of(c)) == 32


def test_state_changing_requests_need_the_origin_and_the_session_token(app):
    """Without the page's Origin (or Referer) and its token, a POST is refused with 403 and no cookie; with
    another session's token too."""
    c, other = client(app), client(app)
    data = (LAB / "busy_486.pcap").read_bytes()
    token, mine = c.environ_base.pop("HTTP_X_CSRF_TOKEN"), c.environ_base.pop("HTTP_ORIGIN")
    cases = [{}, {"Origin": mine}, {"X-CSRF-Token": token}, {"Origin": "http://127.0.0.1:9999", "X-CSRF-Token": token},
             {"Origin": "null", "X-CSRF-Token": token},
             {"Origin": mine, "X-CSRF-Token": other.environ_base["HTTP_X_CSRF_TOKEN"]},
             {"Referer": "http://evil.example/localhost/", "X-CSRF-Token": token}]
    for headers in cases:
        r = c.post("/api/upload", data={"file": (io.BytesIO(data), "x.pcap")}, headers=headers)
        assert (r.status_code, "Set-Cookie" in r.headers) == (403, False), headers
        assert r.json["error"].startswith("refused:")
    assert app.flowviz["store"].captures(sid_of(c)) == []
    r = c.post("/api/upload", data={"file": (io.BytesIO(data), "x.pcap")},
               headers={"Referer": "http://localhost/capture/x", "X-CSRF-Token": token})
    assert r.status_code == 200
    proxied = {"Origin": "https://flowviz.example.org", "X-CSRF-Token": token}  # a reverse proxy's public name
    assert c.post("/api/upload", data={"file": (io.BytesIO(data), "y.pcap")}, headers=proxied).status_code == 403
    os.environ["FLOWVIZ_ALLOWED_ORIGINS"] = "https://other.example, https://flowviz.example.org/"
    try:
        assert c.post("/api/upload", data={"file": (io.BytesIO(data), "y.pcap")}, headers=proxied).status_code == 200
    finally:
        del os.environ["FLOWVIZ_ALLOWED_ORIGINS"]
    assert c.get("/").headers["X-Content-Type-Options"] == "nosniff"


def test_ten_thousand_calls_are_filtered_sorted_and_paged_on_the_server():
    from flowviz.web.pages import PAGE_SIZE, call_page_rows

    calls = [{"call_group_id": f"{i:010x}", "call_ids": [f"c{i}"], "from_user": f"u{i % 7}", "to_user": "b",
              "from_uri": None, "to_uri": None, "hosts": ["10.0.0.1:5060"], "state": "busy" if i % 10 else "completed",
              "final_status": 486 if i % 10 else 200, "srd_ms": None if i % 3 else float(i), "setup_ms": None,
              "duration_s": None, "messages": 3, "start_ts": None, "mos_worst": None} for i in range(10_000)]
    started = time.perf_counter()
    rows, pages = call_page_rows("0" * 16, calls, "completed", "", [{"column_id": "srd_ms", "direction": "desc"}], 3)
    assert time.perf_counter() - started < 1.0
    assert pages == 1000 // PAGE_SIZE and len(rows) == PAGE_SIZE
    srd = [r["srd_ms"] for r in rows]
    assert srd == sorted(srd, reverse=True) and all(r["state"] == "completed" for r in rows)
    rows, pages = call_page_rows("0" * 16, calls, "", "u3", None, 10**6)  # past the end: the last page
    assert pages == -(-sum(1 for i in range(10_000) if i % 7 == 3) // PAGE_SIZE) and rows


def test_a_running_analysis_can_be_cancelled(tmp_path, monkeypatch):
    """A tshark that never answers keeps the analysis running until it is cancelled: its process stops."""
    from flowviz.settings import Settings
    from flowviz.web import create_app

    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path / "cache"))  # no decode cache hit: tshark must run

    slow = tmp_path / "slow-tshark"
    slow.write_text("#!/bin/sh\nexec sleep 120\n")
    slow.chmod(0o755)
    app = create_app(tmp_path / "data", settings=Settings(tshark_path=str(slow)))
    analyzer, store = app.flowviz["analyzer"], app.flowviz["store"]
    try:
        c = client(app)
        # SIP over TCP: only tshark decodes it (flowviz reads whole UDP datagrams itself)
        tcp_sip = LAB.parent / "synth" / "sip_tcp_coalesced_split.pcap"
        cid = upload(c, "x.pcap", tcp_sip.read_bytes()).json["added"][0]
        folder = store.capture_dir(sid_of(c), cid)
        end = time.monotonic() + 30
        while folder not in analyzer.running and time.monotonic() < end:
            time.sleep(0.05)
        process = analyzer.running[folder]
        time.sleep(0.5)
        assert process.poll() is None and store.meta(folder)["state"] == "running"
        assert other_cannot_cancel(app, cid)
        assert c.get(f"/capture/{cid}/call/9b81b1c02f/export/txt").status_code == 404  # not analysed yet
        assert c.post(f"/api/capture/{cid}/cancel").status_code == 200
        assert process.poll() is not None
        wait_done_or_cancelled(store, folder)
        assert store.meta(folder)["state"] == "cancelled" and store.result(folder) is None
        assert c.post(f"/api/capture/{cid}/cancel").status_code == 409
    finally:
        analyzer.shutdown()


def other_cannot_cancel(app, cid: str) -> bool:
    return client(app).post(f"/api/capture/{cid}/cancel").status_code == 404


def wait_done_or_cancelled(store: Store, folder, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while store.meta(folder).get("state") not in ("done", "error", "cancelled") and time.monotonic() < end:
        time.sleep(0.05)


def test_flowviz_serve_listens_on_127_0_0_1_and_answers(tmp_path):
    import re
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "flowviz", "serve", "--port", "0", "--data-dir", str(tmp_path)],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        port = re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
            assert answer.status == 200 and "flowviz" in answer.read().decode()
        assert (tmp_path / "sessions").is_dir()
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


def test_image_downloads_are_drawn_by_a_pool_of_renderer_processes(tmp_path, monkeypatch):
    """Three PNG downloads at once: a second renderer process (its own kaleido and Chromium) starts only when
    one is busy drawing, so two processes mean two drawings at the same time; the pool stays at its size
    and every answer is a PNG."""
    import threading

    from flowviz.web import create_app

    monkeypatch.setenv("FLOWVIZ_RENDERERS", "2")
    monkeypatch.setenv("FLOWVIZ_RENDER_MEMORY_MB", "1000")
    app = create_app(tmp_path / "data")
    pool = app.flowviz["renderers"]
    try:
        assert pool.size == 2
        c = client(app)
        cid = upload(c, "ref.pcap", (LAB / "reference_call.pcap").read_bytes()).json["added"][0]
        wait_done(app.flowviz["store"], sid_of(c))
        store = app.flowviz["store"]
        gid = store.result(store.capture_dir(sid_of(c), cid))["calls"][0]["call_group_id"]
        answers, gate = [], threading.Barrier(3)

        def fetch():
            gate.wait()
            answers.append(c.get(f"/capture/{cid}/call/{gid}/export/png"))

        threads = [threading.Thread(target=fetch) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        assert [a.status_code for a in answers] == [200] * 3
        assert all(a.data[:8] == b"\x89PNG\r\n\x1a\n" for a in answers)
        assert pool.started == 2 and len({p.pid for p in pool.all}) == 2
    finally:
        pool.shutdown()
        app.flowviz["analyzer"].shutdown()
    assert pool.all == []

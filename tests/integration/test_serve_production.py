"""`flowviz serve` on waitress: started as a user would (a subprocess on 127.0.0.1), asked over HTTP, stopped
with SIGTERM as a service manager would.

- GET / answers 200 with the security headers of the web app, from waitress (its Server header).
- A body larger than the upload limit allows is refused (413) from its Content-Length, before it is sent.
- With --trusted-proxy, X-Forwarded-Host from the proxy is believed: a POST whose Origin names the public
  host passes the origin check (it is then refused for its missing page token), the same POST without the
  header fails the origin check.
- SIGTERM while an analysis runs: the server exits 0, says it stopped, and leaves no process behind
  (the analysis worker included).
- A port in use and a --trusted-proxy that is not an IP address: one-line errors, exit 2.
"""

from __future__ import annotations

import http.client
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
# What docs/web.md ("Security") says every response carries.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN",
                    "Referrer-Policy": "same-origin"}


class Server:
    def __init__(self, tmp_path: Path, *args: str):
        self.log = tmp_path / "serve.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "flowviz", "serve", "--host", "127.0.0.1",
                                             "--port", "0", "--data-dir", str(tmp_path / "data"), *args],
                                            stderr=out, stdout=subprocess.DEVNULL, cwd=REPO)
        deadline = time.monotonic() + 60
        while not (found := re.search(r"http://127\.0\.0\.1:(\d+)/", self.log.read_text())):
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        self.port = int(found.group(1))

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(15)


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path, "--max-upload", "1", "--threads", "4")
    try:
        yield running
    finally:
        running.stop()


def test_waitress_serves_the_app_with_its_security_headers(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=30) as answer:
        assert answer.status == 200
        assert answer.headers["Server"] == "waitress"
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers[name] == value, name
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert "flowviz" in answer.read().decode()
    assert "with waitress (4 threads)" in server.log.read_text()


def test_a_body_over_the_upload_limit_is_refused_before_it_is_sent(server):
    connection = server.connection()
    connection.putrequest("POST", "/api/upload")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(3 << 20))  # --max-upload 1 (MiB): 3 MiB is over any margin
    connection.endheaders()  # and no body: the answer must come from the header alone
    answer = connection.getresponse()
    assert answer.status == 413
    connection.close()


def _post_status(port: int, headers: dict[str, str]) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/api/sample/none", body=b"", headers=headers)
    answer = connection.getresponse()
    text = answer.read().decode()
    connection.close()
    return answer.status, text


def test_forwarded_host_is_believed_from_the_trusted_proxy_only(tmp_path):
    running = Server(tmp_path, "--trusted-proxy", "127.0.0.1")
    try:
        public = {"Origin": "https://flowviz.example", "Host": f"127.0.0.1:{running.port}"}
        status, direct = _post_status(running.port, public)
        assert status == 403 and "origin" in direct
        status, proxied = _post_status(running.port, {**public, "X-Forwarded-Host": "flowviz.example",
                                                      "X-Forwarded-Proto": "https"})
        assert status == 403 and "origin" not in proxied and "token" in proxied
    finally:
        running.stop()


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_sigterm_stops_the_server_and_every_process_it_started(tmp_path, tshark):
    capture = tmp_path / "big.pcap"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_capture.py"), str(capture), "--packets",
                    "200000", "--calls", "20"], check=True, capture_output=True, timeout=120)
    running = Server(tmp_path, "--max-upload", "200")
    try:
        connection = running.connection()
        connection.request("GET", "/")
        page = connection.getresponse()
        cookie = page.headers["Set-Cookie"].split(";")[0]
        token = re.search(r'name="flowviz-csrf" content="([^"]+)"', page.read().decode()).group(1)
        body, kind = _multipart(capture.name, capture.read_bytes())
        connection.request("POST", "/api/upload", body=body, headers={
            "Content-Type": kind, "Cookie": cookie, "X-CSRF-Token": token,
            "Origin": f"http://127.0.0.1:{running.port}"})
        answer = connection.getresponse()
        assert answer.status == 200, answer.read()
        answer.read()
        connection.close()
        server = psutil.Process(running.process.pid)
        deadline = time.monotonic() + 60
        while not (started := server.children(recursive=True)):  # the analysis worker
            assert time.monotonic() < deadline, "no analysis process was started"
            time.sleep(0.05)
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(30) == 0
        assert running.log.read_text().rstrip().endswith("flowviz: stopped")
        _, alive = psutil.wait_procs(started, timeout=10)
        assert alive == []
    finally:
        running.stop()


def _serve_fails(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "flowviz", "serve", "--host", "127.0.0.1", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    return line


def test_a_port_in_use_and_a_bad_proxy_address_are_one_line_errors(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _serve_fails("--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert line == f"flowviz: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    line = _serve_fails("--port", "0", "--trusted-proxy", "proxy.example", "--data-dir", str(tmp_path / "data"))
    assert line.startswith("flowviz: error: --trusted-proxy 'proxy.example': not an IP address")

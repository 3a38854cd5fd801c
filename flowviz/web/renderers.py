"""Renderers: a pool of processes that draw ladder images (SVG, PNG, PDF through kaleido and Chromium) for
downloads, so several downloads are drawn at once.

flowviz.export.image keeps one kaleido server per process behind a lock (it is not thread-safe): in the
server process, downloads were drawn one at a time. Each renderer here is its own process
(`python -m flowviz.web.renderers`, like the analysis worker: the web app's main module is never imported
again) with its own kaleido and Chromium, started on first use and kept. The pool's size comes from a
memory budget: FLOWVIZ_RENDER_MEMORY_MB (default 1024) divided by what one renderer takes
(RENDERER_MB, measured: docs/web.md), at least 1, at most FLOWVIZ_RENDERERS or the number of cores.

Protocol on the renderer's stdin/stdout: a request is a 4-byte big-endian length and a pickle of
(ladder, fmt); the answer is b"+" or b"-", a 4-byte length, then the file's bytes or a one-line error.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from pathlib import Path

from flowviz.errors import FlowvizError

RENDERER_MB = 500  # one renderer with its kaleido Chromium: 340-370 MB PSS when started, 470-530 MB after 50
# PNG exports (benchmarks/web_exports.py)
IMAGE_FORMATS = ("svg", "png", "pdf")


def pool_size() -> int:
    budget = int(os.environ.get("FLOWVIZ_RENDER_MEMORY_MB") or 1024)
    most = int(os.environ.get("FLOWVIZ_RENDERERS") or os.cpu_count() or 1)
    return max(1, min(most, budget // RENDERER_MB))


class Renderers:
    """Up to `size` renderer processes; a download waits for an idle one."""

    def __init__(self, size: int | None = None):
        self.size = size or pool_size()
        self.idle: queue.Queue = queue.Queue()
        self.started = 0
        self.lock = threading.Lock()
        self.all: list[subprocess.Popen] = []

    def render(self, ladder, fmt: str) -> bytes:
        process = self._take()
        try:
            data = pickle.dumps((ladder, fmt))
            process.stdin.write(struct.pack(">I", len(data)) + data)
            process.stdin.flush()
            status = process.stdout.read(1)
            size = struct.unpack(">I", _exactly(process.stdout, 4))[0]
            body = _exactly(process.stdout, size)
        except (OSError, struct.error, EOFError) as exc:  # the renderer died: replaced at the next download
            self._drop(process)
            raise FlowvizError(f"{fmt.upper()} export failed: the renderer stopped ({type(exc).__name__})") from exc
        self.idle.put(process)
        if status != b"+":
            raise FlowvizError(body.decode("utf-8", "replace"))
        return body

    def _take(self) -> subprocess.Popen:
        with self.lock:
            if self.idle.empty() and self.started < self.size:
                self.started += 1
                process = _start()
                self.all.append(process)
                return process
        return self.idle.get()

    def _drop(self, process: subprocess.Popen) -> None:
        process.kill()
        process.wait(5)
        with self.lock:
            self.started -= 1
            self.all.remove(process)

    def shutdown(self) -> None:
        with self.lock:
            processes, self.all, self.started = list(self.all), [], 0
        for process in processes:
            process.stdin.close()  # the renderer leaves its loop and stops its kaleido server
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _start() -> subprocess.Popen:
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "flowviz.web.renderers"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)


def _exactly(stream, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            raise EOFError("renderer closed its output")
        out += chunk
    return out


def main() -> int:
    """The renderer's loop: one request at a time until stdin closes."""
    from flowviz.export.image import stop
    from flowviz.export.render import render_ladder
    from flowviz.figures.theme import LIGHT

    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed by a library goes to the log, not into the protocol
    try:
        while True:
            head = source.read(4)
            if len(head) < 4:
                return 0
            ladder, fmt = pickle.loads(_exactly(source, struct.unpack(">I", head)[0]))
            try:
                status, body = b"+", render_ladder(ladder, fmt, theme=LIGHT)
            except FlowvizError as exc:
                status, body = b"-", exc.message.encode()
            sink.write(status + struct.pack(">I", len(body)) + body)
            sink.flush()
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())

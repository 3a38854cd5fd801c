"""Analysis for the web: decode and correlate a stored capture in the background, one call's details on demand.

Each capture is analysed in its own worker process (never in a request thread, and cancellable); progress
goes to the capture's meta.json, which the pages poll. Results are plain JSON (calls, KPIs, info): stores and
callbacks only ever hold keys.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flowviz.errors import FlowvizError
from flowviz.settings import Settings
from flowviz.web.notices import short_notices
from flowviz.web.store import KEYLOG, Store

CALL_FIELDS = ("call_group_id", "call_ids", "method", "from_user", "to_user", "from_uri", "to_uri", "state",
               "final_status", "final_reason", "srd_ms", "setup_ms", "duration_s", "hosts", "messages",
               "retransmissions", "legs")
# what the capture's stream list shows of each row of flowviz.media.report.streams_report
STREAM_FIELDS = ("stream_id", "call_group_id", "src_ip", "src_port", "dst_ip", "dst_port", "ssrc", "codec", "packets",
                 "expected", "lost", "lost_pct", "max_jitter_ms", "max_delta_ms", "mos", "sdp_match", "start_ms")


def default_runners() -> int:
    """Analyses at once: FLOWVIZ_ANALYSES, else 2 (with one, a session's long analysis holds every other
    session's; each is a process that takes a core)."""
    try:
        return max(1, int(os.environ.get("FLOWVIZ_ANALYSES") or 2))
    except ValueError:
        return 2


class Analyzer:
    """Runner threads, each running one worker process (`python -m flowviz.web.worker`) per capture: decoding
    uses another core and a running analysis is cancelled by stopping its process.

    Fair between sessions: each session has its own queue (upload order), the runners serve the sessions in
    turn, and a session has at most one analysis running, so one session's big uploads never hold another's
    capture once a runner is free. The queue is the store itself: captures left queued or running by a stopped
    server are queued again by resume() when the app starts."""

    def __init__(self, store: Store, settings: Settings | None = None, runners: int | None = None):
        self.store = store
        self.settings = settings or Settings()
        self.queues: OrderedDict[str, list[Path]] = OrderedDict()  # session id -> its waiting captures
        self.serving: set[str] = set()  # sessions with an analysis running
        self.wake = threading.Condition()
        self.stopped = False
        self.runners = [threading.Thread(target=self._serve, name=f"flowviz-analysis-{i}", daemon=True)
                        for i in range(runners or default_runners())]
        for runner in self.runners:
            runner.start()
        self.running: dict[Path, subprocess.Popen] = {}
        self.cancelled: set[Path] = set()
        self.lock = threading.Lock()
        # re-running the rules after a threshold change takes a second or two: its own thread, so it never
        # waits behind a long ingest
        self.rules_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowviz-rules")
        self.rediagnosing: set[Path] = set()

    def submit(self, folder: Path) -> None:
        """Queue a stored capture (meta state 'queued') behind the other captures of its session."""
        with self.wake:
            queue = self.queues.setdefault(folder.parent.name, [])
            if folder not in queue:
                queue.append(folder)
            self.wake.notify()

    def _next(self) -> Path | None:
        """The next capture of the first session in turn that has none running; that session goes last."""
        with self.wake:
            while not self.stopped:
                sid = next((s for s in self.queues if s not in self.serving), None)
                if sid is not None:
                    folder = self.queues[sid].pop(0)
                    if self.queues[sid]:
                        self.queues.move_to_end(sid)
                    else:
                        del self.queues[sid]
                    self.serving.add(sid)
                    return folder
                self.wake.wait()
        return None

    def _serve(self) -> None:
        while (folder := self._next()) is not None:
            sid = folder.parent.name
            try:
                self.run(folder)
            except Exception:  # a bug in one capture's bookkeeping must not stop the runner
                traceback.print_exc()
            finally:
                with self.wake:
                    self.serving.discard(sid)
                    self.wake.notify_all()

    def resume(self) -> int:
        """Queue again the captures a stopped server left queued or running (their worker went with it), in
        upload order; returns how many."""
        left = []
        for session in sorted((self.store.root / "sessions").iterdir()):
            if not session.is_dir():
                continue
            for capture in self.store.captures(session.name):
                if capture.get("state") in ("queued", "running"):
                    left.append((capture.get("added", 0), session / capture["id"]))
        for _, folder in sorted(left):
            self.store.update(folder, state="queued", stage="queued (server restarted)", fraction=0.0)
            self.submit(folder)
        return len(left)

    def retry(self, folder: Path) -> bool:
        """Run a failed or cancelled analysis again; False when it is not failed nor cancelled."""
        with self.lock:  # a cancelled analysis whose process is still stopping is not ready to run again
            if self.store.meta(folder).get("state") not in ("error", "cancelled") or folder in self.running:
                return False
        self.store.queue_again(folder)
        self.submit(folder)
        return True

    def run(self, folder: Path) -> None:
        with self.lock:
            if self.store.meta(folder).get("state") != "queued":  # cancelled or deleted while queued
                return
            self.store.update(folder, state="running", stage="starting", fraction=0.0)
            package_root = str(Path(__file__).resolve().parents[2])  # the child imports this same flowviz
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
            process = subprocess.Popen([sys.executable, "-m", "flowviz.web.worker", str(folder)],
                                       stdin=subprocess.PIPE, env=env)
            self.running[folder] = process
        try:
            process.stdin.write(pickle.dumps(self.settings))
            process.stdin.close()
        except OSError:  # the child died at once: its exit code says more below
            pass
        process.wait()
        with self.lock:
            self.running.pop(folder, None)
            cancelled = folder in self.cancelled
            self.cancelled.discard(folder)
        meta = self.store.meta(folder)
        if self.stopped and not cancelled:  # the server is stopping: resume() queues it again at the next start
            return
        if meta and cancelled:  # the child may have written its progress over the cancel mark
            self.store.update(folder, state="cancelled", stage="cancelled", error="analysis cancelled")
        elif meta and meta.get("state") not in ("done", "error", "cancelled"):
            self.store.update(folder, state="error", error=f"analysis stopped unexpectedly (exit {process.returncode})")

    def cancel(self, folder: Path) -> bool:
        """Stop the capture's analysis (queued or running); False when it is not queued nor running."""
        with self.lock:
            if self.store.meta(folder).get("state") not in ("queued", "running"):
                return False
            self.store.update(folder, state="cancelled", stage="cancelled", error="analysis cancelled")
            process = self.running.get(folder)
            if process is not None:
                self.cancelled.add(folder)
        if process is not None:
            _stop(process)
        return True

    def rediagnose(self, folder: Path) -> None:
        """Queue a re-run of the diagnostics rules of an analysed capture with its session's thresholds (once
        per capture at a time; a change made while it runs is caught by the next freshness check)."""
        with self.lock:
            if folder in self.rediagnosing:
                return
            self.rediagnosing.add(folder)
        self.rules_pool.submit(self._rediagnose, folder)

    def _rediagnose(self, folder: Path) -> None:
        try:
            rediagnose_folder(self.store, folder, self.settings)
        except Exception as exc:  # shown where the findings would be, instead of retrying for ever
            if not isinstance(exc, FlowvizError):
                traceback.print_exc()
            message = exc.message if isinstance(exc, FlowvizError) else f"internal error: {type(exc).__name__}: {exc}"
            if self.store.meta(folder):
                self.store.update(folder, diagnostics_error=message,
                                  diagnostics_error_for=self.store.thresholds(folder.parent.name))
        finally:
            with self.lock:
                self.rediagnosing.discard(folder)

    def shutdown(self) -> None:
        with self.wake:
            self.stopped = True  # first: the analyses stopped below stay queued/running for resume()
            self.queues.clear()
            self.wake.notify_all()
        with self.lock:
            processes = list(self.running.values())
        for process in processes:
            _stop(process)
        self.rules_pool.shutdown(wait=False, cancel_futures=True)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()  # SIGTERM: the worker exits through read_capture's cleanup (tshark stopped)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def analyse_folder(folder: Path, settings: Settings) -> None:
    """In the worker process: analyse a stored capture, write result.json and the final state to meta.json."""
    store = Store(folder.parents[2])
    last = [0.0]

    def progress(stage: str, fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] > 0.2 or fraction >= 1.0:
            last[0] = now
            if store.meta(folder).get("state") == "running":
                store.update(folder, stage=stage, fraction=round(fraction, 3))

    try:
        # the session's thresholds as they are now; a change after this is caught by diagnostics_fresh()
        overrides = store.thresholds(folder.parent.name)
        paths, names = store.sources(folder)
        result = analyse(paths, capture_settings(settings, store.meta(folder), folder), progress, overrides, names)
    except FlowvizError as exc:  # the capture's path on this server is no business of the browser's
        store.update(folder, state="error", error=_unplaced(exc.message, *store.sources(folder)[0]))
        return
    except Exception as exc:  # a bug: shown in one line, details in the server log
        traceback.print_exc()
        store.update(folder, state="error", error=f"internal error: {type(exc).__name__}: {exc}")
        return
    store.write_result(folder, result)
    store.update(folder, state="done", stage="done", fraction=1.0, calls=len(result["calls"]),
                 notices=short_notices(result))


def capture_settings(settings: Settings, meta: dict, folder: Path | None = None) -> Settings:
    """The settings a capture is analysed with: the server's, plus the extra SIP ports and the TLS key log
    given at its upload (every later analysis of it, call pages and exports too, must use the same: the
    decode differs). `folder`: the capture's, where its key log is kept."""
    extra = tuple(p for p in meta.get("sip_ports") or () if p not in settings.sip_ports)
    if extra:
        settings = replace(settings, sip_ports=settings.sip_ports + extra)
    if meta.get("tls_keylog") and folder is not None and (folder / KEYLOG).is_file():
        settings = replace(settings, tls_keylog=str(folder / KEYLOG))
    return settings


def open_analysis(paths: list[Path], names: list[str] | None, settings: Settings, thresholds=None,
                  progress=None):
    """The Analysis of a stored capture, or of a capture set (`names`: its points' upload names, which the
    set's info, warnings and ladders show instead of the stored files' point-1, point-2...)."""
    from flowviz.analyze import Analysis

    if names is None:
        return Analysis(paths[0], settings, thresholds, progress=progress)
    analysis = Analysis(paths, settings, thresholds, progress=progress, name=" + ".join(names))
    points = analysis.capture_set.points  # merges the set now
    table = {p.name: n for p, n in zip(points, names)}

    def named(text):
        return re.sub(r"point-\d+", lambda m: table.get(m.group(0), m.group(0)), text) if isinstance(text, str) else text

    for point in points:
        point.name, point.evidence, point.against = table[point.name], named(point.evidence), named(point.against)
    analysis.capture_set.warnings[:] = [named(w) for w in analysis.capture_set.warnings]
    return analysis


def analyse(paths: list[Path], settings: Settings, progress=None, overrides: dict | None = None,
            names: list[str] | None = None) -> dict:
    """Calls (summaries), KPIs and capture info of one capture or capture set (`names`), as JSON-ready dicts;
    diagnostics with the threshold overrides (flowviz.web.thresholds), which the result records."""
    from flowviz.web.thresholds import thresholds_of

    analysis = open_analysis(paths, names, settings, thresholds_of(overrides or {}), progress)
    try:
        return _result(analysis, paths, overrides)
    finally:
        analysis.close()


def _result(analysis, paths: list[Path], overrides: dict | None) -> dict:
    worst = _worst_mos(analysis.stream_report)
    problems = analysis.problems
    calls = []
    for row in analysis.calls:
        call = {k: row.get(k) for k in CALL_FIELDS}
        call["start_ts"] = row["start_ts"]
        call["mos_worst"] = worst.get(row["call_group_id"])
        call["problems"] = problems.get(row["call_group_id"], [])
        calls.append(call)
    info = {k: analysis.info.get(k) for k in ("packets", "duration_s", "sip_messages", "rtp_packets", "rtp_streams",
                                              "decode_seconds", "skipped", "short_frames", "first_ts_ns",
                                              "capture_set")}
    info["warnings"] = [_unplaced(w, *paths) for w in analysis.warnings]  # the capture's and the correlator's
    return {"calls": calls, "kpis": analysis.kpis, "info": info, "capture_problems": problems.get(None, []),
            "thresholds": overrides or {}, "streams": stream_rows(analysis.stream_report)}


def _unplaced(text: str, *paths: Path) -> str:
    """The text without the capture's paths on this server (the page shows the upload's name instead)."""
    for path in paths:
        text = text.replace(f"{path}: ", "").replace(str(path), "the file")
    return text


def diagnostics_fresh(store: Store, folder: Path, result: dict | None) -> bool:
    """True when the result's findings were computed with its session's current thresholds (results written
    before thresholds were recorded used the defaults)."""
    return result is not None and result.get("thresholds", {}) == store.thresholds(folder.parent.name)


def rediagnose_folder(store: Store, folder: Path, settings: Settings) -> None:
    """Run the rules again on an analysed capture with its session's thresholds and rewrite result.json's
    findings. The frames come from the decode cache: thresholds are not part of its key, so no ingest."""
    from flowviz.web.thresholds import thresholds_of

    overrides = store.thresholds(folder.parent.name)
    result = store.result(folder)
    if result is None or result.get("thresholds", {}) == overrides:
        return
    analysis = open_analysis(*store.sources(folder), capture_settings(settings, store.meta(folder), folder),
                             thresholds_of(overrides))
    try:
        problems = analysis.problems
    finally:
        analysis.close()
    # new dicts: the parsed result cached by the store is shared with requests running now
    calls = [{**c, "problems": problems.get(c["call_group_id"], [])} for c in result["calls"]]
    store.write_result(folder, {**result, "calls": calls, "capture_problems": problems.get(None, []),
                                "thresholds": overrides})


def _worst_mos(streams) -> dict[str, float]:
    """call_group_id -> the lowest MOS of its RTP streams (calls without a scored stream are left out)."""
    import polars as pl

    if streams is None or "call_group_id" not in streams.columns:
        return {}
    worst = (streams.filter(pl.col("call_group_id").is_not_null() & pl.col("mos").is_not_null())
             .group_by("call_group_id").agg(pl.col("mos").min()))
    return dict(zip(worst["call_group_id"].to_list(), worst["mos"].to_list()))


def stream_rows(streams) -> list[dict]:
    """The stream list's fields of every stream, in capture order, as JSON-ready dicts (floats to 3 decimals:
    microseconds of jitter, more than the table shows)."""
    if streams is None or "call_group_id" not in streams.columns:
        return []
    rows = streams.select(STREAM_FIELDS).to_dicts()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float):
                row[key] = round(value, 3)
    return rows


class CallCache:
    """The analyses of the last few captures opened (per session and thresholds), so a click on the ladder,
    another call of the same capture or an export does not correlate again."""

    def __init__(self, size: int = 4):
        self.size = size
        self.items: OrderedDict = OrderedDict()
        self.lock = threading.Lock()
        self.warming: set[tuple] = set()

    def forget(self, key: tuple) -> None:
        """Drop the kept analyses of one capture (a point was added to it, or it is analysed again)."""
        with self.lock:
            for full in [k for k in self.items if k[:len(key)] == key]:
                self.items.pop(full).close()

    def warm(self, key: tuple, path, call_ref: str, settings: Settings, overrides: dict | None = None) -> None:
        """Read the capture's analysis back and correlate it in a background thread (the capture page asks for
        this), so that opening one of its calls does not wait for it: on a big capture that is most of the
        call page's time. Errors are left to the call page to report."""
        full = (*key, json.dumps(overrides or {}, sort_keys=True))
        with self.lock:
            if full in self.items or full in self.warming:
                return
            self.warming.add(full)

        def run():
            try:
                self.get(key, path, call_ref, settings, overrides)
            except Exception:  # noqa: BLE001 - the call page shows what went wrong when it is opened
                pass
            finally:
                with self.lock:
                    self.warming.discard(full)

        threading.Thread(target=run, name="flowviz-warm", daemon=True).start()

    def get(self, key: tuple, sources: tuple, call_ref: str, settings: Settings, overrides: dict | None = None) -> dict:
        """The call's details: its row ("call"), ladder, streams report rows, capture, path (the file its frame
        numbers point into: a set's merged capture) and view (flowviz.analyze.CallView). `sources`: the
        stored capture's (paths, point names) from Store.sources."""
        from flowviz.web.thresholds import thresholds_of

        key = (*key, json.dumps(overrides or {}, sort_keys=True))
        with self.lock:
            analysis = self.items.get(key)
            if analysis is None:
                analysis = open_analysis(*sources, settings, thresholds_of(overrides or {}))
                self.items[key] = analysis
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)[1].close()  # a set's merged file goes with it
        view = analysis.call(call_ref)
        return {"call": view.row, "ladder": view.ladder(), "streams": view.stream_frame, "capture": analysis.capture,
                "path": analysis.capture_path, "view": view}

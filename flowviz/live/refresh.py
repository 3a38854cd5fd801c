"""The refresh: a snapshot of the live capture analysed whole, again and again, about once a second.

Each refresh decodes everything captured so far (no cache: the file changes). Its cost grows with
the capture; the ring's limits bound it (measured in docs/live.md). When a refresh takes longer than
the interval, the next one starts right after it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from flowviz.analyze import Analysis
from flowviz.errors import FlowvizError
from flowviz.settings import Settings


@dataclass
class Refresh:
    calls: list[dict] | None  # None: nothing could be read this time (see error)
    seconds: float  # how long the snapshot and its analysis took
    error: str = ""
    changed: bool = True  # False: nothing captured since the last refresh, which is repeated unanalysed


def refreshes(source, settings: Settings, interval: float = 1.0):
    """Refreshes of `source` (a Ring or a Collector: snapshot() -> path or None, size() -> what changes
    when packets arrive) while it runs. A capture that did not change is not analysed again: the calls'
    states depend on the capture only (a call waits until the last packet's time, not the clock's)."""
    last, seen = None, object()
    while source.running:
        started = time.monotonic()
        size = source.size()
        if last is not None and size == seen:
            yield Refresh(last.calls, 0.0, last.error, changed=False)
            time.sleep(interval)
            continue
        calls, error = None, ""
        try:
            path = source.snapshot()
            if path is not None:
                calls = Analysis(path, settings, use_cache=False).calls
        except FlowvizError as exc:  # e.g. nothing captured yet; the next refresh tries again
            error = exc.message
        took = time.monotonic() - started
        last, seen = Refresh(calls, took, error), size
        yield last
        time.sleep(max(0.0, interval - took))

"""Task: one capture analysed in a worker process, returned as plain picklable rows; a bad capture is a
result with its error, never an exception."""

from __future__ import annotations

import time

from flowviz.errors import FlowvizError
from flowviz.settings import Settings


def analyze_capture(path: str | list[str], capture_id: str, settings: Settings, use_cache: bool = True,
                    name: str | None = None) -> dict:
    """One capture (or a capture set: a list of paths) -> {capture_id, capture, ok, error, seconds, warnings,
    calls, streams, kpis, registers}.

    Runs in a worker process: never raises for a bad capture, the error is in the result. `name`: the
    capture as the user typed it, when `path` is another spelling of it (a cluster worker gets it absolute)."""
    from flowviz.analyze import Analysis

    started = time.perf_counter()
    result = failed_result(path, capture_id, None)
    analysis = None
    try:
        analysis = Analysis(path, settings, use_cache=use_cache, merge=isinstance(path, list), name=name)
        result.update(calls=analysis.calls, streams=analysis.streams, kpis=analysis.kpis,
                      registers=analysis.registers, ok=True)
    except FlowvizError as exc:
        result["error"] = exc.message
    except Exception as exc:  # a bug in one capture's analysis must not stop the batch
        result["error"] = f"internal error: {type(exc).__name__}: {exc}"
    if analysis is not None and "capture" in analysis.__dict__:  # read: its warnings are known
        result["warnings"] = analysis.warnings
    if analysis is not None:
        result["capture"] = analysis.name
        analysis.close()
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def failed_result(path: str | list[str], capture_id: str, error: str | None) -> dict:
    """The result of a capture that gave nothing (its error says why)."""
    name = " + ".join(path) if isinstance(path, list) else path
    return {"capture_id": capture_id, "capture": name, "ok": False, "error": error, "warnings": [], "calls": [],
            "streams": [], "kpis": [], "registers": {"rrd_ms": [], "failed": 0, "total": 0}, "seconds": 0.0}

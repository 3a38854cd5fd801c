"""Engine: runs one task per capture in a spawn process pool and hands each result back as it arrives.

A worker that dies (killed, out of memory) breaks the pool: the captures it had not finished run again,
each in a pool of its own, so only the capture that kills its worker is reported failed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

from flowviz.batch.task import analyze_capture, failed_result
from flowviz.settings import Settings

Task = Callable[[str, str, Settings, bool], dict]  # (path, capture_id, settings, use_cache) -> result


def cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


def run_tasks(files: list[Path], ids: list[str], settings: Settings, *, use_cache: bool = True, workers: int = 1,
              task: Task | None = None, on_result: Callable[[dict], object] | None = None) -> list:
    """task (default: analyze_capture) for every file; what on_result(result) returns (default: the result),
    in input order. on_result runs in this process as each result arrives."""
    task = task or analyze_capture
    kept: dict[int, object] = {}

    def done(i: int, result: dict) -> None:
        kept[i] = on_result(result) if on_result else result

    todo = list(range(len(files)))
    broken = _run_pool(files, ids, settings, use_cache, todo, max(1, min(workers, len(files))), task, done)
    for i in broken:  # alone now: a crash here is this capture's own
        if _run_pool(files, ids, settings, use_cache, [i], 1, task, done):
            done(i, failed_result(task_input(files[i]), ids[i], "the worker process died (out of memory? killed?)"))
    return [kept[i] for i in range(len(files))]


def task_input(item) -> str | list[str]:
    """What a task gets for one item: a capture's path, or the paths of a capture set."""
    return [str(p) for p in item] if isinstance(item, (list, tuple)) else str(item)


def _quiet_worker() -> None:
    """Workers shrug off Ctrl-C (no traceback each): the parent stops them and says so once. A handler,
    not SIG_IGN, so that the programs they run (tshark) still stop on Ctrl-C."""
    signal.signal(signal.SIGINT, _ignore)


def _ignore(signum, frame) -> None:
    pass


def _run_pool(files, ids, settings: Settings, use_cache: bool, todo: list[int], workers: int, task,
              done) -> list[int]:
    """Runs `todo` in one pool; returns the ones lost to a broken pool."""
    lost: list[int] = []
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_quiet_worker)
    try:
        futures = {pool.submit(task, task_input(files[i]), ids[i], settings, use_cache): i for i in todo}
        for future in as_completed(futures):
            i = futures[future]
            try:
                result = future.result()
            except BrokenProcessPool:
                lost.append(i)
                continue
            except Exception as exc:  # pickling and other pool trouble: that capture only
                result = failed_result(task_input(files[i]), ids[i], f"internal error: {type(exc).__name__}: {exc}")
            done(i, result)
    except BaseException:  # Ctrl-C: drop the queue, stop the workers this pool started
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise
    pool.shutdown(wait=True)
    return sorted(lost)

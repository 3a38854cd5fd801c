"""Engine: runs one task per capture (or capture set) and hands each result back as it arrives, either in a
spawn process pool on this machine (the default) or as tasks on a Dask cluster (docs/scale.md).

Pool: a worker that dies (killed, out of memory) breaks the pool: the captures it had not finished run
again, each in a pool of its own, so only the capture that kills its worker is reported failed.

Cluster: what travels is the task's input (paths, settings) and its result (plain rows), never frames;
each worker reads the capture at the same path. A task whose worker is lost is run again by the scheduler
(its allowed-failures, 3 by default); a capture whose workers were lost more often is reported failed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import uuid
from concurrent.futures import CancelledError, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable

from flowviz.batch.task import analyze_capture, failed_result
from flowviz.errors import FlowvizError
from flowviz.settings import Settings

Task = Callable[[str, str, Settings, bool], dict]  # (path, capture_id, settings, use_cache) -> result


def cores() -> int:
    """Cores this process may run on (a container or taskset may allow fewer than the machine has)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


WORKER_DIED = "the worker process died (out of memory? killed?)"


def run_tasks(files: list[Path], ids: list[str], settings: Settings, *, use_cache: bool = True, workers: int = 1,
              task: Task | None = None, on_result: Callable[[dict], object] | None = None, client=None) -> list:
    """task (default: analyze_capture) for every file; what on_result(result) returns (default: the result),
    in input order. on_result runs in this process as each result arrives. With client (a
    distributed.Client, see connect()) the tasks run on its cluster and `workers` is not used."""
    task = task or analyze_capture
    kept: dict[int, object] = {}

    def done(i: int, result: dict) -> None:
        kept[i] = on_result(result) if on_result else result

    todo = list(range(len(files)))
    if client is not None:
        _run_cluster(client, files, ids, settings, use_cache, todo, task, done)
        return [kept[i] for i in range(len(files))]
    broken = _run_pool(files, ids, settings, use_cache, todo, max(1, min(workers, len(files))), task, done)
    for i in broken:  # alone now: a crash here is this capture's own
        if _run_pool(files, ids, settings, use_cache, [i], 1, task, done):
            done(i, failed_result(task_input(files[i]), ids[i], WORKER_DIED))
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


# A task that raised (not a bad capture: analyze_capture returns those) runs once more before it counts.
TASK_RETRIES = 1


def connect(address: str):
    """A distributed.Client on the scheduler at address (tcp://HOST:8786), checked to be usable: it has
    workers, and each has this flowviz (the task is sent by name, the worker imports it)."""
    from distributed import Client

    try:
        client = Client(address, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise FlowvizError(f"cannot reach the Dask scheduler at {address} ({exc}); start one with "
                           "`dask scheduler` and give its tcp://HOST:PORT") from None
    try:
        versions = client.run(_flowviz_version)
    except Exception as exc:
        client.close()
        raise FlowvizError(f"the Dask workers of {address} cannot be asked ({exc})") from None
    from flowviz import __version__

    if not versions:
        client.close()
        raise FlowvizError(f"the Dask scheduler at {address} has no worker; start some with "
                           f"`dask worker {address}`")
    wrong = sorted(f"{w} ({v or 'no flowviz'})" for w, v in versions.items() if v != __version__)
    if wrong:
        client.close()
        raise FlowvizError(f"Dask workers without flowviz {__version__}: {', '.join(wrong)}; install the same "
                           "flowviz in every worker's Python environment")
    return client


def cluster_summary(client) -> dict:
    """{scheduler, workers, threads, dashboard (URL or None when the scheduler serves none)}."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    port = info.get("services", {}).get("dashboard")
    address = info.get("address") or client.scheduler.address
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return {"scheduler": address, "workers": len(workers),
            "threads": sum(w.get("nthreads", 0) for w in workers.values()),
            "dashboard": f"http://{host}:{port}/status" if port else None}


def _absolute(item):
    return [Path(p).absolute() for p in item] if isinstance(item, (list, tuple)) else Path(item).absolute()


def _flowviz_version() -> str | None:
    """Run on each worker by connect()."""
    try:
        from flowviz import __version__
    except ImportError:
        return None
    return __version__


def _run_cluster(client, files, ids, settings: Settings, use_cache: bool, todo: list[int], task, done) -> None:
    """Every item of `todo` as one task on the cluster, results handed to done() as the scheduler reports
    them finished."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    run = uuid.uuid4().hex[:8]  # keys unique to this batch: two batches on one cluster never share a result
    # absolute paths: a worker's current folder is not ours (so the capture names in the rows are absolute too)
    inputs = {i: task_input(_absolute(files[i])) for i in todo}
    # the rows name a capture as the user typed it, as in a local run
    names = {i: {"name": str(files[i])} if task is analyze_capture and not isinstance(files[i], (list, tuple))
             else {} for i in todo}
    futures = {client.submit(task, inputs[i], ids[i], settings, use_cache, **names[i],
                             key=f"flowviz-{run}-{ids[i]}", retries=TASK_RETRIES, pure=False): i for i in todo}
    done_count = 0
    try:
        for future in as_completed(futures, loop=client.loop):
            i = futures[future]
            try:
                result = future.result()
            except CancelledError as exc:  # not by us: the cluster dropped it (the scheduler lost, restarted)
                raise FlowvizError(f"the Dask cluster dropped the batch after {done_count} of {len(todo)} captures "
                                   f"({getattr(exc, 'reason', 'cancelled')}); check the scheduler and run the "
                                   "batch again") from None
            except KilledWorker:  # the scheduler gave up: the workers running this task died, as often as it allows
                result = failed_result(inputs[i], ids[i], "the worker process died on every try (out of memory? "
                                                          "killed?)")
            except Exception as exc:  # the task raised on every try, or could not be sent or received
                result = failed_result(inputs[i], ids[i], f"internal error: {type(exc).__name__}: {exc}")
            future.release()  # the result is with us now: the cluster need not keep it
            done(i, result)
            done_count += 1
    except BaseException:  # Ctrl-C: take our tasks off the cluster, which goes on serving others
        try:
            client.cancel(list(futures))
        except Exception:  # the scheduler is gone too: nothing to take off
            pass
        raise

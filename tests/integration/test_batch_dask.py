"""`flowviz batch --scheduler`: a real Dask cluster on 127.0.0.1 (one `dask scheduler` and two `dask worker`
processes, started here and stopped at the end).

- The lab and synth captures on the cluster give the dataset the local process pool gives, table for table.
- A worker killed (SIGKILL) while it analyses a capture: the scheduler runs that task again on the other
  worker and the batch completes with every capture. With a scheduler that allows no failure, the same
  kill makes the captures that worker held failed ones, "the worker process died", and the rest ok.
  The slow capture is made by benchmarks/make_capture.py, whose construction gives its numbers (--calls
  calls, two RTP streams each).
- An unreachable scheduler, a scheduler lost mid-batch and an fsspec URL as OUTDIR are one-line errors.

The workers run in a folder of their own: the paths they get must not depend on the batch's folder.
Both runs use --no-cache so that the cluster's workers really decode the captures.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import distributed
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flowviz import batch
from tests.conftest import SAMPLES

REPO = Path(__file__).resolve().parents[2]
LAB = SAMPLES / "lab"
SYNTH = SAMPLES / "synth"
EXPECTED_LAB = json.loads((LAB / "expected.json").read_text())["captures"]
TIMING = {"seconds"}  # how long a capture took: the only column allowed to differ between runs
SLOW_CALLS = 40


def flowviz_batch(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", "batch", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO, env=env)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _wait_for(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


class Cluster:
    """A `dask scheduler` and its `dask worker` processes, each one thread, no nanny (a killed worker stays
    dead, so the lost task can only be finished by another worker)."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None):
        self.folder = folder
        self.env = {**os.environ, **(env or {})}
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.address = ""

    def _start(self, *args: str, log: str) -> subprocess.Popen:
        with open(self.folder / log, "wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=self.folder, stdout=out,
                                       stderr=subprocess.STDOUT, env=self.env)
        self.processes.append(process)
        return process

    def start(self, workers: int) -> None:
        info = self.folder / "scheduler.json"
        self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", "127.0.0.1:0",
                    "--scheduler-file", str(info), log="scheduler.log")
        _wait_for(lambda: info.exists() and info.read_text().strip().endswith("}"), "the scheduler")
        self.address = json.loads(info.read_text())["address"]
        for n in range(workers):
            self.workers.append(self._start("worker", self.address, "--nthreads", "1", "--no-nanny", "--host",
                                            "127.0.0.1", "--no-dashboard", "--name", f"w{n}", log=f"worker{n}.log"))
        with self.client() as client:
            client.wait_for_workers(workers, timeout=60)

    def client(self):
        return distributed.Client(self.address, set_as_default=False)

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        running.start(workers=2)
        yield running
    finally:
        running.stop()


def _frames(out: Path) -> dict[str, pl.DataFrame]:
    tables = {name: batch.read_dataset(out, name) for name in batch.DATASETS}
    tables["captures"] = pl.read_parquet(out / "captures.parquet")
    tables["kpis_all"] = pl.read_parquet(out / "kpis_all.parquet")
    return {name: _sorted(frame.drop([c for c in frame.columns if c in TIMING])) for name, frame in tables.items()}


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    keys = [c for c, dtype in frame.schema.items() if not dtype.is_nested()]
    return frame.sort(keys, nulls_last=True, maintain_order=True)


INPUTS = {"files": [str(LAB), str(SYNTH)], "set": [str(SAMPLES / "points"), "--set-per-folder"]}


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory, tshark) -> dict[tuple[str, str], tuple[Path, subprocess.CompletedProcess]]:
    """The lab and synth captures one by one, and the points of the lab's reference call as one capture set
    (--set-per-folder: one task, a list of paths), each on the local pool and on the cluster: the four
    batches at once, to save time. {(inputs, "local" or "cluster"): (OUTDIR, finished process)}"""
    where = {"local": ["--workers", "2"], "cluster": ["--scheduler", cluster.address]}
    started = {}
    for inputs, args in INPUTS.items():
        for engine, options in where.items():
            out = tmp_path_factory.mktemp(f"{inputs}-{engine}") / "out"
            started[inputs, engine] = out, subprocess.Popen(
                [sys.executable, "-m", "flowviz", "--no-cache", "batch", *args, "-o", str(out), *options],
                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finished = {}
    for key, (out, process) in started.items():
        stdout, stderr = process.communicate(timeout=300)
        finished[key] = out, subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return finished


def _assert_same_dataset(local: Path, cluster: Path) -> dict[str, pl.DataFrame]:
    mine, theirs = _frames(local), _frames(cluster)
    for name in mine:
        try:
            assert_frame_equal(mine[name], theirs[name])
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    return theirs


def test_cluster_dataset_equals_the_local_one(runs, cluster):
    (local_out, local), (cluster_out, remote) = runs["files", "local"], runs["files", "cluster"]
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    first = remote.stderr.splitlines()[0]
    assert first.startswith(f"flowviz: Dask scheduler {cluster.address}: 2 workers, 2 threads; "
                            "dashboard http://127.0.0.1:")
    captures = _assert_same_dataset(local_out, cluster_out)["captures"]
    assert captures.height == len(list(LAB.glob("*.pcap"))) + len(
        [p for p in SYNTH.iterdir() if p.suffix in (".pcap", ".pcapng", ".gz")])
    for name, expected in EXPECTED_LAB.items():  # and right, by the lab's construction
        [row] = captures.filter(pl.col("capture_id") == f"lab__{name}").to_dicts()
        assert (row["ok"], row["calls"], row["streams"]) == (True, expected["calls"], expected["rtp_streams"]), name
    # the errors name the capture once, as in a local run
    assert [line for line in remote.stderr.splitlines() if line.startswith("flowviz: error: ")] == \
        [line for line in local.stderr.splitlines() if line.startswith("flowviz: error: ")]


def test_a_capture_set_on_the_cluster_equals_the_local_one(runs):
    (local_out, local), (cluster_out, remote) = runs["set", "local"], runs["set", "cluster"]
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    [row] = _assert_same_dataset(local_out, cluster_out)["captures"].to_dicts()
    points = SAMPLES / "points"
    assert row["ok"] and row["capture"].count(" + ") == len(list(points.glob("*.pcap"))) - 1
    assert row["calls"] == 1  # the one reference call, seen at every point


@pytest.fixture(scope="module")
def slow_capture(tmp_path_factory) -> Path:
    """A capture that takes a worker seconds to analyse, so that it can be killed in the middle."""
    slow = tmp_path_factory.mktemp("slow") / "slow.pcap"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_capture.py"), str(slow), "--packets", "400000",
                    "--calls", str(SLOW_CALLS)], check=True, capture_output=True, timeout=120)
    return slow


def _batch_killing_a_worker(cluster: Cluster, slow: Path, out: Path) -> tuple[int, str]:
    """`flowviz batch` of slow + the lab on the cluster; the worker running slow is killed while it does.
    Returns the batch's exit code and stderr."""
    run = subprocess.Popen([sys.executable, "-m", "flowviz", "--no-cache", "batch", str(slow), str(LAB), "-o",
                            str(out), "--scheduler", cluster.address], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        with cluster.client() as client:
            pids = client.run(os.getpid)
            # by value: the workers run in another folder and cannot import this test module
            executing = lambda dask_worker: [str(ts.key) for ts in dask_worker.state.executing]  # noqa: E731

            def running_slow():
                assert run.poll() is None, "the batch ended before the slow capture was seen running"
                return [w for w, keys in client.run(executing).items() if any(slow.name in k for k in keys)]

            [worker] = _wait_for(running_slow, "the slow capture to run")
            [victim] = [p for p in cluster.workers if p.pid == pids[worker]]
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=15)
            _wait_for(lambda: len(client.scheduler_info()["workers"]) == len(cluster.workers) - 1,
                      "the scheduler to drop the worker")
        _, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    return run.returncode, stderr


def test_worker_killed_mid_task_the_capture_runs_again(cluster, slow_capture, tmp_path, tshark):
    code, stderr = _batch_killing_a_worker(cluster, slow_capture, tmp_path / "out")
    assert code == 0, stderr
    captures = pl.read_parquet(tmp_path / "out" / "captures.parquet")
    assert captures["ok"].all(), captures.filter(~pl.col("ok")).to_dicts()
    assert captures.height == 1 + len(EXPECTED_LAB)
    [row] = captures.filter(pl.col("capture_id").str.contains(slow_capture.name)).to_dicts()
    assert (row["calls"], row["streams"]) == (SLOW_CALLS, 2 * SLOW_CALLS)  # make_capture's construction
    calls = batch.read_dataset(tmp_path / "out", "calls")
    assert calls.filter(pl.col("capture_id") == row["capture_id"]).height == SLOW_CALLS


def test_scheduler_lost_mid_batch_is_a_one_line_error(cluster, slow_capture, tmp_path, tshark):
    """The last user of the module's cluster: its scheduler is killed while a task runs."""
    run = subprocess.Popen([sys.executable, "-m", "flowviz", "--no-cache", "batch", str(slow_capture), str(LAB),
                            "-o", str(tmp_path / "out"), "--scheduler", cluster.address], cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with cluster.client() as client:
            executing = lambda dask_worker: [str(ts.key) for ts in dask_worker.state.executing]  # noqa: E731
            _wait_for(lambda: any(keys for keys in client.run(executing).values()), "a task to run")
        scheduler = cluster.processes[0]
        scheduler.send_signal(signal.SIGKILL)
        scheduler.wait(timeout=15)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 2
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("flowviz: error: the Dask cluster dropped the batch after ") and "run the batch again" in last


def test_worker_lost_on_every_try_is_that_capture_failed(slow_capture, tmp_path_factory, tmp_path, tshark):
    """A scheduler that allows no failure gives up at once (KilledWorker) on the tasks the lost worker held
    (the slow one, and one the scheduler may have queued on it): the batch reports those failed, names the
    cause, and finishes the others."""
    strict = Cluster(tmp_path_factory.mktemp("dask-strict"), {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    try:
        strict.start(workers=2)
        code, stderr = _batch_killing_a_worker(strict, slow_capture, tmp_path / "out")
    finally:
        strict.stop()
    assert code == 0, stderr  # the lab captures were analysed
    captures = pl.read_parquet(tmp_path / "out" / "captures.parquet")
    assert captures.height == 1 + len(EXPECTED_LAB)
    failed = captures.filter(~pl.col("ok"))
    assert failed["capture_id"].str.contains(slow_capture.name).any()
    assert 1 <= failed.height < captures.height
    assert all(error.startswith("the worker process died") for error in failed["error"])
    assert sum("the worker process died" in line for line in stderr.splitlines()) == failed.height


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_scheduler_is_a_one_line_error(tmp_path):
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    proc = flowviz_batch(str(LAB), "-o", str(tmp_path / "out"), "--scheduler", f"tcp://127.0.0.1:{_free_port()}",
                         env=env)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("flowviz: error: cannot reach the Dask scheduler at tcp://127.0.0.1:")
    assert "`dask scheduler`" in line


def test_url_as_outdir_is_refused_before_any_work(tmp_path):
    proc = flowviz_batch(str(LAB), "-o", "s3://bucket/flowviz")
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "OUTDIR must be a folder" in line and "Traceback" not in proc.stderr

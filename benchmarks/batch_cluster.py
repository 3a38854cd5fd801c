#!/usr/bin/env python3
"""`flowviz batch` on the local process pool and on a two-worker Dask cluster on this machine (docs/scale.md):
the same files, in the same run, each the whole command a user types, timed by wall clock.

    .venv/bin/python benchmarks/batch_cluster.py [PATHS...] [--workers 2] [--big 0] [--packets 300000]

PATHS default to sample_pcaps/. --big N adds N captures made by benchmarks/make_capture.py (--packets
packets each), where the analysis, not starting processes, takes the time. Rows:
- local pool:      flowviz --no-cache batch PATHS -o OUT --workers N
- cluster (cold):  flowviz --no-cache batch PATHS -o OUT --scheduler tcp://127.0.0.1:PORT, the workers'
                   first batch (they import flowviz on their first task)
- cluster (warm):  the same command again on the same workers
The cluster is distributed.LocalCluster: N worker processes of one thread each, on 127.0.0.1, started before
the timings. Each cluster dataset is checked against the local one (same captures, calls and streams).
Last, what travels back over the wire: the pickled size of every capture's result, next to the captures'
own size (results come from one more run on the cluster, through flowviz.batch.run_tasks).
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]


def timed_batch(paths: list[str], out: Path, *options: str) -> tuple[float, pl.DataFrame]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", "batch", *paths, "-o", str(out), *options],
                          capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"flowviz batch failed ({proc.returncode}):\n{proc.stderr}")
    return seconds, pl.read_parquet(out / "captures.parquet").drop("seconds").sort("capture_id")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", default=[str(REPO / "sample_pcaps")])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--big", type=int, default=0, help="generated captures to add (default: none)")
    parser.add_argument("--packets", type=int, default=300_000, help="packets per generated capture")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from flowviz import batch
    from flowviz.settings import Settings

    with tempfile.TemporaryDirectory(prefix="flowviz-batch-cluster-") as tmp:
        tmp_path = Path(tmp)
        paths = [str(Path(p).absolute()) for p in args.paths]
        for n in range(args.big):
            big = tmp_path / "big" / f"big{n}.pcap"
            big.parent.mkdir(exist_ok=True)
            subprocess.run([sys.executable, str(REPO / "benchmarks" / "make_capture.py"), str(big), "--packets",
                            str(args.packets), "--seed", str(n + 1)], check=True, capture_output=True)
        if args.big:
            paths.append(str(tmp_path / "big"))
        files, _ = batch.find_inputs(paths)
        size = sum(f.stat().st_size for f in files)
        load = os.getloadavg()[0]
        print(f"{len(files)} captures, {size / 1e6:.1f} MB; {os.cpu_count()} cores, load average {load:.1f} "
              f"at the start; {args.workers} workers", flush=True)

        local, reference = timed_batch(paths, tmp_path / "local", "--workers", str(args.workers))
        print(f"{'local pool':<16} {local:6.1f} s", flush=True)
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster:
            for run in ("cold", "warm"):
                seconds, found = timed_batch(paths, tmp_path / f"cluster-{run}", "--scheduler",
                                             cluster.scheduler_address)
                same = found.equals(reference)
                print(f"{'cluster (' + run + ')':<16} {seconds:6.1f} s   dataset equal to the local one: {same}",
                      flush=True)
            with Client(cluster.scheduler_address, set_as_default=False) as client:
                sizes = batch.run_tasks(files, batch.capture_ids(files), Settings(), use_cache=False,
                                        on_result=lambda result: len(pickle.dumps(result)), client=client)
        print(f"results sent back: {sum(sizes) / 1e6:.2f} MB in all, largest {max(sizes) / 1e3:.0f} kB, for "
              f"{size / 1e6:.1f} MB of captures (only paths and settings are sent out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

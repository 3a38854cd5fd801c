#!/usr/bin/env python3
"""Capture sets (docs/capture-sets.md): what reading two capture points as one costs, side by side with what
a user does without flowviz (mergecap, then tshark or sngrep on the merged file), on the same files, in the
same run.

    .venv/bin/python benchmarks/capture_sets.py [--packets 300000] [--repeat 3] [--keep DIR]

The two points are one generated capture (benchmarks/make_capture.py) and the same capture with its clock
250 ms ahead (editcap -t 0.25): two taps on the same link, every packet seen at both, the worst case for
matching. Rows, each the whole command a user types, timed by wall clock with peak RSS:
- flowviz --no-cache calls A                 (one point alone, the baseline)
- flowviz --no-cache calls --merge A B       (the set: offsets, copies dropped, one timeline)
- mergecap -w M A B                          (what tshark and sngrep need first)
- tshark -q -r M -z sip,stat                 (on the merged file: every message counted twice)
- sngrep -N -q -r -I M                       (idem)
The flowviz set row is checked: the offset found must be 250 ms and the calls those of A alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ingest import run_once  # noqa: E402  (the same timing and peak-RSS code as the ingest benchmark)

FLOWVIZ = HERE.parent / ".venv" / "bin" / "flowviz"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packets", type=int, default=300_000)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", default=None, metavar="DIR", help="keep the generated files in DIR")
    a = parser.parse_args()
    work = Path(a.keep or tempfile.mkdtemp(prefix="flowviz-bench-sets-"))
    work.mkdir(parents=True, exist_ok=True)
    point_a, point_b, merged = work / "a.pcap", work / "b.pcap", work / "merged.pcap"
    if not point_a.exists():
        subprocess.run([sys.executable, str(HERE / "make_capture.py"), str(point_a), "--packets", str(a.packets),
                        "--calls", str(a.calls)], check=True, stdout=subprocess.DEVNULL)
    if not point_b.exists():
        subprocess.run(["editcap", "-t", "0.25", str(point_a), str(point_b)], check=True)
    flowviz = str(FLOWVIZ) if FLOWVIZ.exists() else "flowviz"
    rows = [
        ("flowviz calls, one point", [flowviz, "--no-cache", "calls", str(point_a), "--format", "json"]),
        ("flowviz calls --merge, two points", [flowviz, "--no-cache", "calls", "--merge", str(point_a), str(point_b),
                                               "--format", "json"]),
        ("mergecap A B", ["mergecap", "-F", "pcap", "-w", str(merged), str(point_a), str(point_b)]),
        ("tshark -z sip,stat on the merged file", ["tshark", "-q", "-r", str(merged), "-z", "sip,stat"]),
        ("sngrep on the merged file", ["sngrep", "-N", "-q", "-r", "-I", str(merged)]),
    ]
    results = {name: [] for name, _ in rows}
    for i in range(a.repeat):
        for name, argv in rows:
            if not shutil.which(argv[0]) and not os.access(argv[0], os.X_OK):
                continue
            run = run_once(argv, 1800, str(work / f"out-{i}"))
            if run.get("rc") != 0:
                print(f"{name}: exit {run.get('rc')}: {run.get('stderr', '')[-300:]}", file=sys.stderr)
                continue
            results[name].append((run["wall"], run["rss_kb"] / 1024))
            if name.startswith("flowviz calls --merge"):
                calls = json.loads(run["stdout"])
                assert all(c["retransmissions"] == 0 for c in calls), "copies counted as retransmissions"
    info = subprocess.run([flowviz, "info", "--merge", str(point_a), str(point_b), "--format", "json"],
                          capture_output=True, text=True, check=True)
    found = json.loads(info.stdout)["capture_set"]["points"][1]
    print(f"{a.packets:,} packets per point, {a.calls} calls; offset found {found['offset_s'] * 1e3:.3f} ms "
          f"({found['method']}), {found['duplicates_dropped']:,} copies dropped; {a.repeat} rounds\n")
    base = statistics.median(w for w, _ in results["flowviz calls, one point"]) if results[
        "flowviz calls, one point"] else None
    print("| command | median s | best s | peak RSS MB | x one point |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in results.items():
        if not runs:
            print(f"| {name} | - | - | - | - |")
            continue
        median = statistics.median(w for w, _ in runs)
        print(f"| {name} | {median:.2f} | {min(w for w, _ in runs):.2f} | {max(r for _, r in runs):.0f} | "
              f"{median / base:.2f} |" if base else "")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A short run of the fuzzing harness (benchmarks/fuzz.py, issue 19 Deliver 2) on a fixed seed: 12 mutants
of the lab and synthetic captures, one CLI command each in turn (info, calls, streams, diagnose). The
long run (`make fuzz`, 30 minutes, the corpus too) is documented in docs/robustness.md "Fuzzing".

A failure names the mutant; rebuild it with
    .venv/bin/python benchmarks/fuzz.py --seed 19 --sources lab,synth --regenerate INDEX --out DIR
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_fuzz_short_run(tmp_path: Path):
    summary = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "fuzz.py"), "--count", "12", "--seed", "19",
         "--sources", "lab,synth", "--rotate", "--timeout", "60", "--out", str(tmp_path / "failing"),
         "--json", str(summary)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert summary.exists(), done.stderr[-3000:]
    s = json.loads(summary.read_text())
    report = done.stdout + done.stderr[-3000:]
    assert s["mutants"] == 12 and s["commands"] >= 12, report
    assert s["tracebacks"] == 0, report
    assert set(s["exit_codes"]) <= {"0", "1", "2"}, report
    assert s["bad_exit_codes"] == 0, report
    assert s["timeouts"] == 0, report
    assert s["leftover_processes"] == 0 and s["leftover_files"] == 0, report
    assert s["failing_mutants"] == [], report
    assert done.returncode == 0, report

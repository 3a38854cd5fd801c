"""Mutation check (issue 20 item 6): deliberate bugs put into a copy of flowviz, one at a time; the tests
named for each bug must fail. Run on a schedule (`make mutants`), not in CI: about 6 minutes on two cores.

    .venv/bin/python benchmarks/mutants.py                 # every mutant, a table at the end
    .venv/bin/python benchmarks/mutants.py --only via-index --only 486-state
    .venv/bin/python benchmarks/mutants.py --list

For each mutant: the repository's flowviz/ and tests/ (plus pyproject.toml) are copied into a temporary
folder, sample_pcaps/ and lab/ linked; the mutant's old text is replaced by its new text (it must occur
exactly once in the file, or the run stops: a mutant that no longer applies is a broken check, not a
survivor); pytest runs the named test files there, with -x, against the copy (PYTHONPATH and the working
directory: the copy is what `import flowviz` finds; checked before anything runs).

All runs share one decode cache, FLOWVIZ_TEST_CACHE_DIR, warmed first by the unmutated copy running every
named test file (which must pass: a failing baseline would count every mutant as killed). An ingest mutant
then meets cache entries the correct code wrote: it is only killed if the cache key sees the code change
(issue 20 item 1).

Killed: pytest exit code 1 (tests failed). Survived: exit code 0. Anything else (collection error, timeout)
is reported as an error, not as killed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to the repository
    old: str  # exact text, found exactly once in the file
    new: str
    tests: tuple[str, ...]  # test files (relative to the repository) that must catch it
    k: str | None = None  # optional pytest -k expression, to keep long files short
    why: str = ""


MUTANTS = [
    # --- the six of issue 20 -----------------------------------------------------------------------------
    Mutant("jitter-sign", "flowviz/media/kernel.py",
           "diff = abs(t - (t_ref[s] + nominal - nominal_ref[s]))",
           "diff = t - (t_ref[s] + nominal - nominal_ref[s])",
           ("tests/unit/test_media_stats.py",),
           why="|D| in J += (|D| - J)/16 made signed (RFC 3550 A.8)"),
    Mutant("via-index", "flowviz/sip/hops.py",
           'link_branch=pl.col("via_branches").list.get(1),',
           'link_branch=pl.col("via_branches").list.get(0),',
           ("tests/unit/test_correlation_hops.py",),
           why="a forwarded request is linked by its own top Via instead of the second one"),
    Mutant("486-state", "flowviz/sip/states.py",
           'return "busy"\n        return "rejected"',
           'return "rejected"\n        return "busy"',
           ("tests/unit/test_correlation_calls.py",),
           why="busy and rejected swapped for final failures"),
    Mutant("line-end-rule", "flowviz/ingest/sip_udp.py",
           "line_end = min(ends) if ends else len(payload)",
           "line_end = lf if lf >= 0 else len(payload)",
           ("tests/integration/test_sip_udp.py",),
           why="the first line ends at LF only, not at the first CR, LF or CRLF (tshark's rule)"),
    Mutant("redact-ipv6-dst", "flowviz/export/redact/packets.py",
           "for at in (o + 8, o + 24):",
           "for at in (o + 8,):",
           ("tests/integration/test_redact_leaks.py",), k="ipv6_call",
           why="the IPv6 destination address is left in redacted packets"),
    Mutant("swapped-addresses", "flowviz/ingest/sip_udp.py",
           '"src_ip": src, "dst_ip": dst,',
           '"src_ip": dst, "dst_ip": src,',
           ("tests/integration/test_calls_lab.py",),
           why="UDP SIP messages get source and destination swapped in ingest (read through the warm cache)"),
    # --- more in media/ and sip/ -------------------------------------------------------------------------
    Mutant("jitter-gain", "flowviz/media/kernel.py",
           "jitter[s] = (15.0 * jitter[s] + diff) / 16.0",
           "jitter[s] = (7.0 * jitter[s] + diff) / 8.0",
           ("tests/unit/test_media_stats.py",),
           why="jitter smoothing 1/8 instead of RFC 3550's 1/16"),
    Mutant("seq-wrap", "flowviz/media/kernel.py",
           "ext_seq[s] += d_seq - 0x10000 if d_seq >= 0x8000 else d_seq",
           "ext_seq[s] += d_seq",
           ("tests/unit/test_media_stats.py",),
           why="a step back in sequence numbers (reordering, duplicates) read as a jump of ~65535"),
    Mutant("mos-formula", "flowviz/media/mos.py",
           "return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)",
           "return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 + r)",
           ("tests/unit/test_media_mos.py",),
           why="G.107 annex B R -> MOS with a wrong sign"),
    Mutant("rtpmap-channels", "flowviz/media/codecs.py",
           "rate = int(parts[1]) if len(parts) > 1 and parts[1].strip().isdigit() else 0",
           "rate = int(parts[-1]) if len(parts) > 1 and parts[-1].strip().isdigit() else 0",
           ("tests/unit/test_media_binding.py", "tests/unit/test_media_stats.py",
            "tests/integration/test_media_corpus.py"),
           why="'opus/48000/2' read as a 2 Hz clock (the channel count)"),
    Mutant("487-cancelled", "flowviz/sip/states.py",
           "CANCELLED = {487}",
           "CANCELLED = {488}",
           ("tests/unit/test_correlation_calls.py",),
           why="487 Request Terminated no longer makes a call cancelled"),
    Mutant("top-branch", "flowviz/sip/transactions.py",
           'top_branch=pl.col("via_branches").list.first(),',
           'top_branch=pl.col("via_branches").list.last(),',
           ("tests/unit/test_correlation_transactions.py", "tests/integration/test_calls_lab.py"),
           why="transactions keyed by the bottom Via's branch (differs only behind proxies)"),
    Mutant("request-2xx", "flowviz/sip/states.py",
           "    if final_status < 300:\n        return \"completed\"",
           "    if final_status < 200:\n        return \"completed\"",
           ("tests/unit/test_correlation_calls.py",),
           why="a non-INVITE request answered 2xx counted as diverted"),
]


def _copy_tree(base: Path) -> None:
    # copy2 keeps mtimes, so __pycache__ (and numba's kernel cache) stays valid for unchanged files
    shutil.copytree(REPO / "flowviz", base / "flowviz", symlinks=True)
    shutil.copytree(REPO / "tests", base / "tests", symlinks=True,
                    ignore=shutil.ignore_patterns(".pytest_cache"))
    shutil.copy2(REPO / "pyproject.toml", base / "pyproject.toml")
    for linked in ("sample_pcaps", "lab"):
        (base / linked).symlink_to(REPO / linked)


def _apply(base: Path, mutant: Mutant) -> None:
    path = base / mutant.file
    text = path.read_text(encoding="utf-8")
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name}: its old text occurs {count} times in {mutant.file} "
                         f"(expected once); update the mutant list:\n{mutant.old}")
    path.write_text(text.replace(mutant.old, mutant.new), encoding="utf-8")


def _env(base: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(base), FLOWVIZ_TEST_CACHE_DIR=str(cache), PYTHONDONTWRITEBYTECODE="1")
    env.pop("FLOWVIZ_CACHE_DIR", None)
    # the copy has no ../shared/pcaps beside it: point it at the corpus the repository's tests use
    sys.path.insert(0, str(REPO))
    from tests.conftest import CORPUS_DIR

    env.setdefault("FLOWVIZ_CORPUS_DIR", str(CORPUS_DIR))
    return env


def _check_import(base: Path, env: dict[str, str]) -> None:
    out = subprocess.run([sys.executable, "-c", "import flowviz; print(flowviz.__file__)"], cwd=base, env=env,
                         capture_output=True, text=True, timeout=120)
    where = out.stdout.strip()
    if not where.startswith(str(base)):
        raise SystemExit(f"the copy's flowviz is not the one imported ({where or out.stderr}): the check would "
                         "test the repository, not the mutant")


def _pytest(base: Path, env: dict[str, str], tests: list[str], k: str | None, stop: bool,
            timeout: int) -> tuple[int | None, float, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--tb=line", *tests]
    if k:
        cmd += ["-k", k]
    if stop:
        cmd.append("-x")
    start = time.monotonic()
    try:
        out = subprocess.run(cmd, cwd=base, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - start, "timeout"
    lines = [line for line in out.stdout.splitlines() if line.strip()]
    return out.returncode, time.monotonic() - start, lines[-1] if lines else out.stderr.strip()[-300:]


def run(mutants: list[Mutant], cache: Path, timeout: int, keep: bool) -> list[tuple[Mutant, str, float, str]]:
    work = Path(tempfile.mkdtemp(prefix="flowviz-mutants-"))
    results = []
    try:
        base = work / "baseline"
        _copy_tree(base)
        env = _env(base, cache)
        _check_import(base, env)
        files = sorted({t for m in mutants for t in m.tests if m.k is None})
        keyed = [m for m in mutants if m.k is not None]
        print(f"baseline (warms the cache {cache}): {len(files)} test files", flush=True)
        code, took, last = _pytest(base, env, files, None, stop=False, timeout=timeout * 3)
        for m in keyed:
            if code == 0:
                code, more, last = _pytest(base, env, list(m.tests), m.k, stop=False, timeout=timeout)
                took += more
        print(f"  baseline: exit {code} in {took:.0f} s: {last}", flush=True)
        if code != 0:
            raise SystemExit("the unmutated copy fails its tests: fix that first (no mutant can be judged)")
        for mutant in mutants:
            base = work / mutant.name
            _copy_tree(base)
            _apply(base, mutant)
            env = _env(base, cache)
            code, took, last = _pytest(base, env, list(mutant.tests), mutant.k, stop=True, timeout=timeout)
            verdict = {0: "survived", 1: "killed"}.get(code, "error")
            print(f"  {mutant.name:<18} {verdict:<8} {took:5.0f} s  {last}", flush=True)
            results.append((mutant, verdict, took, last))
            if not keep:
                shutil.rmtree(base, ignore_errors=True)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return results


def table(results) -> str:
    rows = ["| mutant | file | tests | result | seconds |", "|---|---|---|---|---|"]
    for mutant, verdict, took, _ in results:
        tests = ", ".join(Path(t).name for t in mutant.tests) + (f" -k {mutant.k}" if mutant.k else "")
        rows.append(f"| {mutant.name} | {mutant.file} | {tests} | {verdict} | {took:.0f} |")
    killed = sum(1 for _, verdict, _, _ in results if verdict == "killed")
    rows.append(f"\nkilled {killed}/{len(results)}")
    return "\n".join(rows)


MUTMUT_CONFIG = """
[tool.mutmut]
source_paths = ["flowviz"]
only_mutate = ["{target}"]
pytest_add_cli_args_test_selection = {tests}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]
process_isolation = "forkserver"
"""
MUTMUT_TESTS = ["tests/unit/test_correlation_hops.py", "tests/unit/test_correlation_calls.py",
                "tests/unit/test_correlation_transactions.py"]


def run_mutmut(target: str, budget: int) -> int:
    """mutmut 3 on one file, in a temporary copy (its config appended to the copy's pyproject.toml, its
    mutants/ folder there too), for at most `budget` seconds; then its counts. mutmut is not a project
    dependency: `.venv/bin/pip install mutmut` first. process_isolation "forkserver" and one polars thread:
    with mutmut's default (fork) the forked test process deadlocks in polars' thread pool and every mutant
    times out."""
    mutmut = shutil.which("mutmut", path=str(Path(sys.executable).parent))
    if not mutmut:
        raise SystemExit("mutmut is not installed in this environment (.venv/bin/pip install mutmut)")
    work = Path(tempfile.mkdtemp(prefix="flowviz-mutmut-"))
    try:
        _copy_tree(work)
        with open(work / "pyproject.toml", "a", encoding="utf-8") as conf:
            conf.write(MUTMUT_CONFIG.format(target=target, tests=str(MUTMUT_TESTS).replace("'", '"')))
        env = dict(os.environ, PYTHONPATH=str(work), POLARS_MAX_THREADS="1")
        env.pop("FLOWVIZ_CACHE_DIR", None)
        start = time.monotonic()
        proc = subprocess.Popen([mutmut, "run", "--max-children", "1"], cwd=work, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 15)  # mutmut and its fork server: the session started for it
            proc.wait()
        took = time.monotonic() - start
        out = subprocess.run([mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True,
                             text=True, timeout=300).stdout
        states = [line.rsplit(": ", 1)[-1].strip() for line in out.splitlines() if ": " in line]
        counts = {state: states.count(state) for state in sorted(set(states))}
        checked = len(states) - counts.get("not checked", 0)
        print(f"mutmut on {target} ({took:.0f} s of {budget} s): {len(states)} mutants, {checked} checked: {counts}")
        for line in out.splitlines():
            if line.strip().endswith(": survived"):
                print("  ", line.strip())
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run this mutant (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--cache", metavar="DIR", help="the shared warm decode cache (default: a new temporary one)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per pytest run (default 900)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    parser.add_argument("--mutmut", type=int, metavar="SECONDS",
                        help="instead: run mutmut on flowviz/sip/hops.py for at most SECONDS (pip install mutmut)")
    args = parser.parse_args(argv)
    if args.mutmut:
        return run_mutmut("flowviz/sip/hops.py", args.mutmut)
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:<18} {m.file:<36} {m.why}")
        return 0
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"no such mutant: {', '.join(sorted(unknown))}")
    for m in chosen:  # every old text must still be there before anything runs
        text = (REPO / m.file).read_text(encoding="utf-8")
        if text.count(m.old) != 1:
            raise SystemExit(f"mutant {m.name}: its old text occurs {text.count(m.old)} times in {m.file}")
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="flowviz-mutants-cache-"))
    cache.mkdir(parents=True, exist_ok=True)
    results = run(chosen, cache, args.timeout, args.keep)
    print()
    print(table(results))
    if not args.cache:
        shutil.rmtree(cache, ignore_errors=True)
    return 0 if all(verdict == "killed" for _, verdict, _, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())

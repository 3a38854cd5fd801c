#!/usr/bin/env python3
"""Ingest benchmark: flowviz vs tshark vs sngrep on the same large SIP/RTP capture.

    python benchmarks/ingest.py [--packets 1000000] [--keep FILE] [--repeat 3]

Generates a capture with make_capture.py (or reuses --keep FILE when it exists),
then runs every tool on that file, one after another, each in its own
subprocess so the peak RSS is per tool:

  flowviz read_capture   .venv/bin/python -c '... flowviz.ingest.read_capture(FILE, use_cache=False)'
                         (seconds measured inside the process; the import is timed separately)
  flowviz info (CLI)     .venv/bin/flowviz --no-cache info FILE   (end to end)
  tshark rtp,streams     tshark -q -r FILE -z rtp,streams
  tshark heuristic RTP   tshark -q -r FILE -o rtp.heuristic_rtp:TRUE -z rtp,streams
  sngrep                 sngrep -N -q -r -I FILE

(and "flowviz ingest + calls + streams": read_capture, the correlator and streams_report, timed
inside the process like read_capture).

--flowviz-root LABEL=PATH (repeatable) runs the three flowviz rows once per root, with the
flowviz package of PATH (PYTHONPATH=PATH, from a working directory outside any tree, the CLI
through the console script's entry point), so two versions share the same rounds; --warmup N
runs the flowviz rows N times untimed first (a fresh tree compiles its numba kernels then).

Wall time is measured around each subprocess (perf_counter), peak RSS with
`/usr/bin/time -f %M` (falling back to os.wait4's rusage).  Each tool runs
--repeat times, in rounds (each tool once per round, so they share the machine's slow and fast
spells); the table shows the best time and the largest peak RSS.  A tool
that is missing or fails gets a row saying so; the script still exits 0.
Prints a plain-text table, then the same results as a Markdown report
(command line, machine, versions, exact tool commands).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import mmap
import os
import platform
import re
import shlex
import shutil
import statistics
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"
VENV_FLOWVIZ = ROOT / ".venv" / "bin" / "flowviz"
GNU_TIME = "/usr/bin/time"
RESULT_TAG = "FLOWVIZ_BENCH_RESULT "

# Runs in a fresh interpreter: times the import and read_capture separately.
FLOWVIZ_INPROC = r"""
import json, sys, time
TAG = %r
t0 = time.perf_counter()
try:
    import flowviz.ingest as ingest
    read_capture = ingest.read_capture
except (ModuleNotFoundError, AttributeError) as e:
    # absent API = "not available"; any other import error is a real failure
    if isinstance(e, ModuleNotFoundError) and e.name not in ("flowviz", "flowviz.ingest"):
        raise
    if isinstance(e, AttributeError) and "read_capture" not in str(e):
        raise
    print(TAG + json.dumps({"unavailable": f"{type(e).__name__}: {e}"}), flush=True)
    sys.exit(3)
t1 = time.perf_counter()
res = read_capture(sys.argv[1], use_cache=False)
t2 = time.perf_counter()

def describe(r):
    out = {"type": type(r).__name__}
    try:
        if hasattr(r, "height"):
            out["rows"] = int(r.height)
        if isinstance(r, dict):
            items = r.items()
        elif hasattr(r, "_asdict"):
            items = r._asdict().items()
        elif hasattr(r, "__dataclass_fields__"):
            items = ((k, getattr(r, k)) for k in r.__dataclass_fields__)
        elif hasattr(r, "__dict__"):
            items = vars(r).items()
        else:
            items = ()
        for k, v in items:
            if hasattr(v, "height"):
                out[str(k)] = int(v.height)
    except Exception as e:  # description is best effort only
        out["describe_error"] = repr(e)
    return out

print(TAG + json.dumps({"import_s": t1 - t0, "read_s": t2 - t1, "result": describe(res)}),
      flush=True)
"""

# Ingest + correlation + stream statistics (issue 4's end-to-end figure), timed the same way.
FLOWVIZ_ANALYSIS = r"""
import json, sys, time
TAG = %r
t0 = time.perf_counter()
from flowviz.ingest import read_capture
from flowviz.media.report import streams_report
from flowviz.sip.calls import Correlation
t1 = time.perf_counter()
cap = read_capture(sys.argv[1], use_cache=False)
t2 = time.perf_counter()
correlation = Correlation(cap.sip_messages)
groups = correlation.group_of_call_id()
t3 = time.perf_counter()
report = streams_report(cap.sip_messages, cap.rtp_packets, t0_ns=cap.info["first_ts_ns"],
                        group_of_call_id=groups, rtcp=cap.rtcp_reports, xr=cap.rtcp_xr)
t4 = time.perf_counter()
print(TAG + json.dumps({"import_s": t1 - t0, "read_s": t4 - t1,
                        "result": {"type": "analysis", "ingest_s": round(t2 - t1, 3),
                                   "correlation_s": round(t3 - t2, 3), "streams_s": round(t4 - t3, 3),
                                   "streams": report.height}}), flush=True)
"""

# Equivalent of the console script, used when .venv/bin/flowviz is not installed.
FLOWVIZ_CLI_SHIM = "import sys; sys.argv[0] = 'flowviz'; from flowviz.cli import run; run()"


@dataclass
class Tool:
    key: str
    label: str
    argv: list[str] | None  # None = not available
    why_unavailable: str = ""
    inproc: bool = False  # seconds come from the RESULT_TAG line, not the wall clock
    note: str = ""
    root: tuple[str, str] | None = None  # (label, path) of --flowviz-root: PYTHONPATH=path, cwd outside the trees

    @property
    def run_id(self) -> str:
        return f"{self.key}-{self.root[0]}" if self.root else self.key


@dataclass
class Result:
    tool: Tool
    status: str = "ok"  # ok | not available | failed | timeout
    detail: str = ""
    seconds: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def best(self) -> float | None:
        return min(self.seconds) if self.seconds else None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def peak_rss_mb(self) -> float | None:
        return max(self.rss_kb) / 1024 if self.rss_kb else None


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def python_for_children() -> str:
    return str(VENV_PY) if VENV_PY.exists() else sys.executable


def child_env(root: str | None = None) -> dict:
    """Environment of the children: this repository's flowviz, or only `root`'s (--flowviz-root)."""
    env = dict(os.environ)
    if root:
        env["PYTHONPATH"] = root
    else:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


def child_cwd(root: str | None, workdir: str | None = None) -> str:
    """`python -c` puts its working directory first on sys.path: a --flowviz-root child runs outside
    every tree, so that PYTHONPATH alone decides which flowviz it imports."""
    return (workdir or tempfile.gettempdir()) if root else str(ROOT)


def quick(argv: list[str], timeout: float = 30, root: str | None = None) -> tuple[int, str]:
    """Run a short command; (returncode, stdout+stderr). (127, msg) if missing."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           cwd=child_cwd(root), env=child_env(root), stdin=subprocess.DEVNULL)
        return p.returncode, (p.stdout + p.stderr)
    except FileNotFoundError as e:
        return 127, str(e)
    except subprocess.TimeoutExpired:
        return 124, "timeout"


def count_pcap_packets(path: str) -> int | None:
    """Number of records in a classic pcap file (None if not a classic pcap)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < 24:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            magic = m[:4]
            if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
                fmt = "<I"
            elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
                fmt = ">I"
            else:
                return None
            unpack = struct.Struct(fmt).unpack_from
            size = len(m)
            off, n = 24, 0
            while off + 16 <= size:
                off += 16 + unpack(m, off + 8)[0]
                n += 1
            return n


def machine_info() -> dict:
    info = {"nproc": os.cpu_count(), "cpu": "unknown", "mem_gb": None,
            "kernel": platform.release(), "loadavg": None}
    try:
        info["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout)
    except Exception:
        pass
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                info["mem_gb"] = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    try:
        info["loadavg"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


def tool_versions(roots: list[tuple[str, str]] | None = None) -> dict:
    v = {}
    rc, out = quick(["tshark", "--version"])
    v["tshark"] = out.splitlines()[0].strip() if rc == 0 and out else "not available"
    rc, out = quick(["sngrep", "-V"])
    v["sngrep"] = out.splitlines()[0].strip() if rc == 0 and out else "not available"
    code = ("import sys, importlib.metadata as md\n"
            "def ver(n):\n"
            "    try: return md.version(n)\n"
            "    except Exception: return None\n"
            "fv = ver('flowviz')\n"
            "if fv is None:\n"
            "    try:\n"
            "        import flowviz; fv = getattr(flowviz, '__version__', None)\n"
            "    except Exception: pass\n"
            "print(sys.version.split()[0], ver('numpy'), ver('polars'), fv)")
    rc, out = quick([python_for_children(), "-c", code])
    if rc == 0:
        py, np_, pl_, fv = (out.split() + ["?"] * 4)[:4]
        v["python"] = f"{py} ({python_for_children()})"
        v["numpy"], v["polars"] = np_, pl_
        v["flowviz"] = fv if fv != "None" else "not installed (source tree)"
    rc, out = quick(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    v["git"] = out.strip() if rc == 0 else "unknown"
    rc, out = quick(["git", "-C", str(ROOT), "status", "--porcelain", "--", "flowviz"])
    if rc == 0 and out.strip():
        v["git"] += " (flowviz/ has uncommitted changes)"
    for label, path in roots or ():
        rc, out = quick(["git", "-C", path, "rev-parse", "--short", "HEAD"])
        s = out.strip() if rc == 0 else "not a git tree"
        rc, out = quick(["git", "-C", path, "status", "--porcelain", "--", "flowviz"])
        if rc == 0 and out.strip():
            s += f" (flowviz/ has uncommitted changes: {len(out.strip().splitlines())} paths)"
        v[f"flowviz root {label}"] = f"{path}, git {s}"
    return v


# ---------------------------------------------------------------------------
# capture
# ---------------------------------------------------------------------------


def prepare_capture(a) -> tuple[str, dict, str | None]:
    """(path, summary, tempdir-to-remove)."""
    if a.keep and os.path.exists(a.keep):
        path = os.path.abspath(a.keep)
        size = os.path.getsize(path)
        summary = {}
        side = path + ".json"
        if os.path.exists(side):
            try:
                summary = json.load(open(side))
                if summary.get("bytes") != size:
                    summary = {}
            except (OSError, ValueError):
                summary = {}
        if not summary:
            summary = {"packets": count_pcap_packets(path), "bytes": size}
        summary["reused"] = True
        print(f"reusing {path}: {summary.get('packets')} packets, {size / 1e6:.1f} MB")
        return path, summary, None

    tmpdir = None
    if a.keep:
        path = os.path.abspath(a.keep)
        os.makedirs(os.path.dirname(path), exist_ok=True)
    else:
        tmpdir = tempfile.mkdtemp(prefix="flowviz-bench-")
        path = os.path.join(tmpdir, f"bench-{a.packets}.pcap")
    argv = [python_for_children(), str(HERE / "make_capture.py"), path,
            "--packets", str(a.packets), "--calls", str(a.calls), "--seed", str(a.seed), "--json"]
    p = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    summary = None
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            summary = json.loads(line)
        else:
            print(line)
    if p.returncode != 0 or summary is None:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"capture generation failed: {shlex.join(argv)}")
    summary["generate_cmd"] = shlex.join(
        ["python", "benchmarks/make_capture.py", path, "--packets", str(a.packets),
         "--calls", str(a.calls), "--seed", str(a.seed)])
    if a.keep:
        with open(path + ".json", "w") as f:
            json.dump(summary, f)
    return path, summary, tmpdir


# ---------------------------------------------------------------------------
# tools
# ---------------------------------------------------------------------------


def flowviz_tools(path: str, root: tuple[str, str] | None = None) -> list[Tool]:
    """The three flowviz rows, for this repository or for one --flowviz-root (label, path)."""
    py = python_for_children()
    tools = []
    tag = f" [{root[0]}]" if root else ""

    # flowviz, in-process timing; the child itself reports if the API is absent
    tools.append(Tool("flowviz", "flowviz read_capture (in-process)" + tag,
                      [py, "-c", FLOWVIZ_INPROC % RESULT_TAG, path], inproc=True, root=root))

    tools.append(Tool("flowviz-analysis", "flowviz ingest + calls + streams (in-process)" + tag,
                      [py, "-c", FLOWVIZ_ANALYSIS % RESULT_TAG, path], inproc=True, root=root))

    # flowviz CLI end to end (the console script; or its entry point if not installed, or for a root)
    label = "flowviz --no-cache info (CLI)" + tag
    rc, out = quick([py, "-c", "import flowviz.cli as m; m.run"], root=root and root[1])
    if rc != 0:
        last = (out.strip().splitlines() or ["?"])[-1]
        tools.append(Tool("flowviz-cli", label, None, why_unavailable=last, root=root))
    elif root:
        tools.append(Tool("flowviz-cli", label, [py, "-c", FLOWVIZ_CLI_SHIM, "--no-cache", "info", path],
                          note="via flowviz.cli:run, the console script's entry point", root=root))
    elif VENV_FLOWVIZ.exists():
        tools.append(Tool("flowviz-cli", label, [str(VENV_FLOWVIZ), "--no-cache", "info", path]))
    else:
        tools.append(Tool("flowviz-cli", label,
                          [py, "-c", FLOWVIZ_CLI_SHIM, "--no-cache", "info", path],
                          note=f"via flowviz.cli:run ({VENV_FLOWVIZ} not installed)"))
    return tools


def build_tools(path: str, roots: list[tuple[str, str]] | None = None) -> list[Tool]:
    tools = []
    if roots:  # each version's row next to the other's
        per_root = [flowviz_tools(path, r) for r in roots]
        for same_row in zip(*per_root):
            tools += same_row
    else:
        tools += flowviz_tools(path)

    tshark = shutil.which("tshark")
    for key, label, extra in (
        ("tshark", "tshark -z rtp,streams", []),
        ("tshark-heur", "tshark -z rtp,streams, heuristic RTP", ["-o", "rtp.heuristic_rtp:TRUE"]),
    ):
        if tshark:
            tools.append(Tool(key, label, [tshark, "-q", "-r", path, *extra, "-z", "rtp,streams"]))
        else:
            tools.append(Tool(key, label, None, why_unavailable="tshark not found in PATH"))

    sngrep = shutil.which("sngrep")
    if sngrep:
        tools.append(Tool("sngrep", "sngrep -N -q -r -I", [sngrep, "-N", "-q", "-r", "-I", path]))
    else:
        tools.append(Tool("sngrep", "sngrep -N -q -r -I", None,
                          why_unavailable="sngrep not found in PATH"))
    return tools


def timed(argv: list[str], time_file: str) -> list[str]:
    """argv under GNU time writing '<peak RSS KB> <exit code>' to time_file (argv itself without GNU time)."""
    return [GNU_TIME, "-f", "%M %x", "-o", time_file, *argv] if os.access(GNU_TIME, os.X_OK) else argv


def read_timed(time_file: str, rss_kb: int | None, rc: int | None) -> tuple[int | None, int | None]:
    """(peak RSS KB, exit code) of a command run by timed(); the given values when GNU time wrote nothing.
    GNU time writes "Command exited with non-zero status N" first on failure: the last two fields count."""
    try:
        fields = open(time_file).read().split()
        return int(fields[-2]), int(fields[-1])
    except (OSError, ValueError, IndexError):
        return rss_kb, rc


def run_once(argv: list[str], timeout: float, out_path: str, root: str | None = None) -> dict:
    """Run argv once; wall seconds, peak RSS (KB), return code, stdout/stderr tails."""
    tfile = out_path + ".time"
    full = timed(argv, tfile)
    with open(out_path, "wb") as out, open(out_path + ".err", "wb") as err:
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 cwd=child_cwd(root, os.path.dirname(out_path)), env=child_env(root),
                                 start_new_session=True)
        except FileNotFoundError as e:
            return {"rc": 127, "error": str(e)}
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                os.wait4(p.pid, 0)
                return {"rc": None, "timeout": True}
            time.sleep(0.01)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    rc = p.returncode
    rss, rc = read_timed(tfile, ru.ru_maxrss, rc)  # ru_maxrss: KB on Linux, the child (or /usr/bin/time)
    stdout = open(out_path, "rb").read().decode(errors="replace")
    stderr = open(out_path + ".err", "rb").read().decode(errors="replace")
    return {"rc": rc, "wall": wall, "rss_kb": rss, "stdout": stdout, "stderr": stderr}


def tshark_streams(stdout: str) -> dict:
    rows = re.findall(r"\s(\d+)\s+(-?\d+) \((-?[\d.]+)%\)", stdout)
    return {"streams": len(rows), "rtp_packets": sum(int(r[0]) for r in rows),
            "lost": sum(int(r[1]) for r in rows)}


def last_line(text: str) -> str:
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()
             and "Running as user" not in l]
    return lines[-1][:160] if lines else ""


def bench_tools(tools: list[Tool], repeat: int, timeout: float, workdir: str, warmup: int = 0) -> list[Result]:
    """Every tool once per round, `repeat` rounds: tools run side by side in time, so a slow spell of
    this shared machine hits all of them alike instead of one tool's whole series. `warmup` untimed
    runs of each flowviz row come first."""
    results = [Result(tool) for tool in tools]
    for res in results:
        if res.tool.argv is None:
            res.status, res.detail = "not available", res.tool.why_unavailable
    for i in range(warmup):
        for res in results:
            if res.status == "ok" and res.tool.key.startswith("flowviz"):
                t = res.tool
                r = run_once(t.argv, timeout, os.path.join(workdir, f"{t.run_id}.warmup{i}.out"),
                             t.root and t.root[1])
                print(f"  {t.label}: warm-up {i + 1}/{warmup}: rc {r.get('rc')}, {r.get('wall', 0):.2f} s", flush=True)
    for i in range(repeat):
        for res in results:
            if res.status == "ok":
                run_tool_once(res, i, repeat, timeout, workdir)
    for res in results:
        if res.status != "ok" and res.seconds:
            res.detail += f" (after {len(res.seconds)} good run(s))"
    return results


def run_tool_once(res: Result, i: int, repeat: int, timeout: float, workdir: str) -> None:
    tool = res.tool
    r = run_once(tool.argv, timeout, os.path.join(workdir, f"{tool.run_id}.{i}.out"), tool.root and tool.root[1])
    if r.get("timeout"):
        res.status, res.detail = "timeout", f"killed after {timeout:.0f} s"
        return
    if "error" in r:
        res.status, res.detail = "not available", r["error"]
        return
    tagged = [l for l in r["stdout"].splitlines() if l.startswith(RESULT_TAG)]
    payload = json.loads(tagged[-1][len(RESULT_TAG):]) if tagged else None
    if tool.inproc and payload and "unavailable" in payload:
        res.status, res.detail = "not available", payload["unavailable"]
        return
    if r["rc"] != 0:
        res.status = "failed"
        res.detail = f"exit {r['rc']}: {last_line(r['stderr']) or last_line(r['stdout'])}"
        return
    if tool.inproc:
        if not payload:
            res.status, res.detail = "failed", "no timing line printed"
            return
        res.seconds.append(payload["read_s"])
        res.extra.setdefault("import_s", []).append(payload["import_s"])
        res.extra["result"] = payload.get("result")
    else:
        res.seconds.append(r["wall"])
    res.wall.append(r["wall"])
    res.rss_kb.append(r["rss_kb"])
    if tool.key.startswith("tshark"):
        res.extra["tshark"] = tshark_streams(r["stdout"])
    print(f"  {tool.label}: run {i + 1}/{repeat}: {res.seconds[-1]:.2f} s, "
          f"peak RSS {r['rss_kb'] / 1024:.0f} MB", flush=True)
    if res.status != "ok":
        print(f"  {res.status}: {res.detail}", flush=True)


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def notes_for(res: Result) -> str:
    bits = []
    if res.tool.note:
        bits.append(res.tool.note)
    if "import_s" in res.extra:
        bits.append(f"import {min(res.extra['import_s']):.2f} s excluded; "
                    f"process wall {min(res.wall):.2f} s")
    r = res.extra.get("result")
    if r:
        shown = ", ".join(f"{k}={v}" for k, v in r.items() if k != "type")
        bits.append(f"returned {r.get('type')}" + (f" ({shown})" if shown else ""))
    t = res.extra.get("tshark")
    if t:
        bits.append(f"{t['streams']} streams, {t['rtp_packets']} RTP pkts, {t['lost']} lost")
    if res.status != "ok":
        bits.insert(0, f"{res.status.upper()}: {res.detail}")
    return "; ".join(bits)


def table_rows(results: list[Result], packets: int | None, file_bytes: int) -> list[list[str]]:
    base = next((r.best for r in results if r.tool.key == "flowviz" and r.best), None)
    ts = next((r for r in results if r.tool.key == "tshark" and r.best), None)
    rows = []
    for r in results:
        if r.best is None:
            label = "not available" if r.status == "not available" else r.status
            rows.append([r.tool.label, label, "", "", "", "", "", "", notes_for(r)])
            continue
        rss = r.peak_rss_mb
        rows.append([
            r.tool.label,
            f"{r.best:.2f}",
            f"{r.median:.2f}",
            f"{packets / r.best:,.0f}" if packets else "n/a",
            f"{r.best / base:.2f}x" if base else "n/a",
            f"{ts.best / r.best:.2f}x, {ts.median / r.median:.2f}x" if ts else "n/a",
            f"{rss:.0f}" if rss is not None else "n/a",
            f"{rss * 1024 * 1024 / file_bytes:.2f}x" if rss is not None and file_bytes else "n/a",
            notes_for(r),
        ])
    return rows


HEAD = ["tool", "seconds (best)", "seconds (median)", "packets/s (best)", "time vs flowviz",
        "tshark / tool (best, median)", "peak RSS MB", "RSS / file", "notes"]


def text_table(rows: list[list[str]]) -> str:
    w = [max(len(HEAD[i]), *(len(r[i]) for r in rows)) for i in range(len(HEAD) - 1)]
    line = lambda cells: "  ".join(  # noqa: E731
        c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(cells[:-1])
    ) + ("  " + cells[-1] if cells[-1] else "")
    out = [line(HEAD), "  ".join("-" * x for x in w) + "  -----"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def md_escape(s: str) -> str:
    return s.replace("|", "\\|")


def markdown(a, argv: list[str], path: str, summary: dict, results: list[Result],
             rows: list[list[str]], machine: dict, versions: dict) -> str:
    mb = summary.get("bytes", 0) / 1e6
    L = ["## flowviz ingest benchmark", ""]
    L.append(f"Run {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}:")
    L += ["", "```", f"cd {os.getcwd()}", shlex.join(argv), "```", ""]
    L.append("### Capture")
    L.append("")
    if summary.get("reused"):
        L.append(f"- reused `{path}`")
    else:
        L.append(f"- generated by `{summary.get('generate_cmd', 'make_capture.py')}`"
                 f" in {summary.get('seconds', 0):.1f} s")
    L.append(f"- {summary.get('packets')} packets, {mb:.1f} MB (classic pcap, Ethernet/IPv4/UDP)")
    if "calls" in summary:
        L.append(f"- {summary['calls']} calls (peak {summary.get('peak_concurrent_calls')} "
                 f"concurrent), {summary['sip_messages']} SIP messages, "
                 f"{summary['rtp_streams']} G.711 RTP streams ({summary['rtp_packets']} RTP "
                 f"packets, 0 lost), {summary['rtcp_packets']} RTCP packets, "
                 f"{summary.get('duration_s', 0):.0f} s of traffic")
    L += ["", "### Machine", ""]
    L.append(f"- {machine['nproc']} CPUs (nproc), {machine['cpu']}, "
             f"{machine['mem_gb']} GB RAM, Linux {machine['kernel']}")
    L.append(f"- load average at start: {machine['loadavg']} (shared machine: timings are noisy)")
    for k in ("tshark", "sngrep", "python", "numpy", "polars", "flowviz", "git"):
        if k in versions:
            L.append(f"- {k}: {versions[k]}")
    for k, v in versions.items():
        if k.startswith("flowviz root "):
            L.append(f"- {k}: {v}")
    L += ["", "### Results", ""]
    L.append(f"{a.repeat} run(s) per tool, in rounds (every tool once per round); best and median "
             "time; peak RSS is the largest of the runs (whole process). \"time vs flowviz\" = tool's "
             "best seconds / flowviz read_capture's best seconds (>1 means slower than flowviz); \"tshark / "
             "tool\" = `tshark -z rtp,streams`'s best / the tool's best, and the same for the medians (>1 means "
             "faster than tshark).")
    if a.warmup:
        L.append("")
        L.append(f"Before the rounds, {a.warmup} untimed run(s) of each flowviz row (not counted).")
    L.append("")
    L.append("| " + " | ".join(HEAD) + " |")
    L.append("|" + "|".join(["---"] + ["---:"] * (len(HEAD) - 2) + ["---"]) + "|")
    for r in rows:
        L.append("| " + " | ".join(md_escape(c) for c in r) + " |")
    L += ["", "### Commands", ""]
    for r in results:
        if r.tool.argv:
            shown = [c if c not in (FLOWVIZ_INPROC % RESULT_TAG, FLOWVIZ_ANALYSIS % RESULT_TAG) else "<timing code: see ingest.py>"
                     for c in r.tool.argv]
            env = f"PYTHONPATH={r.tool.root[1]} " if r.tool.root else ""
            L.append(f"- {r.tool.label}: `{env}{shlex.join(shown)}`")
        else:
            L.append(f"- {r.tool.label}: not available ({r.detail})")
    if any(r.tool.root for r in results):
        L += ["", "A row marked [LABEL] runs the flowviz of its --flowviz-root (PYTHONPATH=PATH) from a "
                  "working directory outside the trees."]
    meas = ("wall time around each subprocess (flowviz read_capture: perf_counter inside the "
            "process, import excluded); peak RSS from " +
            ("`/usr/bin/time -f %M`" if os.access(GNU_TIME, os.X_OK) else "os.wait4 rusage"))
    L += ["", f"Measurement: {meas}.", ""]
    return "\n".join(L)


# ---------------------------------------------------------------------------


def parse_root(text: str) -> tuple[str, str]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=PATH, got {text!r}")
    path = os.path.abspath(path)
    if not os.path.isfile(os.path.join(path, "flowviz", "__init__.py")):
        raise argparse.ArgumentTypeError(f"{path}: no flowviz package there")
    return label, path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--packets", type=int, default=1_000_000, help="capture size (packets)")
    p.add_argument("--calls", type=int, default=300, help="calls in the generated capture")
    p.add_argument("--seed", type=int, default=1, help="generator seed")
    p.add_argument("--keep", metavar="FILE",
                   help="capture path to reuse if it exists, else generate there and keep it")
    p.add_argument("--repeat", type=int, default=3, help="runs per tool (best time is shown)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per run before kill")
    p.add_argument("--only", metavar="KEYS",
                   help="comma-separated subset: flowviz,flowviz-analysis,flowviz-cli,tshark,tshark-heur,sngrep")
    p.add_argument("--markdown", metavar="FILE", help="also write the Markdown report here")
    p.add_argument("--flowviz-root", action="append", type=parse_root, default=[], metavar="LABEL=PATH",
                   help="run the flowviz rows with the flowviz package of PATH (PYTHONPATH=PATH); repeatable, "
                        "to compare versions in the same rounds (default: this repository)")
    p.add_argument("--warmup", type=int, default=0, metavar="N",
                   help="untimed runs of each flowviz row before the rounds (a fresh tree compiles its kernels)")
    a = p.parse_args(argv)
    exe = sys.executable or "python"
    if exe.startswith(os.getcwd() + os.sep):
        exe = os.path.relpath(exe)
    cmdline = [exe, sys.argv[0] if argv is None else os.path.relpath(__file__)]
    cmdline += sys.argv[1:] if argv is None else argv
    if a.repeat < 1:
        p.error("--repeat must be >= 1")

    machine = machine_info()
    path, summary, tmpdir = prepare_capture(a)
    try:
        file_bytes = os.path.getsize(path)
        packets = summary.get("packets")
        tools = build_tools(path, a.flowviz_root)
        if a.only:
            keys = {k.strip() for k in a.only.split(",") if k.strip()}
            unknown = keys - {t.key for t in tools}
            if unknown:
                p.error(f"--only: unknown tool(s) {', '.join(sorted(unknown))}")
            tools = [t for t in tools if t.key in keys]
        with tempfile.TemporaryDirectory(prefix="flowviz-bench-out-") as work:
            results = bench_tools(tools, a.repeat, a.timeout, work, a.warmup)
        versions = tool_versions(a.flowviz_root)
        rows = table_rows(results, packets, file_bytes)
        print()
        print(f"{packets} packets, {file_bytes / 1e6:.1f} MB: {path}")
        print(text_table(rows))
        md = markdown(a, cmdline, path, summary, results, rows, machine, versions)
        print()
        print(md)
        if a.markdown:
            os.makedirs(os.path.dirname(os.path.abspath(a.markdown)), exist_ok=True)
            with open(a.markdown, "w") as f:
                f.write(md)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared fixtures: the tests' own decode cache, where the public corpus is, and tshark reference runs.

Environment variables:

- FLOWVIZ_CORPUS_DIR: the public capture corpus (`<owner>__<repo>/<capture>` files, see its
  MANIFEST.md); default ../shared/pcaps beside the checkout. Without it the corpus tests are skipped,
  and the run says so in one line at the top and one in the summary.
- FLOWVIZ_TEST_CACHE_DIR: the decode cache the tests use. By default each session gets a fresh empty
  temporary one (set here at import, in os.environ, so CLI subprocesses and the web app's worker
  process inherit it) and removes it at the end: results read from a cache written by other code or
  an earlier run could hide an ingest regression (issue 20). Set it to keep a cache between runs
  (faster, at that risk). Tests about the cache itself set their own FLOWVIZ_CACHE_DIR.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS_DIR = REPO.parent / "shared" / "pcaps"
CORPUS_DIR = Path(os.environ.get("FLOWVIZ_CORPUS_DIR") or DEFAULT_CORPUS_DIR).expanduser().resolve()
SHARED_PCAPS = CORPUS_DIR  # the name the test modules import
CORPUS_SKIP_REASON = f"public capture corpus not found at {CORPUS_DIR} (set FLOWVIZ_CORPUS_DIR)"
SAMPLES = REPO / "sample_pcaps"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz")

_OWN_CACHE = not os.environ.get("FLOWVIZ_TEST_CACHE_DIR")
TEST_CACHE_DIR = Path(os.environ.get("FLOWVIZ_TEST_CACHE_DIR") or tempfile.mkdtemp(prefix="flowviz-test-cache-"))
os.environ["FLOWVIZ_CACHE_DIR"] = str(TEST_CACHE_DIR)


def corpus_files() -> list[Path]:
    if not CORPUS_DIR.is_dir():
        return []
    return sorted(p for p in CORPUS_DIR.glob("*/*") if p.suffix in CAPTURE_SUFFIXES)


def corpus_params():
    files = corpus_files()
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=CORPUS_SKIP_REASON))]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in files]


def _corpus_line() -> str:
    files = corpus_files()
    if files:
        return f"public capture corpus: {CORPUS_DIR} ({len(files)} captures)"
    return CORPUS_SKIP_REASON


def pytest_report_header(config) -> list[str]:
    cache = f"decode cache: {TEST_CACHE_DIR}" + (" (fresh for this run)" if _OWN_CACHE else " (FLOWVIZ_TEST_CACHE_DIR)")
    return [_corpus_line(), cache]


def pytest_sessionstart(session) -> None:
    """-q hides the report header: a missing corpus is still said at the top."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and session.config.get_verbosity() < 0 and not corpus_files():
        reporter.write_line(CORPUS_SKIP_REASON, yellow=True, bold=True)


def _is_corpus_skip(report) -> bool:
    """A skip that names the corpus: the reasons in corpus_params() and the test modules'
    "... is absent (public corpus)" or "<corpus path>/<capture> is absent"."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    return "public corpus" in reason or "public capture corpus" in reason or str(CORPUS_DIR) in reason


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    skipped = sum(1 for r in terminalreporter.stats.get("skipped", []) if _is_corpus_skip(r))
    if not corpus_files():
        terminalreporter.write_line(f"{CORPUS_SKIP_REASON}: {skipped} corpus tests skipped", yellow=True, bold=True)
    elif skipped:
        terminalreporter.write_line(f"{_corpus_line()}: {skipped} corpus tests skipped", yellow=True)


def pytest_unconfigure(config) -> None:
    if _OWN_CACHE:
        shutil.rmtree(TEST_CACHE_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    if not path:
        pytest.skip("tshark is not installed")
    return path


# Corpus captures where tshark 4.0 (the reference on these machines) does not see the SIP flowviz reads,
# with the test that checks them against another reference instead.
TSHARK_BLIND = {
    "hep.pcap": "tshark 4.0 has no HEP dissector; tests/integration/test_hep.py::test_corpus_hep_pcap checks "
                "its SIP against the HEP chunks",
}


def skip_where_tshark_is_blind(path) -> None:
    if path is not None and path.name in TSHARK_BLIND:
        pytest.skip(TSHARK_BLIND[path.name])


def run_tshark(*args: str) -> str:
    out = subprocess.run(["tshark", *args], capture_output=True, text=True, timeout=600)
    return out.stdout

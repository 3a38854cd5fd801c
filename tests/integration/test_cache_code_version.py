"""The decode cache knows the code it came from (issue 20): after a real change to a decoding
function, `flowviz calls` on a capture already in the cache gives the new result.

A copy of the flowviz package is run as `python -m flowviz` (PYTHONPATH = the copy) against one
cache folder: twice as it is (the second run is a cache hit), then with the copy's SIP decoder
patched to swap source and destination addresses. The patched code must decode again, and its
answer must differ from the cached one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "sample_pcaps" / "lab" / "reference_call.pcap"

# The line of flowviz/ingest/sip_udp.py where a SIP row gets its addresses, and the bug put in it.
ORIGINAL = '"src_ip": src, "dst_ip": dst,'
SWAPPED = '"src_ip": dst, "dst_ip": src,'


def _flowviz(root: Path, cache: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(root), FLOWVIZ_CACHE_DIR=str(cache))
    proc = subprocess.run([sys.executable, "-m", "flowviz", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_changed_decoder_does_not_read_the_old_code_s_cache_entry(tmp_path):
    root = tmp_path / "copy"
    # __pycache__ comes along: copy2 keeps the sources' mtimes, so numba's kernel cache stays valid
    # (without it each run would compile the kernels again, about 30 s).
    shutil.copytree(REPO / "flowviz", root / "flowviz")
    cache = tmp_path / "cache"
    capture = str(REFERENCE)

    env = dict(os.environ, PYTHONPATH=str(root))
    where = subprocess.run([sys.executable, "-c", "import flowviz; print(flowviz.__file__)"], cwd=root, env=env,
                           capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).resolve() == (root / "flowviz" / "__init__.py").resolve(), where.stderr

    before = json.loads(_flowviz(root, cache, "calls", "--format", "json", capture))
    info = json.loads(_flowviz(root, cache, "info", "--format", "json", capture))
    assert info["from_cache"], "the second run of the same code must be a cache hit"
    assert len(list(cache.iterdir())) == 1

    decoder = root / "flowviz" / "ingest" / "sip_udp.py"
    source = decoder.read_text()
    assert source.count(ORIGINAL) == 1, "sip_udp.py changed: make the test's deliberate bug fit it again"
    decoder.write_text(source.replace(ORIGINAL, SWAPPED))

    after = json.loads(_flowviz(root, cache, "calls", "--format", "json", capture))
    assert len(list(cache.iterdir())) == 2, "the patched code must decode again and store its own entry"
    assert after != before
    # The reference call runs UA1 (127.0.0.10) -> P1 (.11) -> P2 (.12) -> UA2 (.13) (sample_pcaps/lab/expected.json),
    # hosts listed in the order the call reaches them: swapped, the first INVITE comes from P1 to UA1.
    assert before[0]["hosts"][:2] == ["127.0.0.10:5060", "127.0.0.11:5060"]
    assert after[0]["hosts"][:2] == ["127.0.0.11:5060", "127.0.0.10:5060"]

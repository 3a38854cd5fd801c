"""Every rule on every capture of the public corpus (../shared/pcaps; skipped when absent): no rule may crash,
and the findings must equal the reviewed snapshot diagnose_corpus_snapshot.json (one line per finding).

After a deliberate change of a rule, write the snapshot again and review its diff line by line:
    FLOWVIZ_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest -q tests/integration/test_diagnose_corpus.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flowviz.analysis.diagnose import diagnose_capture
from flowviz.errors import CaptureError
from flowviz.ingest import read_capture
from tests.conftest import SHARED_PCAPS, corpus_params

SNAPSHOT = Path(__file__).with_name("diagnose_corpus_snapshot.json")
UPDATE = os.environ.get("FLOWVIZ_UPDATE_SNAPSHOT") == "1"


def finding_lines(path: Path) -> list[str]:
    """One line per finding: group, severity, rule, explanation and (at most 10 of) its frames."""
    try:
        capture = read_capture(path)
    except CaptureError as exc:
        return [f"unreadable: {exc.message}"]
    lines = []
    for f in diagnose_capture(capture):
        frames = f["evidence"]["frames"]
        shown = ",".join(map(str, frames[:10])) + (f",...({len(frames)})" if len(frames) > 10 else "")
        lines.append(f"{f['call_group_id']} {f['severity']} {f['rule']} [{shown}] {f['explanation']}")
    return lines


def _snapshot() -> dict:
    return json.loads(SNAPSHOT.read_text()) if SNAPSHOT.is_file() else {}


@pytest.mark.parametrize("path", corpus_params())
def test_findings_equal_the_reviewed_snapshot(path):
    key = str(path.relative_to(SHARED_PCAPS))
    lines = finding_lines(path)
    if UPDATE:
        data = _snapshot()
        data[key] = lines
        SNAPSHOT.write_text(json.dumps(dict(sorted(data.items())), indent=1, ensure_ascii=False) + "\n")
        return
    snapshot = _snapshot()
    assert key in snapshot, f"{key} is not in {SNAPSHOT.name}: see this file's docstring"
    assert lines == snapshot[key]

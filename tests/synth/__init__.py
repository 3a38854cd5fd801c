"""Synthetic SIP/RTP captures of exactly known content, for ingest/analysis tests.

    from tests.synth import SCENARIOS, build, write
    data, expected = build("basic_call_udp")          # bytes of the file + expected dict
    expected = write("sip_tcp_coalesced_split", tmp_path / "x.pcap")

``python -m tests.synth.build [OUTDIR]`` writes every scenario (default
sample_pcaps/synth) plus OUTDIR/expected.json; see sample_pcaps/synth/README.md.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

from .scenarios import BUILDERS

SCENARIOS: list[str] = list(BUILDERS)


@functools.lru_cache(maxsize=None)
def _capture(name: str):
    return BUILDERS[name]()


def _resolve(name: str) -> str:
    if name in BUILDERS:
        return name
    for n in BUILDERS:  # accept the file name too ("basic_call_udp.pcap")
        if _capture(n).filename == name:
            return n
    raise KeyError(f"unknown synth scenario {name!r}; known: {', '.join(SCENARIOS)}")


def build(name: str) -> tuple[bytes, dict]:
    """(file bytes, expected dict) of scenario ``name`` (or of its file name)."""
    cap = _capture(_resolve(name))
    return cap.data, copy.deepcopy(cap.expected)


def filename(name: str) -> str:
    """The file name the scenario is written under in sample_pcaps/synth."""
    return _capture(_resolve(name)).filename


def write(name: str, path) -> dict:
    """Write scenario ``name`` to ``path``; returns its expected dict."""
    data, expected = build(name)
    Path(path).write_bytes(data)
    return expected


def write_all(outdir) -> dict[str, dict]:
    """Write every scenario into ``outdir`` plus expected.json (file name -> expected dict)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    expected: dict[str, dict] = {}
    for name in SCENARIOS:
        data, exp = build(name)
        fname = filename(name)
        (outdir / fname).write_bytes(data)
        expected[fname] = dict(exp, scenario=name)
    (outdir / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return expected


__all__ = ["SCENARIOS", "build", "write", "write_all", "filename"]

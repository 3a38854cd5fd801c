"""Shared fixtures: where the public corpus is, and tshark reference runs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_PCAPS = REPO.parent / "shared" / "pcaps"
SAMPLES = REPO / "sample_pcaps"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz")


def corpus_files() -> list[Path]:
    if not SHARED_PCAPS.is_dir():
        return []
    return sorted(p for p in SHARED_PCAPS.glob("*/*") if p.suffix in CAPTURE_SUFFIXES)


def corpus_params():
    files = corpus_files()
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/pcaps is absent (public corpus)"))]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in files]


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    if not path:
        pytest.skip("tshark is not installed")
    return path


def run_tshark(*args: str) -> str:
    out = subprocess.run(["tshark", *args], capture_output=True, text=True, timeout=600)
    return out.stdout

"""Inputs of a batch: a short, unique, filesystem-safe id per capture."""

from __future__ import annotations

import os
import re
from pathlib import Path


def capture_ids(paths: list[Path]) -> list[str]:
    """A short, unique, filesystem-safe name per capture: its path below the inputs' common folder,
    folders joined by '__' (lab/burst_100.pcap -> lab__burst_100.pcap); '-2', '-3' on a clash."""
    if not paths:
        return []
    absolute = [Path(os.path.abspath(p)) for p in paths]
    common = Path(os.path.commonpath([str(p.parent) for p in absolute]))
    out: list[str] = []
    used: set[str] = set()
    for path in absolute:
        rel = path.relative_to(common)
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(rel.parts)).strip("._") or "capture"
        unique, n = name, 1
        while unique in used:
            n += 1
            unique = f"{name}-{n}"
        used.add(unique)
        out.append(unique)
    return out

"""Inputs: the capture files a user names (files, folders searched for captures, glob patterns)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from flowviz.errors import FlowvizError

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz", ".erf", ".snoop", ".trc")


def expand_paths(paths) -> list[Path]:
    """Files as given; folders searched (recursively) for capture files, in name order."""
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CAPTURE_SUFFIXES)
            if not found:
                raise FlowvizError(f"{path}: no capture files (.pcap, .pcapng, .cap, .gz) in this folder")
            out += found
        else:
            out.append(path)
    return out


def find_inputs(paths) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files, folders (searched like expand_paths) and globs -> (capture files, [(input, why unusable)]).

    A glob is expanded here (for shells that did not); duplicates are dropped, the first one kept."""
    found: list[Path] = []
    bad: list[tuple[str, str]] = []
    for name in paths:
        names = [name]
        if not Path(name).exists() and any(c in name for c in "*?["):
            names = sorted(glob.glob(name, recursive=True))
            if not names:
                bad.append((name, "no file matches this pattern"))
                continue
        for each in names:
            try:
                found += expand_paths((each,))
            except FlowvizError as exc:
                bad.append((each, exc.message))
    seen: set[str] = set()
    unique = []
    for path in found:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique, bad

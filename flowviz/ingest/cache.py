"""Cache: decoded frames stored as Parquet, keyed by file content, settings and schema version."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl

from flowviz.schemas import SCHEMA_VERSION
from flowviz.settings import Settings

FRAMES = ("sip_messages", "rtp_packets", "rtcp_reports", "rtcp_xr")


def cache_dir() -> Path:
    base = os.environ.get("FLOWVIZ_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "flowviz"
    )
    return Path(base)


def key_for(path: Path, settings: Settings) -> str:
    """Content hash of the file (read in chunks), settings fingerprint and schema version."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return f"{digest.hexdigest()[:32]}-{settings.fingerprint()}-v{SCHEMA_VERSION}"


def load(key: str):
    folder = cache_dir() / key
    try:
        frames = [pl.read_parquet(folder / f"{name}.parquet") for name in FRAMES]
        info = json.loads((folder / "info.json").read_text())
    except (OSError, ValueError, pl.exceptions.PolarsError):
        return None
    return (*frames, info)


def store(key: str, frames: tuple[pl.DataFrame, ...], info: dict) -> None:
    """Write to a temporary folder, then rename: a reader never sees half a cache entry."""
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        for name, frame in zip(FRAMES, frames):
            frame.write_parquet(tmp / f"{name}.parquet")
        (tmp / "info.json").write_text(json.dumps(info))
        target = root / key
        if target.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rename(target)
    except OSError:
        pass  # a cache that cannot be written only costs time

"""Cache: decoded frames stored as Parquet, keyed by everything that decides what they hold.

The key holds the file's content hash, the settings fingerprint, `SCHEMA_VERSION`, the flowviz
version and a hash of the decoding code (the source bytes of every module under flowviz/ingest/
plus flowviz/schemas.py and flowviz/settings.py). Without the last two a cached capture keeps the
frames the old code decoded: a user who upgrades flowviz, or a developer who fixes a decoding bug,
would go on seeing the old result, and a test suite run on a warm cache could not see an ingest
regression (issue 20: with source and destination swapped in ingest, a warm cache gave 33 passed
where a cold one gave 17 failed). The code hash catches a change with no version bump (a
development checkout, a local patch); the version is the safety net for what the hash does not
see (a release that changes decoding through other code or the dependencies it pins). Hashing them
(17 files today) takes about 2 ms, once per process. Entries of other code versions are left in
place (nothing prunes the folder); it can be deleted at any time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import polars as pl

import flowviz
from flowviz.schemas import SCHEMA_VERSION
from flowviz.settings import Settings

FRAMES = ("sip_messages", "rtp_packets", "rtcp_reports", "rtcp_xr")


def cache_dir() -> Path:
    base = os.environ.get("FLOWVIZ_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "flowviz"
    )
    return Path(base)


def decoding_sources() -> list[Path]:
    """The source files whose code decides the decoded frames, sorted by path in the package."""
    package = Path(flowviz.__file__).resolve().parent
    files = [*package.joinpath("ingest").rglob("*.py"), package / "schemas.py", package / "settings.py"]
    return sorted(files, key=lambda p: p.relative_to(package).as_posix())


@functools.cache
def code_version() -> str:
    """flowviz's version and a sha256 of the decoding sources (each file's path in the package and
    bytes), computed once per process."""
    package = Path(flowviz.__file__).resolve().parent
    digest = hashlib.sha256()
    for source in decoding_sources():
        data = source.read_bytes()
        digest.update(f"{source.relative_to(package).as_posix()}\0{len(data)}\0".encode())
        digest.update(data)
    version = re.sub(r"[^A-Za-z0-9._]", "_", flowviz.__version__)  # a folder name
    return f"{version}-{digest.hexdigest()[:16]}"


def key_for(path: Path, settings: Settings) -> str:
    """Content hash of the file (read in chunks), settings fingerprint, schema version and code
    version (flowviz's version + hash of the decoding code; see the module docstring)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return f"{digest.hexdigest()[:32]}-{settings.fingerprint()}-v{SCHEMA_VERSION}-{code_version()}"


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

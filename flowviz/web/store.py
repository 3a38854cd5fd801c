"""Store: uploaded captures and their results on disk, one folder per browser session.

Layout: <data_dir>/sessions/<session id>/<capture id>/{capture, meta.json, result.json}; a capture set (several
capture points of the same calls) holds point-1, point-2, ... instead of `capture`, their upload names in
meta.json's "points". Both ids are
random and checked against strict patterns before they touch a path, so no user text (file names
included) ever becomes part of a path and no path traversal is possible.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from flowviz.errors import FlowvizError

SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
CAPTURE_RE = re.compile(r"^[0-9a-f]{16}$")
# pcap (both byte orders, micro and nano seconds), pcapng section header, gzip.
MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1",
          b"\x0a\x0d\x0d\x0a", b"\x1f\x8b")


KEYLOG = "tls.keys"  # a capture's TLS key log, beside it in its folder

def new_session_id() -> str:
    return secrets.token_urlsafe(24)  # 32 characters


def valid_session(sid: str | None) -> bool:
    return bool(sid) and bool(SESSION_RE.match(sid))


def is_capture(head: bytes) -> bool:
    """True when the first bytes are a pcap, pcapng or gzip signature."""
    return any(head.startswith(m) for m in MAGICS)


def display_name(name: str) -> str:
    return re.sub(r"[\x00-\x1f]", "", name)[:200] or "capture"


def unique(names: list[str]) -> list[str]:
    """The names, a repeated one numbered ('a.pcap', 'a.pcap (2)'): each point must be told apart."""
    out = []
    for name in names:
        shown, n = name, 1
        while shown in out:
            n += 1
            shown = f"{name} ({n})"
        out.append(shown)
    return out


def human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}".replace(".0 ", " ")
        n /= 1024
    return str(n)


class Store:
    def __init__(self, data_dir: str | os.PathLike, retention_s: float = 7 * 24 * 3600):
        self.root = Path(data_dir).resolve()
        self.retention_s = retention_s
        self._results: dict[Path, tuple[int, dict]] = {}
        (self.root / "sessions").mkdir(parents=True, exist_ok=True)

    def session_dir(self, sid: str) -> Path:
        if not valid_session(sid):
            raise FlowvizError("invalid session")
        return self.root / "sessions" / sid

    def capture_dir(self, sid: str, cid: str) -> Path | None:
        """The capture's folder, or None when it is not one of this session's captures."""
        if not valid_session(sid) or not isinstance(cid, str) or not CAPTURE_RE.match(cid):
            return None
        folder = self.session_dir(sid) / cid
        return folder if (folder / "meta.json").is_file() else None

    def add(self, sid: str, name: str, size: int) -> tuple[str, Path]:
        """A new capture id and the folder to write it to (meta written once the file is in)."""
        cid = secrets.token_hex(8)
        folder = self.session_dir(sid) / cid
        folder.mkdir(parents=True)
        return cid, folder

    def publish(self, folder: Path, name: str, size: int, sample: bool = False, sip_ports: list[int] = (),
                points: list[dict] | None = None, keylog: bytes | None = None) -> None:
        """`points`: for a capture set, each point's {"name", "size"} (files point-1, point-2, ...); `keylog`:
        a TLS key log uploaded with it, kept as KEYLOG in its folder and used by all its analyses."""
        if keylog:
            (folder / KEYLOG).write_bytes(keylog)
        meta = {"name": display_name(name), "size": size, "added": time.time(), "sample": sample,
                "state": "queued", "stage": "queued", "fraction": 0.0, "error": None, "sip_ports": list(sip_ports)}
        if points:
            meta["points"] = points
        if keylog:
            meta["tls_keylog"] = True
        self.write_meta(folder, meta)

    @staticmethod
    def sources(folder: Path) -> tuple[list[Path], list[str] | None]:
        """The capture files of a stored capture and, for a set, the names its points are shown by (the upload
        names; the files themselves are point-1, point-2, ...)."""
        points = Store.meta(folder).get("points")
        if not points:
            return [folder / "capture"], None
        return [folder / f"point-{i}" for i in range(1, len(points) + 1)], unique([p["name"] for p in points])

    def add_point(self, folder: Path, name: str, size: int) -> Path:
        """Make room for one more capture point in a stored capture (a single capture becomes point 1 of a set);
        returns the file to write it to. The caller writes it, then calls queue_again()."""
        meta = self.meta(folder)
        points = meta.get("points")
        if not points:
            os.replace(folder / "capture", folder / "point-1")
            points = [{"name": meta.get("name", "capture"), "size": meta.get("size", 0)}]
            self.update(folder, points=points)
        return folder / f"point-{len(points) + 1}"

    def queue_again(self, folder: Path, new_point: dict | None = None) -> None:
        """Back to the queue, its old result gone (a point was added, or the analysis is run again)."""
        meta = self.meta(folder)
        if new_point:
            meta["points"] = meta.get("points", []) + [new_point]
            meta["name"] = " + ".join(p["name"] for p in meta["points"])
            meta["size"] = sum(p["size"] for p in meta["points"])
        (folder / "result.json").unlink(missing_ok=True)
        for key in ("calls", "notices", "diagnostics_error", "diagnostics_error_for"):
            meta.pop(key, None)
        meta.update(state="queued", stage="queued", fraction=0.0, error=None)
        self.write_meta(folder, meta)

    def discard(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def write_meta(folder: Path, meta: dict) -> None:
        tmp = folder / "meta.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, folder / "meta.json")

    @staticmethod
    def meta(folder: Path) -> dict:
        try:
            return json.loads((folder / "meta.json").read_text())
        except (OSError, ValueError):
            return {}

    def update(self, folder: Path, **changes) -> None:
        meta = self.meta(folder)
        meta.update(changes)
        self.write_meta(folder, meta)

    def captures(self, sid: str) -> list[dict]:
        """This session's captures, newest first, each meta with its id."""
        if not valid_session(sid):
            return []
        folder = self.session_dir(sid)
        if not folder.is_dir():
            return []
        out = []
        for sub in folder.iterdir():
            if CAPTURE_RE.match(sub.name) and (sub / "meta.json").is_file():
                out.append({"id": sub.name, **self.meta(sub)})
        return sorted(out, key=lambda m: m.get("added", 0), reverse=True)

    def usage(self, sid: str) -> int:
        """Bytes this session's folder holds on disk (uploads and results), for its quota."""
        folder = self.session_dir(sid)
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.is_dir() else 0

    def thresholds(self, sid: str) -> dict:
        """The session's diagnostics threshold overrides ({} = the defaults; flowviz.web.thresholds)."""
        from flowviz.web.thresholds import parse_thresholds

        try:
            return parse_thresholds(json.loads((self.session_dir(sid) / "thresholds.json").read_text()))
        except (OSError, ValueError, AttributeError, FlowvizError):  # none yet, or a damaged file: defaults
            return {}

    def set_thresholds(self, sid: str, overrides: dict) -> None:
        folder = self.session_dir(sid)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "thresholds.json.tmp"
        tmp.write_text(json.dumps(overrides))
        os.replace(tmp, folder / "thresholds.json")

    def delete(self, sid: str, cid: str) -> bool:
        folder = self.capture_dir(sid, cid)
        if folder is None:
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    def write_result(self, folder: Path, result: dict) -> None:
        tmp = folder / "result.json.tmp"
        tmp.write_text(json.dumps(result, default=str))
        os.replace(tmp, folder / "result.json")

    def result(self, folder: Path) -> dict | None:
        """The stored result, parsed once per version of the file (paging a big call list stays quick)."""
        path = folder / "result.json"
        try:
            info = path.stat()
            stamp = (info.st_mtime_ns, info.st_ino)  # a rewrite (new diagnostics) is a new file: never stale
            cached = self._results.get(path)
            if cached and cached[0] == stamp:
                return cached[1]
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        self._results[path] = (stamp, data)
        while len(self._results) > 8:
            self._results.pop(next(iter(self._results)))
        return data

    def expire(self) -> int:
        """Remove captures older than the retention time; returns how many."""
        limit = time.time() - self.retention_s
        removed = 0
        for session in (self.root / "sessions").iterdir():
            for sub in session.iterdir() if session.is_dir() else []:
                if (sub / "meta.json").is_file() and self.meta(sub).get("added", 0) < limit:
                    shutil.rmtree(sub, ignore_errors=True)
                    removed += 1
        return removed

"""Security: signed session cookies, the same-origin check and CSRF token of state-changing requests, and the
headers every response carries (docs/web.md, "Security").

- The session cookie is the session id signed with the server's secret (itsdangerous): a cookie the server
  did not issue, forged or altered, is ignored and the browser gets a new, empty session.
- Every request that is not GET/HEAD/OPTIONS (uploads, delete, cancel, samples and every Dash callback,
  which all go through POST) must come from a page of this app: its Origin (or, without one, its Referer)
  names this host, and it carries the X-CSRF-Token header, an HMAC of the session id that only the app's
  own pages hold (a <meta> tag of the page; another site's script cannot read the page). A refused request
  changes nothing and sets no cookie.
- The secret comes from FLOWVIZ_SECRET_KEY, or from <data dir>/secret_key (created once, mode 0600), so
  sessions survive a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import flask
from itsdangerous import BadSignature, Signer

TOKEN_HEADER = "X-CSRF-Token"
TOKEN_META = "flowviz-csrf"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def load_secret(data_dir: Path) -> bytes:
    """FLOWVIZ_SECRET_KEY, or the data directory's secret_key file (made on first use, readable by us only)."""
    if os.environ.get("FLOWVIZ_SECRET_KEY"):
        return os.environ["FLOWVIZ_SECRET_KEY"].encode()
    path = data_dir / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
        path.unlink()  # damaged (cut short): a new secret; older cookies become fresh sessions
        return load_secret(data_dir)
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(32))
    return path.read_bytes()


class Sessions:
    """Issues and checks session cookies and the CSRF token bound to each session."""

    def __init__(self, secret: bytes):
        self.secret = secret
        self.signer = Signer(secret, salt="flowviz-session")

    def cookie(self, sid: str) -> str:
        return self.signer.sign(sid).decode()

    def sid(self, cookie: str | None) -> str | None:
        """The session id of a cookie the server issued, else None."""
        if not cookie:
            return None
        try:
            return self.signer.unsign(cookie).decode()
        except (BadSignature, UnicodeError):
            return None

    def token(self, sid: str) -> str:
        return hmac.new(self.secret, b"csrf:" + sid.encode(), hashlib.sha256).hexdigest()

    def token_ok(self, sid: str | None, token: str | None) -> bool:
        return bool(sid) and bool(token) and hmac.compare_digest(self.token(sid), token)


def same_origin(request: flask.Request) -> bool:
    """True when the request's Origin, or without one its Referer, names the host it was sent to. Browsers
    send Origin with every cross-origin request and with same-origin POSTs; without either the request is
    not from a page of this app. FLOWVIZ_ALLOWED_ORIGINS (comma-separated, e.g. https://flowviz.example.org)
    adds origins for a reverse proxy that sends its own Host header."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        origin = request.headers.get("Referer") if origin is None else None
    if not origin:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return False
    # behind a reverse proxy that does not pass the browser's Host on, the public origin is named here
    extra = {o.strip().rstrip("/").lower() for o in os.environ.get("FLOWVIZ_ALLOWED_ORIGINS", "").split(",") if o.strip()}
    return parts.netloc.lower() == (request.host or "").lower() or f"{parts.scheme}://{parts.netloc}".lower() in extra


def refusal(request: flask.Request, sessions: Sessions, sid: str | None) -> str | None:
    """Why a state-changing request is refused, or None when it may go on."""
    if request.method in SAFE_METHODS:
        return None
    if not same_origin(request):
        return "refused: this request did not come from a flowviz page (origin check)"
    if not sessions.token_ok(sid, request.headers.get(TOKEN_HEADER)):
        return "refused: missing or wrong page token; reload the page and try again"
    return None


def content_security_policy(inline_script_hashes: list[str]) -> str:
    """What Dash and plotly need: scripts from this server plus the hashes of Dash's inline renderer script;
    inline styles (React and plotly set style attributes and add <style> elements); data: images and fonts
    (plotly's modebar, exports); requests to this server only; framed by this app's own pages only."""
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' " + " ".join(inline_script_hashes),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ])


def security_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }

"""Routes on the Dash server: the session cookie, streamed uploads and bundled samples.

Uploads are multipart POSTs that werkzeug spools to disk (RAM stays flat); the file is copied in chunks
into the session's folder under a random name, checked for a pcap/pcapng/gzip signature, then queued for
analysis. Errors come back as JSON {"error": one line} with a 4xx status.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import flask

from flowviz.errors import FlowvizError, NotFoundError
from flowviz.web.analysis import capture_settings
from flowviz.web.security import SAFE_METHODS, Sessions, refusal
from flowviz.web.store import Store, display_name, human_bytes, is_capture, new_session_id, valid_session

COOKIE = "flowviz_session"
THEME_COOKIE = "flowviz_theme"
CHUNK = 1 << 20
CALL_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def session_id() -> str:
    """The browser session's id: from its signed cookie, or a new one set on the response (a cookie the server
    did not issue counts as none)."""
    sid = getattr(flask.g, "flowviz_sid", None)
    if sid:
        return sid
    sid = sessions().sid(flask.request.cookies.get(COOKIE))
    if not valid_session(sid):
        sid = new_session_id()
        flask.g.flowviz_new_sid = True
    flask.g.flowviz_sid = sid
    return sid


def sessions() -> Sessions:
    return flask.current_app.extensions["flowviz_sessions"]


def csrf_token() -> str:
    """The page token of this browser session (sent back by the page's scripts in the X-CSRF-Token header)."""
    return sessions().token(session_id())


def figure_theme():
    """The theme the browser shows (cookie flowviz_theme, kept by assets/theme.js), for the figures drawn
    for it; light when the cookie is missing or unknown. Downloads never use it: they stay light."""
    from flowviz.figures.theme import LIGHT, THEMES

    return THEMES.get(flask.request.cookies.get(THEME_COOKIE, ""), LIGHT)


def register(server: flask.Flask, store: Store, analyzer, max_bytes: int, samples: dict[str, Path], calls,
             guard: Sessions, headers: dict[str, str], renderers=None, quota: int = 20 << 30) -> None:
    server.extensions["flowviz_sessions"] = guard

    @server.before_request
    def _session():
        if flask.request.method not in SAFE_METHODS:
            # before any session is made: a refused request gets no cookie, so it cannot replace the user's
            why = refusal(flask.request, guard, guard.sid(flask.request.cookies.get(COOKIE)))
            if why:
                flask.g.flowviz_refused = True
                return flask.jsonify({"error": why}), 403
        session_id()
        return None

    @server.after_request
    def _cookie(response):
        if getattr(flask.g, "flowviz_new_sid", False) and not getattr(flask.g, "flowviz_refused", False):
            # Secure when the page came over https (directly, or through a trusted proxy's X-Forwarded-Proto)
            response.set_cookie(COOKIE, guard.cookie(flask.g.flowviz_sid), httponly=True, samesite="Lax",
                                max_age=30 * 24 * 3600, secure=flask.request.scheme == "https")
        response.headers.update(headers)
        return response

    def error(message: str, status: int):
        return flask.jsonify({"error": message}), status

    def over_quota(sid: str, adding: int) -> str | None:
        """Why `adding` more bytes do not fit in the session's quota; None when they do."""
        used = store.usage(sid)
        if used + adding <= quota:
            return None
        return (f"this browser session's captures take {human_bytes(used)} of its {human_bytes(quota)} on this "
                "server: delete some to add more")

    @server.before_request
    def _quota():
        # before any byte is stored: the request's length against what the session has left
        if flask.request.method == "POST" and flask.request.path.startswith(("/api/upload", "/api/capture/")) \
                and flask.request.path.endswith(("/upload", "/add-point")) and not getattr(flask.g, "flowviz_refused", False):
            why = over_quota(session_id(), flask.request.content_length or 0)
            if why:
                return error(why, 413)
        return None

    @server.post("/api/upload")
    def upload():
        length = flask.request.content_length
        if length is not None and length > max_bytes + (1 << 16):
            return error(f"file too large: the limit is {human_bytes(max_bytes)}", 413)
        files = flask.request.files.getlist("file")
        if not files:
            return error("no file in the upload", 400)
        try:
            ports = parse_ports(flask.request.form.get("sip_ports", ""))
            keylog = parse_keylog(flask.request.files.get("keylog"))
        except FlowvizError as exc:
            return error(exc.message, 400)
        sid = session_id()
        if flask.request.form.get("as_set") == "1" and len(files) > 1:
            return upload_set(sid, files, ports, keylog)
        added, errors = [], []
        for item in files:
            name = item.filename or "capture"
            cid, folder = store.add(sid, name, 0)
            size, head = _copy(item.stream, folder / "capture", max_bytes)
            if over_quota(sid, 0):
                store.discard(folder)
                errors.append(f"{name}: {over_quota(sid, size)}")
            elif size > max_bytes:
                store.discard(folder)
                errors.append(f"{name}: file too large: the limit is {human_bytes(max_bytes)}")
            elif not is_capture(head):
                store.discard(folder)
                errors.append(f"{name}: not a capture file (expected pcap, pcapng or gzip-compressed pcap)")
            else:
                store.publish(folder, name, size, sip_ports=ports, keylog=keylog)
                analyzer.submit(folder)
                added.append(cid)
        status = 200 if added else 413 if any("too large" in e or "delete some" in e for e in errors) else 400
        return flask.jsonify({"added": added, "error": "; ".join(errors) or None}), status

    def upload_set(sid: str, files, ports: list[int], keylog: bytes | None = None):
        """Several captures of the same calls taken at several points: one entry, analysed as one set."""
        cid, folder = store.add(sid, "set", 0)
        points = []
        for i, item in enumerate(files, 1):
            name = item.filename or "capture"
            size, head = _copy(item.stream, folder / f"point-{i}", max_bytes)
            why = _refused(name, size, head, max_bytes)
            if why:  # one bad file spoils the set: nothing is kept
                store.discard(folder)
                return flask.jsonify({"added": [], "error": why}), 413 if "too large" in why else 400
            points.append({"name": display_name(name), "size": size})
        store.publish(folder, " + ".join(p["name"] for p in points), sum(p["size"] for p in points),
                      sip_ports=ports, points=points, keylog=keylog)
        analyzer.submit(folder)
        return flask.jsonify({"added": [cid], "error": None})

    @server.post("/api/capture/<cid>/add-point")
    def add_point(cid: str):
        """One more capture point of the same calls into a stored capture: the set is analysed again."""
        folder = store.capture_dir(session_id(), cid)
        if folder is None:
            return error("no such capture", 404)
        if store.meta(folder).get("state") in ("queued", "running"):
            return error("the capture is being analysed: wait for it to finish (or cancel it) first", 409)
        files = flask.request.files.getlist("file")
        if len(files) != 1:
            return error("give one capture file to add as a capture point", 400)
        name = files[0].filename or "capture"
        target = folder / "point-new"  # checked before it joins the set
        size, head = _copy(files[0].stream, target, max_bytes)
        why = _refused(name, size, head, max_bytes)
        if why:
            target.unlink(missing_ok=True)
            return error(why, 413 if "too large" in why else 400)
        calls.forget((session_id(), cid))
        target.replace(store.add_point(folder, name, size))
        store.queue_again(folder, {"name": display_name(name), "size": size})
        analyzer.submit(folder)
        return flask.jsonify({"added": [cid], "error": None})

    @server.post("/api/sample/<name>")
    def sample(name: str):
        path = samples.get(name)
        if path is None:
            return error("no such sample", 404)
        return flask.jsonify({"added": [add_sample(store, analyzer, session_id(), name, path)]})

    @server.get("/capture/<cid>/call/<gid>/export/<fmt>")
    def export(cid: str, gid: str, fmt: str):
        from flowviz.web.exports import FORMATS, export_bytes

        folder = store.capture_dir(session_id(), cid)
        result = store.result(folder) if folder is not None else None
        known = result is not None and any(c["call_group_id"] == gid for c in result["calls"])
        if not known or fmt not in FORMATS or not CALL_RE.match(gid):  # nothing is decoded in a request
            return error("no such capture, call or format in this browser session", 404)
        try:
            settings = capture_settings(analyzer.settings, store.meta(folder), folder)
            details = calls.get((session_id(), cid), store.sources(folder), gid, settings, store.thresholds(session_id()))
            redact = flask.request.args.get("redact") == "1"
            data = export_bytes(details, fmt, settings, redact=redact, renderers=renderers)
        except FlowvizError as exc:
            return error(exc.message, 404 if isinstance(exc, NotFoundError) else 400 if redact else 500)
        suffix, mime, _ = FORMATS[fmt]
        if fmt == "pcap" and data[:4] == b"\x0a\x0d\x0d\x0a":
            suffix = ".pcapng"
        name = f"call-{gid}{'-redacted' if redact else ''}{suffix}"
        return flask.Response(data, mimetype=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @server.get("/capture/<cid>/call/<gid>/audio.wav")
    @server.get("/capture/<cid>/call/<gid>/stream/<stream>/audio.wav")
    def audio(cid: str, gid: str, stream: str | None = None):
        """The call's audio (stereo: caller left, callee right) or one of its streams' (mono) as a WAV file, for
        the page's players (range requests answered) and as a download (?download=1)."""
        from flowviz.web.player import wav

        folder = store.capture_dir(session_id(), cid)
        result = store.result(folder) if folder is not None else None
        known = result is not None and any(c["call_group_id"] == gid for c in result["calls"])
        if not known or not CALL_RE.match(gid) or (stream is not None and not CALL_RE.match(stream)):
            return error("no such capture, call or stream in this browser session", 404)
        try:
            details = calls.get((session_id(), cid), store.sources(folder), gid,
                                capture_settings(analyzer.settings, store.meta(folder), folder),
                                store.thresholds(session_id()))
            if stream is not None and stream not in details["ladder"].media["stream_id"].to_list():
                return error("no such stream in this call", 404)
            data = wav(details, stream)
        except FlowvizError as exc:  # no RTP, or nothing decodable: the reason in one line
            return error(exc.message, 404)
        response = flask.Response(data, mimetype="audio/wav")
        if flask.request.args.get("download") == "1":
            name = f"call-{gid}.wav" if stream is None else f"call-{gid}-stream-{stream}.wav"
            response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response.make_conditional(flask.request)  # 206 for the player's Range requests (seeking)

    @server.post("/api/capture/<cid>/delete")
    def delete(cid: str):
        if not delete_capture(store, analyzer, session_id(), cid):
            return error("no such capture", 404)
        return flask.jsonify({"deleted": cid})

    @server.post("/api/capture/<cid>/retry")
    def retry(cid: str):
        folder = store.capture_dir(session_id(), cid)
        if folder is None:
            return error("no such capture", 404)
        if not analyzer.retry(folder):
            return error("only a failed or cancelled analysis can be run again", 409)
        calls.forget((session_id(), cid))
        return flask.jsonify({"queued": cid})

    @server.post("/api/capture/<cid>/cancel")
    def cancel(cid: str):
        folder = store.capture_dir(session_id(), cid)
        if folder is None:
            return error("no such capture", 404)
        if not analyzer.cancel(folder):
            return error("the analysis is not running", 409)
        return flask.jsonify({"cancelled": cid})


def _refused(name: str, size: int, head: bytes, max_bytes: int) -> str | None:
    if size > max_bytes:
        return f"{name}: file too large: the limit is {human_bytes(max_bytes)}"
    if not is_capture(head):
        return f"{name}: not a capture file (expected pcap, pcapng or gzip-compressed pcap)"
    return None


MAX_KEYLOG_BYTES = 1 << 20  # a key log holds a few hundred bytes per TLS session
_KEYLOG_LINE = re.compile(rb"[A-Z0-9_]+ [0-9A-Fa-f]+ [0-9A-Fa-f]+")


def parse_keylog(item) -> bytes | None:
    """The TLS key log uploaded with a capture (form field `keylog`), checked: NSS key log lines
    ('LABEL <client random hex> <secret hex>', '#' comments), at most MAX_KEYLOG_BYTES; None without one."""
    if item is None or not item.filename:
        return None
    data = item.stream.read(MAX_KEYLOG_BYTES + 1)
    if len(data) > MAX_KEYLOG_BYTES:
        raise FlowvizError(f"TLS key log too large: the limit is {human_bytes(MAX_KEYLOG_BYTES)}")
    lines = [line.strip() for line in data.splitlines() if line.strip() and not line.startswith(b"#")]
    if not lines or not all(_KEYLOG_LINE.fullmatch(line) for line in lines):
        raise FlowvizError("not a TLS key log: expected NSS key log lines such as 'CLIENT_RANDOM <hex> <hex>' "
                           "(what SSLKEYLOGFILE writes)")
    return data


def parse_ports(text: str) -> list[int]:
    """'5080, 5070' -> [5080, 5070]: extra UDP/TCP ports to read as SIP (at most 16)."""
    ports = []
    for item in re.split(r"[\s,;]+", (text or "").strip()):
        if not item:
            continue
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise FlowvizError(f"extra SIP ports: {item[:20]!r} is not a port number (1-65535); give numbers "
                               "separated by commas, e.g. 5080, 5070")
        if int(item) not in ports:
            ports.append(int(item))
    if len(ports) > 16:
        raise FlowvizError("extra SIP ports: at most 16")
    return ports


def delete_capture(store: Store, analyzer, sid: str, cid: str) -> bool:
    """Stop its analysis if any, then remove the capture and its results."""
    folder = store.capture_dir(sid, cid)
    if folder is None:
        return False
    analyzer.cancel(folder)
    return store.delete(sid, cid)


def add_sample(store: Store, analyzer, sid: str, name: str, path: Path) -> str:
    cid, folder = store.add(sid, name, 0)
    shutil.copyfile(path, folder / "capture")
    store.publish(folder, name, path.stat().st_size, sample=True)
    analyzer.submit(folder)
    return cid


def _copy(stream, target: Path, max_bytes: int) -> tuple[int, bytes]:
    """Copy in chunks, stopping one chunk past the limit; returns (bytes written, first bytes)."""
    size, head = 0, b""
    with open(target, "wb") as out:
        while chunk := stream.read(CHUNK):
            if not head:
                head = chunk[:8]
            size += len(chunk)
            if size > max_bytes:
                break
            out.write(chunk)
    return size, head

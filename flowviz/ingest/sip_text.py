"""SIP message text: parse one message (start line, headers, SDP body) into a row of `sip_messages`.

Pure functions on strings. tshark decides where each message starts and ends
(TCP reassembly, fragments, tunnels); this module reads the headers the way
RFC 3261 section 7.3 writes them: folded lines, compact names, several values
in one header separated by commas.
"""

from __future__ import annotations

import re

# RFC 3261 7.3.3 and the IANA registry of compact header names.
COMPACT = {
    "i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "l": "content-length",
    "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding", "o": "event",
    "r": "refer-to", "x": "session-expires", "u": "allow-events", "b": "referred-by",
}

_STATUS_LINE = re.compile(r"^SIP/2\.0\s+(\d{3})\s*(.*)$", re.IGNORECASE)
_REQUEST_LINE = re.compile(r"^(\S+)\s+(\S+)\s+SIP/2\.0\s*$", re.IGNORECASE)
_TAG = re.compile(r";\s*tag\s*=\s*([^;,\s>]+)", re.IGNORECASE)
_BRANCH = re.compile(r";\s*branch\s*=\s*([^;,\s]+)", re.IGNORECASE)


def parse_message(text: str, leg_headers: tuple[str, ...] = ("X-CID", "X-Call-ID", "Session-ID")) -> dict:
    """One SIP message -> dict with the SIP_MESSAGES columns that come from the text."""
    head, _sep, body = text.partition("\r\n\r\n")
    if not _sep:
        head, _sep, body = text.partition("\n\n")
    lines = _unfold(head.replace("\r\n", "\n").split("\n"))
    start = lines[0].strip() if lines else ""
    headers = _headers(lines[1:])
    row: dict = {"is_request": None, "method": None, "status_code": None, "reason": None, "request_uri": None}
    status = _STATUS_LINE.match(start)
    request = _REQUEST_LINE.match(start)
    if status:
        row.update(is_request=False, status_code=int(status.group(1)), reason=status.group(2).strip())
    elif request:
        row.update(is_request=True, method=request.group(1).upper(), request_uri=request.group(2))

    first = lambda name: headers.get(name, [None])[0]  # noqa: E731
    row["call_id"] = _strip(first("call-id"))
    cseq = (first("cseq") or "").split()
    row["cseq_num"] = int(cseq[0]) if cseq and cseq[0].isdigit() and int(cseq[0]) < 2**32 else None
    row["cseq_method"] = cseq[1].upper() if len(cseq) > 1 else None
    for side in ("from", "to"):
        display, uri, tag = name_addr(first(side))
        row[f"{side}_uri"], row[f"{side}_display"], row[f"{side}_tag"] = uri, display, tag
        row[f"{side}_user"] = uri_user(uri)
    vias = [v for value in headers.get("via", []) for v in split_commas(value)]
    row["via_sent_by"] = [via_sent_by(v) for v in vias]
    row["via_branches"] = [_match(_BRANCH, v) for v in vias]
    contact = first("contact")
    row["contact"] = name_addr(split_commas(contact)[0])[1] if contact else None
    row["route"] = _uri_list(headers.get("route", []))
    row["record_route"] = _uri_list(headers.get("record-route", []))
    mf = (first("max-forwards") or "").strip()
    row["max_forwards"] = int(mf) if mf.isdigit() and int(mf) < 32768 else None
    row["user_agent"] = _strip(first("user-agent"))
    row["server"] = _strip(first("server"))
    row["content_type"] = _strip(first("content-type"))
    row["leg_headers"] = [
        {"name": name, "value": value.strip()} for name in leg_headers for value in headers.get(name.lower(), [])
    ]
    row["reason_header"] = _strip(first("reason"))
    row["warning"] = _strip(first("warning"))
    sdp_text = _sdp_part(row["content_type"], body)
    row["has_sdp"] = sdp_text is not None
    connection, media = parse_sdp(sdp_text) if sdp_text is not None else (None, [])
    row["sdp_connection"] = connection
    row["sdp_media"] = media
    return row


def _unfold(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


def _headers(lines: list[str]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        key = COMPACT.get(key, key)
        headers.setdefault(key, []).append(value.strip())
    return headers


def _strip(value: str | None) -> str | None:
    return value.strip() if value is not None else None


def _match(pattern: re.Pattern, text: str) -> str | None:
    m = pattern.search(text)
    return m.group(1) if m else None


def split_commas(value: str) -> list[str]:
    """Split a header value at commas outside quotes and <...>."""
    if '"' not in value and "<" not in value:  # most Via values: nothing to skip over
        return [p for part in value.split(",") if (p := part.strip())]
    parts, buf, quoted, angle = [], [], False, 0
    escaped = False
    for ch in value:
        if escaped:
            buf.append(ch)
            escaped = False
            continue
        if ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle += 1
        elif ch == ">" and not quoted and angle:
            angle -= 1
        elif ch == "," and not quoted and not angle:
            parts.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf).strip())
    return [p for p in parts if p]


def name_addr(value: str | None) -> tuple[str | None, str | None, str | None]:
    """From/To/Contact value -> (display name, URI, tag).

    A display name in quotes is an RFC 3261 25.1 quoted-string: it ends at the first DQUOTE not escaped
    by a backslash, may hold `<`, `>`, `,` and `;`, and its quoted-pairs stand for the character after
    the backslash. The URI is what the next `<...>` after it encloses.
    """
    if not value:
        return None, None, None
    value = value.strip()
    display, rest = None, value
    if value.startswith('"'):
        end = _quoted_string_end(value)
        if end is not None:
            display, rest = _unquote(value[1:end]) or None, value[end + 1:]
    if "<" in rest:
        token, _, rest = rest.partition("<")
        uri, _, params = rest.partition(">")
        if display is None:  # an unquoted display name: tokens before the <
            display = token.strip().strip('"').strip() or None
    else:  # addr-spec: parameters after the URI belong to the header
        uri, _, params = rest.partition(";")
        params = ";" + params
    return display, uri.strip() or None, _match(_TAG, params)


def _quoted_string_end(value: str) -> int | None:
    """Index of the DQUOTE that closes the quoted-string opening at value[0], None when it is not closed."""
    i = 1
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            i += 2  # quoted-pair: the next character is taken as it is, even a DQUOTE
            continue
        if ch == '"':
            return i
        i += 1
    return None


def _unquote(text: str) -> str:
    """The characters a quoted-string's content stands for: each quoted-pair \\x is x (RFC 3261 25.1)."""
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL) if "\\" in text else text


def uri_user(uri: str | None) -> str | None:
    if not uri:
        return None
    scheme, sep, rest = uri.partition(":")
    if not sep:
        return None
    if scheme.lower() == "tel":
        return rest.split(";")[0] or None
    if "@" not in rest:
        return None
    return rest.split("@", 1)[0].split(";")[0].split(":")[0] or None


def via_sent_by(via: str) -> str | None:
    """'SIP/2.0/UDP host:port;branch=...' -> 'host:port' (as written; the port may be absent)."""
    proto, _, rest = via.strip().partition(" ")
    sent_by = rest.strip().split(";")[0].strip()
    return sent_by or None


def _uri_list(values: list[str]) -> list[str]:
    return [uri for v in values for part in split_commas(v) if (uri := name_addr(part)[1])]


def _sdp_part(content_type: str | None, body: str) -> str | None:
    if not content_type or not body:
        return None
    ctype = content_type.lower()
    if ctype.startswith("application/sdp"):
        return body
    if ctype.startswith("multipart/"):
        m = re.search(r"boundary\s*=\s*\"?([^\";]+)\"?", content_type, re.IGNORECASE)
        if m:
            for part in body.split("--" + m.group(1)):
                head, _, part_body = part.replace("\r\n", "\n").partition("\n\n")
                if "application/sdp" in head.lower():
                    return part_body
    return None


def parse_sdp(text: str) -> tuple[str | None, list[dict]]:
    """SDP body -> (session c= address, one dict per m= line) (RFC 4566, RFC 3264, RFC 3605, RFC 5761)."""
    session_conn = None
    session_dir = None
    media: list[dict] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:].strip()
        current = media[-1] if media else None
        if kind == "c":
            parts = value.split()
            addr = parts[2].split("/")[0] if len(parts) >= 3 else None
            if current is None:
                session_conn = addr
            else:
                current["connection"] = addr
        elif kind == "m":
            parts = value.split()
            port_text = parts[1].split("/")[0] if len(parts) > 1 else ""
            fmts = parts[3:] if len(parts) > 3 else []
            media.append(
                {
                    "media": parts[0] if parts else None,
                    "port": int(port_text) if port_text.isdigit() and int(port_text) < 65536 else None,
                    "proto": parts[2] if len(parts) > 2 else None,
                    "payload_types": [int(f) for f in fmts if f.isdigit() and int(f) < 128],
                    "rtpmap": [],
                    "direction": None,
                    "connection": None,
                    "rtcp_port": None,
                    "rtcp_mux": False,
                    "ptime_ms": None,
                }
            )
        elif kind == "a":
            name, _, attr = value.partition(":")
            name = name.lower()
            if name in ("sendrecv", "sendonly", "recvonly", "inactive"):
                if current is None:
                    session_dir = name
                else:
                    current["direction"] = name
            elif current is None:
                continue
            elif name == "rtpmap":
                current["rtpmap"].append(attr.strip())
            elif name == "rtcp":
                port = attr.split()[0] if attr.split() else ""
                current["rtcp_port"] = int(port) if port.isdigit() and int(port) < 65536 else None
            elif name == "rtcp-mux":
                current["rtcp_mux"] = True
            elif name == "ptime":
                ms = attr.strip().split(".")[0]
                current["ptime_ms"] = int(ms) if ms.isdigit() and int(ms) < 65536 else None
    for m in media:
        m["connection"] = m["connection"] or session_conn
        m["direction"] = m["direction"] or session_dir or "sendrecv"
    return session_conn, media

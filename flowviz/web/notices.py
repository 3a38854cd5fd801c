"""Notices: what a capture's warnings and file findings mean for someone in a browser.

The library words its warnings for the command line: they start with the file's path on the server and
name command options (--sip-port, --limit). Here they become {"kind", "title", "text", "advice"} dicts
without server paths, whose advice names what the web page offers (the upload form's extra SIP ports).
Pure functions of a stored result (flowviz.web.analysis.analyse) or an error text.
"""

from __future__ import annotations

import re

# a leading "<path>: " (the library's warnings name the file first), then any absolute path left
_LEADING_PATH = re.compile(r"^(?:/|[A-Za-z]:\\)(?:.*?/capture(?:\.\w+)*|\S*?): ")
_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.+~-]+/)+[\w.+~-]*")
_NO_SIP = re.compile(r"no SIP message found in ([\d,]+) packets")
_CUT = ("cut in the middle", "impossible length")

EXTRA_PORTS_ADVICE = ("If SIP runs on a port other than 5060 or 5061 in this capture, upload it again with "
                      "that port in \"extra SIP ports\" (next to \"choose files\"). SIP over TLS cannot be read "
                      "(it is encrypted). A capture taken on a media server alone holds no SIP: capture where "
                      "the signalling passes too.")


def without_paths(text: str) -> str:
    """The text with server paths removed: a leading '<path>: ' dropped, any other path as 'the file'."""
    text = _LEADING_PATH.sub("", text or "")
    return _PATH.sub("the file", text)


_LIMIT = re.compile(r"raise (?:it|the limit) with\s+--limit [^;()]*?(?:\s*\([^)]*\))?(?:, e\.g\. [^,;]*)?(?=[,;]|$)")


def for_browser(text: str) -> str:
    """A library message in browser words: no paths, no command-line options (what they would raise is the
    server's to change; SIP ports are offered by the upload form)."""
    text = without_paths(text)
    text = _LIMIT.sub("the server's administrator can raise the limit", text)
    text = re.sub(r"\(?editcap -c \d+ IN OUT\)?", "", text)
    text = re.sub(r",? ?(?:name|give) the port with --sip-port", " (see below)", text)
    text = re.sub(r"give --tls-keylog(?: FILE)?(?: \([^)]*\))?", "upload the capture again with its TLS key log "
                  "(the file SSLKEYLOGFILE writes)", text)
    return re.sub(r"  +", " ", text)


def capture_notices(result: dict) -> list[dict]:
    """The capture's warnings as notices, the file's damage first, then no SIP, then the rest."""
    info = result.get("info") or {}
    warnings = list(info.get("warnings") or [])
    notices = []
    cut = [w for w in warnings if any(c in w for c in _CUT)]
    skipped = info.get("skipped") or {}
    if cut or skipped or info.get("short_frames"):
        parts = [for_browser(w) for w in cut]
        parts += [f"{n:,} packet(s) skipped: {reason}" for reason, n in skipped.items()]
        if info.get("short_frames"):
            parts.append(f"{info['short_frames']:,} frame(s) cut short by the capture's snapshot length")
        notices.append({"kind": "cut", "title": "Capture damaged or cut",
                        "text": "; ".join(parts) + ".",
                        "advice": "Everything before the damage was analysed. Calls and streams near the cut may "
                                  "be incomplete: messages missing there may be missing from the file, not from "
                                  "the network. Upload an uncut copy if you have one."})
    packets = info.get("packets")
    no_sip = next((w for w in warnings if _NO_SIP.search(w)), None)
    if packets == 0:
        notices.append({"kind": "empty", "title": "No packets",
                        "text": "The file is a valid capture but holds no packet at all.",
                        "advice": "The capture was probably stopped before any traffic passed, or only its "
                                  "header was copied: capture again, or upload the complete file."})
    elif no_sip is not None or (not result.get("calls") and packets):
        n = _NO_SIP.search(no_sip).group(1) if no_sip else f"{packets:,}"
        notices.append({"kind": "no-sip", "title": "No SIP found",
                        "text": f"No SIP message was found in the {n} packets of this capture, so it has no calls.",
                        "advice": EXTRA_PORTS_ADVICE})
    rest = [w for w in warnings if w not in cut and w != no_sip]
    for w in rest:
        notices.append({"kind": "warning", "title": "Note", "text": for_browser(w), "advice": ""})
    return notices


def short_notices(result: dict) -> list[str]:
    """The titles of the notices that change what the capture's results mean (for the captures list)."""
    return [n["title"] for n in capture_notices(result) if n["kind"] != "warning"]

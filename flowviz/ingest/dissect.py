"""Dissection: one packet decoded in full by Wireshark's dissectors (through pyshark), layer by layer.

This is the packet-details view (every protocol, every field with Wireshark's own
wording) for the few packets a user looks at. pyshark runs in a separate 'spawn'
process: it is unreliable inside threads (asyncio child watcher), and a web request
is a thread.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from pathlib import Path

from flowviz.errors import CaptureError, NotFoundError, ToolMissingError
from flowviz.settings import Settings


def dissect_frame(path: str | Path, frame: int, settings: Settings | None = None) -> list[dict]:
    """[{"layer": "sip", "fields": [{"name": "sip.Call-ID", "text": "Call-ID: abc"}, ...]}, ...]"""
    settings = settings or Settings()
    path = Path(path)
    if not path.is_file():
        raise CaptureError(f"{path}: no such file; check the path")
    if frame < 1:
        raise NotFoundError(f"frame numbers start at 1 (got {frame})")
    tshark = settings.tshark()
    if not tshark:
        raise ToolMissingError("tshark is not found; install it with: apt-get install tshark")
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        layers = pool.submit(_dissect_in_worker, str(path), frame, tshark, settings.tls_keylog).result(timeout=600)
    if layers is None:
        raise NotFoundError(f"{path} has no frame {frame}; `flowviz info` shows how many packets it has")
    return layers


def _dissect_in_worker(path: str, frame: int, tshark: str, keylog: str = "") -> list[dict] | None:
    import pyshark

    prefs = {"tls.keylog_file": keylog} if keylog else None  # SIP over TLS shown decrypted
    capture = pyshark.FileCapture(path, display_filter=f"frame.number == {frame}", tshark_path=tshark,
                                  keep_packets=False, override_prefs=prefs)
    try:
        for packet in capture:
            return [_layer(layer) for layer in packet.layers]
        return None
    finally:
        capture.close()


def _layer(layer) -> dict:
    fields = []
    for field in layer._get_all_fields_with_alternates():
        text = field.showname or field.show
        if field.name and text:
            fields.append({"name": field.name, "text": str(text)})
    return {"layer": layer.layer_name, "fields": fields}

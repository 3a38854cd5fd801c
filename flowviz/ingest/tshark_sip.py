"""tshark's SIP decode: the sub-capture in on its standard input, `sip_messages` out.

tshark starts during the packet pass, at the first packet it will get (it spends ~0.2 s loading
its dissectors first); a thread writes the sub-capture into it and another parses its lines as
they come, while the main thread works on RTP in numba/numpy/polars code that releases the GIL.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading

import numpy as np
import polars as pl

from flowviz import schemas
from flowviz.errors import CaptureError, ToolMissingError
from flowviz.ingest.sip_text import parse_message
from flowviz.ingest.tshark_cmd import AGGREGATOR, TSHARK_FIELDS, key_options, start_tshark
from flowviz.settings import Settings

class TsharkRun:
    """tshark decoding a sub-capture from its standard input; `result()` waits and returns sip_messages.

    tshark spends ~0.2 s loading its dissectors before it reads anything, so ingest calls `start()`
    as soon as the packet pass meets a packet for it, before the sub-capture exists; `feed()` then
    streams it in (and starts tshark if nobody did). When SIP was found on ports tshark needs `-d`
    options for, the early process is replaced by one with them.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.proc: subprocess.Popen | None = None
        self.decode_as: list[str] = []
        self.tshark_used = ""
        self.sub_bytes = b""
        self.rows_out: list[dict] = []
        self.gap_frames: list[int] = []  # capture frames right after a TCP segment the capture missed
        self.mixed: list[int] = []
        self.error: BaseException | None = None
        self.threads: list[threading.Thread] = []
        self.stderr_chunks: list[bytes] = []

    def start(self, decode_as: list[str] = ()) -> "TsharkRun":
        self.decode_as = [a for d in decode_as for a in ("-d", d)]
        self.proc, self.tshark_used = start_tshark(self.settings, decode_as)
        return self  # a missing tshark is only an error if there is SIP to decode: see feed()

    def feed(self, sub_bytes: bytes, rows: np.ndarray, ts_of_row: np.ndarray, decode_as: list[str]) -> None:
        """rows[k-1] is the capture row of sub-capture frame k; ts_of_row its time."""
        self.rows = rows
        self.ts_of_row = ts_of_row
        if not len(rows):
            self._stop(wait=False)  # the early tshark is not needed; reaping it takes ~10 ms
            return
        if not self.settings.tshark():
            where = f" at {self.settings.tshark_path}" if self.settings.tshark_path else ""
            raise ToolMissingError(f"tshark{where} is not found; install it with: apt-get install tshark")
        if self.proc is None or decode_as or self.tshark_used != self.settings.tshark():
            self._stop()
            self.start(decode_as)
        self.sub_bytes = sub_bytes
        # One thread writes the sub-capture, one reads and parses tshark's lines as they come, one keeps
        # its standard error (a full stderr pipe would stop tshark).
        for target, name in ((self._write, "flowviz-sip-in"), (self._read, "flowviz-sip-out"),
                             (self._read_err, "flowviz-sip-err")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def cancel(self) -> None:
        """Stop tshark (after an error elsewhere); result() must not be called after this."""
        self._stop()

    def _stop(self, wait: bool = True) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.kill()
        if wait:
            _reap(proc)
        else:
            threading.Thread(target=_reap, args=(proc,), name="flowviz-tshark-reap", daemon=True).start()

    def _write(self) -> None:
        try:
            self.proc.stdin.write(self.sub_bytes)
            self.proc.stdin.close()
        except BrokenPipeError:
            pass  # tshark stopped early: its exit code and message tell why

    def result(self) -> pl.DataFrame:
        try:
            if self.proc is None:
                return schemas.empty(schemas.SIP_MESSAGES)
            # Waits that wake up every 0.1 s: Ctrl-C (SIGINT) is handled by the main thread only when it
            # runs, and a signal the kernel gives another thread (the parsing one) does not wake a
            # plain join() or wait(); a KeyboardInterrupt here stops tshark in the finally below.
            for thread in self.threads:
                while thread.is_alive():
                    thread.join(0.1)
            while True:
                try:
                    self.proc.wait(0.1)
                    break
                except subprocess.TimeoutExpired:
                    pass
            if self.error:
                raise self.error
            msg = b"".join(self.stderr_chunks).decode("utf-8", "replace").strip().splitlines()
            if interrupted(self.proc.returncode, msg):
                # Ctrl-C in a terminal reaches tshark too (same process group) and it stops mid-output:
                # that is the user's interrupt, not a decode error (flowviz gets its own SIGINT as well).
                raise KeyboardInterrupt
            if self.proc.returncode != 0:
                raise CaptureError(f"tshark could not decode the SIP packets: {msg[-1] if msg else 'exit ' + str(self.proc.returncode)}")
            rows = self.rows_out
            if self.mixed:
                for row in _reorder_mixed(rows, self._start_lines_in_order(self.mixed)):
                    row.update(parse_message(row["raw"], self.settings.leg_link_headers))
            return schemas.from_rows(rows, schemas.SIP_MESSAGES)
        finally:
            self._stop()

    def _read_err(self) -> None:
        try:
            stream = self.proc.stderr
            for chunk in iter(lambda: stream.read1(65536), b""):
                self.stderr_chunks.append(chunk)
        except (AttributeError, OSError, ValueError):  # stopped and closed by _stop()
            pass

    def _read(self) -> None:
        try:
            for line in self.proc.stdout:
                self._parse_line(line.decode("utf-8", "replace").rstrip("\n"))
        except BaseException as exc:  # handed to the main thread by result()
            self.error = exc

    def _parse_line(self, line: str) -> None:
        cols = line.split("\t")
        if len(cols) < len(TSHARK_FIELDS):
            return
        f = dict(zip(TSHARK_FIELDS, cols))
        if f["tcp.analysis.lost_segment"]:
            self.gap_frames.append(int(self.rows[int(f["frame.number"]) - 1]) + 1)
        headers = _occurrences(f["sip.msg_hdr"])
        requests = _occurrences(f["sip.Request-Line"])
        statuses = _occurrences(f["sip.Status-Line"])
        if not (requests or statuses):
            return  # "Continuation" data: not a message
        sub_frame = int(f["frame.number"])
        if requests and statuses:
            self.mixed.append(sub_frame)
        frame_map = self.rows  # sub-capture frame k is original row frame_map[k-1]
        frame = int(frame_map[sub_frame - 1]) + 1
        ts_ns = int(self.ts_of_row[sub_frame - 1])
        carriers = {frame}
        for name in ("tcp.segment", "ip.fragment", "ipv6.fragment"):
            carriers.update(int(frame_map[int(s) - 1]) + 1 for s in _occurrences(f[name]))
        protocols = f["frame.protocols"].split(":")
        base = {
            "frame": frame,
            "sub_frame": sub_frame,
            "ts_ns": ts_ns,
            "src_ip": _inner_address(f, protocols, "src"),
            "dst_ip": _inner_address(f, protocols, "dst"),
            "src_port": _int(_last(f["udp.srcport"]) or _last(f["tcp.srcport"]) or _last(f["sctp.srcport"])),
            "dst_port": _int(_last(f["udp.dstport"]) or _last(f["tcp.dstport"]) or _last(f["sctp.dstport"])),
            "transport": _transport(protocols),
            "icmp_quoted": "icmp" in protocols or "icmpv6" in protocols,
        }
        starts = requests + statuses
        for i, start in enumerate(starts):
            raw = _unescape(start) + "\r\n" + _unescape(headers[i] if i < len(headers) else "")
            if i + 1 < len(starts):
                raw = _one_message(raw)
            # tcp.segment/ip.fragment describe the PDU reassembled in this frame: the first message.
            row = dict(base, msg_index=i, raw=raw, frames=sorted(carriers) if i == 0 else [frame])
            row.update(parse_message(raw, self.settings.leg_link_headers))
            self.rows_out.append(row)

    def _start_lines_in_order(self, sub_frames: list[int]) -> dict[int, list[str]]:
        """For frames holding both requests and responses, ask tshark (PDML) for the true order."""
        import xml.etree.ElementTree as ET

        flt = "frame.number in {" + ", ".join(str(f) for f in sub_frames) + "}"  # tshark 4.0: commas
        args = [self.settings.tshark(), "-r", "-", "-n", *key_options(self.settings), *self.decode_as, "-Y", flt,
                "-T", "pdml"]
        done = subprocess.run(args, input=self.sub_bytes, capture_output=True, timeout=600)
        msg = done.stderr.decode("utf-8", "replace").strip().splitlines()
        if interrupted(done.returncode, msg):  # Ctrl-C reached it too: see result()
            raise KeyboardInterrupt
        if done.returncode != 0:  # never leave the messages in a guessed order without saying so
            raise CaptureError(f"tshark could not order the SIP messages of {len(sub_frames)} TCP frames: "
                               f"{msg[-1] if msg else 'exit ' + str(done.returncode)}")
        order: dict[int, list[str]] = {}
        for packet in ET.fromstring(done.stdout or b"<pdml/>").iter("packet"):
            number = None
            lines = []
            for node in packet.iter("field"):
                name = node.get("name")
                if name == "frame.number":
                    number = int(node.get("show"))
                elif name in ("sip.Request-Line", "sip.Status-Line"):
                    lines.append(node.get("show"))
            if number is not None:
                order[number] = lines
        return order


_CONTENT_LENGTH = re.compile(r"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)


def _one_message(raw: str) -> str:
    """A message that is not the last of its TCP segment, cut at its end (headers, blank line, Content-Length
    bytes of body): tshark 4.0 gives it sip.msg_hdr running to the end of the segment, with the next
    messages' text in it (SIP over TCP frames its messages by Content-Length, RFC 3261 18.3)."""
    head, sep, _ = raw.partition("\r\n\r\n")
    match = _CONTENT_LENGTH.search(head) if sep else None
    if not match:
        return raw
    data = raw.encode("utf-8")
    return data[: len(head.encode("utf-8")) + 4 + int(match.group(1))].decode("utf-8", "replace")


def _reap(proc: subprocess.Popen) -> None:
    """Wait for a killed tshark and close its pipes."""
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        stream.close()


def _reorder_mixed(rows: list[dict], order: dict[int, list[str]]) -> list[dict]:
    """Give each message of a frame that mixes requests and responses its true start line; returns those rows."""
    by_frame: dict[int, list[dict]] = {}
    for row in rows:
        by_frame.setdefault(row["sub_frame"], []).append(row)
    changed = []
    for sub_frame, lines in order.items():
        group = by_frame.get(sub_frame, [])
        if len(lines) == len(group):
            for row, start in zip(group, lines):
                row["raw"] = start + "\r\n" + row["raw"].partition("\r\n")[2]
                changed.append(row)
    return changed


def _occurrences(value: str) -> list[str]:
    return [v for v in value.split(AGGREGATOR)] if value else []


def _last(value: str) -> str | None:
    occ = _occurrences(value)
    return occ[-1] if occ else None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _transport(protocols: list[str]) -> str:
    if "websocket" in protocols and "tls" in protocols:
        return "wss"
    for name, label in (("websocket", "ws"), ("tls", "tls"), ("sctp", "sctp"), ("tcp", "tcp"), ("udp", "udp")):
        if name in protocols:
            return label
    return "unknown"


def _inner_address(f: dict, protocols: list[str], side: str) -> str | None:
    """The innermost IP header's address (tunnels, ICMP quotes: tshark lists the inner one last)."""
    families = [p for p in protocols if p in ("ip", "ipv6")]
    if not families:
        return None
    return _last(f[f"{families[-1]}.{side}"])


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)")
_SIMPLE = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "\\": "\\", '"': '"', "'": "'"}


def _unescape(text: str) -> str:
    """Undo tshark's escaping of field text (\\r, \\n, \\t, \\\\, \\xNN, octal)."""
    if "\\" not in text:
        return text

    def repl(m: re.Match) -> str:
        code = m.group(1)
        if code[0] == "x" and len(code) == 3:
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        return _SIMPLE.get(code, "\\" + code)

    return _ESCAPE.sub(repl, text)


ROOT_WARNING = "Running as user"


def interrupted(returncode: int, stderr_lines: list[str]) -> bool:
    """Did tshark stop because it got SIGINT? Killed by it before its handler is set (-2), or, once set,
    it stops reading and exits 2 without a word (tshark 4.0: only its 'Running as user root' notice)."""
    if returncode == -signal.SIGINT:
        return True
    said = [line for line in stderr_lines if line.strip() and not line.startswith(ROOT_WARNING)]
    return returncode == 2 and not said

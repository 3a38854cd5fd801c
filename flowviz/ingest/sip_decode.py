"""SIP decoding: pick the SIP candidates, write them to a small sub-capture, let tshark decode it exactly.

tshark does what only a full dissector does right (TCP reassembly, IP fragments,
tunnels, WebSocket, several messages per segment); it runs as a subprocess on the
sub-capture only, in the background while the RTP headers are decoded.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from flowviz import schemas
from flowviz.errors import CaptureError, ToolMissingError
from flowviz.ingest.sip_text import parse_message
from flowviz.ingest.triage import PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, PacketIndex
from flowviz.settings import Settings

# First bytes of a SIP request or response (RFC 3261 and the methods of its extensions).
SIP_PREFIXES = [
    b"INVITE ", b"ACK ", b"BYE ", b"CANCEL ", b"REGISTER", b"OPTIONS ", b"PRACK ", b"SUBSCRIB",
    b"NOTIFY ", b"PUBLISH ", b"INFO ", b"REFER ", b"MESSAGE ", b"UPDATE ", b"SIP/2.0 ",
]
MAX_DECODE_AS = 64
AGGREGATOR = "\x1e"
TSHARK_FIELDS = [
    "frame.number", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "udp.srcport", "udp.dstport",
    "tcp.srcport", "tcp.dstport", "sctp.srcport", "sctp.dstport", "frame.protocols",
    "tcp.segment", "ip.fragment", "ipv6.fragment", "sip.Request-Line", "sip.Status-Line", "sip.msg_hdr",
]


@dataclass
class SipCandidates:
    packet_rows: np.ndarray  # int64: indices (0-based) of candidate packets in the capture
    decode_as: list[str]  # tshark -d arguments for SIP found on other ports
    content_match: np.ndarray  # bool per packet: payload starts like SIP


def payload_starts_like_sip(index: PacketIndex) -> np.ndarray:
    """Vectorized check of the first 8 payload bytes against SIP request/response prefixes."""
    n = index.count
    has = index.payload_len >= 4
    word = np.zeros(n, dtype=np.uint64)
    buf = index.records.buf
    last = len(buf) - 1
    rows = np.flatnonzero(has)
    if not len(rows):
        return np.zeros(n, dtype=bool)
    off, plen = index.payload_off[rows], index.payload_len[rows]
    acc = np.zeros(len(rows), dtype=np.uint64)
    for k in range(8):
        byte = buf[np.clip(off + k, 0, last)].astype(np.uint64)
        byte = np.where(k < plen, byte, np.uint64(0))
        acc = (acc << np.uint64(8)) | byte
    word[rows] = acc
    match = np.zeros(n, dtype=bool)
    for prefix in SIP_PREFIXES:
        size = len(prefix)
        shift = np.uint64(64 - 8 * size)
        value = np.uint64(int.from_bytes(prefix, "big"))
        match |= (word >> shift) == value if size < 8 else word == value
    return match & has


def _endpoint_hash(hi, lo, port) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = hi * np.uint64(0x9E3779B97F4A7C15) ^ lo
        h = (h ^ (h >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
        return h ^ port.astype(np.uint64) * np.uint64(0x94D049BB133111EB)


def flow_keys(index: PacketIndex) -> np.ndarray:
    """64-bit key of the (unordered) UDP/TCP conversation of each packet."""
    a = _endpoint_hash(index.src_hi, index.src_lo, index.src_port)
    b = _endpoint_hash(index.dst_hi, index.dst_lo, index.dst_port)
    with np.errstate(over="ignore"):
        return (np.minimum(a, b) * np.uint64(31)) ^ np.maximum(a, b) ^ index.ip_proto.astype(np.uint64)


def select_candidates(index: PacketIndex, settings: Settings) -> SipCandidates:
    proto = index.ip_proto
    udp_tcp = (proto == PROTO_UDP) | (proto == PROTO_TCP)
    content = payload_starts_like_sip(index) & udp_tcp
    ports = np.array(settings.sip_ports, dtype=np.uint16)
    on_sip_port = udp_tcp & (np.isin(index.src_port, ports) | np.isin(index.dst_port, ports))
    keys = flow_keys(index)
    sip_flows = np.unique(keys[content | _websocket_sip(index)])
    in_sip_flow = udp_tcp & np.isin(keys, sip_flows)
    # ICMP errors quote the packet that caused them; tshark decodes a quoted SIP message too.
    icmp = (proto == PROTO_ICMP) | (proto == PROTO_ICMPV6)
    unknown_link = index.ip_version == 0
    candidates = (
        content | on_sip_port | in_sip_flow | index.is_fragment | (proto == PROTO_SCTP) | icmp
        | index.needs_exact | (unknown_link & _unsupported_link(index))
    )
    return SipCandidates(np.flatnonzero(candidates), _decode_as(index, content, settings), content)


def _unsupported_link(index: PacketIndex) -> np.ndarray:
    from flowviz.ingest.triage import LT_ERF, LT_ETHERNET, LT_LOOP, LT_NULL, LT_SLL, LT_SLL2, RAW_LINK_TYPES

    return ~np.isin(index.records.link_type, (LT_ETHERNET, LT_SLL, LT_SLL2, LT_NULL, LT_LOOP, LT_ERF) + RAW_LINK_TYPES)


def _websocket_sip(index: PacketIndex) -> np.ndarray:
    """TCP packets opening a WebSocket with the 'sip' subprotocol (RFC 7118)."""
    out = np.zeros(index.count, dtype=bool)
    buf = index.records.buf
    rows = np.flatnonzero((index.ip_proto == PROTO_TCP) & (index.payload_len >= 16))
    if not len(rows):
        return out
    first4 = np.zeros(len(rows), dtype=np.uint32)
    for k in range(4):
        first4 = (first4 << np.uint32(8)) | buf[np.clip(index.payload_off[rows] + k, 0, len(buf) - 1)]
    gets = rows[first4 == int.from_bytes(b"GET ", "big")]
    for row in gets:
        start = int(index.payload_off[row])
        text = bytes(buf[start : start + int(index.payload_len[row])]).lower()
        if b"websocket" in text and b"sip" in text:
            out[row] = True
    return out


def _decode_as(index: PacketIndex, content: np.ndarray, settings: Settings) -> list[str]:
    """SIP found by content on ports tshark does not decode as SIP by default."""
    rows = np.flatnonzero(content)
    if not len(rows):
        return []
    buf = index.records.buf
    is_response = buf[index.payload_off[rows]] == ord("S")
    server = np.where(is_response, index.src_port[rows], index.dst_port[rows])
    proto = index.ip_proto[rows]
    args = []
    for p, port in sorted(set(zip(proto.tolist(), server.tolist()))):
        if port in (5060,) or port in settings.sip_ports and p == PROTO_UDP:
            continue
        args.append(f"{'tcp' if p == PROTO_TCP else 'udp'}.port=={port},sip")
    return args[:MAX_DECODE_AS]


def write_subcapture(index: PacketIndex, rows: np.ndarray, path: Path) -> None:
    """Write the chosen packets, original bytes and times, to a pcapng (one interface per link type)."""
    rec = index.records
    link_types = sorted(set(rec.link_type[rows].tolist())) or [1]
    iface_of = {lt: i for i, lt in enumerate(link_types)}
    parts = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    for lt in link_types:  # if_tsresol = 9: nanoseconds
        options = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
        parts.append(_block(1, struct.pack("<HHI", lt, 0, 262144) + options))
    buf = rec.buf
    for row in rows.tolist():
        off, caplen = int(rec.data_off[row]), int(rec.caplen[row])
        ts = int(rec.ts_ns[row])
        data = buf[off : off + caplen].tobytes()
        head = struct.pack(
            "<IIIII", iface_of[int(rec.link_type[row])], (ts >> 32) & 0xFFFFFFFF, ts & 0xFFFFFFFF, caplen,
            max(caplen, int(rec.orig_len[row])),
        )
        parts.append(_block(6, head + data + b"\0" * (-len(data) % 4)))
    path.write_bytes(b"".join(parts))


def _block(btype: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


class TsharkJob:
    """A running tshark decoding the sub-capture; `result()` waits and parses."""

    def __init__(self, index: PacketIndex, candidates: SipCandidates, settings: Settings):
        self.index = index
        self.rows = candidates.packet_rows
        self.settings = settings
        self.proc: subprocess.Popen | None = None
        self.tmp = tempfile.TemporaryDirectory(prefix="flowviz-sip-")
        if not len(self.rows):
            return
        tshark = settings.tshark()
        if not tshark:
            self.tmp.cleanup()
            where = f" at {settings.tshark_path}" if settings.tshark_path else ""
            raise ToolMissingError(f"tshark{where} is not found; install it with: apt-get install tshark")
        self.sub = Path(self.tmp.name) / "sip.pcapng"
        write_subcapture(index, self.rows, self.sub)
        self.decode_as = [a for d in candidates.decode_as for a in ("-d", d)]
        args = [tshark, "-r", str(self.sub), "-n", "-Y", "sip", *self.decode_as, "-T", "fields",
                "-E", "separator=/t", "-E", "occurrence=a", "-E", f"aggregator={AGGREGATOR}", "-E", "quote=n"]
        for f in TSHARK_FIELDS:
            args += ["-e", f]
        env = dict(os.environ, LC_ALL="C.UTF-8")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def result(self) -> pl.DataFrame:
        try:
            if self.proc is None:
                return schemas.empty(schemas.SIP_MESSAGES)
            out, err = self.proc.communicate()
            if self.proc.returncode != 0:
                msg = err.decode("utf-8", "replace").strip().splitlines()
                raise CaptureError(f"tshark could not decode the SIP packets: {msg[-1] if msg else 'exit ' + str(self.proc.returncode)}")
            return self._parse(out.decode("utf-8", "replace"))
        finally:
            self.tmp.cleanup()

    def _parse(self, text: str) -> pl.DataFrame:
        frame_map = self.rows.astype(np.int64) + 1  # sub-capture frame k -> original frame frame_map[k-1]
        ts = self.index.records.ts_ns
        rows: list[dict] = []
        mixed: list[int] = []
        for line in text.split("\n"):
            cols = line.split("\t")
            if len(cols) < len(TSHARK_FIELDS):
                continue
            f = dict(zip(TSHARK_FIELDS, cols))
            headers = _occurrences(f["sip.msg_hdr"])
            requests = _occurrences(f["sip.Request-Line"])
            statuses = _occurrences(f["sip.Status-Line"])
            if not (requests or statuses):
                continue  # "Continuation" data: not a message
            if requests and statuses and len(requests) + len(statuses) > 1:
                mixed.append(int(f["frame.number"]))
            starts = requests + statuses
            sub_frame = int(f["frame.number"])
            frame = int(frame_map[sub_frame - 1])
            segments = [int(frame_map[int(s) - 1]) for s in _occurrences(f["tcp.segment"])]
            fragments = [int(frame_map[int(s) - 1]) for s in _occurrences(f["ip.fragment"]) + _occurrences(f["ipv6.fragment"])]
            carriers = sorted(set(segments + fragments + [frame]))
            protocols = f["frame.protocols"].split(":")
            base = {
                "frame": frame,
                "sub_frame": sub_frame,
                "ts_ns": int(ts[frame - 1]),
                "src_ip": _last(f["ipv6.src"]) or _last(f["ip.src"]),
                "dst_ip": _last(f["ipv6.dst"]) or _last(f["ip.dst"]),
                "src_port": _int(_last(f["udp.srcport"]) or _last(f["tcp.srcport"]) or _last(f["sctp.srcport"])),
                "dst_port": _int(_last(f["udp.dstport"]) or _last(f["tcp.dstport"]) or _last(f["sctp.dstport"])),
                "transport": _transport(protocols),
                "icmp_quoted": "icmp" in protocols or "icmpv6" in protocols,
            }
            if "ip" in protocols and "ipv6" in protocols:  # tunnel: take the inner family as tshark lists it last
                base["src_ip"] = _inner_address(f, protocols, "src")
                base["dst_ip"] = _inner_address(f, protocols, "dst")
            for i, start in enumerate(starts):
                body = headers[i] if i < len(headers) else ""
                # tcp.segment/ip.fragment describe the PDU reassembled in this frame: the first message.
                rows.append(dict(base, msg_index=i, raw=_unescape(start) + "\r\n" + _unescape(body),
                                 frames=carriers if i == 0 else [frame]))
        if mixed:
            _reorder_mixed(rows, self._start_lines_in_order(mixed))
        if not rows:
            return schemas.empty(schemas.SIP_MESSAGES)
        for row in rows:
            del row["sub_frame"]
            row.update(parse_message(row["raw"], self.settings.leg_link_headers))
        return pl.DataFrame(rows, schema=schemas.SIP_MESSAGES)

    def _start_lines_in_order(self, sub_frames: list[int]) -> dict[int, list[str]]:
        """For frames holding both requests and responses, ask tshark (PDML) for the true order."""
        import xml.etree.ElementTree as ET

        flt = "frame.number in {" + " ".join(str(f) for f in sub_frames) + "}"
        args = [self.settings.tshark(), "-r", str(self.sub), "-n", *self.decode_as, "-Y", flt, "-T", "pdml"]
        out = subprocess.run(args, capture_output=True, timeout=600).stdout
        order: dict[int, list[str]] = {}
        for packet in ET.fromstring(out or b"<pdml/>").iter("packet"):
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


def _reorder_mixed(rows: list[dict], order: dict[int, list[str]]) -> None:
    """Give each message of a frame that mixes requests and responses its true start line."""
    by_frame: dict[int, list[dict]] = {}
    for row in rows:
        by_frame.setdefault(row["sub_frame"], []).append(row)
    for sub_frame, lines in order.items():
        group = by_frame.get(sub_frame, [])
        if len(lines) == len(group):
            for row, start in zip(group, lines):
                row["raw"] = start + "\r\n" + row["raw"].partition("\r\n")[2]


def _occurrences(value: str) -> list[str]:
    return [v for v in value.split(AGGREGATOR)] if value else []


def _last(value: str) -> str | None:
    occ = _occurrences(value)
    return occ[-1] if occ else None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _transport(protocols: list[str]) -> str:
    for name, label in (("websocket", "ws"), ("tls", "tls"), ("sctp", "sctp"), ("tcp", "tcp"), ("udp", "udp")):
        if name in protocols:
            return label
    return "unknown"


def _inner_address(f: dict, protocols: list[str], side: str) -> str | None:
    last_family = max((i, p) for i, p in enumerate(protocols) if p in ("ip", "ipv6"))[1]
    return _last(f[f"{last_family}.{side}"])


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

"""SIP decoding: pick the SIP candidates; flowviz decodes whole UDP datagrams (sip_udp.py), the rest
goes to tshark as a small sub-capture (tshark_sip.py).

tshark does what only a full dissector does right (TCP reassembly, IP fragments,
tunnels, WebSocket, several messages per segment); it runs on the sub-capture only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import polars as pl

from flowviz import schemas
from flowviz.errors import CaptureError, ToolMissingError
from flowviz.ingest import kernel, sip_udp
from flowviz.ingest.capture_file import Packets
from flowviz.ingest.tshark_sip import TsharkRun
from flowviz.settings import Settings

MAX_DECODE_AS = 64
PROTO_TCP, PROTO_UDP = 6, 17
RESPONSE_PREFIX = kernel.SIP_PREFIXES.index(b"SIP/2.0 ") + 1


@dataclass
class SipCandidates:
    packet_rows: np.ndarray  # int64: rows (0-based) of every SIP candidate (never RTP or RTCP)
    own_rows: np.ndarray  # int64: the candidates flowviz decodes itself (whole UDP datagrams)
    tshark_rows: np.ndarray  # int64: the candidates tshark must see (not own rows, not UDP keepalives)
    decode_as: list[str]  # tshark -d arguments for SIP found on ports tshark does not expect


def select_candidates(packets: Packets, settings: Settings, exclude: np.ndarray | None = None) -> SipCandidates:
    """SIP by content, by port, whole TCP/UDP conversations that carry SIP, and what only tshark can place;
    never the `exclude` rows (HEP packets, which ingest/hep.py opens)."""
    t = packets.table
    content = kernel.prefix_rows(t, 1, kernel.GET_PREFIX, True)
    sip_flows = np.unique(np.concatenate([t["flow"][content], _websocket_sip_flows(packets)]))
    ports = np.array(settings.sip_ports, dtype=np.int64)
    rows = np.flatnonzero(kernel.candidate_mask(t, sip_flows, ports, kernel.GET_PREFIX))
    if exclude is not None and len(exclude):
        rows = np.setdiff1d(rows, exclude, assume_unique=True)
    if settings.sip_decoder == "tshark":
        own = nobody = np.zeros(len(rows), dtype=bool)
    else:
        own, nobody = sip_udp.shares(t, rows)
    # -d options only for what tshark decodes
    return SipCandidates(rows, rows[own], rows[~own & ~nobody],
                         _decode_as(t, np.setdiff1d(content, rows[own]), settings))


def _websocket_sip_flows(packets: Packets) -> np.ndarray:
    """Conversations opening a WebSocket with the 'sip' subprotocol (RFC 7118)."""
    t = packets.table
    gets = kernel.prefix_rows(t, kernel.GET_PREFIX, kernel.GET_PREFIX + 1, False)
    found = [t["flow"][row] for row, payload in zip(gets.tolist(), packets.details(gets).payloads)
             if b"websocket" in payload.lower() and b"sip" in payload.lower()]
    return np.array(found, dtype=np.uint64)


def _decode_as(t: np.ndarray, rows: np.ndarray, settings: Settings) -> list[str]:
    """SIP found by content (in `rows`) on ports tshark does not decode as SIP by default."""
    is_response = t["sip_prefix"][rows] == RESPONSE_PREFIX
    server = np.where(is_response, t["sport"][rows], t["dport"][rows])
    args = []
    for proto, port in sorted(set(zip(t["ip_proto"][rows].tolist(), server.tolist()))):
        if port == 5060 or (port in settings.sip_ports and proto == PROTO_UDP):
            continue
        args.append(f"{'tcp' if proto == PROTO_TCP else 'udp'}.port=={port},sip")
    return args[:MAX_DECODE_AS]


def subcapture_bytes(packets: Packets, rows: np.ndarray) -> bytes:
    """The chosen packets, original bytes and times, as a pcapng (one interface per link type)."""
    t = packets.table
    link_types = sorted(set(t["link_type"][rows].tolist())) or [1]
    iface_of = {lt: i for i, lt in enumerate(link_types)}
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
    for lt in link_types:  # if_tsresol = 9: nanoseconds
        options = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
        out.append(_block(1, struct.pack("<HHI", lt, 0, 262144) + options))
    out += packets.secrets  # TLS keys embedded in the capture: tshark uses them as it reads
    for start in range(0, len(rows), 4096):
        part = rows[start : start + 4096]
        for row, data in zip(part.tolist(), packets.read_bytes(part)):
            ts = int(packets.ts_ns[row])
            head = struct.pack("<IIIII", iface_of[int(t["link_type"][row])], (ts >> 32) & 0xFFFFFFFF,
                               ts & 0xFFFFFFFF, len(data), max(len(data), int(t["orig_len"][row])))
            out.append(_block(6, head + data + b"\0" * (-len(data) % 4)))
    return b"".join(out)


def _block(btype: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def feed(run: TsharkRun, packets: Packets, candidates: SipCandidates) -> None:
    """Hand tshark's share of the SIP candidates to a started TsharkRun, as a sub-capture with their
    original times (with no share, tshark is stopped and not needed)."""
    rows = candidates.tshark_rows
    sub = subcapture_bytes(packets, rows) if len(rows) else b""
    run.feed(sub, rows, packets.ts_ns[rows].copy(), candidates.decode_as)

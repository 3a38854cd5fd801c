"""HEP: packets that HOMER capture agents (heplify, captagent, kamailio/OpenSIPS siptrace, FreeSWITCH,
rtpengine) send to a collector, each carrying one captured packet with its real addresses, ports and
capture time. flowviz turns each into the inner packet: SIP payloads become sip_messages rows like any
SIP, raw RTCP payloads become RTCP packets; the outer UDP/TCP packet to the collector is only the carrier.

Layouts (docs/transports.md names the sources):
- HEPv3: "HEP3", total length (u16, whole packet), then chunks: vendor id (u16), type id (u16), length
  (u16, chunk header included), value; all big-endian. Generic chunks (vendor 0): 1 address family
  (2 IPv4, 10 IPv6), 2 IP protocol, 3/4 IPv4 source/destination, 5/6 IPv6 source/destination, 7/8 source/
  destination port, 9 seconds, 10 microseconds, 11 payload type (1 SIP, 5 RTCP...), 12 capture agent id,
  14 authentication key (never kept), 15 payload, 16 compressed payload, 17 correlation id.
- HEPv1/v2: version (u8), header length (u8), family (u8), protocol (u8), source and destination port
  (u16 big-endian), the two addresses; v2 then seconds and microseconds (u32, little-endian: kamailio
  writes them so) and capture id (u16, the sender's order: little-endian on x86), and 2 bytes of padding.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from flowviz import schemas
from flowviz.ingest import kernel
from flowviz.ingest.capture_file import Packets
from flowviz.ingest.sip_text import parse_message
from flowviz.ingest.sip_udp import message_text

MAGIC = b"HEP3"
TRANSPORTS = {17: "udp", 6: "tcp", 132: "sctp"}
PAYLOAD_TYPES = {1: "SIP", 4: "RTP", 5: "RTCP", 100: "log"}
SIP_TYPE, RTCP_TYPE = 1, 5
# Generic chunks of a fixed size: type -> (name, bytes)
FIXED = {1: ("address family", 1), 2: ("IP protocol", 1), 3: ("IPv4 source", 4), 4: ("IPv4 destination", 4),
         5: ("IPv6 source", 16), 6: ("IPv6 destination", 16), 7: ("source port", 2), 8: ("destination port", 2),
         9: ("seconds", 4), 10: ("microseconds", 4), 11: ("payload type", 1)}
MAX_NOTED = 5  # frames named in one warning


@dataclass
class Record:
    """One HEP packet, decoded; `problem` says what was wrong with it (it is still used when readable)."""

    version: int = 3
    family: int | None = None
    proto: int | None = None
    src: str | None = None
    dst: str | None = None
    sport: int | None = None
    dport: int | None = None
    seconds: int | None = None
    micros: int | None = None
    payload_type: int | None = None
    agent: int | None = None
    correlation: str | None = None
    payload: bytes | None = None
    problems: list[str] = field(default_factory=list)
    stated: int = 0  # HEPv3: the length field
    clean: bool = True  # HEPv3: the chunks filled the bytes exactly

    @property
    def readable(self) -> bool:
        return self.payload is not None and self.src is not None and self.dst is not None


def parse_v3(data: bytes) -> Record:
    """The HEPv3 packet that is the whole of `data` (the caller cuts it out). Chunks are walked to the
    end of `data`; `stated` is what the packet's own length field says, for the caller to compare."""
    rec = Record(3)
    if len(data) < 6:
        rec.problems.append(f"only {len(data)} bytes, less than the 6 of a HEP3 header")
        rec.clean = False
        return rec
    rec.stated = struct.unpack_from("!H", data, 4)[0]
    pos, end = 6, len(data)
    while pos + 6 <= end:
        vendor, ctype, clen = struct.unpack_from("!HHH", data, pos)
        if clen < 6:
            rec.problems.append(f"chunk {ctype} at byte {pos} has an impossible length ({clen})")
            rec.clean = False
            return rec
        if pos + clen > end:
            rec.problems.append(f"chunk {ctype} at byte {pos} is cut short ({clen} bytes claimed, "
                                f"{end - pos} left)")
            rec.clean = False
            return rec
        if vendor == 0:
            _chunk(rec, ctype, data[pos + 6 : pos + clen])
        pos += clen
    if pos != end:
        rec.problems.append(f"{end - pos} bytes after the last whole chunk")
        rec.clean = False
    return rec


def value_spans(data: bytes) -> list[tuple[int, int, int]]:
    """(chunk type, start, end) of each generic chunk's value in a HEPv3 packet, or for HEPv1/v2 the
    addresses (types 3/4 or 5/6) and the payload (15): where a rewriter (redaction) finds what to replace
    in place. Stops at the first chunk that does not fit."""
    spans = []
    if data.startswith(MAGIC):
        pos = 6
        while pos + 6 <= len(data):
            vendor, ctype, clen = struct.unpack_from("!HHH", data, pos)
            if clen < 6 or pos + clen > len(data):
                break
            if vendor == 0:
                spans.append((ctype, pos + 6, pos + clen))
            pos += clen
        return spans
    if len(data) < 8 or data[2] not in (2, 10):
        return spans
    size = 4 if data[2] == 2 else 16
    src, dst = (3, 4) if size == 4 else (5, 6)
    end = 8 + 2 * size + (12 if data[0] == 2 else 0)
    if len(data) >= end:
        spans += [(src, 8, 8 + size), (dst, 8 + size, 8 + 2 * size), (15, end, len(data))]
    return spans


def _length_note(stated: int, held: int, what: str) -> str:
    return f"its length field says {stated} bytes but {what} {held}"


def _chunk(rec: Record, ctype: int, value: bytes) -> None:
    if ctype in FIXED:
        name, size = FIXED[ctype]
        if len(value) != size:
            rec.problems.append(f"the {name} chunk holds {len(value)} bytes, not {size}")
            return
        number = int.from_bytes(value, "big")
        if ctype == 1:
            rec.family = number
        elif ctype == 2:
            rec.proto = number
        elif ctype in (3, 4, 5, 6):
            text = str(ipaddress.ip_address(value))
            if ctype in (3, 5):
                rec.src = text
            else:
                rec.dst = text
        elif ctype == 7:
            rec.sport = number
        elif ctype == 8:
            rec.dport = number
        elif ctype == 9:
            rec.seconds = number
        elif ctype == 10:
            rec.micros = number
        else:
            rec.payload_type = number
    elif ctype == 12:  # u32 in HEPv3; some agents send the u16 of HEPv2
        if len(value) in (2, 4):
            rec.agent = int.from_bytes(value, "big")
        else:
            rec.problems.append(f"the capture agent chunk holds {len(value)} bytes, not 4")
    elif ctype == 15:
        rec.payload = value
    elif ctype == 16:
        try:
            rec.payload = zlib.decompress(value, wbits=47)  # zlib or gzip header
        except zlib.error:
            rec.problems.append("its compressed payload does not decompress")
    elif ctype == 17:
        rec.correlation = value.decode("utf-8", "replace")
    # 14 (authentication key) is skipped on purpose: a secret is never kept or shown


def parse_v2(data: bytes) -> Record:
    """A HEPv1/v2 packet (the whole of `data`)."""
    version, _hlen, family, proto = data[0], data[1], data[2], data[3]
    rec = Record(version, family, proto)
    size = 4 if family == 2 else 16 if family == 10 else 0
    pos = 8 + 2 * size
    if not size or len(data) < pos + (12 if version == 2 else 0):
        rec.problems.append(f"only {len(data)} bytes, less than its header")
        return rec
    rec.sport, rec.dport = struct.unpack_from("!HH", data, 4)
    rec.src = str(ipaddress.ip_address(data[8 : 8 + size]))
    rec.dst = str(ipaddress.ip_address(data[8 + size : pos]))
    if version == 2:
        rec.seconds, rec.micros, rec.agent = struct.unpack_from("<IIH", data, pos)
        pos += 12
    rec.payload_type = SIP_TYPE
    rec.payload = data[pos:]
    return rec


@dataclass
class Carried:
    """One HEP packet found in the capture: the outer frame(s) carrying it and its record."""

    frame: int  # 1-based outer frame where it completes
    frames: list[int]
    msg_index: int
    outer_ts: int
    record: Record


@dataclass
class HepResult:
    sip: pl.DataFrame
    rtcp_base: list[dict]  # rows for rtp_decode.RtcpPackets, one per raw RTCP payload
    rtcp_payloads: list[bytes]
    info: dict  # info["hep"]: packets, agents, unreadable, payload types
    warnings: list[str]


def hep_rows(packets: Packets) -> np.ndarray:
    """Rows of every packet of a HEP conversation: HEP over UDP (with the later IPv4 fragments of a HEP
    datagram too big for one packet), and every segment of a TCP conversation in which a segment starts
    a HEP packet (the others continue one)."""
    t = packets.table
    starts = kernel.prefix_rows(t, kernel.HEP_PREFIX, kernel.HEP_PREFIX + 1, True)
    if not len(starts):
        return starts
    found = [starts]
    tcp_flows = np.unique(t["flow"][starts][t["ip_proto"][starts] == 6])
    if len(tcp_flows):
        found.append(np.flatnonzero((t["ip_proto"] == 6) & np.isin(t["flow"], tcp_flows)))
    first = starts[((t["flags"][starts] & kernel.F_FRAGMENT) != 0) & (t["ip_proto"][starts] == 17)]
    if len(first):
        later = np.flatnonzero(((t["flags"] & kernel.F_LATER_FRAGMENT) != 0) & (t["ip_proto"] == 17))
        keys = {_fragment(d, o)[0] for d, o in _raw_with_ip_off(packets, first)}
        found.append(np.array([r for r, (d, o) in zip(later.tolist(), _raw_with_ip_off(packets, later))
                               if _fragment(d, o)[0] in keys], dtype=np.int64))
    return np.unique(np.concatenate(found))


def _raw_with_ip_off(packets: Packets, rows: np.ndarray) -> list[tuple[bytes, int]]:
    details = packets.details(rows, layout=True)
    return list(zip(packets.read_bytes(rows), details.ip_off))


def _fragment(data: bytes, ip_off: int) -> tuple[tuple | None, int, bool, bytes]:
    """(datagram key, offset, more fragments, IP payload) of an IPv4 fragment (RFC 791); key None for
    anything else (IPv6 fragments are not reassembled here)."""
    if len(data) < ip_off + 20 or data[ip_off] >> 4 != 4:
        return None, 0, False, b""
    ihl = (data[ip_off] & 0x0F) * 4
    total, ident, frag = struct.unpack_from("!HHH", data, ip_off + 2)
    key = (data[ip_off + 12 : ip_off + 20], ident, data[ip_off + 9])
    return key, (frag & 0x1FFF) * 8, bool(frag & 0x2000), data[ip_off + ihl : ip_off + max(total, ihl)]


def decode(packets: Packets, rows: np.ndarray, leg_link_headers: tuple[str, ...], shown: str = "") -> HepResult:
    """The inner packets of the HEP packets carried in `rows` (hep_rows())."""
    t = packets.table
    details = packets.details(rows, layout=True)
    raw = packets.read_bytes(rows)
    carried: list[Carried] = []
    unreadable: list[tuple[int, str]] = []  # (frame, why)
    streams: dict[tuple[int, str, int], list[tuple[int, int, int, bytes]]] = {}
    fragments: dict[tuple, list[tuple[int, int, int, bool, bytes]]] = {}
    for i, row in enumerate(rows.tolist()):
        ts = int(t["ts"][row])
        if t["ip_proto"][row] == 17 and t["flags"][row] & kernel.F_FRAGMENT:
            key, offset, more, part = _fragment(raw[i], details.ip_off[i])
            if key is not None:
                fragments.setdefault(key, []).append((offset, row + 1, ts, more, part))
            continue
        payload = details.payloads[i]
        if not payload:
            continue
        if t["ip_proto"][row] == 17:
            _datagram(row + 1, ts, payload, carried, unreadable)
        else:
            key = (int(t["flow"][row]), details.src[i], int(t["sport"][row]))
            streams.setdefault(key, []).append((row + 1, ts, details.tcp_seq[i], payload))
    for parts in fragments.values():
        _reassembled(parts, carried, unreadable)
    for segments in streams.values():
        _stream(segments, carried, unreadable)
    carried.sort(key=lambda c: (c.frame, c.msg_index))
    return _result(carried, unreadable, leg_link_headers, shown)


def _reassembled(parts: list[tuple[int, int, int, bool, bytes]], carried: list[Carried], unreadable: list) -> None:
    """A HEP datagram sent in IPv4 fragments: put together by offset, then read as one datagram."""
    parts.sort()
    data, complete = b"", True
    for offset, _frame, _ts, _more, part in parts:
        if offset != len(data):
            complete = offset < len(data) and data[offset:] == part[: len(data) - offset]  # a duplicate
            if not complete:
                break
            part = part[len(data) - offset:]
        data += part
    frames = sorted(f for _, f, _, _, _ in parts)
    if not complete or parts[-1][3] or len(data) < 8:
        unreadable.append((frames[-1], f"the UDP datagram in IP fragments (frames {', '.join(map(str, frames))}) "
                                       "is missing fragments"))
        return
    length = struct.unpack_from("!H", data, 4)[0]
    last = max(parts, key=lambda p: p[1])
    _datagram(last[1], last[2], data[8 : max(8, min(length, len(data)))], carried, unreadable, frames)


def _datagram(frame: int, ts: int, data: bytes, carried: list[Carried], unreadable: list,
              frames: list[int] | None = None) -> None:
    """A HEP packet in a UDP datagram. When its length field disagrees with the datagram, the chunks
    decide: read to the datagram's end if they fill it exactly, else to the stated length."""
    if not data.startswith(MAGIC):
        rec = parse_v2(data)
    else:
        rec = parse_v3(data)
        if rec.stated != len(data):
            if not rec.clean and 6 <= rec.stated < len(data) and (cut := parse_v3(data[: rec.stated])).clean:
                rec = cut
                rec.problems.append(f"{len(data) - rec.stated} bytes follow it in the datagram beyond its "
                                    "length field")
            else:
                rec.problems.insert(0, _length_note(rec.stated, len(data), "the datagram holds"))
    _keep(rec, Carried(frame, frames or [frame], 0, ts, rec), carried, unreadable)


def _keep(rec: Record, item: Carried, carried: list, unreadable: list) -> None:
    if rec.readable:
        carried.append(item)
    else:
        unreadable.append((item.frame, "; ".join(rec.problems) or "it has no payload or no addresses"))


def _stream(segments: list[tuple[int, int, int, bytes]], carried: list[Carried], unreadable: list) -> None:
    """HEP packets in one direction of a TCP conversation: segments put in sequence (retransmitted bytes
    taken once), then cut at each packet's length. A length that lies is found by the chunks: they end
    where the next "HEP3" starts. Bytes that are no HEP packet (a gap in the capture) are skipped to the
    next "HEP3"."""
    buf = bytearray()
    base = 0  # stream offset of buf[0]
    starts: list[tuple[int, int]] = []  # (stream offset of a segment's first new byte, its frame)
    expected = None
    index_in_frame: dict[int, int] = {}
    frame = 0
    for frame, ts, seq, payload in segments:
        if expected is not None:
            ahead = (seq - expected) % (1 << 32)
            if ahead >= 1 << 31:  # starts before the expected byte: a retransmission, maybe with new bytes
                payload = payload[(expected - seq) % (1 << 32):]
            elif ahead:  # bytes missing from the capture: what is buffered cannot be completed
                if buf:
                    unreadable.append((frame, f"a gap of {ahead} bytes in the TCP stream cuts a HEP packet"))
                base += len(buf) + ahead
                buf.clear()
        if not payload:
            continue
        expected = (seq + len(payload)) % (1 << 32)
        starts.append((base + len(buf), frame))
        buf += payload
        while buf:
            taken, rec = _next_packet(bytes(buf), at_end=False)
            if not taken:
                break
            if rec is None:
                unreadable.append((frame, f"{taken} bytes in the TCP stream are not a HEP3 packet"))
            else:
                _add_stream_packet(rec, base, taken, starts, ts, carried, unreadable, index_in_frame)
            base += taken
            del buf[:taken]
            starts = [s for i, s in enumerate(starts) if i + 1 == len(starts) or starts[i + 1][0] > base]
    if buf:
        taken, rec = _next_packet(bytes(buf), at_end=True)
        if rec is not None and rec.readable:
            _add_stream_packet(rec, base, taken, starts, segments[-1][1], carried, unreadable, index_in_frame)
        else:
            unreadable.append((frame, f"the TCP stream ends inside a HEP packet ({len(buf)} bytes left)"))


def _add_stream_packet(rec, base, size, starts, ts, carried, unreadable, index_in_frame) -> None:
    frames = [f for i, (s, f) in enumerate(starts)
              if s < base + size and (i + 1 == len(starts) or starts[i + 1][0] > base)]
    last = frames[-1]
    index = index_in_frame.get(last, 0)
    index_in_frame[last] = index + 1
    _keep(rec, Carried(last, frames, index, ts, rec), carried, unreadable)


def _next_packet(data: bytes, at_end: bool) -> tuple[int, Record | None]:
    """(bytes taken, the HEP packet they hold or None when they are none) from the start of a TCP
    stream's bytes; (0, None) when more bytes are needed."""
    if not data.startswith(MAGIC):
        if not at_end and len(data) < 4 and MAGIC.startswith(data):
            return 0, None
        skip = data.find(MAGIC, 1)
        return (skip if skip > 0 else len(data)), None
    if len(data) < 6:
        return (len(data), parse_v3(data)) if at_end else (0, None)
    stated = struct.unpack_from("!H", data, 4)[0]
    if 6 <= stated <= len(data) and (rec := parse_v3(data[:stated])).clean:
        return stated, rec
    following = data.find(MAGIC, 6)
    end = following if following > 0 else len(data) if at_end else -1
    if end > 0 and (rec := parse_v3(data[:end])).clean:
        rec.problems.insert(0, _length_note(stated, end, "its chunks end at byte"))
        return end, rec
    if following < 0 and not at_end:  # more bytes may show where it ends
        return 0, None
    if 6 <= stated <= len(data):  # chunks that do not fit its length, and no better end: as it says
        return stated, parse_v3(data[:stated])
    rec = parse_v3(data[: end if end > 0 else len(data)])
    rec.problems.insert(0, _length_note(stated, len(data), "the stream holds"))
    return (end if end > 0 else len(data)), rec


def _result(carried: list[Carried], unreadable: list[tuple[int, str]], leg_link_headers, shown: str) -> HepResult:
    sip_rows, rtcp_base, rtcp_payloads = [], [], []
    agents: dict[str, int] = {}
    types: dict[str, int] = {}
    not_sip: list[int] = []
    notes: dict[str, list[int]] = {}
    versions: dict[str, int] = {}
    for item in carried:
        rec = item.record
        agent = "none" if rec.agent is None else str(rec.agent)
        agents[agent] = agents.get(agent, 0) + 1
        name = PAYLOAD_TYPES.get(rec.payload_type, f"type {rec.payload_type}")
        types[name] = types.get(name, 0) + 1
        versions[f"v{rec.version}"] = versions.get(f"v{rec.version}", 0) + 1
        for problem in rec.problems:
            notes.setdefault(problem, []).append(item.frame)
        ts = item.outer_ts if rec.seconds is None else rec.seconds * 1_000_000_000 + (rec.micros or 0) * 1000
        where = {"frame": item.frame, "ts_ns": ts, "src_ip": rec.src, "dst_ip": rec.dst,
                 "src_port": rec.sport, "dst_port": rec.dport}
        if rec.payload_type == SIP_TYPE or rec.payload_type is None:
            raw = message_text(rec.payload)
            if raw is None:
                not_sip.append(item.frame)
                continue
            message = dict(where, frames=item.frames, msg_index=item.msg_index,
                           transport=TRANSPORTS.get(rec.proto, "udp"), icmp_quoted=False, raw=raw,
                           capture_agent=rec.agent, hep_correlation_id=rec.correlation)
            message.update(parse_message(raw, leg_link_headers))
            sip_rows.append(message)
        elif rec.payload_type == RTCP_TYPE and rec.payload[:1] and rec.payload[0] >> 6 == 2:
            rtcp_base.append(where)  # raw RTCP; the JSON reports some agents send under type 5 are counted only
            rtcp_payloads.append(rec.payload)
    warnings = []
    prefix = f"{shown}: " if shown else ""
    for problem, frames in notes.items():
        warnings.append(f"{prefix}HEP packet in frame {_frames(frames)}: {problem}; the rest of it was read")
    why: dict[str, list[int]] = {}
    for frame, reason in unreadable:
        why.setdefault(reason, []).append(frame)
    for reason, frames in why.items():
        warnings.append(f"{prefix}HEP packet in frame {_frames(frames)} could not be read ({reason}); "
                        "it is left out")
    if not_sip:
        warnings.append(f"{prefix}{len(not_sip)} HEP packet(s) of payload type SIP hold no SIP start line "
                        f"(frame {_frames(not_sip)}); left out")
    info = {"packets": len(carried), "versions": versions, "agents": agents, "payload_types": types,
            "sip_messages": len(sip_rows), "rtcp_packets": len(rtcp_payloads), "unreadable": len(unreadable),
            "with_problems": sum(1 for c in carried if c.record.problems)}
    sip = schemas.from_rows(sip_rows, schemas.SIP_MESSAGES)
    return HepResult(sip, rtcp_base, rtcp_payloads, info, warnings)


def _frames(frames: list[int]) -> str:
    shown = ", ".join(str(f) for f in frames[:MAX_NOTED])
    return shown + (f" and {len(frames) - MAX_NOTED} more" if len(frames) > MAX_NOTED else "")

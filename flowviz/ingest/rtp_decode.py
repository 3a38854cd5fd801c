"""RTP and RTCP: frames built from the header fields the kernel decoded (RFC 3550 sections 5.1 and 6.4).

Which UDP packets are RTP: those of streams to or from an address:port announced in
SDP, plus streams that look like RTP on their own (an SSRC that stays the same over
several packets, sequence numbers that mostly go up by one).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import polars as pl

from flowviz import schemas
from flowviz.ingest import kernel
from flowviz.ingest.capture_file import Packets


@dataclass
class RtpStreams:
    """RTP-shaped packets grouped by stream, before deciding which streams are RTP."""

    stream_of_row: np.ndarray  # int64 per packet: stream index, -1 when not RTP-shaped
    packets: np.ndarray  # int64 per stream
    in_order: np.ndarray  # int64 per stream: packets whose seq follows the previous one
    src: list[str]  # per stream: source address text
    dst: list[str]
    src_port: list[int]
    dst_port: list[int]
    relayed: np.ndarray  # bool per stream: carried in TURN Data indications (media by construction)


def find_streams(packets: Packets, exclude: np.ndarray) -> RtpStreams:
    t = packets.table
    kind = t["rtp_kind"].copy()
    kind[exclude] = 0  # SIP candidates are never media
    ids, counts, in_order, first = kernel.stream_counts(t["stream"], kind, t["seq"])
    reps = packets.details(first)  # addresses of each stream, from its first packet
    return RtpStreams(
        stream_of_row=ids,
        packets=counts,
        in_order=in_order,
        src=reps.src,
        dst=reps.dst,
        src_port=t["sport"][first].tolist(),
        dst_port=t["dport"][first].tolist(),
        relayed=(t["flags"][first] & kernel.F_TURN) != 0,
    )


def rtp_columns(packets: Packets, streams: RtpStreams) -> dict[str, np.ndarray]:
    """The RTP header fields of every RTP-shaped packet, as contiguous arrays (the table can go after)."""
    names = ("frame", "stream", "ts_ns", "src_port", "dst_port", "ssrc", "seq", "rtp_ts", "b1", "payload_len")
    return dict(zip(names, kernel.rtp_columns(packets.table, streams.stream_of_row)))


def rtp_frame(columns: dict[str, np.ndarray], streams: RtpStreams) -> pl.DataFrame:
    """rtp_packets of every RTP-shaped stream, plus a `stream` index column for select_streams().

    Built before the SIP decode finishes (which streams SDP announced is not known yet);
    dropping the streams that turn out not to be RTP is then a cheap filter. Columns are
    taken out of `columns` one by one, so each numpy array is freed once polars has it.
    """
    stream = columns["stream"]
    makers = {
        "frame": lambda: columns.pop("frame"),
        "ts_ns": lambda: columns.pop("ts_ns"),
        "src_ip": lambda: pl.Series(streams.src, dtype=pl.Utf8).gather(stream),
        "dst_ip": lambda: pl.Series(streams.dst, dtype=pl.Utf8).gather(stream),
        "src_port": lambda: columns.pop("src_port"),
        "dst_port": lambda: columns.pop("dst_port"),
        "ssrc": lambda: columns.pop("ssrc"),
        "seq": lambda: columns.pop("seq"),
        "rtp_ts": lambda: columns.pop("rtp_ts"),
        "payload_type": lambda: columns["b1"] & 0x7F,
        "marker": lambda: (columns.pop("b1") & 0x80) != 0,
        "payload_len": lambda: columns.pop("payload_len"),
    }
    series = [pl.Series(name, make(), dtype=schemas.RTP_PACKETS[name]) for name, make in makers.items()]
    return pl.DataFrame([*series, pl.Series("stream", columns.pop("stream"), dtype=pl.UInt32)])


def select_streams(
    frame: pl.DataFrame, streams: RtpStreams, sdp_endpoints: set[tuple[str, int]], min_packets: int
) -> tuple[pl.DataFrame, int]:
    """(rtp_packets of the streams SDP announced or that pass the heuristic, number of those streams)."""
    if not len(streams.packets):
        return schemas.empty(schemas.RTP_PACKETS), 0
    announced = np.array(
        [(d, dp) in sdp_endpoints or (s, sp) in sdp_endpoints
         for s, sp, d, dp in zip(streams.src, streams.src_port, streams.dst, streams.dst_port)],
        dtype=bool,
    )
    looks_like_rtp = (streams.packets >= min_packets) & (streams.in_order * 2 >= streams.packets)
    keep = announced | looks_like_rtp | streams.relayed
    kept = frame if keep.all() else frame.filter(pl.Series(keep).gather(frame["stream"]))
    return kept.drop("stream"), int(keep.sum())


@dataclass
class RtcpPackets:
    """The RTCP-shaped packets, taken from the packet table before it is released."""

    base: list[dict]  # per packet: frame, ts_ns, addresses and ports
    payloads: list[bytes]


def rtcp_packets(packets: Packets, exclude: np.ndarray) -> RtcpPackets:
    t = packets.table
    shaped = t["rtp_kind"] == kernel.RTCP_SHAPED
    shaped[exclude] = False
    rows = np.flatnonzero(shaped)
    details = packets.details(rows)
    base = [{"frame": row + 1, "ts_ns": ts, "src_ip": src, "dst_ip": dst, "src_port": sport, "dst_port": dport}
            for row, ts, src, dst, sport, dport in zip(rows.tolist(), t["ts"][rows].tolist(), details.src,
                                                       details.dst, t["sport"][rows].tolist(),
                                                       t["dport"][rows].tolist())]
    return RtcpPackets(base, details.payloads)


def decode_rtcp(rtcp: RtcpPackets) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(SR/RR report blocks, XR VoIP metrics blocks) of every RTCP packet; compound packets walked one by one."""
    reports: list[dict] = []
    xr: list[dict] = []
    for base, payload in zip(rtcp.base, rtcp.payloads):
        reports.extend(_report_rows(payload, base))
        xr.extend(_xr_rows(payload, base))
    return schemas.from_rows(reports, schemas.RTCP_REPORTS), schemas.from_rows(xr, schemas.RTCP_XR)


def _rtcp_packets(data: bytes):
    """(payload type, first byte, start, size) of each RTCP packet of a compound packet (RFC 3550 6.1)."""
    pos = 0
    while pos + 8 <= len(data):
        first, ptype, length = struct.unpack_from("!BBH", data, pos)
        size = (length + 1) * 4
        if first >> 6 != 2 or pos + size > len(data):
            return
        yield ptype, first, pos, size
        pos += size


def _xr_rows(data: bytes, base: dict) -> list[dict]:
    """VoIP Metrics report blocks (block type 7, 36 bytes) of the XR packets (type 207) in a compound packet."""
    rows = []
    for ptype, _first, pos, size in _rtcp_packets(data):
        if ptype != 207:
            continue
        sender = struct.unpack_from("!I", data, pos + 4)[0]
        at, end = pos + 8, pos + size
        while at + 4 <= end:
            block_type, _reserved, block_words = struct.unpack_from("!BBH", data, at)
            if block_type == 7 and block_words == 8 and at + 36 <= end:
                (source, loss, discard, _bd, _gd, _bdur, _gdur, rtt, esd, _sig, _noise, _rerl, _gmin, r_factor,
                 _ext_r, mos_lq, mos_cq, _rx, _res, jb_nominal, _jb_max, _jb_abs) = struct.unpack_from(
                    "!IBBBBHHHHbbBBBBBBBBHHH", data, at + 4)
                rows.append(dict(base, sender_ssrc=sender, source_ssrc=source, loss_rate_pct=loss * 100 / 256,
                                 discard_rate_pct=discard * 100 / 256, round_trip_ms=rtt, end_system_delay_ms=esd,
                                 r_factor=None if r_factor == 127 else r_factor,
                                 mos_lq=None if mos_lq == 127 else mos_lq / 10,
                                 mos_cq=None if mos_cq == 127 else mos_cq / 10, jb_nominal_ms=jb_nominal))
            at += 4 + 4 * block_words
    return rows


def _report_rows(data: bytes, base: dict) -> list[dict]:
    """SR/RR rows: one per report block, or one with null block fields when there is none."""
    rows = []
    for ptype, first, pos, size in _rtcp_packets(data):
        if ptype not in (200, 201):
            continue
        count = first & 0x1F
        sender = struct.unpack_from("!I", data, pos + 4)[0]
        row = dict(base, packet_type="SR" if ptype == 200 else "RR", sender_ssrc=sender)
        blocks_at = pos + 8
        if ptype == 200 and size >= 28:
            ntp_hi, ntp_lo, rtp_ts, pkts, octets = struct.unpack_from("!IIIII", data, pos + 8)
            row.update(ntp_ts=ntp_hi + ntp_lo / 2**32, sr_rtp_ts=rtp_ts, sr_packet_count=pkts, sr_octet_count=octets)
            blocks_at = pos + 28
        blocks = 0
        for b in range(count):
            at = blocks_at + 24 * b
            if at + 24 > pos + size:
                break
            ssrc, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", data, at)
            cumulative = lost_word & 0xFFFFFF
            if cumulative & 0x800000:
                cumulative -= 0x1000000
            rows.append(dict(row, source_ssrc=ssrc, fraction_lost=lost_word >> 24, cumulative_lost=cumulative,
                             highest_seq=highest, jitter=jitter, lsr=lsr, dlsr=dlsr))
            blocks += 1
        if blocks == 0:
            rows.append(row)
    return rows

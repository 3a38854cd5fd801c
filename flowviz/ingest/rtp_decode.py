"""RTP and RTCP: fixed headers decoded with numpy from the packet index (RFC 3550 sections 5.1 and 6.4).

Which UDP packets are RTP: those to or from an address:port announced in SDP,
plus flows that look like RTP on their own (version 2, an SSRC that stays the same
over several packets, sequence numbers that mostly go up by one).
"""

from __future__ import annotations

import struct

import numpy as np
import polars as pl

from flowviz import schemas
from flowviz.ingest.triage import PROTO_UDP, PacketIndex, address_strings

RTCP_TYPES = range(200, 212)  # SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR ... (RFC 3550, 4585, 3611)


def udp_rtp_like(index: PacketIndex, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (0-based) of UDP packets shaped like RTP, and of those shaped like RTCP."""
    udp = (index.ip_proto == PROTO_UDP) & ~index.is_fragment & (index.payload_len >= 8)
    udp[exclude] = False
    rows = np.flatnonzero(udp)
    buf, off = index.records.buf, index.payload_off[rows]
    b0, b1 = buf[off], buf[off + 1]
    v2 = (b0 >> 6) == 2
    rtcp_len = ((buf[off + 2].astype(np.int64) << 8) | buf[off + 3]) * 4 + 4
    is_rtcp = v2 & (b1 >= RTCP_TYPES.start) & (b1 < RTCP_TYPES.stop) & (rtcp_len <= index.payload_len[rows])
    is_rtp = v2 & ~is_rtcp & (index.payload_len[rows] >= 12) & ~(((b1 & 0x7F) >= 72) & ((b1 & 0x7F) <= 76))
    return rows[is_rtp], rows[is_rtcp]


def decode_rtp(index: PacketIndex, rows: np.ndarray, sdp_endpoints: set[tuple[str, int]], min_packets: int) -> pl.DataFrame:
    """RTP header fields of candidate rows, keeping SDP-announced flows and flows that pass the heuristic."""
    if not len(rows):
        return schemas.empty(schemas.RTP_PACKETS)
    buf, off = index.records.buf, index.payload_off[rows]
    b0, b1 = buf[off], buf[off + 1]
    seq = (buf[off + 2].astype(np.uint16) << 8) | buf[off + 3]
    rtp_ts = _u32(buf, off + 4)
    ssrc = _u32(buf, off + 8)
    header = 12 + 4 * (b0 & 0x0F).astype(np.int64)
    has_ext = (b0 & 0x10) != 0
    ext_words = (buf[np.minimum(off + header + 2, len(buf) - 1)].astype(np.int64) << 8) | buf[
        np.minimum(off + header + 3, len(buf) - 1)
    ]
    header = np.where(has_ext, header + 4 + 4 * ext_words, header)
    plen = index.payload_len[rows]
    end = off + plen - 1
    padding = np.where((b0 & 0x20) != 0, buf[np.clip(end, 0, len(buf) - 1)].astype(np.int64), 0)
    payload_len = np.clip(plen - header - padding, 0, 65535)

    src_idx, src_table = address_strings(index.src_hi[rows], index.src_lo[rows])
    dst_idx, dst_table = address_strings(index.dst_hi[rows], index.dst_lo[rows])
    frame = pl.DataFrame(
        {
            "frame": (rows + 1).astype(np.uint32),
            "ts_ns": index.records.ts_ns[rows],
            "src_ip": pl.Series(src_table, dtype=pl.Utf8).gather(src_idx) if len(src_table) else [],
            "dst_ip": pl.Series(dst_table, dtype=pl.Utf8).gather(dst_idx) if len(dst_table) else [],
            "src_port": index.src_port[rows],
            "dst_port": index.dst_port[rows],
            "ssrc": ssrc,
            "seq": seq,
            "rtp_ts": rtp_ts,
            "payload_type": (b1 & 0x7F).astype(np.uint8),
            "marker": (b1 & 0x80) != 0,
            "payload_len": payload_len.astype(np.uint16),
        },
        schema=schemas.RTP_PACKETS,
    )
    return _keep_rtp_flows(frame, sdp_endpoints, min_packets)


def _keep_rtp_flows(frame: pl.DataFrame, sdp_endpoints: set[tuple[str, int]], min_packets: int) -> pl.DataFrame:
    key = ["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]
    stats = frame.group_by(key).agg(
        pl.len().alias("n"),
        # share of packets whose seq is the previous one + 1 (in arrival order)
        ((pl.col("seq").cast(pl.Int32).diff().fill_null(1) % 65536) == 1).mean().alias("in_order"),
    )
    if sdp_endpoints:
        ends = pl.DataFrame(
            {"ip": [e[0] for e in sdp_endpoints], "port": [e[1] for e in sdp_endpoints]},
            schema={"ip": pl.Utf8, "port": pl.UInt16},
        )
        announced = (
            stats.join(ends, left_on=["dst_ip", "dst_port"], right_on=["ip", "port"], how="semi")
            .vstack(stats.join(ends, left_on=["src_ip", "src_port"], right_on=["ip", "port"], how="semi"))
            .select(key)
            .unique()
            .with_columns(pl.lit(True).alias("sdp"))
        )
        stats = stats.join(announced, on=key, how="left")
    else:
        stats = stats.with_columns(pl.lit(None, dtype=pl.Boolean).alias("sdp"))
    keep = stats.filter(pl.col("sdp").fill_null(False) | ((pl.col("n") >= min_packets) & (pl.col("in_order") >= 0.5)))
    return frame.join(keep.select(key), on=key, how="semi")


def decode_rtcp(index: PacketIndex, rows: np.ndarray) -> pl.DataFrame:
    """SR/RR report blocks of every RTCP packet (compound packets walked one by one: they are few)."""
    out: list[dict] = []
    buf = index.records.buf
    if len(rows):
        src_idx, src_table = address_strings(index.src_hi[rows], index.src_lo[rows])
        dst_idx, dst_table = address_strings(index.dst_hi[rows], index.dst_lo[rows])
    for i, row in enumerate(rows.tolist()):
        start = int(index.payload_off[row])
        data = buf[start : start + int(index.payload_len[row])].tobytes()
        base = {
            "frame": row + 1,
            "ts_ns": int(index.records.ts_ns[row]),
            "src_ip": src_table[src_idx[i]],
            "dst_ip": dst_table[dst_idx[i]],
            "src_port": int(index.src_port[row]),
            "dst_port": int(index.dst_port[row]),
        }
        out.extend(_report_rows(data, base))
    if not out:
        return schemas.empty(schemas.RTCP_REPORTS)
    return pl.DataFrame(out, schema=schemas.RTCP_REPORTS)


def _report_rows(data: bytes, base: dict) -> list[dict]:
    rows = []
    pos = 0
    while pos + 8 <= len(data):
        first, ptype, length = struct.unpack_from("!BBH", data, pos)
        size = (length + 1) * 4
        if first >> 6 != 2 or pos + size > len(data):
            break
        count = first & 0x1F
        if ptype in (200, 201):
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
        pos += size
    return rows


def _u32(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return (
        (buf[idx].astype(np.uint32) << 24)
        | (buf[idx + 1].astype(np.uint32) << 16)
        | (buf[idx + 2].astype(np.uint32) << 8)
        | buf[idx + 3].astype(np.uint32)
    )

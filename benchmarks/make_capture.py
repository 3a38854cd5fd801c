#!/usr/bin/env python3
"""Generate a large, realistic SIP/RTP capture (classic pcap) for ingest benchmarks.

    python benchmarks/make_capture.py OUT.pcap [--packets 1000000] [--calls 300] [--seed 1]

The capture is Ethernet / IPv4 / UDP with microsecond timestamps, in timestamp order:

* ``--calls`` calls, each between its own pair of user agents (caller 10.1.x.y,
  callee 10.2.x.y, both on UDP 5060), with a complete SIP dialog:
  INVITE (SDP offer) / 100 Trying / 180 Ringing / 200 OK (SDP answer) / ACK /
  BYE (from either side) / 200 OK -- 7 messages, well-formed (Via with branch,
  From/To tags, Call-ID, CSeq, Contact, Content-Length).
* two G.711 RTP streams per call (PCMU or PCMA, 20 ms packetization, 160-byte
  payload, random SSRC / initial sequence number / initial timestamp, marker on
  the first packet, no loss), between the RTP addresses announced in the SDP.
* a little RTCP: each stream's sender emits an SR + SDES(CNAME) compound packet
  about every 5 s (at least one per stream) on RTP port + 1.
* calls start at staggered times (within half a mean call duration) and last
  0.6x..1.4x the mean, so hundreds of calls are concurrent.

The total packet count is exactly ``--packets``; the call duration follows from
it.  Output is deterministic for a given (--packets, --calls, --seed).

Everything per RTP/RTCP packet is built with numpy (one structured array per
packet kind, records filled column by column and written in slices); only the
~7 SIP messages per call are built as Python strings.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

PCAP_GLOBAL_HEADER = np.array(
    [(0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)],
    dtype=[
        ("magic", "<u4"),
        ("vmaj", "<u2"),
        ("vmin", "<u2"),
        ("thiszone", "<i4"),
        ("sigfigs", "<u4"),
        ("snaplen", "<u4"),
        ("linktype", "<u4"),  # 1 = Ethernet
    ],
).tobytes()

HDR = 16 + 14 + 20 + 8  # pcap record header + Ethernet + IPv4 + UDP = 58 bytes
PTIME_US = 20_000  # 20 ms packetization
SAMPLES_PER_PKT = 160  # G.711 at 8 kHz, 20 ms
RTCP_EVERY = 250  # RTP packets between RTCP reports (5 s)
RTCP_LEN = 72  # SR with one report block (52) + SDES with an 8-char CNAME (20)
NTP_OFFSET = 2_208_988_800  # 1900-01-01 -> 1970-01-01
EPOCH_US = 1_710_496_800 * 1_000_000  # 2024-03-15 10:00:00 UTC
SIP_PORT = 5060


# ---------------------------------------------------------------------------
# Vectorized Ethernet/IPv4/UDP frames
# ---------------------------------------------------------------------------


def frame_dtype(app_fields: list[tuple[str, object, int]], app_len: int) -> np.dtype:
    """pcap record + Ethernet + IPv4 + UDP header fields, then app fields at offset 58."""
    fields = [
        ("ts_sec", "<u4", 0),
        ("ts_usec", "<u4", 4),
        ("incl_len", "<u4", 8),
        ("orig_len", "<u4", 12),
        ("eth_dst", ("u1", 6), 16),
        ("eth_src", ("u1", 6), 22),
        ("eth_type", ">u2", 28),
        ("ip_vhl", "u1", 30),
        ("ip_tos", "u1", 31),
        ("ip_len", ">u2", 32),
        ("ip_id", ">u2", 34),
        ("ip_frag", ">u2", 36),
        ("ip_ttl", "u1", 38),
        ("ip_proto", "u1", 39),
        ("ip_sum", ">u2", 40),
        ("ip_src", ">u4", 42),
        ("ip_dst", ">u4", 46),
        ("sport", ">u2", 50),
        ("dport", ">u2", 52),
        ("udp_len", ">u2", 54),
        ("udp_sum", ">u2", 56),
    ]
    fields += [(n, t, HDR + o) for n, t, o in app_fields]
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": HDR + app_len,
        }
    )


def _fold(s: np.ndarray) -> np.ndarray:
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return s


def _word_sum(raw: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Sum of the big-endian 16-bit words of raw[:, start:stop] (odd tail zero-padded)."""
    hi = raw[:, start:stop:2].sum(axis=1, dtype=np.uint64)
    lo = raw[:, start + 1 : stop : 2].sum(axis=1, dtype=np.uint64)
    return hi * 256 + lo


def mac_of(ip: np.ndarray) -> np.ndarray:
    """Locally administered MAC 02:00:<ipv4> for each IPv4 address (n, 6) uint8."""
    ip = np.asarray(ip, dtype=np.uint32)
    out = np.empty((ip.shape[0], 6), dtype=np.uint8)
    out[:, 0] = 0x02
    out[:, 1] = 0x00
    out[:, 2:] = ip.astype(">u4").view(np.uint8).reshape(-1, 4)
    return out


def fill_frames(
    rec: np.ndarray, ts_us, src_ip, dst_ip, sport, dport, ip_id, app_len: int
) -> None:
    """Fill the common headers and both checksums; app fields must already be set."""
    ts_us = np.asarray(ts_us, dtype=np.int64)
    rec["ts_sec"] = ts_us // 1_000_000
    rec["ts_usec"] = ts_us % 1_000_000
    rec["incl_len"] = 42 + app_len
    rec["orig_len"] = 42 + app_len
    rec["eth_dst"] = mac_of(dst_ip)
    rec["eth_src"] = mac_of(src_ip)
    rec["eth_type"] = 0x0800
    rec["ip_vhl"] = 0x45
    rec["ip_tos"] = 0
    rec["ip_len"] = 28 + app_len
    rec["ip_id"] = ip_id
    rec["ip_frag"] = 0x4000  # DF
    rec["ip_ttl"] = 64
    rec["ip_proto"] = 17
    rec["ip_sum"] = 0
    rec["ip_src"] = src_ip
    rec["ip_dst"] = dst_ip
    rec["sport"] = sport
    rec["dport"] = dport
    rec["udp_len"] = 8 + app_len
    rec["udp_sum"] = 0
    raw = rec.view(np.uint8).reshape(rec.shape[0], rec.dtype.itemsize)
    rec["ip_sum"] = (~_fold(_word_sum(raw, 30, 50)).astype(np.uint16)) & 0xFFFF
    src = np.asarray(src_ip, dtype=np.uint64)
    dst = np.asarray(dst_ip, dtype=np.uint64)
    pseudo = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + 17 + (8 + app_len)
    s = _fold(_word_sum(raw, 50, HDR + app_len) + pseudo)
    csum = (~s.astype(np.uint16)) & 0xFFFF
    rec["udp_sum"] = np.where(csum == 0, 0xFFFF, csum)


RTP_FIELDS = [
    ("rtp_b0", "u1", 0),
    ("rtp_mpt", "u1", 1),
    ("rtp_seq", ">u2", 2),
    ("rtp_ts", ">u4", 4),
    ("rtp_ssrc", ">u4", 8),
    ("rtp_payload", ("u1", 160), 12),
]
RTP_LEN = 12 + 160

RTCP_FIELDS = [
    # SR, RC=1
    ("sr_b0", "u1", 0),
    ("sr_pt", "u1", 1),
    ("sr_len", ">u2", 2),
    ("sr_ssrc", ">u4", 4),
    ("ntp_sec", ">u4", 8),
    ("ntp_frac", ">u4", 12),
    ("sr_rtp_ts", ">u4", 16),
    ("sr_pkts", ">u4", 20),
    ("sr_octets", ">u4", 24),
    ("rb_ssrc", ">u4", 28),
    ("rb_frac_lost", "u1", 32),
    ("rb_cum_lost", ("u1", 3), 33),
    ("rb_ext_seq", ">u4", 36),
    ("rb_jitter", ">u4", 40),
    ("rb_lsr", ">u4", 44),
    ("rb_dlsr", ">u4", 48),
    # SDES, SC=1, CNAME item (8 chars) + end + pad
    ("sdes_b0", "u1", 52),
    ("sdes_pt", "u1", 53),
    ("sdes_len", ">u2", 54),
    ("sdes_ssrc", ">u4", 56),
    ("cname_type", "u1", 60),
    ("cname_len", "u1", 61),
    ("cname", ("u1", 8), 62),
    ("sdes_end", ("u1", 2), 70),
]


def g711_block(rng: np.random.Generator, law: str, n_pkts: int = 50) -> np.ndarray:
    """n_pkts x 160 bytes of G.711-encoded 'speech-like' audio (tone bursts + noise)."""
    t = np.arange(n_pkts * SAMPLES_PER_PKT) / 8000.0
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)
    x = env * (0.30 * np.sin(2 * np.pi * 440 * t) + 0.15 * np.sin(2 * np.pi * 1230 * t))
    x = x + rng.normal(0, 0.01, x.shape)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int64)
    mag = np.minimum(np.abs(pcm), 32635)
    if law == "ulaw":  # ITU-T G.711 mu-law
        mag = mag + 0x84
        exp = np.clip(np.floor(np.log2(mag)).astype(np.int64) - 7, 0, 7)
        mant = (mag >> (exp + 3)) & 0x0F
        sign = np.where(pcm < 0, 0x80, 0)
        code = ~(sign | (exp << 4) | mant) & 0xFF
    else:  # ITU-T G.711 A-law
        exp = np.where(mag >= 256, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int64) - 7, 0)
        mant = np.where(mag >= 256, mag >> (exp + 3), mag >> 4) & 0x0F
        sign = np.where(pcm >= 0, 0x80, 0)
        code = (sign | (exp << 4) | mant) ^ 0x55
    return code.astype(np.uint8).reshape(n_pkts, SAMPLES_PER_PKT)


# ---------------------------------------------------------------------------
# SIP text
# ---------------------------------------------------------------------------


def ip_str(ip: int) -> str:
    return f"{ip >> 24 & 255}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"


def sip_frame(ts_us: int, src: int, dst: int, ip_id: int, payload: bytes) -> bytes:
    n = len(payload)
    rec = np.zeros(1, dtype=frame_dtype([("data", ("u1", n), 0)], n))
    rec["data"] = np.frombuffer(payload, dtype=np.uint8)
    fill_frames(rec, [ts_us], [src], [dst], [SIP_PORT], [SIP_PORT], [ip_id], n)
    return rec.tobytes()


def sdp(user: str, ip: str, sess: int, port: int, pts: list[int]) -> str:
    names = {0: "PCMU/8000", 8: "PCMA/8000", 101: "telephone-event/8000"}
    lines = [
        "v=0",
        f"o={user} {sess} {sess} IN IP4 {ip}",
        "s=flowviz-bench",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(map(str, pts))}",
    ]
    lines += [f"a=rtpmap:{pt} {names[pt]}" for pt in pts]
    lines += ["a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv", ""]
    return "\r\n".join(lines)


def sip_msg(start_line: str, headers: list[tuple[str, str]], body: str = "") -> bytes:
    b = body.encode()
    head = [start_line] + [f"{k}: {v}" for k, v in headers]
    if b:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(b)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + b


def call_dialog(c: int, rng: np.random.Generator, a_ip: int, b_ip: int, a_port: int,
                b_port: int, pt: int, times: list[int], bye_from_caller: bool):
    """The 7 SIP messages of call c: list of (ts_us, src_ip, dst_ip, payload)."""
    hx = lambda nbytes: rng.bytes(nbytes).hex()  # noqa: E731
    A, B = ip_str(a_ip), ip_str(b_ip)
    alice, bob = f"alice{c:05d}", f"bob{c:05d}"
    a_uri, b_uri = f"sip:{alice}@{A}", f"sip:{bob}@{B}"
    a_contact, b_contact = f"<sip:{alice}@{A}:{SIP_PORT}>", f"<sip:{bob}@{B}:{SIP_PORT}>"
    call_id = f"{hx(12)}@{A}"
    ftag, ttag = hx(4), hx(4)
    br_inv, br_ack, br_bye = (f"z9hG4bK{hx(8)}" for _ in range(3))
    sess_a, sess_b = (int(x) for x in rng.integers(10**8, 10**9, 2))
    ua = "flowviz-bench-ua/1.0"
    allow = "INVITE, ACK, CANCEL, BYE, OPTIONS"
    frm = f'"Alice {c:05d}" <{a_uri}>;tag={ftag}'
    to0 = f"<{b_uri}>"
    to1 = f"{to0};tag={ttag}"
    via_a = f"SIP/2.0/UDP {A}:{SIP_PORT};branch={br_inv};rport"
    via_a_r = f"SIP/2.0/UDP {A}:{SIP_PORT};branch={br_inv};rport={SIP_PORT};received={A}"
    offer = sdp(alice, A, sess_a, a_port, [0, 8, 101])
    answer = sdp(bob, B, sess_b, b_port, [pt, 101])
    t_inv, t_100, t_180, t_200, t_ack, t_bye, t_bye_ok = times

    msgs = []
    msgs.append((t_inv, a_ip, b_ip, sip_msg(f"INVITE {b_uri} SIP/2.0", [
        ("Via", via_a), ("Max-Forwards", "70"), ("From", frm), ("To", to0),
        ("Call-ID", call_id), ("CSeq", "1 INVITE"), ("Contact", a_contact),
        ("Allow", allow), ("User-Agent", ua)], offer)))
    msgs.append((t_100, b_ip, a_ip, sip_msg("SIP/2.0 100 Trying", [
        ("Via", via_a_r), ("From", frm), ("To", to0), ("Call-ID", call_id),
        ("CSeq", "1 INVITE"), ("Server", ua)])))
    msgs.append((t_180, b_ip, a_ip, sip_msg("SIP/2.0 180 Ringing", [
        ("Via", via_a_r), ("From", frm), ("To", to1), ("Call-ID", call_id),
        ("CSeq", "1 INVITE"), ("Contact", b_contact), ("Server", ua)])))
    msgs.append((t_200, b_ip, a_ip, sip_msg("SIP/2.0 200 OK", [
        ("Via", via_a_r), ("From", frm), ("To", to1), ("Call-ID", call_id),
        ("CSeq", "1 INVITE"), ("Contact", b_contact), ("Allow", allow), ("Server", ua)],
        answer)))
    msgs.append((t_ack, a_ip, b_ip, sip_msg(f"ACK sip:{bob}@{B}:{SIP_PORT} SIP/2.0", [
        ("Via", f"SIP/2.0/UDP {A}:{SIP_PORT};branch={br_ack};rport"), ("Max-Forwards", "70"),
        ("From", frm), ("To", to1), ("Call-ID", call_id), ("CSeq", "1 ACK"),
        ("User-Agent", ua)])))
    if bye_from_caller:
        via = f"SIP/2.0/UDP {A}:{SIP_PORT};branch={br_bye};rport"
        via_r = f"{via}={SIP_PORT};received={A}"
        bye_hdrs = [("From", frm), ("To", to1), ("Call-ID", call_id), ("CSeq", "2 BYE")]
        msgs.append((t_bye, a_ip, b_ip, sip_msg(f"BYE sip:{bob}@{B}:{SIP_PORT} SIP/2.0", [
            ("Via", via), ("Max-Forwards", "70"), *bye_hdrs, ("User-Agent", ua)])))
        msgs.append((t_bye_ok, b_ip, a_ip, sip_msg("SIP/2.0 200 OK", [
            ("Via", via_r), *bye_hdrs, ("Server", ua)])))
    else:
        via = f"SIP/2.0/UDP {B}:{SIP_PORT};branch={br_bye};rport"
        via_r = f"{via}={SIP_PORT};received={B}"
        cseq = int(rng.integers(100, 30000))
        bye_hdrs = [("From", f'<{b_uri}>;tag={ttag}'), ("To", f'"Alice {c:05d}" <{a_uri}>;tag={ftag}'),
                    ("Call-ID", call_id), ("CSeq", f"{cseq} BYE")]
        msgs.append((t_bye, b_ip, a_ip, sip_msg(f"BYE sip:{alice}@{A}:{SIP_PORT} SIP/2.0", [
            ("Via", via), ("Max-Forwards", "70"), *bye_hdrs, ("User-Agent", ua)])))
        msgs.append((t_bye_ok, a_ip, b_ip, sip_msg("SIP/2.0 200 OK", [
            ("Via", via_r), *bye_hdrs, ("Server", ua)])))
    return msgs


# ---------------------------------------------------------------------------
# Plan: per-call timing and per-stream lengths, exact packet total
# ---------------------------------------------------------------------------


def rtcp_count(L: np.ndarray) -> np.ndarray:
    return np.maximum(1, L // RTCP_EVERY)


def plan_lengths(rng, n_packets: int, n_calls: int) -> np.ndarray:
    """RTP packets per stream, shape (calls, 2), so that SIP+RTP+RTCP == n_packets."""
    budget = n_packets - 7 * n_calls
    if budget < n_calls * 2 * 6:
        raise SystemExit(f"--packets {n_packets} too small for --calls {n_calls}")
    w = rng.uniform(0.6, 1.4, n_calls)
    rtp_total = budget * RTCP_EVERY / (RTCP_EVERY + 1)
    per_call = np.floor(w / w.sum() * rtp_total / 2).astype(np.int64)
    L = np.stack([per_call, per_call - rng.integers(0, 4, n_calls)], axis=1)
    L = np.maximum(L, 5)
    flat = L.reshape(-1)
    diff = n_packets - (7 * n_calls + int(flat.sum()) + int(rtcp_count(flat).sum()))
    # Settle the rounding difference one packet at a time, never changing a
    # stream's RTCP count (so each step moves the total by exactly one).
    i = 0
    guard = 0
    while diff != 0:
        step = 1 if diff > 0 else -1
        j = i % flat.size
        new = flat[j] + step
        if new >= 5 and rtcp_count(np.array([new]))[0] == rtcp_count(flat[j : j + 1])[0]:
            flat[j] = new
            diff -= step
        i += 1
        guard += 1
        if guard > 100 * flat.size + 10 * abs(diff) + 1000:
            raise SystemExit("could not settle the packet count; change --packets/--calls")
    return flat.reshape(n_calls, 2)


# ---------------------------------------------------------------------------
# Main generator
# ---------------------------------------------------------------------------


def generate(out_path: str, n_packets: int = 1_000_000, n_calls: int = 300, seed: int = 1,
             verbose: bool = True) -> dict:
    t_start = time.perf_counter()
    rng = np.random.default_rng(seed)
    C = n_calls
    L = plan_lengths(rng, n_packets, C)  # (C, 2): stream 0 = caller->callee, 1 = callee->caller

    # --- addresses and ports (distinct UAs per call)
    idx = np.arange(C, dtype=np.uint32)
    a_ip = (10 << 24) | (1 << 16) | ((idx // 250) << 8) | (idx % 250 + 2)
    b_ip = (10 << 24) | (2 << 16) | ((idx // 250) << 8) | (idx % 250 + 2)
    a_port = rng.integers(5000, 30000, C) * 2  # even RTP ports, RTCP = +1
    b_port = rng.integers(5000, 30000, C) * 2
    pt = np.where(rng.random(C) < 0.7, 0, 8).astype(np.uint8)  # PCMU or PCMA
    bye_from_caller = rng.random(C) < 0.55

    # --- call timing (µs, relative to EPOCH_US)
    mean_dur_us = float(L.mean()) * PTIME_US
    t_inv = np.sort(rng.uniform(0, max(0.5 * mean_dur_us, 1e6), C)).astype(np.int64) + 1_000_000
    t_100 = t_inv + rng.integers(1_000, 8_000, C)
    t_180 = t_inv + rng.integers(20_000, 150_000, C)
    t_200 = t_180 + rng.integers(1_000_000, 5_000_000, C)
    t_ack = t_200 + rng.integers(10_000, 60_000, C)
    # callee starts sending right after its 200 OK, caller after sending ACK
    rtp_start = np.stack([t_ack + rng.integers(1_000, 15_000, C),
                          t_200 + rng.integers(5_000, 20_000, C)], axis=1)
    rtp_end = rtp_start + (L - 1) * PTIME_US
    t_bye = rtp_end.max(axis=1) + rng.integers(5_000, 30_000, C)
    t_bye_ok = t_bye + rng.integers(2_000, 40_000, C)

    # --- per-stream RTP parameters (stream s = 2*c + d)
    S = 2 * C
    ssrc = rng.choice(np.iinfo(np.uint32).max, S, replace=False).astype(np.uint32)
    seq0 = rng.integers(0, 65536, S).astype(np.int64)
    ts0 = rng.integers(0, 2**32, S).astype(np.int64)
    ipid0 = rng.integers(0, 65536, S).astype(np.int64)
    s_len = L.reshape(-1)
    s_start = rtp_start.reshape(-1)
    s_src = np.stack([a_ip, b_ip], axis=1).reshape(-1)
    s_dst = np.stack([b_ip, a_ip], axis=1).reshape(-1)
    s_sport = np.stack([a_port, b_port], axis=1).reshape(-1)
    s_dport = np.stack([b_port, a_port], axis=1).reshape(-1)
    s_pt = np.repeat(pt, 2)

    # --- RTP packets: time of every packet, then sort once and fill in sorted order
    n_rtp = int(s_len.sum())
    sid = np.repeat(np.arange(S, dtype=np.int32), s_len)
    first = np.repeat(np.cumsum(s_len) - s_len, s_len)
    k = np.arange(n_rtp, dtype=np.int64) - first  # packet index within its stream
    jitter = np.clip(np.round(rng.normal(0, 250, n_rtp)), -900, 900).astype(np.int64)
    rtp_t = s_start[sid] + k * PTIME_US + jitter
    order = np.argsort(rtp_t, kind="stable")
    rtp_t = rtp_t[order]
    sid = sid[order]
    k = k[order]
    del order, first, jitter

    rtp = np.empty(n_rtp, dtype=frame_dtype(RTP_FIELDS, RTP_LEN))
    rtp["rtp_b0"] = 0x80
    rtp["rtp_mpt"] = s_pt[sid] | np.where(k == 0, 0x80, 0).astype(np.uint8)
    rtp["rtp_seq"] = (seq0[sid] + k) & 0xFFFF
    rtp["rtp_ts"] = (ts0[sid] + k * SAMPLES_PER_PKT) & 0xFFFFFFFF
    rtp["rtp_ssrc"] = ssrc[sid]
    audio = np.concatenate([g711_block(rng, "ulaw"), g711_block(rng, "alaw")])
    nb = audio.shape[0] // 2
    boff = rng.integers(0, nb, S)  # each stream starts at its own place in the audio
    law = np.where(s_pt == 8, nb, 0)
    rtp["rtp_payload"] = audio[(boff[sid] + k) % nb + law[sid]]
    fill_frames(rtp, EPOCH_US + rtp_t, s_src[sid], s_dst[sid], s_sport[sid], s_dport[sid],
                (ipid0[sid] + k) & 0xFFFF, RTP_LEN)
    del sid, k

    # --- RTCP: SR + SDES per stream about every 5 s (at least one per stream)
    r_cnt = rtcp_count(s_len)
    n_rtcp = int(r_cnt.sum())
    rsid = np.repeat(np.arange(S), r_cnt)
    j = np.arange(n_rtcp) - np.repeat(np.cumsum(r_cnt) - r_cnt, r_cnt)  # report index
    interval = np.minimum(RTCP_EVERY * PTIME_US, (s_len * PTIME_US) // (r_cnt + 1))
    r_t = s_start[rsid] + (j + 1) * interval[rsid] + rng.integers(1_000, 15_000, n_rtcp)
    peer = rsid ^ 1
    sent = np.clip((r_t - s_start[rsid]) // PTIME_US + 1, 1, s_len[rsid])
    got = np.clip((r_t - s_start[peer]) // PTIME_US + 1, 1, s_len[peer])
    rt = np.zeros(n_rtcp, dtype=frame_dtype(RTCP_FIELDS, RTCP_LEN))
    rt["sr_b0"] = 0x81
    rt["sr_pt"] = 200
    rt["sr_len"] = 52 // 4 - 1
    rt["sr_ssrc"] = ssrc[rsid]
    abs_us = EPOCH_US + r_t
    rt["ntp_sec"] = abs_us // 1_000_000 + NTP_OFFSET
    rt["ntp_frac"] = ((abs_us % 1_000_000) << 32) // 1_000_000
    rt["sr_rtp_ts"] = (ts0[rsid] + (r_t - s_start[rsid]) * 8000 // 1_000_000) & 0xFFFFFFFF
    rt["sr_pkts"] = sent
    rt["sr_octets"] = sent * 160
    rt["rb_ssrc"] = ssrc[peer]
    rt["rb_ext_seq"] = seq0[peer] + got - 1
    rt["rb_jitter"] = rng.integers(2, 30, n_rtcp)
    rt["sdes_b0"] = 0x81
    rt["sdes_pt"] = 202
    rt["sdes_len"] = 20 // 4 - 1
    rt["sdes_ssrc"] = ssrc[rsid]
    rt["cname_type"] = 1
    rt["cname_len"] = 8
    cnames = np.frombuffer("".join(f"{'a' if s % 2 == 0 else 'b'}{s // 2:07d}" for s in range(S))
                           .encode(), dtype=np.uint8).reshape(S, 8)
    rt["cname"] = cnames[rsid]
    rorder = np.argsort(r_t, kind="stable")
    rt = rt[rorder]
    r_t = r_t[rorder]
    rsid = rsid[rorder]
    fill_frames(rt, EPOCH_US + r_t, s_src[rsid], s_dst[rsid], s_sport[rsid] + 1,
                s_dport[rsid] + 1, rng.integers(0, 65536, n_rtcp), RTCP_LEN)

    # --- SIP (Python strings; 7 per call)
    sip = []
    for c in range(C):
        times = [int(x[c]) for x in (t_inv, t_100, t_180, t_200, t_ack, t_bye, t_bye_ok)]
        sip.extend(call_dialog(c, rng, int(a_ip[c]), int(b_ip[c]), int(a_port[c]),
                               int(b_port[c]), int(pt[c]), times, bool(bye_from_caller[c])))
    sip.sort(key=lambda m: m[0])
    ipid_sip: dict[int, int] = {}
    sip_frames = []
    for ts, src, dst, payload in sip:
        ipid_sip[src] = (ipid_sip.get(src, src * 7919) + 1) & 0xFFFF
        sip_frames.append(sip_frame(EPOCH_US + ts, src, dst, ipid_sip[src], payload))
    sip_t = np.array([m[0] for m in sip], dtype=np.int64)

    # --- merge: non-RTP frames (SIP, RTCP) in time order, inserted between RTP slices
    other_t = np.concatenate([sip_t, r_t])
    other_kind = np.concatenate([np.zeros(len(sip_t), np.int8), np.ones(n_rtcp, np.int8)])
    other_i = np.concatenate([np.arange(len(sip_t)), np.arange(n_rtcp)])
    oo = np.lexsort((other_kind, other_t))  # by time; SIP before RTCP on ties
    other_t, other_kind, other_i = other_t[oo], other_kind[oo], other_i[oo]
    ins = np.searchsorted(rtp_t, other_t, side="right")

    rtp_raw = rtp.view(np.uint8).reshape(n_rtp, rtp.dtype.itemsize)
    rt_raw = rt.view(np.uint8).reshape(n_rtcp, rt.dtype.itemsize)
    n_bytes = 24
    with open(out_path, "wb", buffering=8 << 20) as f:
        f.write(PCAP_GLOBAL_HEADER)
        prev = 0
        for pos, kind, i in zip(ins.tolist(), other_kind.tolist(), other_i.tolist()):
            if pos > prev:
                f.write(memoryview(rtp_raw[prev:pos]))
                prev = pos
            if kind == 0:
                f.write(sip_frames[i])
            else:
                f.write(memoryview(rt_raw[i]))
        f.write(memoryview(rtp_raw[prev:]))
        n_bytes = f.tell()

    # --- peak concurrency (calls between INVITE and BYE 200 OK)
    ev = np.concatenate([t_inv, t_bye_ok])
    delta = np.concatenate([np.ones(C, np.int64), -np.ones(C, np.int64)])
    peak = int(np.cumsum(delta[np.argsort(ev, kind="stable")]).max())

    total = n_rtp + n_rtcp + len(sip_frames)
    assert total == n_packets, (total, n_packets)
    all_t = np.concatenate([rtp_t, other_t])
    summary = {
        "path": out_path,
        "packets": total,
        "bytes": n_bytes,
        "calls": C,
        "sip_messages": len(sip_frames),
        "rtp_streams": S,
        "rtp_packets": n_rtp,
        "rtcp_packets": n_rtcp,
        "rtp_per_stream_min": int(s_len.min()),
        "rtp_per_stream_max": int(s_len.max()),
        "peak_concurrent_calls": peak,
        "duration_s": (int(all_t.max()) - int(all_t.min())) / 1e6,
        "seed": seed,
        "seconds": time.perf_counter() - t_start,
    }
    summary["streams"] = [
        {"call": s // 2, "src": ip_str(int(s_src[s])), "sport": int(s_sport[s]),
         "dst": ip_str(int(s_dst[s])), "dport": int(s_dport[s]), "ssrc": f"0x{int(ssrc[s]):08X}",
         "pt": int(s_pt[s]), "packets": int(s_len[s])}
        for s in range(S)
    ]
    if verbose:
        print(
            f"wrote {out_path}: {summary['packets']} packets, {n_bytes} bytes "
            f"({n_bytes / 1e6:.1f} MB), {summary['duration_s']:.1f} s of traffic\n"
            f"  calls: {C} (peak {peak} concurrent), SIP messages: {summary['sip_messages']}\n"
            f"  RTP streams: {S} ({n_rtp} RTP packets, {summary['rtp_per_stream_min']}.."
            f"{summary['rtp_per_stream_max']} per stream, 0 lost), RTCP packets: {n_rtcp}\n"
            f"  generated in {summary['seconds']:.2f} s (seed {seed})"
        )
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", help="output .pcap path")
    p.add_argument("--packets", type=int, default=1_000_000, help="total packets (exact)")
    p.add_argument("--calls", type=int, default=300, help="number of calls")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true",
                   help="also print the summary as one JSON line (without the stream list)")
    p.add_argument("--streams-csv", metavar="FILE",
                   help="write the intended RTP streams (addresses, SSRC, packets) as CSV")
    a = p.parse_args(argv)
    if a.calls < 1 or a.calls > 250 * 250:
        p.error("--calls must be in 1..62500")
    s = generate(a.out, a.packets, a.calls, a.seed)
    streams = s.pop("streams")
    if a.streams_csv:
        import csv

        with open(a.streams_csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(streams[0]))
            w.writeheader()
            w.writerows(streams)
    if a.json:
        import json

        print(json.dumps(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())

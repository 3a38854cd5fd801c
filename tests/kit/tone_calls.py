"""Calls built on purpose for the audio tests: one known tone per direction, encoded by PyAV's encoders, sent as
RTP at known times, with the SIP INVITE/200/ACK/BYE whose SDP (rtpmap) binds the streams to the call.

Everything a test expects comes from here: each direction's tone, codec, packet duration, the packets removed
or delayed, and so where its samples must be silent. Written as a classic pcap (microseconds) with dpkt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import dpkt
import numpy as np

CALLER_IP, CALLEE_IP = "10.0.0.1", "10.0.0.2"
CALLER_RTP, CALLEE_RTP = 40000, 50000
T0_NS = 1_790_000_000_000_000_000  # capture time of the INVITE
SETUP_NS = 200_000_000  # INVITE -> 200 OK; the first RTP packets follow the ACK
AMPLITUDE = 0.5  # of full scale

# codec name -> (PyAV encoder, sample rate, RTP clock, rtpmap text without the payload type, static PT or None)
ENCODERS = {
    "PCMA": ("pcm_alaw", 8000, 8000, "PCMA/8000", 8),
    "PCMU": ("pcm_mulaw", 8000, 8000, "PCMU/8000", 0),
    "G722": ("g722", 16000, 8000, "G722/8000", 9),
    "opus": ("libopus", 48000, 48000, "opus/48000/2", None),
    "G726-32": ("g726le", 8000, 8000, "G726-32/8000", None),
    "G723": ("g723_1", 8000, 8000, "G723/8000", 4),
}


@dataclass
class Direction:
    """One direction's media: its codec, tone, packet duration, and what happens to its packets."""

    codec: str
    tone_hz: float
    ptime_ms: int = 20
    payload_type: int | None = None  # None: the static one, else required for dynamic codecs
    removed: frozenset[int] = frozenset()  # packet indexes left out of the capture (lost)
    delay_ms: dict[int, float] = field(default_factory=dict)  # packet index -> extra arrival delay
    stereo: bool = False  # Opus: encode two channels (RFC 7587 allows either)
    rtpmap: str | None = None  # to announce another encoding name (e.g. one flowviz cannot decode)
    raw_payloads: list[bytes] | None = None  # send these payloads instead of an encoded tone
    # packet index -> (payload type, payload, index of the packet whose timestamp it carries): packets sent in
    # place of the tone's (telephone-events share their event's first timestamp, RFC 4733 2.5.1.1)
    replaced: dict[int, tuple[int, bytes, int]] = field(default_factory=dict)
    # packet indexes not sent and whose sequence numbers are not used either: silence suppression (RFC 3551 4.1),
    # the next packet sent carries the marker bit
    suppressed: frozenset[int] = frozenset()
    red_pt: int | None = None  # send every payload inside RFC 2198 redundancy with a copy of the one before

    @property
    def pt(self) -> int:
        return self.payload_type if self.payload_type is not None else ENCODERS[self.codec][4]

    @property
    def rate(self) -> int:
        return ENCODERS[self.codec][1] if self.codec in ENCODERS else 8000

    @property
    def clock(self) -> int:
        if self.codec in ENCODERS:
            return ENCODERS[self.codec][2]
        return int(self.rtpmap.split("/")[1]) if self.rtpmap else 8000


@dataclass
class ToneCall:
    path: Path
    call_id: str
    caller: Direction
    callee: Direction
    packets: int  # per direction
    first_rtp_ns: dict[str, int]  # "caller"/"callee" -> capture time of its first packet (before delays)

    def media_seconds(self, side: str) -> float:
        d = getattr(self, side)
        return self.packets * d.ptime_ms / 1000


def tone(hz: float, rate: int, n: int, channels: int = 1) -> np.ndarray:
    t = np.arange(n) / rate
    x = np.round(AMPLITUDE * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return np.tile(x, (channels, 1))


def encode_tone(d: Direction, packets: int) -> list[bytes]:
    """`packets` RTP payloads of d's tone, each ptime long, by PyAV's encoder for d.codec."""
    import av

    encoder, rate, _, _, _ = ENCODERS[d.codec]
    per_packet = rate * d.ptime_ms // 1000
    channels = 2 if d.stereo else 1
    ctx = av.CodecContext.create(encoder, "w")
    ctx.sample_rate = rate
    ctx.layout = "stereo" if d.stereo else "mono"
    ctx.format = "s16"
    if d.codec == "G726-32":
        ctx.bit_rate = 32000
    if d.codec == "G723":
        ctx.bit_rate = 6300
    if d.codec == "opus":
        ctx.bit_rate = 64000
        ctx.options = {"frame_duration": str(d.ptime_ms), "application": "audio"}
    ctx.open()
    samples = tone(d.tone_hz, rate, per_packet * packets, channels)
    out: list[bytes] = []
    for k in range(packets):
        chunk = np.ascontiguousarray(samples[:, k * per_packet:(k + 1) * per_packet].T.reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=ctx.layout.name)
        frame.sample_rate = rate
        frame.pts = k * per_packet
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    if d.codec not in ("opus", "G723"):  # one packet per frame; sample codecs may regroup their output: cut it again
        joined = b"".join(out)
        size = len(joined) // packets
        out = [joined[k * size:(k + 1) * size] for k in range(packets)]
    return out[:packets]


EXTRA_RTPMAP = {13: "CN/8000", 101: "telephone-event/8000", 100: "red/8000"}


def sdp(ip: str, port: int, directions: list[Direction]) -> str:
    extra = sorted(({pt for d in directions for pt, _, _ in d.replaced.values()}
                    | {d.red_pt for d in directions if d.red_pt is not None}) - {d.pt for d in directions})
    pts = list(dict.fromkeys([d.pt for d in directions] + extra))
    lines = ["v=0", f"o=- 1 1 IN IP4 {ip}", "s=-", f"c=IN IP4 {ip}", "t=0 0",
             f"m=audio {port} RTP/AVP {' '.join(map(str, pts))}"]
    for d in directions:
        lines.append(f"a=rtpmap:{d.pt} {d.rtpmap or ENCODERS[d.codec][3]}")
    lines += [f"a=rtpmap:{pt} {EXTRA_RTPMAP[pt]}" for pt in extra if pt in EXTRA_RTPMAP]
    lines.append(f"a=ptime:{directions[0].ptime_ms}")
    return "\r\n".join(dict.fromkeys(lines)) + "\r\n"


def sip(first_line: str, call_id: str, cseq: str, from_tag: str, to_tag: str | None, via: str, body: str = "") -> bytes:
    head = [first_line, f"Via: SIP/2.0/UDP {via}:5060;branch=z9hG4bK{cseq.replace(' ', '')}{from_tag}",
            "Max-Forwards: 70", f"From: <sip:alice@{CALLER_IP}>;tag={from_tag}",
            f"To: <sip:bob@{CALLEE_IP}>" + (f";tag={to_tag}" if to_tag else ""), f"Call-ID: {call_id}",
            f"CSeq: {cseq}", f"Contact: <sip:{via}:5060>"]
    if body:
        head.append("Content-Type: application/sdp")
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


def rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool) -> bytes:
    return bytes([0x80, (0x80 if marker else 0) | pt]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big") + \
        ssrc.to_bytes(4, "big") + payload


def frame(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    u = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    u.ulen = len(u)
    ip = dpkt.ip.IP(src=_aton(src), dst=_aton(dst), p=dpkt.ip.IP_PROTO_UDP, data=u, ttl=64)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02\0\0\0\0\x01", dst=b"\x02\0\0\0\0\x02",
                                        type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def _aton(ip: str) -> bytes:
    return bytes(int(x) for x in ip.split("."))


def write_tone_call(path: str | Path, caller: Direction, callee: Direction, seconds: float = 1.0,
                    call_id: str = "tone-call-1@10.0.0.1", callee_offset_ms: float = 7.0,
                    sip_info: tuple[tuple[float, str, int], ...] = ()) -> ToneCall:
    """A call of `seconds` of media each way: caller's tone from 10.0.0.1:40000, callee's from 10.0.0.2:50000
    (starting `callee_offset_ms` later), packets sent every ptime; both directions must share one ptime.
    sip_info: (ms after the caller's first packet, digit, duration ms) of INFO requests the caller sends."""
    assert caller.ptime_ms == callee.ptime_ms, "one ptime for both directions keeps the packet count simple"
    path = Path(path)
    packets = int(round(seconds * 1000 / caller.ptime_ms))
    both = [caller, callee]
    invite = sip(f"INVITE sip:bob@{CALLEE_IP} SIP/2.0", call_id, "1 INVITE", "caller1", None, CALLER_IP,
                 sdp(CALLER_IP, CALLER_RTP, both))
    ok = sip("SIP/2.0 200 OK", call_id, "1 INVITE", "caller1", "callee1", CALLER_IP, sdp(CALLEE_IP, CALLEE_RTP, both))
    ack = sip(f"ACK sip:bob@{CALLEE_IP} SIP/2.0", call_id, "1 ACK", "caller1", "callee1", CALLER_IP)
    bye = sip(f"BYE sip:bob@{CALLEE_IP} SIP/2.0", call_id, "2 BYE", "caller1", "callee1", CALLER_IP)
    bye_ok = sip("SIP/2.0 200 OK", call_id, "2 BYE", "caller1", "callee1", CALLER_IP)
    frames: list[tuple[int, bytes]] = [
        (T0_NS, frame(CALLER_IP, CALLEE_IP, 5060, 5060, invite)),
        (T0_NS + SETUP_NS, frame(CALLEE_IP, CALLER_IP, 5060, 5060, ok)),
        (T0_NS + SETUP_NS + 1_000_000, frame(CALLER_IP, CALLEE_IP, 5060, 5060, ack)),
    ]
    first = {"caller": T0_NS + SETUP_NS + 10_000_000}
    first["callee"] = first["caller"] + int(callee_offset_ms * 1_000_000)
    for side, d, (src, sport, dst, dport), ssrc in (
            ("caller", caller, (CALLER_IP, CALLER_RTP, CALLEE_IP, CALLEE_RTP), 0x11111111),
            ("callee", callee, (CALLEE_IP, CALLEE_RTP, CALLER_IP, CALLER_RTP), 0x22222222)):
        payloads = d.raw_payloads[:packets] if d.raw_payloads is not None else encode_tone(d, packets)
        step_ts = d.clock * d.ptime_ms // 1000
        for k, payload in enumerate(payloads):
            if k in d.removed:
                continue
            at = first[side] + k * d.ptime_ms * 1_000_000 + int(d.delay_ms.get(k, 0) * 1_000_000)
            pt, ts_of = d.pt, k
            if d.red_pt is not None:  # RFC 2198 3: redundant block header, primary header, blocks
                before = payloads[k - 1] if k > 0 else b""  # the first packet has no earlier one to repeat
                header = ((1 << 31) | (d.pt << 24) | (step_ts << 10) | len(before)).to_bytes(4, "big") if k else b""
                pt, payload = d.red_pt, header + bytes([d.pt]) + before + payload
            if k in d.replaced:
                pt, payload, ts_of = d.replaced[k]
            if k in d.suppressed:
                continue
            seq = 65000 + k - sum(1 for j in d.suppressed if j < k)
            marker = k == 0 or k - 1 in d.suppressed
            data = rtp(pt, seq % 65536, (4_294_960_000 + ts_of * step_ts) % 2**32, ssrc, payload, marker)
            frames.append((at, frame(src, dst, sport, dport, data)))
    for cseq, (ms, digit, duration) in enumerate(sip_info, start=10):  # RFC 2976 INFO, dtmf-relay body
        body = f"Signal={digit}\r\nDuration={duration}\r\n"
        info = sip(f"INFO sip:bob@{CALLEE_IP} SIP/2.0", call_id, f"{cseq} INFO", "caller1", "callee1", CALLER_IP)
        info = info.replace(b"Content-Length: 0", f"Content-Type: application/dtmf-relay\r\nContent-Length: "
                            f"{len(body)}".encode()) + body.encode()
        frames.append((first["caller"] + int(ms * 1_000_000), frame(CALLER_IP, CALLEE_IP, 5060, 5060, info)))
    end = first["callee"] + packets * caller.ptime_ms * 1_000_000 + 100_000_000
    frames += [(end, frame(CALLER_IP, CALLEE_IP, 5060, 5060, bye)),
               (end + 1_000_000, frame(CALLEE_IP, CALLER_IP, 5060, 5060, bye_ok))]
    frames.sort(key=lambda f: f[0])
    with open(path, "wb") as f:
        writer = dpkt.pcap.Writer(f)
        for ts_ns, data in frames:
            writer.writepkt(data, ts=Decimal(ts_ns) / 1_000_000_000)  # exact microseconds, no float rounding
    return ToneCall(path, call_id, caller, callee, packets, first)

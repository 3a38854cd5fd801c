"""SIP / SDP / RTP / RTCP payload builders.

``Dialog`` produces the seven messages of a basic call (INVITE with SDP offer, 100,
180, 200 with SDP answer, ACK, BYE, 200) with RFC 3261 headers: Via with a
``z9hG4bK`` branch (one per transaction), From/To tags, Call-ID, CSeq, Contact,
Max-Forwards and an exact Content-Length.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from .packets import is_ipv6

# --------------------------------------------------------------------------- SIP / SDP


@dataclass(frozen=True)
class Party:
    ip: str
    sip_port: int
    user: str
    display: str
    domain: str
    rtp_port: int = 0
    ssrc: int = 0


def hostport(ip: str, port: int | None = None) -> str:
    host = f"[{ip}]" if is_ipv6(ip) else ip
    return host if port is None else f"{host}:{port}"


def sdp(
    party: Party,
    *,
    session_id: int,
    payload_types: tuple[int, ...] = (0, 8, 101),
    direction: str = "sendrecv",
    ptime: int = 20,
    pad_to: int = 0,
) -> bytes:
    """An audio SDP body; ``pad_to`` appends a=x-pad attributes until the body has that many bytes."""
    fam = "IP6" if is_ipv6(party.ip) else "IP4"
    names = {0: "PCMU/8000", 8: "PCMA/8000", 18: "G729/8000", 101: "telephone-event/8000"}
    lines = [
        "v=0",
        f"o={party.user} {session_id} {session_id} IN {fam} {party.ip}",
        "s=flowviz synthetic call",
        f"c=IN {fam} {party.ip}",
        "t=0 0",
        f"m=audio {party.rtp_port} RTP/AVP {' '.join(str(p) for p in payload_types)}",
    ]
    for pt in payload_types:
        lines.append(f"a=rtpmap:{pt} {names[pt]}")
        if pt == 101:
            lines.append("a=fmtp:101 0-16")
    lines += [f"a=ptime:{ptime}", f"a={direction}"]
    body = "".join(line + "\r\n" for line in lines)
    i = 0
    while len(body) < pad_to:
        line = f"a=x-flowviz-pad-{i:03d}:{'p' * 60}\r\n"
        body += line
        i += 1
    return body.encode()


@dataclass
class SipMessage:
    label: str  # request method ("INVITE") or status code as text ("200")
    text: bytes
    call_id: str
    cseq: str  # "1 INVITE"
    sender: str  # "caller" or "callee"

    @property
    def is_request(self) -> bool:
        return not self.label.isdigit()


def build_message(start_line: str, headers: list[tuple[str, str]], body: bytes = b"", content_type: str = "application/sdp") -> bytes:
    hs = list(headers)
    if body:
        hs.append(("Content-Type", content_type))
    hs.append(("Content-Length", str(len(body))))
    head = start_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    return head.encode() + body


class Dialog:
    """The messages of one basic call between ``caller`` and ``callee``."""

    REASONS = {100: "Trying", 180: "Ringing", 200: "OK"}

    def __init__(
        self,
        caller: Party,
        callee: Party,
        *,
        call_id: str,
        from_tag: str,
        to_tag: str,
        branch_seed: str,
        transport: str = "UDP",
        offer_pts: tuple[int, ...] = (0, 8, 101),
        answer_pts: tuple[int, ...] = (0, 101),
        offer_direction: str = "sendrecv",
        answer_direction: str = "sendrecv",
        invite_pad_to: int = 0,
        ok_pad_to: int = 0,
        extra_invite_headers: tuple[tuple[str, str], ...] = (),
    ):
        self.caller, self.callee = caller, callee
        self.call_id, self.from_tag, self.to_tag = call_id, from_tag, to_tag
        self.branch_seed = branch_seed
        self.transport = transport.upper()
        self.offer_pts, self.answer_pts = offer_pts, answer_pts
        self.offer_direction, self.answer_direction = offer_direction, answer_direction
        self.invite_pad_to, self.ok_pad_to = invite_pad_to, ok_pad_to
        self.extra_invite_headers = extra_invite_headers

    # header helpers
    def _branch(self, n: int) -> str:
        return f"z9hG4bK{self.branch_seed}{n:02d}"

    def _via(self, party: Party, n: int) -> str:
        return f"SIP/2.0/{self.transport} {hostport(party.ip, party.sip_port)};branch={self._branch(n)};rport"

    def _aor(self, p: Party) -> str:
        return f"sip:{p.user}@{p.domain}"

    def _contact(self, p: Party) -> str:
        return f"<sip:{p.user}@{hostport(p.ip, p.sip_port)};transport={self.transport.lower()}>"

    def _from(self) -> str:
        return f'"{self.caller.display}" <{self._aor(self.caller)}>;tag={self.from_tag}'

    def _to(self, tagged: bool) -> str:
        base = f'"{self.callee.display}" <{self._aor(self.callee)}>'
        return base + (f";tag={self.to_tag}" if tagged else "")

    def _request_uri(self) -> str:
        return f"sip:{self.callee.user}@{hostport(self.callee.ip, self.callee.sip_port)}"

    def _request(self, method: str, cseq: int, branch_n: int, *, to_tagged: bool, body: bytes = b"", extra=()) -> SipMessage:
        headers = [
            ("Via", self._via(self.caller, branch_n)),
            ("Max-Forwards", "70"),
            ("From", self._from()),
            ("To", self._to(to_tagged)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", self._contact(self.caller)),
            *extra,
            ("User-Agent", "flowviz-synth-ua/1.0"),
        ]
        if method == "INVITE":
            headers.append(("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"))
        text = build_message(f"{method} {self._request_uri()} SIP/2.0", headers, body)
        return SipMessage(method, text, self.call_id, f"{cseq} {method}", "caller")

    def _response(self, code: int, cseq: int, method: str, branch_n: int, *, to_tagged: bool, body: bytes = b"") -> SipMessage:
        headers = [
            # the server filled in rport and received (RFC 3581) on the way in
            ("Via", self._via(self.caller, branch_n) + f"={self.caller.sip_port};received={self.caller.ip}"),
            ("From", self._from()),
            ("To", self._to(to_tagged)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if code > 100:
            headers.append(("Contact", self._contact(self.callee)))
        headers.append(("Server", "flowviz-synth-server/1.0"))
        text = build_message(f"SIP/2.0 {code} {self.REASONS[code]}", headers, body)
        return SipMessage(str(code), text, self.call_id, f"{cseq} {method}", "callee")

    def invite(self) -> SipMessage:
        body = sdp(self.caller, session_id=1001, payload_types=self.offer_pts, direction=self.offer_direction, pad_to=self.invite_pad_to)
        return self._request("INVITE", 1, 1, to_tagged=False, body=body, extra=self.extra_invite_headers)

    def trying(self) -> SipMessage:
        return self._response(100, 1, "INVITE", 1, to_tagged=False)

    def ringing(self) -> SipMessage:
        return self._response(180, 1, "INVITE", 1, to_tagged=True)

    def ok_invite(self) -> SipMessage:
        body = sdp(self.callee, session_id=2002, payload_types=self.answer_pts, direction=self.answer_direction, pad_to=self.ok_pad_to)
        return self._response(200, 1, "INVITE", 1, to_tagged=True, body=body)

    def ack(self) -> SipMessage:
        return self._request("ACK", 1, 2, to_tagged=True)

    def bye(self) -> SipMessage:
        return self._request("BYE", 2, 3, to_tagged=True)

    def ok_bye(self) -> SipMessage:
        return self._response(200, 2, "BYE", 3, to_tagged=True)

    def all(self) -> list[SipMessage]:
        return [self.invite(), self.trying(), self.ringing(), self.ok_invite(), self.ack(), self.bye(), self.ok_bye()]


def options(src: Party, dst: Party, *, call_id: str, branch: str, tag: str) -> SipMessage:
    """An out-of-dialog OPTIONS keep-alive request."""
    headers = [
        ("Via", f"SIP/2.0/UDP {hostport(src.ip, src.sip_port)};branch=z9hG4bK{branch}"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:{src.user}@{src.domain}>;tag={tag}"),
        ("To", f"<sip:{dst.user}@{dst.domain}>"),
        ("Call-ID", call_id),
        ("CSeq", "1 OPTIONS"),
        ("Contact", f"<sip:{src.user}@{hostport(src.ip, src.sip_port)}>"),
        ("Accept", "application/sdp"),
    ]
    text = build_message(f"OPTIONS sip:{dst.user}@{hostport(dst.ip, dst.sip_port)} SIP/2.0", headers)
    return SipMessage("OPTIONS", text, call_id, "1 OPTIONS", "caller")


# --------------------------------------------------------------------------- G.711


def _ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    s = min(abs(sample), 32635) + 0x84
    exponent = max(0, min(7, s.bit_length() - 8))
    mantissa = (s >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _alaw(sample: int) -> int:
    pcm = sample >> 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg_end = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
    seg = next((i for i, end in enumerate(seg_end) if pcm <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (pcm >> 1) & 0x0F if seg < 2 else (pcm >> seg) & 0x0F
    return aval ^ mask


def g711_tone(pt: int, *, freq: int = 1000, samples: int = 160, amplitude: int = 8000) -> bytes:
    """``samples`` of a sine tone at 8 kHz, mu-law (PT 0) or A-law (PT 8)."""
    enc = _ulaw if pt == 0 else _alaw
    return bytes(enc(int(round(amplitude * math.sin(2 * math.pi * freq * i / 8000)))) for i in range(samples))


# --------------------------------------------------------------------------- RTP / RTCP


def rtp(*, seq: int, ts: int, ssrc: int, pt: int, payload: bytes, marker: bool = False) -> bytes:
    """RTP fixed header (V=2, no padding/extension/CSRC) + payload."""
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


@dataclass(frozen=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_seq: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    def pack(self) -> bytes:
        cum = self.cumulative_lost & 0xFFFFFF
        return struct.pack("!IIIIII", self.ssrc, (self.fraction_lost << 24) | cum, self.highest_seq, self.jitter, self.lsr, self.dlsr)


def _rtcp_header(count: int, pt: int, body_len: int) -> bytes:
    # length field: 32-bit words minus one, including the 4-byte header
    return struct.pack("!BBH", 0x80 | count, pt, (body_len + 4) // 4 - 1)


def rtcp_sr(*, ssrc: int, ntp_ts: int, rtp_ts: int, packets: int, octets: int, reports: tuple[ReportBlock, ...] = ()) -> bytes:
    """Sender report (PT 200); ``ntp_ts`` is the 64-bit NTP timestamp."""
    body = struct.pack("!IQIII", ssrc, ntp_ts, rtp_ts & 0xFFFFFFFF, packets, octets) + b"".join(r.pack() for r in reports)
    return _rtcp_header(len(reports), 200, len(body)) + body


def rtcp_rr(*, ssrc: int, reports: tuple[ReportBlock, ...] = ()) -> bytes:
    body = struct.pack("!I", ssrc) + b"".join(r.pack() for r in reports)
    return _rtcp_header(len(reports), 201, len(body)) + body


def rtcp_sdes(*, ssrc: int, cname: str) -> bytes:
    """SDES (PT 202) with one chunk holding a CNAME item, null-terminated and padded."""
    c = cname.encode()
    chunk = struct.pack("!IBB", ssrc, 1, len(c)) + c + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return _rtcp_header(1, 202, len(chunk)) + chunk


def ntp_timestamp(unix_ns: int) -> int:
    """64-bit NTP timestamp (seconds since 1900 << 32 | fraction) for a Unix time in ns."""
    sec, frac_ns = divmod(unix_ns, 1_000_000_000)
    return ((sec + 2_208_988_800) << 32) | ((frac_ns << 32) // 1_000_000_000)

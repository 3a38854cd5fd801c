"""Scenario plumbing: a timeline of annotated IP datagrams, link-layer encapsulation,
file writing and the ``expected`` dict derived from the construction (never from
parsing the bytes back).

A scenario adds packets to a ``Timeline``.  Each ``Pkt`` holds an IP datagram and
what it carries: which SIP messages have bytes in it (``sip_parts``), which ones are
complete once it has arrived (``sip_done``, in wire order), or the RTP/RTCP fields
it was built from.  ``finish_pcap``/``finish_pcapng`` then order the packets by
capture time, add the link layer, write the file and derive ``expected``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from . import packets as P
from . import voip as V
from . import writers as W

# 2024-01-15 10:00:00 UTC: every scenario's clock starts here (plus a per-scenario offset).
BASE_TS_NS = 1_705_312_800 * 1_000_000_000
MS = 1_000_000  # ns per millisecond

# G.711 clock rate.
CLOCK = 8000


@dataclass
class Msg:
    id: int
    sip: V.SipMessage
    src: tuple[str, int]
    dst: tuple[str, int]
    transport: str


@dataclass
class Pkt:
    ts_ns: int
    l3: bytes  # IPv4 or IPv6 datagram
    iface: int = 0
    sip_parts: list[int] = field(default_factory=list)
    sip_done: list[int] = field(default_factory=list)
    rtp: dict | None = None
    rtcp: dict | None = None
    comment: str | None = None
    spb: bool = False  # pcapng: written as a Simple Packet Block (no timestamp)
    data: bytes = b""  # link-layer frame, filled by encapsulation


def addr(ip: str, port: int) -> str:
    return V.hostport(ip, port)


def l3_addrs(l3: bytes) -> tuple[str, str]:
    if l3[0] >> 4 == 6:
        return str(ipaddress.ip_address(l3[8:24])), str(ipaddress.ip_address(l3[24:40]))
    return str(ipaddress.ip_address(l3[12:16])), str(ipaddress.ip_address(l3[16:20]))


def mac_for(ip: str) -> str:
    """A locally administered MAC derived from an IP address (stable, distinct per host)."""
    b = ipaddress.ip_address(ip).packed[-3:]
    return "02:00:00:" + ":".join(f"{x:02x}" for x in b)


class Timeline:
    def __init__(self):
        self.pkts: list[Pkt] = []
        self.msgs: list[Msg] = []
        self._ident = 0x4000

    def ident(self) -> int:
        self._ident = (self._ident + 1) & 0xFFFF
        return self._ident

    def msg(self, m: V.SipMessage, src, dst, transport: str) -> int:
        self.msgs.append(Msg(len(self.msgs), m, tuple(src), tuple(dst), transport))
        return len(self.msgs) - 1

    def add(self, pkt: Pkt) -> Pkt:
        self.pkts.append(pkt)
        return pkt

    # ---- SIP

    def sip_udp(
        self,
        ts: int,
        m: V.SipMessage,
        src: tuple[str, int],
        dst: tuple[str, int],
        *,
        iface: int = 0,
        fragment_size: int | None = None,
        fragment_order: list[int] | None = None,
        comment: str | None = None,
    ) -> int:
        """One SIP message in one UDP datagram; optionally sent as IPv4 fragments.

        Fragments go on the wire in ``fragment_order`` (indexes into offset order),
        100 us apart; the message is complete at the last one on the wire.
        """
        mid = self.msg(m, src, dst, "udp")
        dgram = P.udp(src[0], dst[0], src[1], dst[1], m.text)
        if fragment_size is None:
            self.add(Pkt(ts, P.ip(src[0], dst[0], P.IPPROTO_UDP, dgram, ident=self.ident()), iface, [mid], [mid], comment=comment))
            return mid
        frags = P.ipv4_fragments(src[0], dst[0], P.IPPROTO_UDP, dgram, ident=self.ident(), fragment_size=fragment_size)
        order = list(range(len(frags))) if fragment_order is None else fragment_order
        assert sorted(order) == list(range(len(frags))), (order, len(frags))
        for j, k in enumerate(order):
            done = [mid] if j == len(order) - 1 else []
            self.add(Pkt(ts + j * 100_000, frags[k], iface, [mid], done))
        return mid

    # ---- RTP / RTCP

    def rtp(self, ts: int, src, dst, *, seq: int, rtp_ts: int, ssrc: int, pt: int, payload: bytes, marker=False, iface=0):
        body = V.rtp(seq=seq, ts=rtp_ts, ssrc=ssrc, pt=pt, payload=payload, marker=marker)
        l3 = P.ip_udp(src[0], dst[0], src[1], dst[1], body, ident=self.ident())
        info = dict(src=tuple(src), dst=tuple(dst), ssrc=ssrc, seq=seq & 0xFFFF, rtp_ts=rtp_ts & 0xFFFFFFFF, pt=pt, marker=marker)
        return self.add(Pkt(ts, l3, iface, rtp=info))

    def rtcp(self, ts: int, src, dst, body: bytes, *, ssrc: int, types: list[str], iface=0):
        l3 = P.ip_udp(src[0], dst[0], src[1], dst[1], body, ident=self.ident())
        return self.add(Pkt(ts, l3, iface, rtcp=dict(src=tuple(src), dst=tuple(dst), ssrc=ssrc, types=types)))


# --------------------------------------------------------------------------- a whole call


@dataclass
class CallPlan:
    """What ``basic_call`` built, for the scenario to describe."""

    dialog: V.Dialog
    rtp_start_ns: int
    end_ns: int


def jitter_ns(k: int, salt: int, spread_us: int = 400) -> int:
    """Deterministic arrival-time wobble for packet k: up to ``spread_us`` us plus a sub-us part."""
    return ((k * 7919 + salt * 104729) % spread_us) * 1000 + (k * 137 + salt) % 1000


def media(
    tl: Timeline,
    *,
    start: int,
    caller: V.Party,
    callee: V.Party,
    rtp_packets: int,
    pt: int = 0,
    rtcp: bool = True,
    rtcp_every: int = 125,
    seq0: tuple[int, int] = (1000, 30000),
    rtp_ts0: tuple[int, int] = (16000, 480000),
    iface: int = 0,
) -> int:
    """Two RTP streams (caller->callee and back), 20 ms G.711, and RTCP SR+SDES.

    Stream 0 packet k leaves at start + k*20ms, stream 1 7 ms later, each with the
    ``jitter_ns`` wobble.  Each side sends an SR (one report block on the other
    stream) + SDES CNAME, 1 ms after every ``rtcp_every``-th packet it sends (default 125, 250),
    from RTP port + 1 to RTP port + 1.  Returns the time after the last packet.
    """
    sides = [(caller, callee, 0), (callee, caller, 1)]
    payloads = [V.g711_tone(pt, freq=1000), V.g711_tone(pt, freq=400)]
    last_sr_ntp = {0: 0, 1: 0}
    t_last = start
    for k in range(rtp_packets):
        for src_p, dst_p, i in sides:
            t = start + k * 20 * MS + i * 7 * MS + jitter_ns(k, i)
            t_last = max(t_last, t)
            tl.rtp(
                t,
                (src_p.ip, src_p.rtp_port),
                (dst_p.ip, dst_p.rtp_port),
                seq=seq0[i] + k,
                rtp_ts=rtp_ts0[i] + k * 160,
                ssrc=src_p.ssrc,
                pt=pt,
                payload=payloads[i],
                marker=(k == 0),
                iface=iface,
            )
            if rtcp and (k + 1) % rtcp_every == 0:
                other = 1 - i
                ntp = V.ntp_timestamp(t + MS)
                rb = V.ReportBlock(
                    ssrc=dst_p.ssrc,
                    highest_seq=seq0[other] + k - (1 if i == 0 else 0),
                    jitter=2,
                    lsr=(last_sr_ntp[other] >> 16) & 0xFFFFFFFF,
                    dlsr=(7 * 65536 // 1000) if last_sr_ntp[other] else 0,
                )
                body = V.rtcp_sr(ssrc=src_p.ssrc, ntp_ts=ntp, rtp_ts=rtp_ts0[i] + k * 160, packets=k + 1, octets=(k + 1) * 160, reports=(rb,))
                body += V.rtcp_sdes(ssrc=src_p.ssrc, cname=f"{src_p.user}@{V.hostport(src_p.ip)}")
                last_sr_ntp[i] = ntp
                tl.rtcp(t + MS, (src_p.ip, src_p.rtp_port + 1), (dst_p.ip, dst_p.rtp_port + 1), body, ssrc=src_p.ssrc, types=["SR", "SDES"], iface=iface)
                t_last = max(t_last, t + MS)
    return t_last


def make_dialog(caller: V.Party, callee: V.Party, *, call_id: str, tag: str, pt: int = 0, transport: str = "UDP", **kw) -> V.Dialog:
    return V.Dialog(
        caller,
        callee,
        call_id=call_id,
        from_tag=f"{tag}a1",
        to_tag=f"{tag}b2",
        branch_seed=f"{tag}x",
        transport=transport,
        offer_pts=(0, 8, 101),
        answer_pts=(pt, 101),
        **kw,
    )


# Offsets of the INVITE transaction's messages from the INVITE (100, 180, 200, ACK).
SETUP_TIMES = (0, 3 * MS, 40 * MS, 1500 * MS, 1510 * MS)


def basic_call(
    tl: Timeline,
    *,
    t0: int,
    caller: V.Party,
    callee: V.Party,
    call_id: str,
    tag: str,
    rtp_packets: int = 250,
    pt: int = 0,
    rtcp: bool = True,
    rtcp_every: int = 125,
    sip_iface: int = 0,
    rtp_iface: int = 0,
    invite_pad_to: int = 0,
    ok_pad_to: int = 0,
    fragments: dict | None = None,
) -> CallPlan:
    """INVITE/100/180/200/ACK over UDP, ``media``, then BYE/200 200 ms after the media.

    ``fragments`` maps a message index (0..6) to ``{"size": n, "order": [...]}`` to
    send that message as IPv4 fragments.
    """
    d = make_dialog(caller, callee, call_id=call_id, tag=tag, pt=pt, invite_pad_to=invite_pad_to, ok_pad_to=ok_pad_to)
    a_sip, b_sip = (caller.ip, caller.sip_port), (callee.ip, callee.sip_port)
    msgs = d.all()
    fragments = fragments or {}

    def send(i: int, t: int):
        m = msgs[i]
        src, dst = (a_sip, b_sip) if m.sender == "caller" else (b_sip, a_sip)
        f = fragments.get(i)
        tl.sip_udp(t, m, src, dst, iface=sip_iface, fragment_size=f and f["size"], fragment_order=f and f.get("order"))

    for i, dt in enumerate(SETUP_TIMES):
        send(i, t0 + dt)
    rtp_start = t0 + 1540 * MS
    t_last = media(tl, start=rtp_start, caller=caller, callee=callee, rtp_packets=rtp_packets, pt=pt, rtcp=rtcp, rtcp_every=rtcp_every, iface=rtp_iface)
    t_bye = t_last + 200 * MS
    send(5, t_bye)
    send(6, t_bye + 4 * MS)
    return CallPlan(d, rtp_start, t_bye + 4 * MS)


# --------------------------------------------------------------------------- link layers


def encapsulate(kind: str, pkt: Pkt, *, byteorder: str = "<", tunnel: dict | None = None) -> bytes:
    """Put the link layer (and for tunnel kinds the outer headers) around ``pkt.l3``."""
    l3 = pkt.l3
    v6 = l3[0] >> 4 == 6
    ethertype = P.ETH_P_IPV6 if v6 else P.ETH_P_IP
    src, dst = l3_addrs(l3)
    if kind == "ether":
        return P.ethernet(l3, src=mac_for(src), dst=mac_for(dst), ethertype=ethertype)
    if kind == "vlan":
        return P.ethernet(l3, src=mac_for(src), dst=mac_for(dst), ethertype=ethertype, vlans=(100,))
    if kind == "qinq":
        return P.ethernet(l3, src=mac_for(src), dst=mac_for(dst), ethertype=ethertype, vlans=(200, 100), outer_tpid=P.ETH_P_8021AD)
    if kind == "sll":
        return P.linux_sll(l3, protocol=ethertype, pkttype=_sll_pkttype(src), addr=mac_for(src))
    if kind == "sll2":
        return P.linux_sll2(l3, protocol=ethertype, pkttype=_sll_pkttype(src), addr=mac_for(src), ifindex=3)
    if kind == "null":
        fam = P.AF_INET6_DARWIN if v6 else P.AF_INET
        return P.null_loopback(l3, family=fam, byteorder=byteorder)
    if kind == "raw":
        return P.raw_ip(l3)
    if kind in ("ipip", "gre", "vxlan", "gtpu"):
        assert tunnel is not None
        fwd = src == tunnel["caller_ip"]
        o_src, o_dst = (tunnel["outer_a"], tunnel["outer_b"]) if fwd else (tunnel["outer_b"], tunnel["outer_a"])
        ident = tunnel.setdefault("_ident", [0x7000])
        ident[0] += 1
        if kind == "ipip":
            outer = P.ipip(o_src, o_dst, l3, ident=ident[0])
        elif kind == "gre":
            outer = P.ipv4_gre(o_src, o_dst, l3, ident=ident[0])
        elif kind == "vxlan":
            inner = P.ethernet(l3, src=mac_for(src), dst=mac_for(dst), ethertype=ethertype)
            sport = 49152 + (sum(l3[12:20]) % 1024)  # flow-hash-like, stable per direction
            outer = P.ip_udp(o_src, o_dst, sport, P.VXLAN_PORT, P.vxlan(inner, vni=tunnel["vni"]), ident=ident[0])
        else:
            teid = tunnel["teid_up"] if fwd else tunnel["teid_down"]
            outer = P.ip_udp(o_src, o_dst, P.GTPU_PORT, P.GTPU_PORT, P.gtpu(l3, teid=teid), ident=ident[0])
        return P.ethernet(outer, src=mac_for(o_src), dst=mac_for(o_dst))
    raise ValueError(f"unknown link kind {kind!r}")


def _sll_pkttype(src: str) -> int:
    # Captured on the caller's host (addresses ending in .10 / ::10 in every scenario):
    # its own packets are "outgoing" (4), the rest "to us" (0).
    return 4 if src.endswith(".10") or src.endswith("::10") else 0


LINKTYPE_OF = {
    "ether": P.LINKTYPE_ETHERNET,
    "vlan": P.LINKTYPE_ETHERNET,
    "qinq": P.LINKTYPE_ETHERNET,
    "sll": P.LINKTYPE_LINUX_SLL,
    "sll2": P.LINKTYPE_LINUX_SLL2,
    "null": P.LINKTYPE_NULL,
    "raw": P.LINKTYPE_RAW,
    "ipip": P.LINKTYPE_ETHERNET,
    "gre": P.LINKTYPE_ETHERNET,
    "vxlan": P.LINKTYPE_ETHERNET,
    "gtpu": P.LINKTYPE_ETHERNET,
}


# --------------------------------------------------------------------------- expected


def wireshark_rtp_stats(rows: list[dict], capture_start_ns: int) -> dict:
    """Wireshark 4.0's rtppacket_analyse() (ui/tap-rtp-analysis.c) re-done for one stream.

    ``rows`` are the stream's packets in capture order with ``ts_ns`` (as stored in the
    file), ``seq``, ``rtp_ts``, ``marker``.  Returns what ``tshark -z rtp,streams``
    prints -- packets, lost (= expected - received, expected = last-arrived seq +
    65536 * wraps - first seq + 1), delta and jitter in ms -- plus the "sequence
    errors" count of Wireshark's RTP Stream Analysis.  G.711 only (8 kHz clock).

    Version note: in 4.0 a packet is "in time sequence" when its RTP timestamp is at
    most 2**31 after the FIRST packet's, so a late (reordered) packet still updates
    delta/jitter; Wireshark 4.2+ compares with the previous packet instead and skips
    late packets, giving different delta/jitter (not lost/packets) on reordered
    streams.  Packet/lost/sequence-error counts agree between versions.
    """

    def msec(ts_ns: int) -> float:  # nstime_to_msec(&pinfo->rel_ts)
        secs, nsecs = divmod(ts_ns - capture_start_ns, 1_000_000_000)
        return secs * 1000.0 + nsecs / 1000000.0

    st = None
    for r in rows:
        t = msec(r["ts_ns"])
        seq = r["seq"]
        if st is None:
            st = dict(
                start_seq=seq, stop_seq=seq, seq_num=seq, time=t, first_ts=r["rtp_ts"], lastnominal=0.0, jitter=0.0,
                max_jitter=0.0, min_jitter=-1.0, mean_jitter=0.0, delta=0.0, max_delta=0.0, min_delta=-1.0,
                mean_delta=0.0, total_nr=1, cycles=0, under=False, sequence=0,
            )
            continue
        since_first = (r["rtp_ts"] - st["first_ts"]) & 0xFFFFFFFF
        in_time = since_first < 0x80000000
        if seq < st["start_seq"] and in_time and not st["under"]:
            st["cycles"] += 1
            st["under"] = True
        elif seq == 0 and st["stop_seq"] == 65535 and in_time and not st["under"]:
            st["cycles"] += 1
            st["under"] = True
        elif seq > st["start_seq"] and in_time and st["under"]:
            st["under"] = False
        if in_time and st["seq_num"] + 1 == seq:
            st["seq_num"] = seq
        elif in_time and st["seq_num"] == 65535 and seq == 0:
            st["seq_num"] = seq
        elif in_time and (st["seq_num"] + 1 < seq or st["seq_num"] - seq > 0xFF00):
            st["seq_num"] = seq
            st["sequence"] += 1
        elif st["seq_num"] + 1 > seq:
            st["sequence"] += 1
        cur_jitter = st["jitter"]
        if in_time:
            nominal = since_first / (CLOCK / 1000)
            expected_time = st["time"] + (nominal - st["lastnominal"])
            cur_diff = abs(t - expected_time)
            cur_jitter = (15 * st["jitter"] + cur_diff) / 16
            st["delta"] = t - st["time"]
            st["jitter"] = cur_jitter
            st["lastnominal"] = nominal
        if in_time and not r["marker"]:  # a "regular" packet
            st["max_delta"] = max(st["max_delta"], st["delta"])
            if st["min_delta"] == -1 or st["delta"] < st["min_delta"]:
                st["min_delta"] = st["delta"]
            n = st["total_nr"]
            st["mean_delta"] = (st["mean_delta"] * (n - 1) + st["delta"]) / n
            st["max_jitter"] = max(st["max_jitter"], st["jitter"])
            st["mean_jitter"] = (st["mean_jitter"] * (n - 1) + cur_jitter) / n
            if st["min_jitter"] == -1 or st["jitter"] < st["min_jitter"]:
                st["min_jitter"] = st["jitter"]
        if in_time:
            st["time"] = t
        st["stop_seq"] = seq
        st["total_nr"] += 1
    expected = st["stop_seq"] + st["cycles"] * 65536 - st["start_seq"] + 1
    return dict(
        packets=st["total_nr"],
        expected=expected,
        lost=expected - st["total_nr"],
        seq_errors=st["sequence"],
        wraps=st["cycles"],
        min_delta_ms=max(st["min_delta"], 0.0),
        mean_delta_ms=st["mean_delta"],
        max_delta_ms=st["max_delta"],
        min_jitter_ms=max(st["min_jitter"], 0.0),
        mean_jitter_ms=st["mean_jitter"],
        max_jitter_ms=st["max_jitter"],
    )


def derive_expected(pkts: list[Pkt], msgs: list[Msg], stored_ts: list[int | None]) -> dict:
    """SIP messages, RTP streams and RTCP packets per frame, from the construction.

    ``pkts`` are in file order (frame n = pkts[n-1]); ``stored_ts`` the timestamps
    as a reader gets them back (None for a Simple Packet Block).
    """
    frames_of: dict[int, list[int]] = {}
    for n, p in enumerate(pkts, 1):
        for mid in p.sip_parts:
            frames_of.setdefault(mid, []).append(n)
    sip = []
    for n, p in enumerate(pkts, 1):
        for idx, mid in enumerate(p.sip_done):
            m = msgs[mid]
            entry = {
                "frame": n,
                "frames": frames_of[mid],
                "msg_index": idx,
                "ts_ns": stored_ts[n - 1],
                "src": addr(*m.src),
                "dst": addr(*m.dst),
                "transport": m.transport,
                "label": m.sip.label,
                "method": m.sip.label if m.sip.is_request else None,
                "status_code": None if m.sip.is_request else int(m.sip.label),
                "call_id": m.sip.call_id,
                "cseq": m.sip.cseq,
                "length": len(m.sip.text),
            }
            sip.append(entry)
    # a message is in frames_of but never completed only in truncated files
    call_ids = []
    for e in sip:
        if e["call_id"] not in call_ids:
            call_ids.append(e["call_id"])
    streams: dict[tuple, list[dict]] = {}
    for n, p in enumerate(pkts, 1):
        if p.rtp:
            r = p.rtp
            key = (r["src"], r["dst"], r["ssrc"])
            streams.setdefault(key, []).append(dict(r, frame=n, ts_ns=stored_ts[n - 1]))
    capture_start = next((t for t in stored_ts if t is not None), 0)
    rtp_streams = []
    for (src, dst, ssrc), rows in streams.items():
        ws = wireshark_rtp_stats(rows, capture_start)
        rtp_streams.append(
            {
                "src": addr(*src),
                "dst": addr(*dst),
                "src_ip": src[0],
                "src_port": src[1],
                "dst_ip": dst[0],
                "dst_port": dst[1],
                "ssrc": ssrc,
                "ssrc_hex": f"0x{ssrc:08x}",
                "payload_type": rows[0]["pt"],
                "packets": len(rows),
                "expected": ws["expected"],
                "lost": ws["lost"],
                "seq_errors": ws["seq_errors"],
                "first_seq": rows[0]["seq"],
                "last_seq": rows[-1]["seq"],
                "first_frame": rows[0]["frame"],
                "last_frame": rows[-1]["frame"],
                "wireshark_4_0": {k: ws[k] for k in ("min_delta_ms", "mean_delta_ms", "max_delta_ms", "min_jitter_ms", "mean_jitter_ms", "max_jitter_ms")},
            }
        )
    rtcp = []
    for n, p in enumerate(pkts, 1):
        if p.rtcp:
            r = p.rtcp
            rtcp.append({"frame": n, "src": addr(*r["src"]), "dst": addr(*r["dst"]), "ssrc": r["ssrc"], "types": r["types"]})
    sip_frames = sorted({e["frame"] for e in sip})
    return {
        "frames": len(pkts),
        "first_ts_ns": capture_start if pkts else None,
        "last_ts_ns": max((t for t in stored_ts if t is not None), default=None),
        "sip_messages": len(sip),
        "sip_frames": len(sip_frames),
        "sip_sequence": [e["label"] for e in sip],
        "call_ids": call_ids,
        "sip": sip,
        "rtp_packets": sum(len(r) for r in streams.values()),
        "rtp_streams": rtp_streams,
        "rtcp_packets": len(rtcp),
        "rtcp": rtcp,
    }


# --------------------------------------------------------------------------- finishing


@dataclass
class Capture:
    name: str
    filename: str
    data: bytes
    expected: dict


def order(pkts: list[Pkt]) -> list[Pkt]:
    return sorted(pkts, key=lambda p: p.ts_ns)  # stable: equal times keep construction order


def finish_pcap(
    name: str,
    tl: Timeline,
    *,
    link: str,
    description: str,
    nsec: bool = False,
    byteorder: str = "<",
    compress: bool = False,
    tunnel: dict | None = None,
    extra: dict | None = None,
) -> Capture:
    pkts = order(tl.pkts)
    for p in pkts:
        p.data = encapsulate(link, p, byteorder=byteorder, tunnel=tunnel)
    records = [W.Record(p.ts_ns, p.data) for p in pkts]
    data = W.pcap_bytes(LINKTYPE_OF[link], records, nsec=nsec, byteorder=byteorder)
    tsresol = 9 if nsec else 6
    stored = [W.stored_ts_ns(p.ts_ns, tsresol=tsresol) for p in pkts]
    ext = ".pcap.gz" if compress else ".pcap"
    if compress:
        data = W.gzip_bytes(data)
    exp = {
        "file": name + ext,
        "description": description,
        "format": "pcap",
        "magic": f"0x{W.PCAP_MAGIC_NSEC if nsec else W.PCAP_MAGIC_USEC:08x}",
        "byte_order": "little" if byteorder == "<" else "big",
        "ts_resolution": "ns" if nsec else "us",
        "compression": "gzip" if compress else None,
        "linktype": LINKTYPE_OF[link],
        "linktype_name": P.LINKTYPE_NAMES[LINKTYPE_OF[link]],
        "encapsulation": link,
        **derive_expected(pkts, tl.msgs, stored),
    }
    if extra:
        exp.update(extra)
    return Capture(name, exp["file"], data, exp)

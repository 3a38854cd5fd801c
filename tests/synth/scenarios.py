"""The scenarios: each function returns a ``Capture`` (file name, bytes, expected dict).

Everything is deterministic: fixed clock (2024-01-15 10:00 UTC + a per-scenario
offset), fixed SSRCs/ports/tags, and "random" patterns taken from SHA-256 of a
fixed seed string, so two builds give byte-identical files.
"""

from __future__ import annotations

import hashlib
import struct

from . import packets as P
from . import voip as V
from . import writers as W
from .scenario_kit import (
    BASE_TS_NS,
    MS,
    SETUP_TIMES,
    Capture,
    Pkt,
    Timeline,
    basic_call,
    derive_expected,
    encapsulate,
    finish_pcap,
    make_dialog,
    media,
    order,
)

SEC = 1_000_000_000


def call_id_for(name: str, n: int = 0) -> str:
    return hashlib.sha1(f"{name}/{n}".encode()).hexdigest()[:24] + "@atlanta.example.com"


def tag_for(name: str) -> str:
    return hashlib.sha1(f"tag/{name}".encode()).hexdigest()[:8]


def t0_for(name: str) -> int:
    """Each scenario starts at its own whole second after BASE_TS_NS (plus 0.123456789 s)."""
    offset = int(hashlib.sha1(name.encode()).hexdigest()[:4], 16)  # < 65536 s
    return BASE_TS_NS + offset * SEC + 123_456_789


def parties(v6: bool = False, sip_ports=(5060, 5060), rtp_ports=(40000, 50000)) -> tuple[V.Party, V.Party]:
    if v6:
        a_ip, b_ip = "2001:db8:a::10", "2001:db8:b::20"
    else:
        a_ip, b_ip = "10.0.0.10", "10.0.1.20"
    alice = V.Party(a_ip, sip_ports[0], "alice", "Alice", "atlanta.example.com", rtp_port=rtp_ports[0], ssrc=0x1A2B3C4D)
    bob = V.Party(b_ip, sip_ports[1], "bob", "Bob", "biloxi.example.com", rtp_port=rtp_ports[1], ssrc=0x5E6F7081)
    return alice, bob


# --------------------------------------------------------------------------- basic call and its link/format variants

BASIC = "basic_call_udp"


def _basic_timeline(name: str, *, v6: bool = False, pt: int = 0, rtp_packets: int = 250) -> Timeline:
    tl = Timeline()
    a, b = parties(v6)
    basic_call(tl, t0=t0_for(name), caller=a, callee=b, call_id=call_id_for(name), tag=tag_for(name), pt=pt, rtp_packets=rtp_packets)
    return tl


CALL_TEXT = "7 SIP messages (INVITE+SDP,100,180,200+SDP,ACK,BYE,200), 2 RTP streams x {n} pkts (20 ms G.711), 4 RTCP SR+SDES"


def basic_call_udp() -> Capture:
    return finish_pcap(BASIC, _basic_timeline(BASIC), link="ether", description="Complete call over UDP/IPv4/Ethernet: " + CALL_TEXT.format(n=250))


def pcap_nsec() -> Capture:
    """The basic call (same packets, same Call-ID) in a nanosecond pcap (magic a1b23c4d)."""
    return finish_pcap("pcap_nsec", _basic_timeline(BASIC), link="ether", nsec=True, description="basic_call_udp in a nanosecond-resolution pcap (timestamps keep their sub-us part)")


def pcap_big_endian() -> Capture:
    return finish_pcap("pcap_big_endian", _basic_timeline(BASIC), link="ether", byteorder=">", description="basic_call_udp in a big-endian usec pcap (magic bytes a1 b2 c3 d4)")


def gzip_pcap() -> Capture:
    return finish_pcap("gzip_pcap", _basic_timeline(BASIC), link="ether", compress=True, description="basic_call_udp pcap, gzip-compressed (.pcap.gz)")


def _link_variant(name: str, link: str, what: str, *, v6: bool = False, pt: int = 0, byteorder: str = "<") -> Capture:
    tl = _basic_timeline(name, v6=v6, pt=pt)
    return finish_pcap(name, tl, link=link, byteorder=byteorder, description=f"{what}: " + CALL_TEXT.format(n=250))


def ipv6_call() -> Capture:
    return _link_variant("ipv6_call", "ether", "Call over UDP/IPv6/Ethernet, SDP 'IN IP6', PCMA (PT 8)", v6=True, pt=8)


def vlan_call() -> Capture:
    return _link_variant("vlan_call", "vlan", "Call over Ethernet with one 802.1Q tag (VLAN 100)")


def qinq_call() -> Capture:
    return _link_variant("qinq_call", "qinq", "Call over QinQ: outer 802.1ad tag 0x88a8 VLAN 200, inner 802.1Q 0x8100 VLAN 100")


def sll_call() -> Capture:
    return _link_variant("sll_call", "sll", "Call in Linux cooked capture v1 (SLL, linktype 113)")


def sll2_call() -> Capture:
    return _link_variant("sll2_call", "sll2", "Call in Linux cooked capture v2 (SLL2, linktype 276)")


def null_loopback_call() -> Capture:
    return _link_variant("null_loopback_call", "null", "Call in BSD loopback (linktype 0), family AF_INET=2 little-endian like the file")


def null_loopback_big_endian() -> Capture:
    return _link_variant(
        "null_loopback_big_endian",
        "null",
        "BSD loopback (linktype 0) in a big-endian pcap: the family word 2 is big-endian too (host order of the writer)",
        byteorder=">",
    )


def raw_ip_call() -> Capture:
    return _link_variant("raw_ip_call", "raw", "Call with no link layer (LINKTYPE_RAW 101, IPv4 from the first nibble)")


# --------------------------------------------------------------------------- SIP over TCP


def sip_tcp_coalesced_split() -> Capture:
    """SIP over TCP port 5060; one segment holds two messages, one message spans two segments.

    Frames (1-based): 1 SYN, 2 SYN/ACK, 3 ACK,
      4 INVITE bytes [0, 300)   (ends inside the headers)
      5 INVITE bytes [300, end) -> INVITE complete here (frames [4, 5])
      6 "100 Trying" + "180 Ringing" in ONE segment (msg_index 0 and 1)
      7 200 OK (+SDP), 8 ACK,
      9..208 RTP over UDP (2 x 100), 209 BYE, 210 200 OK, 211-213 FIN/FIN/ACK.
    7 SIP messages in 6 frames (4 is only a TCP segment of a reassembled PDU).
    """
    name = "sip_tcp_coalesced_split"
    tl = Timeline()
    t0 = t0_for(name)
    a, b = parties()
    cport = 50432
    a = V.Party(a.ip, cport, a.user, a.display, a.domain, a.rtp_port, a.ssrc)
    d = make_dialog(a, b, call_id=call_id_for(name), tag=tag_for(name), transport="TCP")
    inv, trying, ringing, ok, ack, bye, ok_bye = d.all()
    conn = P.TcpConnection((a.ip, cport), (b.ip, 5060), client_isn=1_000_000, server_isn=2_000_000)
    src, dst = (a.ip, cport), (b.ip, 5060)
    t = t0 - 30 * MS
    for side, l3 in conn.handshake():
        tl.add(Pkt(t, l3))
        t += 1 * MS
    ids = {lbl: tl.msg(m, src if m.sender == "caller" else dst, dst if m.sender == "caller" else src, "tcp") for lbl, m in
           [("inv", inv), ("trying", trying), ("ringing", ringing), ("ok", ok), ("ack", ack), ("bye", bye), ("ok_bye", ok_bye)]}
    split = 300
    assert split < inv.text.index(b"\r\n\r\n")
    tl.add(Pkt(t0, conn.segment("c", inv.text[:split]), sip_parts=[ids["inv"]]))
    tl.add(Pkt(t0 + 1 * MS, conn.segment("c", inv.text[split:]), sip_parts=[ids["inv"]], sip_done=[ids["inv"]]))
    tl.add(Pkt(t0 + 40 * MS, conn.segment("s", trying.text + ringing.text), sip_parts=[ids["trying"], ids["ringing"]], sip_done=[ids["trying"], ids["ringing"]]))
    tl.add(Pkt(t0 + 1500 * MS, conn.segment("s", ok.text), sip_parts=[ids["ok"]], sip_done=[ids["ok"]]))
    tl.add(Pkt(t0 + 1510 * MS, conn.segment("c", ack.text), sip_parts=[ids["ack"]], sip_done=[ids["ack"]]))
    t_last = media(tl, start=t0 + 1540 * MS, caller=a, callee=b, rtp_packets=100, rtcp=False)
    t = t_last + 200 * MS
    tl.add(Pkt(t, conn.segment("c", bye.text), sip_parts=[ids["bye"]], sip_done=[ids["bye"]]))
    tl.add(Pkt(t + 4 * MS, conn.segment("s", ok_bye.text), sip_parts=[ids["ok_bye"]], sip_done=[ids["ok_bye"]]))
    t += 10 * MS
    for side, l3 in conn.close():
        tl.add(Pkt(t, l3))
        t += 1 * MS
    return finish_pcap(
        name,
        tl,
        link="ether",
        description="SIP over TCP 5060: INVITE split over 2 segments, 100+180 coalesced in 1 segment; 7 messages in 6 frames; 2 RTP streams x 100 over UDP",
        extra={"tcp": {"split_message": "INVITE", "split_at": split, "coalesced": ["100", "180"]}},
    )


def sip_nonstandard_port_tcp() -> Capture:
    """SIP over TCP to port 6060 (client port 51000): found only by content; one message per segment."""
    name = "sip_nonstandard_port_tcp"
    tl = Timeline()
    t0 = t0_for(name)
    a, b = parties(sip_ports=(51000, 6060))
    d = make_dialog(a, b, call_id=call_id_for(name), tag=tag_for(name), transport="TCP")
    conn = P.TcpConnection((a.ip, 51000), (b.ip, 6060), client_isn=0x10000000, server_isn=0x20000000)
    src, dst = (a.ip, 51000), (b.ip, 6060)
    t = t0 - 30 * MS
    for side, l3 in conn.handshake():
        tl.add(Pkt(t, l3))
        t += MS
    msgs = d.all()
    times = list(SETUP_TIMES)
    for m, dt in zip(msgs[:5], times):
        fwd = m.sender == "caller"
        mid = tl.msg(m, src if fwd else dst, dst if fwd else src, "tcp")
        tl.add(Pkt(t0 + dt, conn.segment("c" if fwd else "s", m.text), sip_parts=[mid], sip_done=[mid]))
    t_last = media(tl, start=t0 + 1540 * MS, caller=a, callee=b, rtp_packets=50, rtcp=False)
    t = t_last + 200 * MS
    for m, dt in zip(msgs[5:], (0, 4 * MS)):
        fwd = m.sender == "caller"
        mid = tl.msg(m, src if fwd else dst, dst if fwd else src, "tcp")
        tl.add(Pkt(t + dt, conn.segment("c" if fwd else "s", m.text), sip_parts=[mid], sip_done=[mid]))
    t += 10 * MS
    for side, l3 in conn.close():
        tl.add(Pkt(t, l3))
        t += MS
    return finish_pcap(
        name,
        tl,
        link="ether",
        description="SIP over TCP 51000 -> 6060 (not a SIP port; found by content), one message per segment; 2 RTP streams x 50",
        extra={
            # Wireshark registers TCP 6000-6063 for X11, and a port dissector wins over
            # heuristics unless told otherwise: without this option tshark shows X11, 0 SIP.
            "tshark_options": ["-o", "tcp.try_heuristic_first:TRUE"],
        },
    )


def sip_nonstandard_port_udp() -> Capture:
    name = "sip_nonstandard_port_udp"
    tl = Timeline()
    a, b = parties(sip_ports=(5080, 5090))
    basic_call(tl, t0=t0_for(name), caller=a, callee=b, call_id=call_id_for(name), tag=tag_for(name), rtp_packets=50, rtcp=False)
    return finish_pcap(name, tl, link="ether", description="SIP over UDP 5080 <-> 5090 (not SIP ports; found by content); 2 RTP streams x 50")


# --------------------------------------------------------------------------- IPv4 fragments


def ipv4_fragmented_sip() -> Capture:
    """INVITE with ~2800-byte SDP as 3 IPv4 fragments in order; 200 OK with ~1800-byte SDP
    as 2 fragments sent LAST fragment first.  Fragment payload size 1480 (MTU 1500)."""
    name = "ipv4_fragmented_sip"
    tl = Timeline()
    a, b = parties()
    basic_call(
        tl,
        t0=t0_for(name),
        caller=a,
        callee=b,
        call_id=call_id_for(name),
        tag=tag_for(name),
        rtp_packets=50,
        rtcp=False,
        invite_pad_to=2800,
        ok_pad_to=1800,
        fragments={0: {"size": 1480}, 3: {"size": 1480, "order": [1, 0]}},
    )
    return finish_pcap(
        name,
        tl,
        link="ether",
        description="INVITE (~3.3 kB) as 3 IPv4 fragments in order; 200 OK (~2.2 kB) as 2 fragments in reverse order; 2 RTP streams x 50",
        extra={"fragments": {"INVITE": {"count": 3, "order": "in order"}, "200": {"count": 2, "order": "last fragment first"}, "fragment_payload": 1480}},
    )


# --------------------------------------------------------------------------- tunnels


def _tunnel(name: str, kind: str, what: str, **tun) -> Capture:
    tl = Timeline()
    a, b = parties()
    basic_call(tl, t0=t0_for(name), caller=a, callee=b, call_id=call_id_for(name), tag=tag_for(name), rtp_packets=10, rtcp=False)
    tunnel = {"caller_ip": a.ip, "outer_a": "192.0.2.1", "outer_b": "198.51.100.2", **tun}
    info = {"type": kind, "outer_a": tunnel["outer_a"], "outer_b": tunnel["outer_b"], **tun}
    return finish_pcap(name, tl, link=kind, tunnel=tunnel, description=f"{what}: 7 SIP messages + 2 RTP streams x 10, addresses in expected are the INNER ones", extra={"tunnel": info})


def tunnel_ipip() -> Capture:
    return _tunnel("tunnel_ipip", "ipip", "IPv4-in-IPv4 (IP proto 4) over Ethernet")


def tunnel_gre() -> Capture:
    return _tunnel("tunnel_gre", "gre", "IPv4 in GRE (IP proto 47, GRE proto 0x0800, no key)")


def tunnel_vxlan() -> Capture:
    return _tunnel("tunnel_vxlan", "vxlan", "Ethernet+IPv4 in VXLAN (UDP 4789, VNI 5001)", vni=5001)


def tunnel_gtpu() -> Capture:
    return _tunnel("tunnel_gtpu", "gtpu", "IPv4 in GTP-U (UDP 2152, G-PDU, TEID 0x1001 up / 0x2002 down)", teid_up=0x1001, teid_down=0x2002)


# --------------------------------------------------------------------------- RTP loss / reorder / jitter

LOSS_PLANNED = 500
LOSS_FIRST_SEQ = 65300  # wraps to 0 after 236 packets
LOSS_REMOVED = (65310, 65311, 65312, 65400, 65480, 20, 100, 101, 180, 240)  # 7 gaps
LOSS_SWAPPED = ((65450, 65451), (150, 151))  # each pair arrives second-first
LOSS_RTP_TS0 = 2**32 - 300 * 160  # RTP timestamp wraps at the 301st planned packet


def _seeded_ns(seed: str, i: int, modulo: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:8], "big") % modulo


def rtp_loss_reorder_jitter() -> Capture:
    """One RTP stream alice -> bob of exactly known construction.

    500 packets planned, seq 65300 .. 263 (wraps past 65535), RTP ts 160 apart and
    wrapping past 2**32.  Packet i is sent at start + i*20 ms and arrives 30 ms +
    d_i later, d_i in [0, 10 ms) from SHA-256("flowviz-jitter:i").  10 packets are
    never sent (LOSS_REMOVED, 7 gaps).  In the two LOSS_SWAPPED pairs the first
    packet arrives 2 ms after the second.  The call's SDP is sendonly/recvonly; Bob
    sends one RTCP RR+SDES at the end reporting the loss.

    Wireshark's counting (ui/tap-rtp-analysis.c): expected = last-arrived seq +
    65536 * wraps - first seq + 1 = 500; lost = 500 - 490 = 10; sequence errors =
    1 per gap + 2 per swapped pair = 7 + 4 = 11.
    """
    name = "rtp_loss_reorder_jitter"
    tl = Timeline()
    t0 = t0_for(name)
    a, b = parties()
    d = make_dialog(a, b, call_id=call_id_for(name), tag=tag_for(name), offer_direction="sendonly", answer_direction="recvonly")
    msgs = d.all()
    a_sip, b_sip = (a.ip, 5060), (b.ip, 5060)
    for m, dt in zip(msgs[:5], SETUP_TIMES):
        tl.sip_udp(t0 + dt, m, a_sip if m.sender == "caller" else b_sip, b_sip if m.sender == "caller" else a_sip)
    start = t0 + 1540 * MS
    payload = V.g711_tone(0)
    arrival = {}
    for i in range(LOSS_PLANNED):
        seq = (LOSS_FIRST_SEQ + i) & 0xFFFF
        arrival[seq] = start + i * 20 * MS + 30 * MS + _seeded_ns("flowviz-jitter", i, 10 * MS)
    for first, second in LOSS_SWAPPED:
        arrival[first] = arrival[second] + 2 * MS
    sent = []
    for i in range(LOSS_PLANNED):
        seq = (LOSS_FIRST_SEQ + i) & 0xFFFF
        if seq in LOSS_REMOVED:
            continue
        sent.append(seq)
        tl.rtp(arrival[seq], (a.ip, a.rtp_port), (b.ip, b.rtp_port), seq=seq, rtp_ts=LOSS_RTP_TS0 + i * 160, ssrc=a.ssrc, pt=0, payload=payload, marker=(i == 0))
    t_end = start + LOSS_PLANNED * 20 * MS + 60 * MS
    last_ext = LOSS_FIRST_SEQ + LOSS_PLANNED - 1  # 65799 = 65536 + 263
    rr = V.rtcp_rr(ssrc=b.ssrc, reports=(V.ReportBlock(ssrc=a.ssrc, fraction_lost=10 * 256 // 500, cumulative_lost=10, highest_seq=last_ext, jitter=30),))
    rr += V.rtcp_sdes(ssrc=b.ssrc, cname=f"bob@{b.ip}")
    tl.rtcp(t_end, (b.ip, b.rtp_port + 1), (a.ip, a.rtp_port + 1), rr, ssrc=b.ssrc, types=["RR", "SDES"])
    tl.sip_udp(t_end + 100 * MS, msgs[5], a_sip, b_sip)
    tl.sip_udp(t_end + 104 * MS, msgs[6], b_sip, a_sip)

    cap = finish_pcap(
        name,
        tl,
        link="ether",
        description="One RTP stream: 500 planned, 10 removed (7 gaps), 2 swapped pairs, seeded arrival jitter, seq wrap 65535->0 and RTP-ts wrap; 7 SIP msgs; 1 RTCP RR",
    )
    construction = {
        "planned": LOSS_PLANNED,
        "first_seq": LOSS_FIRST_SEQ,
        "last_seq": (LOSS_FIRST_SEQ + LOSS_PLANNED - 1) & 0xFFFF,
        "removed_seqs": list(LOSS_REMOVED),
        "gaps": 7,
        "swapped_pairs": [list(p) for p in LOSS_SWAPPED],
        "received": LOSS_PLANNED - len(LOSS_REMOVED),
        "lost": len(LOSS_REMOVED),
        "seq_errors": 7 + 2 * len(LOSS_SWAPPED),
        "seq_wraps": 1,
        "rtp_ts_first": LOSS_RTP_TS0,
        "arrival": "start + i*20ms + 30ms + (sha256('flowviz-jitter:i') % 10ms); swapped first = second + 2ms",
    }
    (stream,) = cap.expected["rtp_streams"]
    # The generic derivation (Wireshark's algorithm run over the built packets) must
    # agree with what the construction says.
    assert stream["packets"] == construction["received"] == len(sent), stream
    assert stream["expected"] == LOSS_PLANNED and stream["lost"] == construction["lost"], stream
    assert stream["seq_errors"] == construction["seq_errors"], stream
    cap.expected["construction"] = construction
    return cap


# --------------------------------------------------------------------------- pcapng


def _pcapng_two_interfaces(name: str, byteorder: str) -> Capture:
    """Interface 0: Ethernet, usec, SIP.  Interface 1: Linux SLL, nsec, RTP + RTCP.

    Extra blocks: a Simple Packet Block (interface 0, no timestamp) with a SIP OPTIONS
    placed right after the 180 Ringing, a block of unknown type 0x00000F0E after the
    200 OK, an opt_comment on the INVITE's EPB and one Interface Statistics Block per
    interface at the end.
    """
    tl = Timeline()
    a, b = parties()
    basic_call(tl, t0=t0_for(name), caller=a, callee=b, call_id=call_id_for(name), tag=tag_for(name), rtp_packets=100, rtcp_every=50, sip_iface=0, rtp_iface=1)
    pkts = order(tl.pkts)
    links = {0: "ether", 1: "sll"}
    ifaces = [W.Interface(P.LINKTYPE_ETHERNET, tsresol=6, name="eth0"), W.Interface(P.LINKTYPE_LINUX_SLL, tsresol=9, name="any")]
    for p in pkts:
        p.data = encapsulate(links[p.iface], p, byteorder=byteorder)
    pkts[0].comment = "INVITE with SDP offer (flowviz synth)"
    # Simple Packet Block: an out-of-dialog OPTIONS, after the 180 Ringing (3rd SIP frame)
    opt = V.options(a, b, call_id=call_id_for(name, 1), branch="opt" + tag_for(name), tag="o" + tag_for(name))
    mid = tl.msg(opt, (a.ip, 5060), (b.ip, 5060), "udp")
    spb = Pkt(0, P.ip_udp(a.ip, b.ip, 5060, 5060, opt.text, ident=0x0BAD), iface=0, sip_parts=[mid], sip_done=[mid], spb=True)
    spb.data = encapsulate("ether", spb)
    sip_frames = [i for i, p in enumerate(pkts) if p.sip_done]
    pkts.insert(sip_frames[2] + 1, spb)
    items: list = []
    stored: list[int | None] = []
    ok_index = [i for i, p in enumerate(pkts) if p.sip_done and tl.msgs[p.sip_done[0]].sip.label == "200"][0]
    for i, p in enumerate(pkts):
        if p.spb:
            items.append(W.SimplePacket(p.data))
            stored.append(None)
        else:
            items.append(W.Record(p.ts_ns, p.data, iface=p.iface, comment=p.comment))
            stored.append(W.stored_ts_ns(p.ts_ns, tsresol=ifaces[p.iface].tsresol))
        if i == ok_index:
            items.append(W.RawBlock(W.BT_UNKNOWN, b"flowviz: a block type no reader knows; skip me\x00\x00"))
    t_end = max(p.ts_ns for p in pkts) + MS
    counts = {0: sum(1 for p in pkts if p.iface == 0), 1: sum(1 for p in pkts if p.iface == 1)}
    items += [W.InterfaceStats(0, t_end, counts[0]), W.InterfaceStats(1, t_end, counts[1])]
    data = W.pcapng_bytes(W.PcapngSection(ifaces, items, byteorder=byteorder))
    exp = {
        "file": name + ".pcapng",
        "description": f"{'big-endian' if byteorder == '>' else 'little-endian'} pcapng, 2 interfaces: eth0 Ethernet/usec carries SIP, 'any' Linux SLL/nsec carries RTP+RTCP; "
        "plus 1 SPB (SIP OPTIONS, no timestamp), 1 unknown-type block, 1 EPB comment, 2 ISBs",
        "format": "pcapng",
        "byte_order": "little" if byteorder == "<" else "big",
        "compression": None,
        "interfaces": [{"id": i, "linktype": f.linktype, "linktype_name": P.LINKTYPE_NAMES[f.linktype], "tsresol": f.tsresol, "name": f.name} for i, f in enumerate(ifaces)],
        "blocks": {"SHB": 1, "IDB": 2, "EPB": len(pkts) - 1, "SPB": 1, "ISB": 2, "unknown": 1, "unknown_type": f"0x{W.BT_UNKNOWN:08x}"},
        "frame_interfaces": {"0": counts[0], "1": counts[1]},
        "spb_frame": pkts.index(spb) + 1,
        **derive_expected(pkts, tl.msgs, stored),
    }
    return Capture(name, exp["file"], data, exp)


def pcapng_two_interfaces() -> Capture:
    return _pcapng_two_interfaces("pcapng_two_interfaces", "<")


def pcapng_big_endian() -> Capture:
    return _pcapng_two_interfaces("pcapng_big_endian", ">")


def gzip_pcapng() -> Capture:
    cap = _pcapng_two_interfaces("pcapng_two_interfaces", "<")
    exp = dict(cap.expected, file="gzip_pcapng.pcapng.gz", compression="gzip", description="pcapng_two_interfaces, gzip-compressed")
    return Capture("gzip_pcapng", exp["file"], W.gzip_bytes(cap.data), exp)


# --------------------------------------------------------------------------- bad inputs


def _bad(name: str, filename: str, data: bytes, error: str, description: str, **kw) -> Capture:
    exp = {"file": filename, "description": description, "bad": True, "error": error, **kw}
    return Capture(name, filename, data, exp)


def empty() -> Capture:
    return _bad(
        "empty",
        "empty.pcap",
        b"",
        "empty",
        "0-byte file",
        whole_records=0,
        tshark_behaviour="tshark 4.0 reads it as an empty capture: exit status 0, no frames, no message",
    )


def not_a_capture() -> Capture:
    text = b"This is not a packet capture.\nIt is a text file named .pcap; readers must refuse it clearly.\n" * 4
    return _bad(
        "not_a_capture",
        "not_a_capture.pcap",
        text,
        "not_a_capture",
        "plain text with a .pcap name",
        whole_records=0,
        tshark_behaviour="exit 2: isn't a capture file in a format TShark understands",
    )


def header_only() -> Capture:
    data = W.pcap_bytes(P.LINKTYPE_ETHERNET, [])
    exp = {
        "file": "header_only.pcap",
        "description": "valid Ethernet pcap file header, zero records",
        "format": "pcap",
        "bad": False,
        "byte_order": "little",
        "ts_resolution": "us",
        "compression": None,
        "linktype": 1,
        "linktype_name": "ethernet",
        **derive_expected([], [], []),
    }
    return Capture("header_only", exp["file"], data, exp)


TRUNCATED_WHOLE = 20
IMPOSSIBLE_GOOD = 10


def _basic_records() -> tuple[list[Pkt], Timeline]:
    tl = _basic_timeline(BASIC)
    pkts = order(tl.pkts)
    for p in pkts:
        p.data = encapsulate("ether", p)
    return pkts, tl


def truncated() -> Capture:
    """basic_call_udp cut in the middle of the data of record 21: 20 whole records remain."""
    pkts, tl = _basic_records()
    full = W.pcap_bytes(P.LINKTYPE_ETHERNET, [W.Record(p.ts_ns, p.data) for p in pkts])
    cut = 24 + sum(16 + len(p.data) for p in pkts[:TRUNCATED_WHOLE]) + 16 + len(pkts[TRUNCATED_WHOLE].data) // 2
    keep = pkts[:TRUNCATED_WHOLE]
    exp = _bad(
        "truncated",
        "truncated.pcap",
        full[:cut],
        "truncated",
        f"basic_call_udp cut inside the data of record {TRUNCATED_WHOLE + 1}: {TRUNCATED_WHOLE} whole records",
        whole_records=TRUNCATED_WHOLE,
        cut_at_byte=cut,
        tshark_behaviour=f"prints {TRUNCATED_WHOLE} frames, then exit 2: appears to have been cut short in the middle of a packet",
        linktype=1,
        format="pcap",
    ).expected
    exp["content_of_whole_records"] = derive_expected(keep, tl.msgs, [W.stored_ts_ns(p.ts_ns, tsresol=6) for p in keep])
    return Capture("truncated", "truncated.pcap", full[:cut], exp)


def impossible_length() -> Capture:
    """10 good records of basic_call_udp, then a record header with caplen = origlen = 0x7fffffff
    followed by 64 zero bytes."""
    pkts, tl = _basic_records()
    keep = pkts[:IMPOSSIBLE_GOOD]
    data = W.pcap_bytes(P.LINKTYPE_ETHERNET, [W.Record(p.ts_ns, p.data) for p in keep])
    last_sec = keep[-1].ts_ns // SEC
    data += struct.pack("<IIII", last_sec + 1, 0, 0x7FFFFFFF, 0x7FFFFFFF) + b"\x00" * 64
    exp = _bad(
        "impossible_length",
        "impossible_length.pcap",
        data,
        "impossible_length",
        f"{IMPOSSIBLE_GOOD} good records, then a record header claiming caplen 0x7fffffff",
        whole_records=IMPOSSIBLE_GOOD,
        bad_record_offset=24 + sum(16 + len(p.data) for p in keep),
        bad_caplen=0x7FFFFFFF,
        tshark_behaviour=f"prints {IMPOSSIBLE_GOOD} frames, then exit 2: appears to be damaged or corrupt "
        "(pcap: File has 2147483647-byte packet, bigger than maximum of 262144)",
        linktype=1,
        format="pcap",
    ).expected
    exp["content_of_whole_records"] = derive_expected(keep, tl.msgs, [W.stored_ts_ns(p.ts_ns, tsresol=6) for p in keep])
    return Capture("impossible_length", "impossible_length.pcap", data, exp)


# --------------------------------------------------------------------------- registry

BUILDERS = {
    f.__name__: f
    for f in (
        basic_call_udp,
        sip_tcp_coalesced_split,
        ipv6_call,
        vlan_call,
        qinq_call,
        sll_call,
        sll2_call,
        null_loopback_call,
        null_loopback_big_endian,
        raw_ip_call,
        pcapng_two_interfaces,
        pcapng_big_endian,
        pcap_nsec,
        pcap_big_endian,
        gzip_pcap,
        gzip_pcapng,
        rtp_loss_reorder_jitter,
        sip_nonstandard_port_udp,
        sip_nonstandard_port_tcp,
        ipv4_fragmented_sip,
        tunnel_ipip,
        tunnel_gre,
        tunnel_vxlan,
        tunnel_gtpu,
        header_only,
        empty,
        not_a_capture,
        truncated,
        impossible_length,
    )
}

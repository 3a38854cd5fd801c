"""RTCP XR VoIP Metrics (RFC 3611 4.7) from a capture built here; tshark decodes the same bytes as a cross-check."""

from __future__ import annotations

import struct

import dpkt

from flowviz.ingest import read_capture
from tests.conftest import run_tshark

SENDER, SOURCE = 0x11223344, 0x55667788


def voip_metrics(loss, discard, rtt_ms, esd_ms, r_factor, mos_lq, mos_cq, jb_nominal):
    """One XR packet (PT 207) with one VoIP Metrics block (BT 7, 8 words), laid out as RFC 3611 4.7 draws it."""
    block = struct.pack("!BBH", 7, 0, 8) + struct.pack(
        "!IBBBBHHHHbbBBBBBBBBHHH", SOURCE, loss, discard, 0, 0, 0, 0, rtt_ms, esd_ms, -20, -60, 127, 16,
        r_factor, 127, mos_lq, mos_cq, 0, 0, jb_nominal, 120, 200)
    body = struct.pack("!I", SENDER) + block
    return struct.pack("!BBH", 0x80, 207, len(body) // 4) + body


def empty_rr():
    return struct.pack("!BBHI", 0x80, 201, 1, SENDER)


def write_capture(path):
    packets = [empty_rr() + voip_metrics(13, 5, 42, 30, 88, 41, 40, 60),
               empty_rr() + voip_metrics(0, 0, 0, 0, 127, 127, 127, 0)]
    with open(path, "wb") as f:
        writer = dpkt.pcap.Writer(f)
        for i, payload in enumerate(packets):
            udp = dpkt.udp.UDP(sport=40001, dport=50001, data=payload)
            udp.ulen = len(udp)
            ip = dpkt.ip.IP(src=bytes([10, 0, 0, 1]), dst=bytes([10, 0, 0, 2]), p=17, data=udp)
            ip.len = len(ip)
            eth = dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)
            writer.writepkt(bytes(eth), ts=1_700_000_000 + i)


def test_voip_metrics_block(tmp_path, tshark):
    path = tmp_path / "xr.pcap"
    write_capture(path)
    xr = read_capture(path, use_cache=False).rtcp_xr.sort("frame").to_dicts()
    assert len(xr) == 2
    first, second = xr
    assert (first["sender_ssrc"], first["source_ssrc"], first["src_ip"], first["dst_port"]) == (SENDER, SOURCE, "10.0.0.1", 50001)
    assert first["loss_rate_pct"] == 13 * 100 / 256 and first["discard_rate_pct"] == 5 * 100 / 256
    assert (first["round_trip_ms"], first["end_system_delay_ms"], first["r_factor"]) == (42, 30, 88)
    assert (first["mos_lq"], first["mos_cq"], first["jb_nominal_ms"]) == (4.1, 4.0, 60)
    assert (second["r_factor"], second["mos_lq"], second["mos_cq"]) == (None, None, None)  # 127 = unavailable
    out = run_tshark("-r", str(path), "-d", "udp.port==40001,rtcp", "-Y", "rtcp", "-T", "fields",
                     "-e", "rtcp.xr.voipmetrics.rtdelay", "-e", "rtcp.xr.voipmetrics.rfactor",
                     "-e", "rtcp.xr.voipmetrics.jbnominal")
    assert out.splitlines()[0].split("\t") == ["42", "88", "60"]


def test_endpoint_mos_reaches_the_stream_report(tmp_path):
    """RTP 10.0.0.2 -> 10.0.0.1 with SSRC SOURCE, and the XR about it sent back by 10.0.0.1."""
    from flowviz.media.report import streams_report

    path = tmp_path / "call.pcap"
    with open(path, "wb") as f:
        writer = dpkt.pcap.Writer(f)
        frames = []
        for seq in range(50):  # 50 packets of 20 ms PCMU
            rtp = struct.pack("!BBHII", 0x80, 0, 1000 + seq, 160 * seq, SOURCE) + b"\xff" * 160
            frames.append((1_700_000_000 + seq * 0.02, "10.0.0.2", "10.0.0.1", 50000, 40000, rtp))
        frames.append((1_700_000_001.1, "10.0.0.1", "10.0.0.2", 40001, 50001,
                       empty_rr() + voip_metrics(0, 0, 10, 20, 91, 43, 42, 40)))
        for ts, src, dst, sport, dport, payload in frames:
            udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
            udp.ulen = len(udp)
            ip = dpkt.ip.IP(src=bytes(map(int, src.split("."))), dst=bytes(map(int, dst.split("."))), p=17, data=udp)
            ip.len = len(ip)
            writer.writepkt(bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, data=ip)), ts=ts)
    cap = read_capture(path, use_cache=False)
    report = streams_report(cap.sip_messages, cap.rtp_packets, rtcp=cap.rtcp_reports, xr=cap.rtcp_xr)
    row = report.filter(report["ssrc"] == SOURCE).to_dicts()[0]
    assert (row["endpoint_mos_lq"], row["endpoint_mos_cq"], row["endpoint_r_factor"]) == (4.3, 4.2, 91)

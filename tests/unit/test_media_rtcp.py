"""RTCP: report blocks bound to streams, RTT from LSR/DLSR (RFC 3550 6.4.1), RTT in the MOS."""

from __future__ import annotations

import polars as pl
import pytest

from flowviz.media.report import streams_report
from flowviz.media.rtcp import block_rtt, rtcp_per_stream
from flowviz.media.stats import stream_stats
from flowviz.schemas import RTCP_REPORTS, SIP_MESSAGES
from tests.unit.test_media_stats import DST, SRC, SSRC, T0, clean, frame

NTP = 3_900_000_000.5  # SR NTP time, seconds since 1900
MID = int(NTP * 65536) % 2**32


def _rtcp(rows):
    base = {c: None for c in RTCP_REPORTS}
    return pl.DataFrame([{**base, **r} for r in rows], schema=RTCP_REPORTS)


def _reports(gap_ms=300.0, dlsr_s=0.25):
    # A (SRC) sends RTP to B and an SR; B reports on A's stream 300 ms after the SR, having held it 250 ms
    sr = {"frame": 1, "ts_ns": T0, "src_ip": SRC[0], "dst_ip": DST[0], "src_port": SRC[1] + 1, "dst_port": DST[1] + 1,
          "packet_type": "SR", "sender_ssrc": SSRC, "ntp_ts": NTP}
    rr = {"frame": 2, "ts_ns": T0 + round(gap_ms * 1e6), "src_ip": DST[0], "dst_ip": SRC[0], "src_port": DST[1] + 1,
          "dst_port": SRC[1] + 1, "packet_type": "RR", "sender_ssrc": 99, "source_ssrc": SSRC, "fraction_lost": 64,
          "cumulative_lost": 5, "jitter": 80, "lsr": MID, "dlsr": round(dlsr_s * 65536)}
    return _rtcp([sr, rr])


def test_rtt_is_arrival_gap_minus_dlsr():
    [rtt] = block_rtt(_reports())["rtt_ms"].to_list()
    assert rtt == pytest.approx(50.0, abs=0.01)


def test_report_block_bound_to_the_stream_it_reports_on():
    stats = stream_stats(frame(clean(50)), t0_ns=T0)
    [row] = rtcp_per_stream(stats, _reports()).to_dicts()
    assert row["stream_id"] == stats["stream_id"][0] and row["rtcp_blocks"] == 1
    assert row["rtcp_fraction_lost_pct"] == 25.0 and row["rtcp_cumulative_lost"] == 5
    assert row["rtcp_max_jitter"] == 80 and row["rtcp_max_jitter_ms"] == 10.0  # 80 units at 8 kHz


def test_rtt_adds_the_delay_term_to_the_mos():
    sip = pl.DataFrame(schema=SIP_MESSAGES)
    far = streams_report(sip, frame(clean(50)), t0_ns=T0, rtcp=_reports(gap_ms=1250.0, dlsr_s=0.25)).to_dicts()[0]
    assert far["rtt_ms"] == pytest.approx(1000, abs=0.1)  # one way 500 ms: Idd > 0
    assert far["r_factor"] < 93.2 and "RTT" in far["mos_method"]
    near = streams_report(sip, frame(clean(50)), t0_ns=T0, rtcp=_reports()).to_dicts()[0]
    assert near["r_factor"] == 93.2  # 25 ms one way is below G.107's 100 ms threshold

"""DTMF: RFC 4733 events from built telephone-event packets, SIP INFO digits, and the CLI against tshark."""

from __future__ import annotations

import json

import polars as pl
import pytest
from click.testing import CliRunner

from flowviz.media.dtmf import event_packets, rfc4733_events, sip_info_digits
from flowviz.schemas import SIP_MESSAGES
from tests.conftest import SHARED_PCAPS, run_tshark
from tests.unit.test_media_stats import DTMF_MAP, SCENARIOS, T0, frame


def _word(event: int, end: bool, volume: int, duration: int) -> int:
    return event << 24 | int(end) << 23 | volume << 16 | duration


def test_dtmf_1_2_3_from_the_construction():
    rtp = frame(SCENARIOS["dtmf_123"])  # 3 events of 5 packets, 20 ms apart, digits 1, 2, 3 at -10 dBm0
    packets = event_packets(rtp, DTMF_MAP)
    assert len(packets) == 15 and packets["clock_rate"].unique().to_list() == [8000]
    k = pl.int_range(pl.len()).over("rtp_ts")
    packets = packets.with_columns(event_word=((pl.col("rtp_ts").rank("dense") + 0) * 2**24 + (k == 4).cast(pl.Int64) * 2**23
                                               + 10 * 2**16 + (k + 1) * 160).cast(pl.UInt32))
    events = rfc4733_events(packets).to_dicts()
    assert [e["digit"] for e in events] == ["1", "2", "3"]
    assert [e["duration_ms"] for e in events] == [100.0] * 3  # 5 x 160 units at 8 kHz
    assert all(e["volume_dbm0"] == -10 and e["end_seen"] and e["packets"] == 5 for e in events)
    assert events[0]["ts_ns"] == T0 + 410 * 10**6  # 20 PCMU packets from 10 ms, then the event


def test_unknown_payload_gives_timing_only():
    packets = event_packets(frame(SCENARIOS["dtmf_123"]), DTMF_MAP).with_columns(event_word=pl.lit(None, pl.UInt32))
    events = rfc4733_events(packets)
    assert len(events) == 3 and events["digit"].null_count() == 3


def test_pt_101_without_sdp_is_telephone_event_like_wireshark():
    assert len(event_packets(frame(SCENARIOS["dtmf_123"]))) == 15


def test_sip_info_dtmf_relay_counted_once_per_cseq():
    raw = ("INFO sip:b@h SIP/2.0\r\nCall-ID: c1\r\nCSeq: 5 INFO\r\nContent-Type: application/dtmf-relay\r\n\r\n"
           "Signal= 5\r\nDuration= 160\r\n")
    row = {c: None for c in SIP_MESSAGES}
    row.update(method="INFO", content_type="application/dtmf-relay", raw=raw, call_id="c1", cseq_num=5, frame=7,
               ts_ns=T0, src_ip="10.0.0.1", src_port=5060, dst_ip="10.0.0.2", dst_port=5060, is_request=True)
    sip = pl.DataFrame([row, {**row, "frame": 8}], schema=SIP_MESSAGES)
    [d] = sip_info_digits(sip).to_dicts()
    assert (d["digit"], d["duration_ms"], d["frame"], d["source"]) == ("5", 160.0, 7, "sip-info")


@pytest.mark.parametrize("name", ["NormB__sipnab/SIP_DTMF2.cap", "goffinet__sip_captures/Forensic_challenge_4.pcap",
                                  "SIPp__sipp/dtmf_2833_1.pcap"])
def test_cli_digits_equal_tshark_rtpevent(name, tshark, tmp_path, monkeypatch):
    from flowviz.cli import cli

    path = SHARED_PCAPS / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path))
    out = run_tshark("-r", str(path), "-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtpevent", "-T", "fields",
                     "-e", "rtp.timestamp", "-e", "rtpevent.event_id", "-e", "rtpevent.duration")
    want: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        ts, event, duration = line.split("\t")
        want[ts] = (int(event), max(int(duration), want.get(ts, (0, 0))[1]))
    result = CliRunner().invoke(cli, ["dtmf", str(path), "--format", "json"], catch_exceptions=False)
    got = [r for r in json.loads(result.stdout) if r["source"] == "rfc4733"]
    assert [(r["event"], r["duration_ms"]) for r in got] == [(e, d / 8) for e, d in want.values()]

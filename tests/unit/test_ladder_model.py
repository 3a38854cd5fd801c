"""Ladder model on small hand-made frames: columns, names, arrows, SDP, retransmissions, media bands."""

from __future__ import annotations

import polars as pl
import pytest

from flowviz.ladder import build_ladder, endpoint_ip, parse_aliases, sdp_codec

MS = 1_000_000
A, P, B = "10.0.0.1:5060", "10.0.0.2:5060", "10.0.0.3:5060"
PCMU = [{"media": "audio", "port": 4000, "proto": "RTP/AVP", "payload_types": [0, 101],
         "rtpmap": ["0 PCMU/8000", "101 telephone-event/8000"], "direction": "sendrecv", "connection": "10.0.0.1",
         "rtcp_port": None, "rtcp_mux": False, "ptime_ms": 20}]


def message(i, ms, src, dst, what, *, sdp=None, retrans=False, call_id="c1", cseq=(1, "INVITE")):
    request = isinstance(what, str)
    return {
        "msg_id": i, "frame": i + 1, "ts_ns": 1_000 * 10**9 + ms * MS, "src": src, "dst": dst, "transport": "udp",
        "is_request": request, "method": what if request else None, "status_code": None if request else what[0],
        "reason": None if request else what[1], "call_id": call_id, "cseq_num": cseq[0], "cseq_method": cseq[1],
        "has_sdp": sdp is not None, "sdp_media": sdp, "is_retransmission": retrans, "raw": f"raw {i}",
    }


def frame(rows):
    return pl.DataFrame(rows, schema_overrides={"msg_id": pl.UInt32, "frame": pl.UInt32, "status_code": pl.UInt16},
                        infer_schema_length=None)


CALL = {"call_group_id": "g1", "call_ids": ["c1"], "hosts": [A, P, B], "host_roles": ["UA", "proxy", "UA"],
        "host_names": ["Linphone/5.2 (belle-sip)", "Kamailio (5.6)", None]}
MESSAGES = frame([
    message(0, 0, A, P, "INVITE", sdp=PCMU),
    message(1, 2, P, A, (100, "Trying")),
    message(2, 3, P, B, "INVITE", sdp=PCMU),
    message(3, 503, P, B, "INVITE", sdp=PCMU, retrans=True),
    message(4, 600, B, P, (486, "Busy Here")),
    message(5, 601, P, A, (486, "Busy Here")),
    message(6, 700, "10.0.0.9:5060", A, "OPTIONS", call_id="other"),
])


def test_columns_follow_the_path_with_names_from_agents_and_roles():
    ladder = build_ladder(MESSAGES, CALL)
    assert ladder.columns["key"].to_list() == [A, P, B]
    assert ladder.columns["name"].to_list() == ["Linphone", "Kamailio", "UA"]
    assert ladder.columns["role"].to_list() == ["UA", "proxy", "UA"]


def test_duplicate_default_names_are_numbered_and_aliases_win():
    call = {**CALL, "host_names": [None, None, None], "host_roles": ["UA", "proxy", "UA"]}
    assert build_ladder(MESSAGES, call).columns["name"].to_list() == ["UA-1", "proxy", "UA-2"]
    aliases = parse_aliases("# lab\n10.0.0.1 alice\n10.0.0.3:5060=bob\n")
    assert aliases == {"10.0.0.1": "alice", "10.0.0.3:5060": "bob"}
    assert build_ladder(MESSAGES, call, aliases=aliases).columns["name"].to_list() == ["alice", "proxy", "bob"]


def test_one_arrow_per_message_of_the_call_in_time_order():
    arrows = build_ladder(MESSAGES, CALL).arrows
    assert arrows["label"].to_list() == ["INVITE", "100 Trying", "INVITE", "INVITE", "486 Busy Here", "486 Busy Here"]
    assert list(zip(arrows["src_col"], arrows["dst_col"])) == [(0, 1), (1, 0), (1, 2), (1, 2), (2, 1), (1, 0)]
    assert arrows["klass"].to_list() == ["request", "1xx", "request", "request", "4xx-6xx", "4xx-6xx"]
    assert arrows["t_ms"].to_list() == [0.0, 2.0, 3.0, 503.0, 600.0, 601.0]
    assert arrows["delta_ms"].to_list() == [0.0, 2.0, 1.0, 500.0, 97.0, 1.0]
    assert arrows["raw"][4] == "raw 4"


def test_sdp_codec_and_retransmission_are_in_the_text():
    arrows = build_ladder(MESSAGES, CALL).arrows
    assert arrows["sdp"].to_list()[:3] == ["SDP PCMU/8000", None, "SDP PCMU/8000"]
    assert arrows["text"][0] == "INVITE (SDP PCMU/8000)"
    assert arrows["text"][3] == "INVITE (SDP PCMU/8000) [retransmission]"
    assert arrows["is_retransmission"].to_list() == [False, False, False, True, False, False]


def test_sdp_codec_falls_back_to_static_payload_types_and_skips_rejected_media():
    assert sdp_codec([{"port": 0, "payload_types": [0], "rtpmap": []},
                      {"port": 5000, "payload_types": [8, 0], "rtpmap": []}]) == "PCMA/8000"
    assert sdp_codec([{"port": 5000, "payload_types": [96], "rtpmap": ["96 opus/48000/2"]}]) == "opus/48000"
    assert sdp_codec([{"port": 5000, "payload_types": [99], "rtpmap": []}]) == "PT 99"
    assert sdp_codec([]) is None


def test_merge_ports_makes_one_column_per_ip():
    msgs = frame([message(0, 0, A, P, "REGISTER", cseq=(1, "REGISTER")),
                  message(1, 1, P, "10.0.0.1:5062", (200, "OK"), cseq=(1, "REGISTER"))])
    call = {"call_group_id": "g", "call_ids": ["c1"], "hosts": [A, P], "host_roles": ["UA", "registrar"]}
    assert build_ladder(msgs, call).columns["key"].to_list() == [A, P, "10.0.0.1:5062"]
    merged = build_ladder(msgs, call, merge_ports=True)
    assert merged.columns["key"].to_list() == ["10.0.0.1", "10.0.0.2"]
    assert list(zip(merged.arrows["src_col"], merged.arrows["dst_col"])) == [(0, 1), (1, 0)]


def test_media_bands_join_the_columns_of_the_media_ips_and_sort_among_arrows():
    streams = pl.DataFrame([
        {"stream_id": "s1", "call_group_id": "g1", "src_ip": "10.0.0.1", "src_port": 4000, "dst_ip": "10.0.0.3",
         "dst_port": 6000, "ssrc": 0xABC, "codec": "PCMU", "packets": 100, "lost": 2, "lost_pct": 2.0,
         "mean_jitter_ms": 1.25, "max_jitter_ms": 3.5, "mos": 4.1, "start_ts_ns": 1_000 * 10**9 + 550 * MS,
         "end_ts_ns": 1_000 * 10**9 + 590 * MS},
        {"stream_id": "s2", "call_group_id": "other", "src_ip": "10.0.0.7", "src_port": 4000, "dst_ip": "10.0.0.3",
         "dst_port": 6000, "ssrc": 1, "codec": "PCMU", "packets": 1, "lost": 0, "lost_pct": 0.0,
         "mean_jitter_ms": 0.0, "max_jitter_ms": 0.0, "mos": None, "start_ts_ns": 0, "end_ts_ns": 0},
    ])
    ladder = build_ladder(MESSAGES, CALL, streams)
    assert ladder.media["stream_id"].to_list() == ["s1"]
    band = ladder.media.row(0, named=True)
    assert (band["src_col"], band["dst_col"], band["ssrc"]) == (0, 2, "0x00000ABC")
    assert band["label"] == "RTP PCMU: 100 pkts, loss 2.0%, jitter 1.25 ms, MOS 4.10"
    assert [r["kind"] for r in ladder.rows()] == ["sip"] * 4 + ["rtp"] + ["sip"] * 2


def test_media_from_an_address_outside_the_path_gets_its_own_column():
    streams = pl.DataFrame([{"stream_id": "s1", "call_group_id": "g1", "src_ip": "192.0.2.5", "src_port": 30000,
                             "dst_ip": "10.0.0.1", "dst_port": 4000, "ssrc": 5, "codec": None, "packets": 3, "lost": 0,
                             "lost_pct": 0.0, "mean_jitter_ms": None, "max_jitter_ms": None, "mos": None,
                             "start_ts_ns": 1_000 * 10**9, "end_ts_ns": 1_000 * 10**9}])
    ladder = build_ladder(MESSAGES, CALL, streams)
    assert ladder.columns["key"].to_list() == [A, P, B, "192.0.2.5:30000"]
    assert ladder.columns["role"][3] == "media"
    assert (ladder.media["src_col"][0], ladder.media["dst_col"][0]) == (3, 0)


@pytest.mark.parametrize("endpoint, ip", [("1.2.3.4:5060", "1.2.3.4"), ("[2001:db8::1]:5060", "2001:db8::1"),
                                          ("2001:db8::1", "2001:db8::1"), ("1.2.3.4", "1.2.3.4")])
def test_endpoint_ip(endpoint, ip):
    assert endpoint_ip(endpoint) == ip


def dtmf_frame(rows):
    from flowviz.media.dtmf import DTMF_EVENTS

    return pl.DataFrame(rows, schema=DTMF_EVENTS, orient="row")


def test_dtmf_digits_of_the_call_become_events_between_their_columns():
    base = {"frame": 1, "event": None, "volume_dbm0": None, "end_seen": True, "packets": 1}
    dtmf = dtmf_frame([
        {**base, "source": "sip-info", "stream_id": None, "call_id": "c1", "ts_ns": 1_000 * 10**9 + 650 * MS,
         "digit": "5", "duration_ms": 160.0, "src": A, "dst": P},
        {**base, "source": "rfc4733", "stream_id": "s1", "call_id": None, "ts_ns": 1_000 * 10**9 + 560 * MS,
         "digit": "#", "duration_ms": None, "src": "10.0.0.3:6000", "dst": "10.0.0.1:4000"},
        {**base, "source": "sip-info", "stream_id": None, "call_id": "other", "ts_ns": 0, "digit": "1",
         "duration_ms": None, "src": A, "dst": P},
    ])
    streams = pl.DataFrame([{"stream_id": "s1", "call_group_id": "g1", "src_ip": "10.0.0.1", "src_port": 4000,
                             "dst_ip": "10.0.0.3", "dst_port": 6000, "ssrc": 1, "codec": "PCMU", "packets": 10,
                             "lost": 0, "lost_pct": 0.0, "mean_jitter_ms": 0.5, "max_jitter_ms": 1.0, "mos": 4.4,
                             "start_ts_ns": 1_000 * 10**9 + 550 * MS, "end_ts_ns": 1_000 * 10**9 + 590 * MS,
                             "rtcp_blocks": 3, "rtcp_fraction_lost_pct": 1.5625, "rtcp_max_jitter_ms": 2.0,
                             "rtt_ms": 40.0}])
    ladder = build_ladder(MESSAGES, CALL, streams, dtmf=dtmf)
    events = ladder.events.to_dicts()
    assert [e["label"] for e in events] == ["DTMF # (rfc4733)", "DTMF 5 (sip-info, 160 ms)"]
    assert [(e["src_col"], e["dst_col"]) for e in events] == [(2, 0), (0, 1)]
    assert [r["kind"] for r in ladder.rows()] == ["sip"] * 4 + ["rtp", "dtmf", "sip", "sip", "dtmf"]
    assert ladder.media["rtcp"][0] == ("3 RTCP report blocks, fraction lost 1.6% (last report), max jitter 2.00 ms, "
                                       "RTT 40.0 ms")
    assert ladder.media["text"][0].endswith("; RTCP: " + ladder.media["rtcp"][0])


FINDINGS = [
    {"call_group_id": "g1", "rule": "sip.rejected", "severity": "warning", "title": "Call rejected",
     "explanation": "The INVITE was answered 486 Busy Here.", "evidence": {"frames": [5, 6], "values": {}}},
    {"call_group_id": "g1", "rule": "media.none", "severity": "error", "title": "No media",
     "explanation": "No RTP.", "evidence": {"frames": [], "values": {}}},
    {"call_group_id": "other", "rule": "x", "severity": "info", "title": "t", "explanation": "e",
     "evidence": {"frames": [1]}},
]


def test_findings_of_the_call_become_numbered_markers_on_their_first_sip_frame():
    ladder = build_ladder(MESSAGES, CALL, findings=FINDINGS)
    markers = ladder.markers.to_dicts()
    assert [(m["number"], m["rule"], m["seq"]) for m in markers] == [(1, "sip.rejected", 4), (2, "media.none", None)]
    assert list(ladder.markers_of()) == [4]

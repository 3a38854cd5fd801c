"""Binding streams to call groups by SDP, latching (NAT) and unbound heuristic streams."""

from __future__ import annotations

import polars as pl

from flowviz.media.binding import bind_streams, sdp_endpoints
from flowviz.media.stats import stream_stats
from tests.unit.test_media_stats import T0, clean, frame


def _endpoints(rows):
    return pl.DataFrame(rows, schema={"ip": pl.Utf8, "port": pl.UInt16, "call_group_id": pl.Utf8, "ts_ns": pl.Int64},
                        orient="row")


def _stats(*streams):
    return stream_stats(pl.concat([frame(clean(10), src=s, dst=d, ssrc=i) for i, (s, d) in enumerate(streams)]), t0_ns=T0)


def test_both_ends_announced_is_sdp_match():
    stats = _stats((("10.0.0.1", 4000), ("10.0.0.2", 6000)), (("10.0.0.2", 6000), ("10.0.0.1", 4000)))
    b = bind_streams(stats, _endpoints([("10.0.0.1", 4000, "g1", T0), ("10.0.0.2", 6000, "g1", T0)]))
    assert b["call_group_id"].to_list() == ["g1", "g1"] and b["sdp_match"].to_list() == [True, True]


def test_nat_media_from_another_address_is_bound_by_latching_and_flagged():
    # SDP of A announces the private 192.168.1.10:4000; A's media really comes from 203.0.113.5:31000
    stats = _stats((("203.0.113.5", 31000), ("10.0.0.2", 6000)), (("10.0.0.2", 6000), ("203.0.113.5", 31000)))
    b = bind_streams(stats, _endpoints([("192.168.1.10", 4000, "g1", T0), ("10.0.0.2", 6000, "g1", T0)]))
    assert b["call_group_id"].to_list() == ["g1", "g1"]
    assert b["sdp_match"].to_list() == [False, False] and b["bound_by"].to_list() == ["latching", "latching"]
    assert b["sdp_announced"][0] == "10.0.0.2:6000, 192.168.1.10:4000"


def test_stream_no_sdp_announced_is_unbound():
    stats = _stats((("10.9.9.9", 7000), ("10.8.8.8", 7002)))
    b = bind_streams(stats, _endpoints([("10.0.0.1", 4000, "g1", T0)]))
    assert b.row(0, named=True)["call_group_id"] is None and b["bound_by"][0] == "unbound"


def test_port_reuse_latest_sdp_before_the_stream_wins():
    stats = _stats((("10.0.0.1", 4000), ("10.0.0.2", 6000)))
    b = bind_streams(stats, _endpoints([("10.0.0.2", 6000, "old", T0 - 10**9), ("10.0.0.2", 6000, "new", T0),
                                        ("10.0.0.2", 6000, "later", T0 + 10**12)]))
    assert b["call_group_id"][0] == "new"


def test_sdp_endpoints_from_sip_messages():
    media = [{"media": "audio", "port": 4000, "proto": "RTP/AVP", "payload_types": [0], "rtpmap": ["0 PCMU/8000"],
              "direction": "sendrecv", "connection": "10.0.0.1", "rtcp_port": None, "rtcp_mux": False, "ptime_ms": None}]
    video = {**media[0], "media": "video", "port": 4002}
    sip = pl.DataFrame({"call_id": ["c1", "c2"], "ts_ns": [T0, T0], "has_sdp": [True, False],
                        "sdp_media": [media + [video], None]})
    groups = pl.DataFrame({"call_id": ["c1"], "call_group_id": ["g1"]})
    assert sdp_endpoints(sip, groups).rows() == [("10.0.0.1", 4000, "g1", T0), ("10.0.0.1", 4002, "g1", T0)]

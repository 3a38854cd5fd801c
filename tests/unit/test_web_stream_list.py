"""The capture's stream list: filter fields, filtering, sorting and paging of the stream rows, the overview figure.

The stream dicts are written here by hand in the shape of result.json's `streams` (one per RTP stream);
what each filter must keep follows from the values written.
"""

from __future__ import annotations

import pytest

from flowviz.figures.streams import create_streams_overview
from flowviz.web.paging import PAGE_SIZE
from flowviz.web.stream_list import (DEFAULT_SORT, FilterError, StreamFilter, filtered_rows, parse_filter, ssrc_hex,
                                     status_text, stream_page_rows)

CID = "0123456789abcdef"


def stream(sid: str, gid: str | None, *, mos=4.4, lost_pct=0.0, jitter=0.4, src="10.0.0.1", port=4000) -> dict:
    return {"stream_id": sid, "call_group_id": gid, "src_ip": src, "src_port": port, "dst_ip": "10.0.0.2",
            "dst_port": 5000, "ssrc": 0x1A2B3C4D, "codec": "PCMA", "packets": 100, "expected": 100,
            "lost": round(lost_pct), "lost_pct": lost_pct, "max_jitter_ms": jitter, "max_delta_ms": 20.5, "mos": mos,
            "sdp_match": gid is not None or None, "start_ms": 0.0}


STREAMS = [stream("s1", "callA"), stream("s2", "callA", mos=3.1, lost_pct=5.0, jitter=30.0),
           stream("s3", None, mos=None, jitter=2.0, src="2001:db8::1"),
           stream("s4", "callB", mos=3.9, lost_pct=1.0)]
CALLS = [{"call_group_id": "callA", "call_ids": ["a-1@host"]}, {"call_group_id": "callB", "call_ids": ["b-1@host"]}]


def ids(rows):
    return [r["stream_id"] for r in rows]


def test_ssrc_is_written_as_wireshark_does():
    assert ssrc_hex(439041101) == "0x1A2B3C4D" and ssrc_hex(0) == "0x00000000" and ssrc_hex(None) == ""


def test_blank_fields_filter_nothing():
    wanted = parse_filter("", None, False, "  ")
    assert wanted == StreamFilter() and not wanted.active()
    assert ids(filtered_rows(CID, STREAMS, CALLS, wanted)) == ["s1", "s2", "s3", "s4"]


def test_rows_carry_the_call_link_or_unbound_and_the_shown_values():
    rows = {r["stream_id"]: r for r in filtered_rows(CID, STREAMS, CALLS, StreamFilter())}
    assert rows["s1"]["call"] == f"[callA](/capture/{CID}/call/callA)"
    assert rows["s1"]["call_href"] == f"/capture/{CID}/call/callA"
    assert rows["s3"]["call"] == "unbound" and rows["s3"]["call_href"] is None
    assert rows["s1"]["flow"] == "10.0.0.1:4000 \u2192 10.0.0.2:5000"
    assert rows["s3"]["flow"] == "[2001:db8::1]:4000 \u2192 10.0.0.2:5000"
    assert (rows["s1"]["ssrc"], rows["s1"]["sdp_match"], rows["s3"]["sdp_match"]) == ("0x1A2B3C4D", "yes", "")


def test_mos_below_loss_above_and_unbound_only():
    assert ids(filtered_rows(CID, STREAMS, CALLS, parse_filter("4", "", False, ""))) == ["s2", "s4"]
    assert ids(filtered_rows(CID, STREAMS, CALLS, parse_filter("3.9", "", False, ""))) == ["s2"]  # strictly below
    assert ids(filtered_rows(CID, STREAMS, CALLS, parse_filter("", "1", False, ""))) == ["s2"]  # strictly above
    assert ids(filtered_rows(CID, STREAMS, CALLS, parse_filter("", "0.5", False, ""))) == ["s2", "s4"]
    assert ids(filtered_rows(CID, STREAMS, CALLS, parse_filter("4", "2", False, ""))) == ["s2"]  # both at once
    assert ids(filtered_rows(CID, STREAMS, CALLS, parse_filter("", "", True, ""))) == ["s3"]


def test_search_finds_call_ids_addresses_ssrc_and_stream_ids():
    assert ids(filtered_rows(CID, STREAMS, CALLS, parse_filter("", "", False, "B-1@"))) == ["s4"]
    assert ids(filtered_rows(CID, STREAMS, CALLS, parse_filter("", "", False, "2001:db8"))) == ["s3"]
    assert ids(filtered_rows(CID, STREAMS, CALLS, parse_filter("", "", False, "0x1a2b"))) == ["s1", "s2", "s3", "s4"]
    assert ids(filtered_rows(CID, STREAMS, CALLS, parse_filter("", "", False, "s2"))) == ["s2"]


@pytest.mark.parametrize("mos, loss, message", [
    ("abc", "", "Filter not applied: MOS below: 'abc' is not a number (write it like 3.6)"),
    ("", "-1", "Filter not applied: loss % above: must be between 0 and 100 (got -1)"),
    ("6", "nan", "Filter not applied: MOS below: must be between 0 and 5 (got 6); "
                 "loss % above: 'nan' is not a number (write it like 3.6)"),
])
def test_bad_fields_are_refused_in_one_line(mos, loss, message):
    with pytest.raises(FilterError) as refused:
        parse_filter(mos, loss, False, "")
    assert refused.value.message == message and "\n" not in message


def test_default_sort_puts_the_worst_mos_first_and_unscored_streams_last():
    rows = filtered_rows(CID, STREAMS, CALLS, StreamFilter())
    shown, pages, page = stream_page_rows(rows, DEFAULT_SORT, 0)
    assert ids(shown) == ["s2", "s4", "s1", "s3"] and (pages, page) == (1, 0)
    shown, _, _ = stream_page_rows(rows, [{"column_id": "mos", "direction": "desc"}], 0)
    assert ids(shown) == ["s1", "s4", "s2", "s3"]  # blanks last either way
    shown, _, _ = stream_page_rows(rows, [{"column_id": "call", "direction": "desc"}], 0)
    assert ids(shown) == ["s4", "s1", "s2", "s3"]  # the call column sorts by call id, unbound last


def test_thousands_of_streams_are_paged_on_the_server():
    many = [stream(f"s{i:05d}", f"c{i // 2}", mos=1 + (i % 350) / 100) for i in range(3000)]
    rows = filtered_rows(CID, many, [], StreamFilter())
    shown, pages, page = stream_page_rows(rows, DEFAULT_SORT, 10**6)  # past the end: the last page
    assert (len(shown), pages, page) == (3000 - (pages - 1) * PAGE_SIZE, 3000 // PAGE_SIZE, pages - 1)
    assert shown[-1]["mos"] == max(s["mos"] for s in many)
    assert status_text(len(rows), 3000, StreamFilter()) == "3,000 streams"
    assert status_text(12, 3000, StreamFilter(unbound_only=True)) == "12 of 3,000 streams"


def test_the_overview_has_one_point_per_stream_carrying_its_call_page():
    rows = filtered_rows(CID, STREAMS, CALLS, StreamFilter())
    fig = create_streams_overview(rows)
    bound, unbound = fig.data
    assert (bound.name, unbound.name) == ("bound to a call", "unbound")
    assert list(bound.x) == [0.4, 30.0, 0.4] and list(bound.y) == [0.0, 5.0, 1.0]
    assert [c[0] for c in bound.customdata] == [f"/capture/{CID}/call/callA"] * 2 + [f"/capture/{CID}/call/callB"]
    assert unbound.customdata[0][0] == "" and unbound.marker.symbol == "x"
    assert bound.marker.showscale and not unbound.marker.showscale
    assert len(create_streams_overview([]).data) == 0

"""Ingest of the lab captures (kamailio proxies + sipp UAs): counts stated by the lab's construction.

sample_pcaps/lab/expected.json is written by the lab script's author from the scenarios
(see sample_pcaps/lab/README.md), not from flowviz's output.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from flowviz.ingest import read_capture

LAB = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab"
EXPECTED = json.loads((LAB / "expected.json").read_text())["captures"]


def message_type(row: dict) -> str:
    return row["method"] if row["is_request"] else f"{row['status_code']} ({row['cseq_method']})"


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def lab(request, tmp_path_factory):
    name = request.param
    return name, EXPECTED[name], read_capture(LAB / name, use_cache=False)


def test_packets_and_sip_messages(lab):
    name, expected, cap = lab
    assert cap.info["packets"] == expected["packets_total"]
    assert len(cap.sip_messages) == expected["sip_messages"]
    types = Counter(message_type(r) for r in cap.sip_messages.iter_rows(named=True))
    assert types == Counter(expected["sip_messages_by_type"])


def test_call_ids(lab):
    name, expected, cap = lab
    assert sorted(cap.sip_messages["call_id"].unique().to_list()) == sorted(expected["call_ids"])


def test_rtp_streams(lab):
    name, expected, cap = lab
    counts = Counter(
        (f"{r[0]}:{r[1]}", f"{r[2]}:{r[3]}", f"0x{r[4]:08x}")
        for r in cap.rtp_packets.select(["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]).iter_rows()
    )
    want = Counter()
    for s in expected["rtp"]:
        want[(s["src"], s["dst"], s["ssrc"].lower())] += s["packets"]
    assert counts == want
    assert cap.rtp_packets["payload_type"].unique().to_list() in ([], [8])


def test_via_stack_grows_one_per_hop():
    """The lab ladder states how many Via values each message carries on each link."""
    expected = EXPECTED["reference_call.pcap"]["ladder"]
    cap = read_capture(LAB / "reference_call.pcap", use_cache=False)
    rows = cap.sip_messages.sort("frame").iter_rows(named=True)
    seen = [(f"{r['src_ip']}:{r['src_port']}", f"{r['dst_ip']}:{r['dst_port']}", len(r["via_sent_by"])) for r in rows]
    assert seen == [(step["src"], step["dst"], step["via_values"]) for step in expected]


def test_sdp_of_the_reference_call():
    cap = read_capture(LAB / "reference_call.pcap", use_cache=False)
    offers = cap.sip_messages.filter(pl.col("has_sdp"))
    media = offers.select(pl.col("sdp_media").explode()).unnest("sdp_media")
    assert set(media["media"]) == {"audio"}
    assert set(zip(media["connection"], media["port"])) == {("127.0.0.10", 16000), ("127.0.0.13", 20000)}
    assert all(8 in pts for pts in media["payload_types"].to_list())

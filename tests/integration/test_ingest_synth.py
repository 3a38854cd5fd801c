"""Ingest of the synthetic captures: counts stated by each builder's construction (tests/synth)."""

from __future__ import annotations

from collections import Counter

import pytest

from flowviz.errors import CaptureError
from flowviz.ingest import read_capture
from tests import synth

BAD = {"empty", "not_a_capture"}


def message_label(row: dict) -> str:
    return row["method"] if row["is_request"] else str(row["status_code"])


@pytest.mark.parametrize("name", [n for n in synth.SCENARIOS if n not in BAD])
def test_synth_capture(name, tmp_path):
    path = tmp_path / synth.filename(name)
    expected = synth.write(name, path)
    cap = read_capture(path, use_cache=False)
    if expected.get("bad"):  # damaged file: everything in the whole records before the damage is read
        assert cap.info["packets"] == expected["whole_records"]
        assert any(w for w in cap.info["warnings"] if "impossible length" in w or "cut in the middle" in w)
        expected = expected["content_of_whole_records"]
    assert len(cap.sip_messages) == expected["sip_messages"], cap.sip_messages.select("frame", "method", "status_code")
    if "call_ids" in expected:
        assert set(cap.sip_messages["call_id"].drop_nulls()) == set(expected["call_ids"])
    want = Counter()
    for st in expected.get("rtp_streams", []):
        want[(st["src_ip"], st["src_port"], st["dst_ip"], st["dst_port"], st["ssrc"])] += st["packets"]
    got = Counter(cap.rtp_packets.select(["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]).iter_rows())
    assert got == want


@pytest.mark.parametrize("name", sorted(BAD))
def test_synth_bad_input(name, tmp_path):
    path = tmp_path / synth.filename(name)
    synth.write(name, path)
    with pytest.raises(CaptureError):
        read_capture(path, use_cache=False)

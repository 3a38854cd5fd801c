"""Correlation on the public corpus (../shared/pcaps): robustness everywhere, and the facts
MANIFEST.md states for the B2BUA, hunt-group and REGISTER-challenge captures. Skipped when absent."""

from __future__ import annotations

import pytest

from flowviz.ingest import read_capture
from flowviz.sip.calls import Correlation
from flowviz.sip.states import STATES
from tests.conftest import SHARED_PCAPS, corpus_params


def _correlate(path):
    sip = read_capture(path).sip_messages
    correlation = Correlation(sip)
    return correlation, correlation.summaries()


def _corpus(name: str):
    path = SHARED_PCAPS / name
    if not path.is_file():
        pytest.skip(f"{name} is absent (public corpus)")
    return _correlate(path)


@pytest.mark.parametrize("path", corpus_params())
def test_every_message_lands_in_exactly_one_call(path):
    correlation, calls = _correlate(path)
    with_call_id = correlation.messages.filter(correlation.messages["call_id"].is_not_null()).height
    assert sum(c["messages"] for c in calls) == with_call_id
    assert len({c["call_group_id"] for c in calls}) == len(calls)
    assert sorted(cid for c in calls for cid in c["call_ids"]) == sorted(set(correlation.messages["call_id"].drop_nulls()))
    for call in calls:
        assert call["state"] in STATES
        assert call["hosts"] and len(call["host_roles"]) == len(call["hosts"])
        assert call["retransmissions"] < call["messages"]


def test_asterisk_b2bua_legs_joined_by_the_heuristic():
    # MANIFEST: "Asterisk B2BUA between two phones: each call appears as two Call-IDs (A-leg / B-leg)"
    _, calls = _corpus("goffinet__sip_captures/sip-2phones-B2BUA-Asterisk.pcapng")
    invites = [c for c in calls if c["method"] == "INVITE"]
    assert invites
    for call in invites:
        assert len(call["call_ids"]) == 2
        assert call["legs"][1]["link_kind"] == "heuristic" and call["legs"][1]["evidence"]
        assert call["host_roles"] == ["UA", "B2BUA", "UA"]
        assert call["from_user"] == "telephone1"


def test_hunt_group_sequential_forks_are_branches_of_one_call():
    # MANIFEST: "PBX INVITEs lines L1-a/b/c on an ATA and CANCELs them", max 2 Via
    _, calls = _corpus("goffinet__sip_captures/voip-extension2downata.pcap")
    [call] = [c for c in calls if c["method"] == "INVITE"]
    forwarded_invites = [f for f in call["forwarding"] if f["message"] == "INVITE"]
    assert len(forwarded_invites) >= 2  # one received INVITE sent on several times in sequence
    [fork] = call["forks"]
    assert len(fork["branches"]) == len(forwarded_invites)
    assert "proxy" in call["host_roles"]
    assert call["retransmissions"] > 0


def test_register_challenged_then_accepted():
    # MANIFEST: "REGISTER with 401 and 407 challenges, one G.711U call"
    correlation, calls = _corpus("MaryLS__Laborator09/sip.pcap")
    registers = [c for c in calls if c["method"] == "REGISTER"]
    assert registers and all(c["state"] == "completed" and c["final_status"] == 200 for c in registers)
    [call] = [c for c in calls if c["method"] == "INVITE"]
    assert call["state"] == "completed"

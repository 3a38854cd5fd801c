"""The web thresholds form: text fields -> overrides of the diagnostics thresholds, and its messages."""

from __future__ import annotations

from dataclasses import fields

import pytest

from flowviz.analysis.diagnose import THRESHOLD_NOTES, Thresholds
from flowviz.web.thresholds import ThresholdError, describe, number, parse_thresholds, thresholds_of


def test_every_threshold_has_a_unit_and_a_meaning():
    assert list(THRESHOLD_NOTES) == [f.name for f in fields(Thresholds)]
    for note in THRESHOLD_NOTES.values():
        assert note.unit and note.meaning and "\n" not in note.meaning and note.rules.count(".") >= 1


def test_blank_and_default_values_are_no_overrides():
    defaults = {f.name: number(f.default) for f in fields(Thresholds)}
    assert parse_thresholds(defaults) == {}
    assert parse_thresholds({"srd_ms": "", "mos": None, "loss_pct": "  "}) == {}
    assert parse_thresholds({"srd_ms": "5000.0", "invite_retransmissions": "2"}) == {}


def test_changed_values_become_typed_overrides():
    overrides = parse_thresholds({"srd_ms": " 1 ", "loss_pct": "0.5", "invite_retransmissions": "3", "mos": "4",
                                  "jitter_ms": ".5", "auth_challenges": "0"})
    assert overrides == {"srd_ms": 1.0, "loss_pct": 0.5, "invite_retransmissions": 3, "mos": 4.0,
                         "jitter_ms": 0.5, "auth_challenges": 0}
    assert isinstance(overrides["invite_retransmissions"], int) and isinstance(overrides["srd_ms"], float)
    thresholds = thresholds_of(overrides)
    assert (thresholds.srd_ms, thresholds.invite_retransmissions, thresholds.rtp_stop_s) == (1.0, 3, 5.0)
    assert parse_thresholds({"ok_retransmissions": "4.0"}) == {"ok_retransmissions": 4}  # whole, written as 4.0


def test_stored_numbers_are_read_back_the_same():
    overrides = {"srd_ms": 1e-05, "invite_retransmissions": 5, "jitter_ms": 12.25}
    assert parse_thresholds(overrides) == overrides
    assert parse_thresholds({"srd_ms": 7}) == {"srd_ms": 7.0}


@pytest.mark.parametrize("values, message", [
    ({"srd_ms": "abc"}, "srd_ms: 'abc' is not a number"),
    ({"srd_ms": "-1"}, "srd_ms: must not be negative (got -1)"),
    ({"invite_retransmissions": "1.5"}, "invite_retransmissions: must be a whole number (got 1.5)"),
    ({"loss_pct": "101"}, "loss_pct: must be at most 100 (got 101)"),
    ({"mos": "5.5"}, "mos: must be at most 5 (got 5.5)"),
    ({"srd_ms": "nan"}, "srd_ms: 'nan' is not a number"),
    ({"srd_ms": "inf"}, "srd_ms: 'inf' is not a number"),
    ({"srd_ms": "1e3"}, "srd_ms: '1e3' is not a number"),
    ({"srd_ms": "1,5"}, "srd_ms: '1,5' is not a number"),
    ({"srd_ms": "5 ms"}, "srd_ms: '5 ms' is not a number"),
    ({"srd_ms": float("inf")}, "srd_ms: inf is not a number"),
    ({"srd_ms": True}, "srd_ms: 'True' is not a number"),
    ({"no_such": "1"}, "'no_such': no such threshold"),
])
def test_bad_values_are_refused_with_a_one_line_message(values, message):
    with pytest.raises(ThresholdError) as caught:
        parse_thresholds(values)
    assert caught.value.message.startswith("Thresholds not applied: ")
    assert message in caught.value.message
    assert "\n" not in caught.value.message


def test_every_bad_field_is_named_and_long_input_is_cut():
    with pytest.raises(ThresholdError) as caught:
        parse_thresholds({"srd_ms": "x" * 500 + "\n$(rm -rf /)", "jitter_ms": "-3", "mos": "3"})
    message = caught.value.message
    assert "srd_ms: 'xxxxxxxxxxxxxxxxxxxx...' is not a number" in message
    assert "jitter_ms: must not be negative (got -3)" in message
    assert "mos" not in message and "\n" not in message and len(message) < 200


def test_description_of_the_overrides_in_effect():
    assert describe({}) == ""
    assert describe({"srd_ms": 1.0, "auth_challenges": 3}) == \
        "auth_challenges = 3 in a row (default 2 in a row), srd_ms = 1 ms (default 5000 ms)"
    assert [number(v) for v in (5000.0, 2.5, 3, 1e-05)] == ["5000", "2.5", "3", "1e-05"]

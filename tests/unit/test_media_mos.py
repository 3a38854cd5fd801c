"""E-model MOS: values worked out by hand from ITU-T G.107 / G.113."""

from __future__ import annotations

import math

import pytest

from flowviz.media.mos import burst_ratio, delay_impairment, e_model, r_to_mos


def test_clean_g711_is_r_93_2():
    m = e_model("PCMU", 0.0)
    assert m["r_factor"] == 93.2 and m["mos"] == round(1 + 0.035 * 93.2 + 7e-6 * 93.2 * 33.2 * 6.8, 2) == 4.41
    assert m["loss_pct"] == 0 and m["burst_ratio"] == 1 and "G.107" in m["mos_method"]


def test_random_loss_2pct_g711():
    # Ie_eff = 0 + 95 * 2 / (2 / 1 + 25.1) = 7.0111; R = 86.19
    m = e_model("PCMA", 2.0)
    assert m["r_factor"] == pytest.approx(93.2 - 95 * 2 / 27.1, abs=0.05)


def test_bursty_loss_weighs_more():
    assert e_model("PCMU", 1.0, 9.9)["r_factor"] < e_model("PCMU", 1.0, 1.0)["r_factor"]
    # one burst of 10 in 1000: BurstR = 10 * (1 - 0.01) = 9.9
    assert burst_ratio(10, 1000, 1) == pytest.approx(9.9)
    assert burst_ratio(0, 1000, 0) == 1.0


def test_g729_codec_impairment():
    assert e_model("G729", 0.0)["r_factor"] == pytest.approx(83.2)


def test_delay_term():
    assert delay_impairment(None) == 0 and delay_impairment(100) == 0
    x = math.log2(2)
    assert delay_impairment(200) == pytest.approx(25 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2))
    m = e_model("PCMU", 0.0, 1.0, 200)
    assert m["r_factor"] == pytest.approx(93.2 - delay_impairment(200), abs=0.05) and "RTT" in m["mos_method"]


def test_unrated_codec_has_no_mos_but_says_why():
    m = e_model("opus", 1.0)
    assert m["mos"] is None and m["r_factor"] is None and "opus" in m["mos_method"]


def test_mos_clamps():
    assert r_to_mos(-5) == 1.0 and r_to_mos(120) == 4.5

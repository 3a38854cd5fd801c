"""MOS: ITU-T G.107 E-model rating from loss, burstiness and delay, with G.113 codec impairments.

R = 93.2 - Id - Ie_eff (G.107 default R0 - Is = 93.2, advantage A = 0)
Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)                       (G.107 eq. 7-29)
Id = Idd (one-way delay Ta > 100 ms), talker/listener echo at G.107 defaults  (G.107 7.3)
MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R), 1 for R < 0, 4.5 for R > 100 (G.107 annex B)
R is reported within the model's range 0..100 (G.107 annex B: the rating scale runs from 0 to 100): heavy
bursty loss with a low Bpl (Ie_eff far above 95) or a long delay would otherwise give a negative R.
Ie/Bpl from G.113 appendix I. A MOS is always reported with R, loss %, burst ratio and the method.
"""

from __future__ import annotations

import math

import polars as pl

# Codec -> (Ie, Bpl) from ITU-T G.113 appendix I (narrowband E-model values).
# G.711 Bpl 25.1 assumes packet loss concealment (appendix I of G.711); 4.3 without.
CODEC_IMPAIRMENT: dict[str, tuple[float, float]] = {
    "PCMU": (0.0, 25.1), "PCMA": (0.0, 25.1),
    "G729": (10.0, 19.0), "G729A": (11.0, 19.0), "G729D": (10.0, 19.0), "G729E": (10.0, 19.0),
    "G723": (15.0, 16.1),  # G.723.1 at 6.3 kbit/s
    "G722": (5.0, 7.1),  # ARCHITECTURE.md section 5 value for G.722 (wideband codec on the narrowband scale)
    "GSM": (20.0, 10.0),  # GSM full rate
    "GSM-EFR": (5.0, 10.0),
    "iLBC": (10.0, 32.0),
    "G726-32": (7.0, 10.0), "G721": (7.0, 10.0), "G726-24": (25.0, 10.0), "G726-16": (50.0, 10.0),
    "G728": (7.0, 10.0),
    "AMR": (5.0, 10.0),
}

_BY_UPPER_NAME = {k.upper(): v for k, v in CODEC_IMPAIRMENT.items()}

R_DEFAULT = 93.2
R_MIN, R_MAX = 0.0, 100.0  # the E-model's rating scale (G.107 annex B)


def codec_impairment(codec: str | None) -> tuple[float, float] | None:
    """(Ie, Bpl) of a codec name in any letter case, None when G.113 gives none."""
    return _BY_UPPER_NAME.get(codec.upper()) if codec else None


def delay_impairment(one_way_ms: float | None) -> float:
    """G.107 Idd: 0 up to 100 ms, then 25 ((1 + X^6)^(1/6) - 3 (1 + (X/3)^6)^(1/6) + 2), X = log2(Ta/100)."""
    if one_way_ms is None or one_way_ms <= 100:
        return 0.0
    x = math.log(one_way_ms / 100) / math.log(2)
    return 25 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)


def r_to_mos(r: float) -> float:
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


def e_model(codec: str | None, loss_pct: float, burst_ratio: float = 1.0, one_way_ms: float | None = None) -> dict:
    """mos, r_factor, loss_pct, burst_ratio, mos_method for one stream (mos None for an unrated codec)."""
    loss = float(min(max(loss_pct, 0.0), 100.0))
    burst = float(burst_ratio) if loss > 0 and burst_ratio > 0 else 1.0
    method = "E-model G.107, Ie/Bpl G.113"
    imp = codec_impairment(codec)
    if imp is None:
        return {"mos": None, "r_factor": None, "loss_pct": loss, "burst_ratio": burst,
                "mos_method": f"none: no G.113 impairment values for codec {codec or 'unknown'}"}
    ie, bpl = imp
    ie_eff = ie + (95 - ie) * loss / (loss / burst + bpl)
    idd = delay_impairment(one_way_ms)
    method += ", delay from RTCP RTT/2" if one_way_ms is not None else ", no delay term (no RTCP RTT)"
    r = min(max(R_DEFAULT - idd - ie_eff, R_MIN), R_MAX)
    return {"mos": round(r_to_mos(r), 2), "r_factor": round(r, 1), "loss_pct": loss, "burst_ratio": burst,
            "mos_method": method}


def burst_ratio(lost: int, expected: int, loss_bursts: int) -> float:
    """G.107 BurstR = mean observed loss-burst length / mean burst length under random loss.

    With loss probability p, random loss gives bursts of mean length 1 / (1 - p), so
    BurstR = (lost / bursts) * (1 - p); 1 when nothing is lost.
    """
    if lost <= 0 or loss_bursts <= 0 or expected <= 0:
        return 1.0
    p = lost / expected
    return (lost / loss_bursts) * (1 - p)


def loss_bursts(series: pl.DataFrame) -> pl.DataFrame:
    """Per stream_id: number of loss bursts (gaps in the received sequence numbers) and packets in them."""
    if series.is_empty():
        return pl.DataFrame(schema={"stream_id": pl.Utf8, "loss_bursts": pl.Int64, "gap_packets": pl.Int64})
    seqs = series.select(["stream_id", "ext_seq"]).unique().sort(["stream_id", "ext_seq"])
    gaps = seqs.with_columns((pl.col("ext_seq").diff().over("stream_id") - 1).alias("gap"))
    return gaps.group_by("stream_id").agg(
        loss_bursts=(pl.col("gap") > 0).sum().cast(pl.Int64),
        gap_packets=pl.col("gap").filter(pl.col("gap") > 0).sum().cast(pl.Int64),
    )


def stream_mos(stats: pl.DataFrame, rtt_ms: dict[str, float] | None = None) -> pl.DataFrame:
    """mos, r_factor, loss_pct, burst_ratio, mos_method per stream_id from stream_stats().

    Loss is the network loss max(lost, 0) / expected (no MOS when expected <= 0); `rtt_ms` (stream_id -> RTCP
    round trip) adds the delay term with one-way delay = RTT / 2.
    """
    rows = []
    for sid, codec, lost, expected, nb in stats.select(["stream_id", "codec", "lost", "expected", "loss_bursts"]).iter_rows():
        if expected is None or expected <= 0:  # sequence numbers ending below the first: no loss ratio, no rating
            rows.append({"stream_id": sid, "mos": None, "r_factor": None, "loss_pct": None, "burst_ratio": None,
                         "mos_method": f"none: loss cannot be measured (expected {expected} packets: the sequence "
                                       "numbers end below where they started)"})
            continue
        loss_pct = max(lost, 0) * 100.0 / expected
        br = burst_ratio(max(lost, 0), expected or 0, nb or 0)
        rtt = (rtt_ms or {}).get(sid)
        rows.append({"stream_id": sid, **e_model(codec, loss_pct, br, None if rtt is None else rtt / 2)})
    return pl.DataFrame(rows, schema={"stream_id": pl.Utf8, "mos": pl.Float64, "r_factor": pl.Float64,
                                      "loss_pct": pl.Float64, "burst_ratio": pl.Float64, "mos_method": pl.Utf8})

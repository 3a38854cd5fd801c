"""Stream statistics on built streams: the expected numbers come from the construction itself.

Each scenario is a list of packets (arrival ms, seq, RTP timestamp, payload type, marker) of one
stream; SCENARIOS are also written as pcaps and compared with tshark in
tests/integration/test_media_corpus.py. `oracle()` is Wireshark 4.0's rtppacket_analyse() written
as a plain per-packet loop; the compiled kernel must agree with it, bit for bit, on every scenario.
"""

from __future__ import annotations

import random

import polars as pl
import pytest

from flowviz.media.mos import loss_bursts
from flowviz.media.stats import packet_series, stream_stats
from flowviz.media.streams import PAYLOAD_MAP, stream_id
from flowviz.schemas import RTP_PACKETS

T0 = 1_700_000_000_000_000_000  # capture start, ns
SRC, DST = ("10.0.0.1", 40000), ("10.0.0.2", 50000)
SSRC = 0x1234ABCD


def clean(n: int = 100, *, seq0: int = 1000, ts0: int = 5000, pt: int = 0, start_ms: float = 10.0) -> list[tuple]:
    """(arrival ms, seq, rtp_ts, pt, marker): 20 ms G.711 packets, 160 timestamp units apart."""
    return [(start_ms + 20 * k, (seq0 + k) % 65536, (ts0 + 160 * k) % 2**32, pt, k == 0) for k in range(n)]


def _loss_2pct() -> list[tuple]:
    pkts = clean(1000)
    drop = set(random.Random(4).sample(range(1, 999, 2), 20))  # 20 single losses, never adjacent
    return [p for k, p in enumerate(pkts) if k not in drop]


def _burst_10() -> list[tuple]:
    return [p for k, p in enumerate(clean(1000)) if not 100 <= k < 110]


def _reordered() -> list[tuple]:
    pkts = clean(100)
    a, b = pkts[50], pkts[51]
    pkts[50], pkts[51] = (a[0], *b[1:]), (b[0], *a[1:])  # seq 51 arrives in slot 50, seq 50 in slot 51
    return pkts


def _duplicate() -> list[tuple]:
    pkts = clean(100)
    return pkts[:31] + [(pkts[30][0] + 5, *pkts[30][1:])] + pkts[31:]


def _ts_jump() -> list[tuple]:
    return [(t, s, (ts + 8000) % 2**32 if k >= 50 else ts, pt, m) for k, (t, s, ts, pt, m) in enumerate(clean(100))]


def _pt_change() -> list[tuple]:
    return [(t, s, ts, 0 if k < 50 else 8, m) for k, (t, s, ts, pt, m) in enumerate(clean(100))]


def _comfort_noise() -> list[tuple]:
    """PCMU 0-49, CN (PT 13) every 200 ms for 5 packets (timestamps follow), PCMU again with a marker."""
    pkts = clean(50)
    t, s, ts = pkts[-1][0], pkts[-1][1], pkts[-1][2]
    for k in range(1, 6):
        pkts.append((t + 200 * k, s + k, ts + 1600 * k, 13, k == 1))
    t, s, ts = pkts[-1][0] + 200, pkts[-1][1] + 1, pkts[-1][2] + 1600
    pkts += [(t + 20 * k, s + k, ts + 160 * k, 0, k == 0) for k in range(50)]
    return pkts


def _dtmf_123() -> list[tuple]:
    """PCMU with three RFC 4733 events (PT 101) of 5 packets each; the event timestamp stays at its start."""
    pkts, t, s, ts = [], 10.0, 1000, 5000
    for digit in range(3):
        for k in range(20):
            pkts.append((t, s, ts, 0, not pkts or k == 0)); t += 20; s += 1; ts += 160
        start = ts
        for k in range(5):
            pkts.append((t, s, start, 101, k == 0)); t += 20; s += 1; ts += 160
    pkts += [(t + 20 * k, s + k, ts + 160 * k, 0, k == 0) for k in range(20)]
    return pkts


SCENARIOS = {
    "clean": clean(100), "wrap": clean(20, seq0=65530, ts0=2**32 - 800), "loss_2pct": _loss_2pct(),
    "burst_10": _burst_10(), "reordered": _reordered(), "duplicate": _duplicate(), "ts_jump": _ts_jump(),
    "pt_change": _pt_change(), "comfort_noise": _comfort_noise(), "dtmf_123": _dtmf_123(),
}


def frame(pkts: list[tuple], *, src=SRC, dst=DST, ssrc=SSRC) -> pl.DataFrame:
    rows = [{"frame": i + 1, "ts_ns": T0 + round(t * 1e6), "src_ip": src[0], "dst_ip": dst[0], "src_port": src[1],
             "dst_port": dst[1], "ssrc": ssrc, "seq": s, "rtp_ts": ts, "payload_type": pt, "marker": m,
             "payload_len": 160} for i, (t, s, ts, pt, m) in enumerate(pkts)]
    return pl.DataFrame(rows, schema=RTP_PACKETS)


DTMF_MAP = pl.DataFrame([(DST[0], DST[1], 101, "telephone-event", 8000)], schema=PAYLOAD_MAP, orient="row")


def stats_of(pkts, **kw) -> dict:
    [row] = stream_stats(frame(pkts), t0_ns=T0, payload_map=kw.get("payload_map")).to_dicts()
    return row


def oracle(pkts: list[tuple], clocks: dict[int, int]) -> dict:
    """Wireshark 4.0 rtppacket_analyse() + tshark's expected/lost, one packet at a time."""
    t0, seq0, ts0, pt0, _ = pkts[0]
    st = dict(start=seq0, stop=seq0, seq_num=seq0, time=t0, lastnom=0.0, jitter=0.0, max_j=0.0, min_j=-1.0,
              mean_j=0.0, delta=0.0, max_d=0.0, min_d=-1.0, mean_d=0.0, n=1, cycles=0, under=False, errors=0, pt=pt0)
    for t, seq, ts, pt, marker in pkts[1:]:
        since = (ts - ts0) % 2**32
        in_time = since < 2**31
        if seq < st["start"] and in_time and not st["under"]:
            st["cycles"] += 1; st["under"] = True
        elif seq == 0 and st["stop"] == 65535 and in_time and not st["under"]:
            st["cycles"] += 1; st["under"] = True
        elif seq > st["start"] and in_time and st["under"]:
            st["under"] = False
        if in_time and (st["seq_num"] + 1 == seq or (st["seq_num"] == 65535 and seq == 0)):
            st["seq_num"] = seq
        elif in_time and (st["seq_num"] + 1 < seq or st["seq_num"] - seq > 0xFF00):
            st["seq_num"] = seq; st["errors"] += 1
        elif st["seq_num"] + 1 > seq:
            st["errors"] += 1
        cn, follow_cn = pt in (13, 19), st["pt"] in (13, 19)
        st["pt"] = pt
        clock = clocks.get(pt, 0)
        cur_j = 0.0
        if in_time:
            if clock:
                nominal = since / (clock // 1000)
                cur_j = (15 * st["jitter"] + abs(t - (st["time"] + nominal - st["lastnom"]))) / 16
                st["jitter"] = cur_j; st["lastnom"] = nominal
            st["delta"] = t - st["time"]
        if not marker and in_time and not cn and not follow_cn:
            n = st["n"]
            st["max_d"] = max(st["max_d"], st["delta"])
            st["min_d"] = st["delta"] if st["min_d"] == -1 else min(st["min_d"], st["delta"])
            st["mean_d"] = (st["mean_d"] * (n - 1) + st["delta"]) / n
            if clock:
                st["max_j"] = max(st["max_j"], st["jitter"])
                st["min_j"] = st["jitter"] if st["min_j"] == -1 else min(st["min_j"], st["jitter"])
                st["mean_j"] = (st["mean_j"] * (n - 1) + cur_j) / n
        if in_time:
            st["time"] = t
        st["stop"] = seq; st["n"] += 1
    expected = st["stop"] + st["cycles"] * 65536 - st["start"] + 1
    return {"packets": st["n"], "expected": expected, "lost": expected - st["n"], "seq_errors": st["errors"],
            "min_delta_ms": st["min_d"], "mean_delta_ms": st["mean_d"], "max_delta_ms": st["max_d"],
            "min_jitter_ms": st["min_j"], "mean_jitter_ms": st["mean_j"], "max_jitter_ms": st["max_j"]}


CLOCKS = {0: 8000, 8: 8000, 13: 8000}
METRICS = ["min_delta_ms", "mean_delta_ms", "max_delta_ms", "min_jitter_ms", "mean_jitter_ms", "max_jitter_ms"]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_vectorized_statistics_equal_the_per_packet_oracle(name):
    got = stats_of(SCENARIOS[name], payload_map=DTMF_MAP)
    want = oracle(SCENARIOS[name], CLOCKS)
    for key in ("packets", "expected", "lost", "seq_errors"):
        assert got[key] == want[key], key
    for key in METRICS:
        assert got[key] == want[key], key  # the same arithmetic in the same order: bit for bit


def test_several_streams_interleaved_equal_each_stream_alone():
    a, b = frame(SCENARIOS["reordered"]), frame(SCENARIOS["burst_10"], src=("10.0.0.3", 4000), ssrc=7)
    c = frame(SCENARIOS["ts_jump"], ssrc=8)
    both = pl.concat([a, b, c]).sort("ts_ns")
    together = stream_stats(both, t0_ns=T0).drop(["stream", "first_frame"])
    alone = pl.concat([stream_stats(x, t0_ns=T0) for x in (a, b, c)]).drop(["stream", "first_frame"])
    for got, want in zip(together.sort("ssrc").to_dicts(), alone.sort("ssrc").to_dicts()):
        assert got.keys() == want.keys()
        for key in got:
            assert got[key] == (pytest.approx(want[key]) if isinstance(want[key], float) else want[key]), key


def test_clean_stream():
    s = stats_of(SCENARIOS["clean"])
    assert (s["packets"], s["expected"], s["lost"], s["seq_errors"], s["duplicates"]) == (100, 100, 0, 0, 0)
    assert (s["min_delta_ms"], s["mean_delta_ms"], s["max_delta_ms"]) == pytest.approx((20, 20, 20))
    assert (s["min_jitter_ms"], s["max_jitter_ms"]) == pytest.approx((0, 0), abs=1e-9)
    assert s["codec"] == "PCMU" and s["markers"] == 1 and s["stream_id"] == stream_id(*SRC, *DST, SSRC)
    assert s["duration_s"] == pytest.approx(1.98)


def test_random_loss_2pct():
    s = stats_of(SCENARIOS["loss_2pct"])
    assert (s["packets"], s["expected"], s["lost"], s["seq_errors"]) == (980, 1000, 20, 20)
    assert s["lost_pct"] == pytest.approx(2.0) and s["max_delta_ms"] == pytest.approx(40)
    assert s["max_jitter_ms"] == pytest.approx(0, abs=1e-9)  # arrival follows the timestamps exactly
    assert s["loss_bursts"] == 20
    bursts = loss_bursts(packet_series(frame(SCENARIOS["loss_2pct"]), t0_ns=T0)).to_dicts()
    assert bursts == [{"stream_id": s["stream_id"], "loss_bursts": 20, "gap_packets": 20}]


def test_one_burst_of_10():
    s = stats_of(SCENARIOS["burst_10"])
    assert (s["packets"], s["expected"], s["lost"], s["seq_errors"], s["loss_bursts"]) == (990, 1000, 10, 1, 1)
    assert s["max_delta_ms"] == pytest.approx(220)


def test_reordering():
    s = stats_of(SCENARIOS["reordered"])
    # seq 51 jumps ahead (error), seq 50 is late (error); nothing is lost
    assert (s["packets"], s["expected"], s["lost"], s["seq_errors"], s["out_of_order"]) == (100, 100, 0, 2, 1)
    # D = 20 (51 early), 40 (50 late against 51), 20 (52 against 50): J = 1.25, 3.671875, 4.6923828125
    assert s["max_jitter_ms"] == pytest.approx(4.6923828125)
    assert (s["min_delta_ms"], s["max_delta_ms"]) == pytest.approx((20, 20))


def test_duplicate_makes_lost_negative():
    s = stats_of(SCENARIOS["duplicate"])
    assert (s["packets"], s["expected"], s["lost"], s["seq_errors"], s["duplicates"]) == (101, 100, -1, 1, 1)
    assert s["min_delta_ms"] == pytest.approx(5)


def test_sequence_wrap():
    s = stats_of(SCENARIOS["wrap"])
    assert (s["packets"], s["expected"], s["lost"], s["seq_errors"]) == (20, 20, 0, 0)
    assert s["max_jitter_ms"] == pytest.approx(0, abs=1e-9)


def test_timestamp_jump():
    s = stats_of(SCENARIOS["ts_jump"])
    # RTP time advances 20 + 1000 ms while arrival advances 20 ms: D = 1000 ms, J = 1000 / 16
    assert s["max_jitter_ms"] == pytest.approx(1000 / 16)
    assert (s["lost"], s["seq_errors"]) == (0, 0)


def test_payload_type_change():
    s = stats_of(SCENARIOS["pt_change"])
    assert s["payload_types"] == [0, 8] and s["codecs"] == "PCMU, PCMA" and s["codec"] == "PCMU"
    assert s["max_jitter_ms"] == pytest.approx(0, abs=1e-9)


def test_comfort_noise_is_not_counted_in_delta():
    s = stats_of(SCENARIOS["comfort_noise"])
    assert (s["packets"], s["comfort_noise"], s["lost"], s["markers"]) == (105, 5, 0, 3)
    # the 200 ms CN gaps and the packet after CN are excluded (Wireshark's PT_CN / FOLLOW_PT_CN rules)
    assert s["max_delta_ms"] == pytest.approx(20)
    assert s["codecs"] == "PCMU, CN" and s["codec"] == "PCMU"


def test_dtmf_events_have_no_jitter():
    s = stats_of(SCENARIOS["dtmf_123"], payload_map=DTMF_MAP)
    assert (s["packets"], s["lost"], s["seq_errors"]) == (95, 0, 0)
    assert s["codecs"] == "PCMU, telephone-event" and s["codec"] == "PCMU"
    series = packet_series(frame(SCENARIOS["dtmf_123"]), t0_ns=T0, payload_map=DTMF_MAP)
    events = series.filter(pl.col("payload_type") == 101)
    assert events["clock_rate"].unique().to_list() == [0] and events["diff_ms"].null_count() == 15


def test_empty_input():
    assert stream_stats(pl.DataFrame(schema=RTP_PACKETS)).is_empty()
    assert packet_series(pl.DataFrame(schema=RTP_PACKETS)).is_empty()


def test_thousands_of_streams_are_told_apart():
    """More streams than the kernel's first tables hold (256): each keeps its own packets and key."""
    pkts = clean(3)
    parts = [frame(pkts, src=(f"10.{i // 250}.{i % 250}.1", 4000 + i % 7), ssrc=i % 5) for i in range(3000)]
    stats = stream_stats(pl.concat(parts).sort("ts_ns", maintain_order=True), t0_ns=T0)
    assert stats.height == 3000 and (stats["packets"] == 3).all() and (stats["lost"] == 0).all()
    assert stats.select("src_ip", "src_port", "ssrc").n_unique() == 3000

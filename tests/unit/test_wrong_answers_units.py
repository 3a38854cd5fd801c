"""Issue 19, wrong answers (items 10, 12, 13, 14, 15): hand-typed SIP ladders and RTP/RTCP rows, so every
expected value comes from the construction. The same cases built as real captures and checked against
tshark are in tests/integration/test_wrong_answers.py."""

from __future__ import annotations

import polars as pl
import pytest

from flowviz.analysis.diagnose import diagnose
from flowviz.ingest.sip_text import parse_message
from flowviz.media.mos import e_model
from flowviz.media.report import streams_report
from flowviz.media.rtcp import block_rtt, rtcp_per_stream
from flowviz.media.stats import stream_stats
from flowviz.schemas import RTCP_REPORTS, RTP_PACKETS, SIP_MESSAGES
from flowviz.sip.calls import summarize_calls
from tests.kit.sip_ladders import T0_NS, request, response, sip_frame, through_proxies
from tests.unit.test_diagnose_media import A_MEDIA, B_MEDIA, call, stream
from tests.unit.test_media_stats import T0, clean, frame

NO_RTP = pl.DataFrame(schema=RTP_PACKETS)
UA1, B2B, UA2 = "10.0.0.1:5060", "10.0.0.5:5060", "10.0.0.9:5060"


def _rules(findings: list[dict]) -> list[str]:
    return [f["rule"] for f in findings]


def _only(findings: list[dict], rule_id: str) -> dict:
    [found] = [f for f in findings if f["rule"] == rule_id]
    return found


def _leg(call_id: str, src: str, dst: str, t0: float, *, caller: tuple, callee=("2302", None), bye: float | None,
         sent_by: str) -> list:
    """One answered INVITE dialog: 100 at +1, 180 at +50, 200 at +1000, ACK, BYE at t0 + bye and its 200."""
    inv = request("INVITE", call_id=call_id, cseq=1, vias=[(sent_by, f"z9hG4bK-{call_id}")], caller=caller,
                  callee=callee)
    tag = f"t-{call_id}"
    ladder = [(t0, src, dst, inv), (t0 + 1, dst, src, response(100, "Trying", inv)),
              (t0 + 50, dst, src, response(180, "Ringing", inv, to_tag=tag)),
              (t0 + 1000, dst, src, response(200, "OK", inv, to_tag=tag)),
              (t0 + 1001, src, dst, request("ACK", call_id=call_id, cseq=1, caller=caller, callee=(callee[0], tag),
                                            vias=[(sent_by, f"z9hG4bK-ack-{call_id}")]))]
    if bye is not None:
        b = request("BYE", call_id=call_id, cseq=2, caller=caller, callee=(callee[0], tag),
                    vias=[(sent_by, f"z9hG4bK-bye-{call_id}")])
        ladder += [(t0 + bye, src, dst, b), (t0 + bye + 2, dst, src, response(200, "OK", b))]
    return ladder


# ----------------------------------------------------------------------------- 10: time going backwards

def test_call_timings_across_a_clock_step_back_are_none_and_the_step_is_a_finding():
    # In capture order: the clock steps back 2.021 s between the ACK and the BYE (written as frames 5-6).
    ladder = _leg("step", UA1, UA2, 0, caller=("alice", "a1"), callee=("bob", None), bye=None, sent_by=UA1)
    bye = request("BYE", call_id="step", cseq=2, callee=("bob", "t-step"), vias=[(UA1, "z9hG4bK-bye")])
    ladder += [(-1020, UA1, UA2, bye), (-1018, UA2, UA1, response(200, "OK", bye))]
    sip = sip_frame(ladder)
    [c] = summarize_calls(sip)
    assert c["state"] == "completed"
    assert (c["srd_ms"], c["setup_ms"], c["disconnect_ms"]) == (50, 1000, 2)
    assert c["duration_s"] is None  # was -2.021: BYE - 200 OK across the step
    found = _only(diagnose(sip, NO_RTP), "capture.time_backwards")
    assert found["evidence"]["frames"] == [6]  # the BYE: captured after the ACK, stamped 2.021 s before it
    assert found["evidence"]["values"]["sip_steps"] == 1
    assert found["evidence"]["values"]["max_backwards_ms"] == 2021.0


def test_a_32_bit_timestamp_wrap_gives_no_srd():
    ladder = _leg("wrap", UA1, UA2, 0, caller=("alice", "a1"), callee=("bob", None), bye=None, sent_by=UA1)
    sip = sip_frame(ladder)
    # the INVITE and the 100 at 2^32 - 1 s, then the seconds counter wraps to 0
    wrapped = [(2**32 - 1) * 10**9, (2**32 - 1) * 10**9 + 10**6, 40 * 10**6, 990 * 10**6, 991 * 10**6]
    sip = sip.with_columns(ts_ns=pl.Series(wrapped, dtype=pl.Int64))
    [c] = summarize_calls(sip)
    assert (c["srd_ms"], c["setup_ms"]) == (None, None)  # was -4294967294960.0 ms
    assert _only(diagnose(sip, NO_RTP), "capture.time_backwards")["evidence"]["frames"] == [3]


def test_forwarding_delay_across_a_clock_step_back_is_none():
    inv = request("INVITE", call_id="fw", cseq=1, vias=[(UA1, "z9hG4bK-a")])
    sent, passed = through_proxies(inv, (B2B, "z9hG4bK-p"))
    ladder = [(0, UA1, B2B, sent), (-700, B2B, UA2, passed),
              (-650, UA2, B2B, response(180, "Ringing", passed, to_tag="x")),
              (-649, B2B, UA1, response(180, "Ringing", sent, to_tag="x"))]
    sip = sip_frame(ladder)
    [c] = summarize_calls(sip)
    assert [(e["message"], e["ms"]) for e in c["forwarding"]] == [("180 (INVITE)", 1.0), ("INVITE", None)]
    assert "sip.slow_hop" not in _rules(diagnose(sip, NO_RTP))


def test_reversed_stream_keeps_wiresharks_counts_but_no_loss_ratio_or_mos():
    rtp = frame(list(reversed(clean(100))))  # records written last first: seq and arrival both go down
    [s] = stream_stats(rtp, t0_ns=T0).to_dicts()
    # tshark -z rtp,streams on the same packets: 100 packets, lost -198 (expected = 1000 - 1099 + 1)
    assert (s["packets"], s["expected"], s["lost"]) == (100, -98, -198)
    assert s["lost_pct"] is None  # was 202.04 %
    assert s["duration_s"] is None  # was -1.98 s
    assert (s["time_backwards"], s["time_backwards_frame"], s["max_backwards_ms"]) == (99, 2, 20.0)
    [r] = streams_report(sip_frame(call()), rtp, t0_ns=T0).to_dicts()
    assert (r["mos"], r["r_factor"]) == (None, None)  # was 4.41 / 93.2
    assert r["mos_method"].startswith("none: loss cannot be measured")


def test_reversed_streams_in_a_call_are_findings():
    rows = []
    for built in (stream(A_MEDIA, B_MEDIA), stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000)):
        # each stream's records written last first: frame numbers go up, everything else goes down
        rows += [{**r, "frame": f["frame"]} for f, r in zip(built, reversed(built))]
    rtp = pl.DataFrame(rows, schema=RTP_PACKETS)
    findings = diagnose(sip_frame(call()), rtp, capture_start_ns=T0_NS)
    loss = [f for f in findings if f["rule"] == "media.loss_unmeasurable"]
    assert len(loss) == 2 and all(f["evidence"]["values"]["expected"] <= 0 for f in loss)
    assert "media.packet_loss" not in _rules(findings) and "media.low_mos" not in _rules(findings)
    back = _only(findings, "capture.time_backwards")["evidence"]["values"]
    assert back["rtp_packets"] == 2 * (len(rows) // 2 - 1) and len(back["streams"]) == 2


# ----------------------------------------------------------------------------- 12: host names

P1, P2, UA_B = "10.0.0.11:5060", "10.0.0.12:5060", "10.0.0.13:5060"
UA_A = "10.0.0.10:5060"


def proxied_call() -> list:
    """UA1 -> proxy1 -> proxy2 -> UA2 (the lab's path): sipp's INVITE carries User-Agent sipp-UA1, each
    kamailio answers 100 Trying with its own Server, UA2 answers with Server sipp-UA2, and the proxies pass
    the INVITE, the 180 and the 200 on with those headers copied."""
    inv = request("INVITE", call_id="lab-ref", cseq=1, vias=[(UA_A, "z9hG4bK-ua1")], caller=("ua1", "u1"),
                  callee=("ua2", None), headers=("User-Agent: sipp-UA1",))
    c0, c1, c2 = through_proxies(inv, (P1, "z9hG4bK-p1"), (P2, "z9hG4bK-p2"))
    ladder = [(0, UA_A, P1, c0), (1, P1, UA_A, response(100, "Trying", c0, headers=("Server: kamailio-proxy1",))),
              (2, P1, P2, c1), (3, P2, P1, response(100, "Trying", c1, headers=("Server: kamailio-proxy2",))),
              (4, P2, UA_B, c2)]
    t = 5
    for code, reason in ((180, "Ringing"), (200, "OK")):
        for src, dst, copy in ((UA_B, P2, c2), (P2, P1, c1), (P1, UA_A, c0)):
            ladder.append((t, src, dst, response(code, reason, copy, to_tag="u2", headers=("Server: sipp-UA2",))))
            t += 1
    return ladder


def test_hosts_are_named_after_what_they_wrote_not_what_they_forwarded():
    [c] = summarize_calls(sip_frame(proxied_call()))
    assert c["hosts"] == [UA_A, P1, P2, UA_B] and c["host_roles"] == ["UA", "proxy", "proxy", "UA"]
    assert c["host_names"] == ["sipp-UA1", "kamailio-proxy1", "kamailio-proxy2", "sipp-UA2"]


def test_a_proxy_that_only_passes_messages_on_has_no_name():
    ladder = [m for m in proxied_call() if "100 Trying" not in m[3]]  # stateless proxies: no 100 of their own
    [c] = summarize_calls(sip_frame(ladder))
    assert c["host_names"] == ["sipp-UA1", None, None, "sipp-UA2"]


def test_a_proxy_adding_its_own_server_to_responses_it_passes_back_is_named_by_it():
    # private-test-sip.pcapng: repro passes Jitsi's 501 back with "Server: repro 1.9.7" added
    ladder = []
    for t, src, dst, text in proxied_call():
        if "kamailio-proxy1" in text:
            continue  # proxy 1 sends no 100 of its own...
        if src == P1 and text.startswith("SIP/2.0 200"):
            text = text.replace("Server: sipp-UA2", "Server: kamailio-proxy1")  # ...but signs the 200 it passes back
        ladder.append((t, src, dst, text))
    [c] = summarize_calls(sip_frame(ladder))
    assert c["host_names"] == ["sipp-UA1", "kamailio-proxy1", "kamailio-proxy2", "sipp-UA2"]


def test_a_registrar_echoing_the_user_agent_is_not_named_after_it():
    # rtp_rtcp_sip_ipv4_udp.pcap: the registrar's 200 carries the REGISTER's "User-Agent: Verso Softphone"
    reg = request("REGISTER", call_id="reg", cseq=1, vias=[(UA1, "z9hG4bK-r")], callee=("alice", None),
                  headers=("User-Agent: Verso Softphone release 1104w",))
    ok = response(200, "OK", reg, to_tag="r", headers=("User-Agent: Verso Softphone release 1104w",))
    [c] = summarize_calls(sip_frame([(0, UA1, B2B, reg), (5, B2B, UA1, ok)]))
    assert c["host_names"] == ["Verso Softphone release 1104w", None]


# ----------------------------------------------------------------------------- 13: packet time

def test_bursty_arrival_of_20_ms_packets_is_no_packet_time_asymmetry():
    bursty = stream(A_MEDIA, B_MEDIA)  # 160 samples (20 ms) per packet, RTP timestamps 160 apart...
    for i, r in enumerate(bursty):  # ...arriving in bursts of three, 2 ms apart, then 56 ms later
        r["ts_ns"] = T0_NS + int((1020 + 60 * (i // 3) + 2 * (i % 3)) * 1e6)
    packets = bursty + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000)
    rtp = pl.DataFrame(sorted(packets, key=lambda r: r["ts_ns"]), schema=RTP_PACKETS)
    assert "media.ptime_asymmetry" not in _rules(diagnose(sip_frame(call()), rtp, capture_start_ns=T0_NS))
    # a real 30 ms packetization the other way still is one
    other = bursty + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000, ptime=30)
    rtp = pl.DataFrame(sorted(other, key=lambda r: r["ts_ns"]), schema=RTP_PACKETS)
    found = _only(diagnose(sip_frame(call()), rtp, capture_start_ns=T0_NS), "media.ptime_asymmetry")
    assert found["evidence"]["values"]["packet_time_ms"] == [20.0, 30.0]
    assert found["evidence"]["values"]["samples_per_packet"] == [160, 240]


# ----------------------------------------------------------------------------- 14: responses without their INVITE

def timer_g_408s() -> list:
    """A 408 re-sent by its server transaction (Timer G: 0.5, 1, 2, 4, 4 ... s, RFC 3261 17.2.1) for 31.5 s
    with no ACK; the INVITE it answers is not in the capture."""
    inv = request("INVITE", call_id="lost-invite", cseq=1, vias=[(UA1, "z9hG4bK-li")], callee=("bob", None))
    r408 = response(408, "Request Timeout", inv, to_tag="gw1")
    ladder, t, gap = [], 0.0, 500.0
    for _ in range(11):
        ladder.append((t, B2B, UA1, r408))
        t, gap = t + gap, min(gap * 2, 4000.0)
    return ladder


def test_408s_without_their_invite_are_a_rejected_call_with_findings():
    sip = sip_frame(timer_g_408s())
    [c] = summarize_calls(sip)
    assert (c["method"], c["state"], c["final_status"], c["final_reason"]) == ("INVITE", "rejected", 408,
                                                                               "Request Timeout")
    assert (c["messages"], c["retransmissions"]) == (11, 10)
    assert c["hosts"] == [UA1, B2B] and c["srd_ms"] is None and c["failed_srd_ms"] is None
    findings = diagnose(sip, NO_RTP)
    assert _rules(findings) == ["capture.request_not_captured", "sip.rejected", "sip.failure_without_ack"]
    assert _only(findings, "capture.request_not_captured")["evidence"]["values"]["responses"] == 11
    no_ack = _only(findings, "sip.failure_without_ack")["evidence"]
    assert no_ack["values"]["retransmissions"] == 10 and no_ack["values"]["ack_seen"] is False
    assert no_ack["frames"] == list(range(1, 12))


def test_408s_acknowledged_at_once_are_not_a_missing_ack():
    ladder = timer_g_408s()[:1]
    ack = request("ACK", call_id="lost-invite", cseq=1, callee=("bob", "gw1"), vias=[(UA1, "z9hG4bK-li")])
    ladder.append((3, UA1, B2B, ack))
    findings = diagnose(sip_frame(ladder), NO_RTP)
    [c] = summarize_calls(sip_frame(ladder))
    assert (c["state"], c["final_status"]) == ("rejected", 408)
    assert "sip.failure_without_ack" not in _rules(findings)


def test_a_bye_alone_still_reads_as_a_call_begun_before_the_capture():
    bye = request("BYE", call_id="old", cseq=5, callee=("bob", "tb"), vias=[(UA1, "z9hG4bK-old")])
    [c] = summarize_calls(sip_frame([(0, UA1, UA2, bye), (3, UA2, UA1, response(200, "OK", bye))]))
    assert (c["state"], c["final_status"]) == ("unknown", None)
    # FAX-Call-t38-CA-TDM-SIP-FB-1.pcap: only the 200 to a BYE, twice: still a dialog older than the capture
    [c] = summarize_calls(sip_frame([(0, UA2, UA1, response(200, "OK", bye)), (1, UA2, UA1, response(200, "OK", bye))]))
    assert (c["state"], c["final_status"]) == ("unknown", None)


# ----------------------------------------------------------------------------- 15a: B2BUA rewriting the caller

def test_b2bua_that_rewrites_the_caller_is_joined_by_callee_host_and_ends():
    a = _leg("A-leg", UA1, B2B, 0, caller=("+4930123456", "a1"), bye=5000, sent_by=UA1)
    b = _leg("B-leg", B2B, UA2, 85, caller=("030123456", "b1"), bye=5006 - 85, sent_by=B2B)  # ends 6 ms later
    [c] = summarize_calls(sip_frame(sorted(a + b)))
    assert c["call_ids"] == ["A-leg", "B-leg"] and c["legs"][1]["link_kind"] == "heuristic"
    evidence = c["legs"][1]["evidence"]
    assert "'+4930123456' -> '030123456'" in evidence and "85.0 ms" in evidence and "6.0 ms apart" in evidence


def test_calls_to_the_same_callee_that_do_not_end_together_are_not_legs():
    a = _leg("A-leg", UA1, B2B, 0, caller=("+4930123456", "a1"), bye=5000, sent_by=UA1)
    b = _leg("B-leg", B2B, UA2, 85, caller=("carol", "b1"), bye=9000, sent_by=B2B)
    calls = summarize_calls(sip_frame(sorted(a + b)))
    assert [c["call_ids"] for c in calls] == [["A-leg"], ["B-leg"]]


def test_a_leg_already_paired_by_its_caller_is_not_taken_by_a_rewritten_one():
    a = _leg("A1", UA1, B2B, 0, caller=("alice", "a1"), bye=5000, sent_by=UA1)
    b = _leg("B1", B2B, UA2, 4, caller=("alice", "b1"), bye=4996, sent_by=B2B)  # same caller: the classic pair
    c = _leg("C1", B2B, "10.0.0.8:5060", 90, caller=("0301", "c1"), bye=4912, sent_by=B2B)  # a third, rewritten
    calls = summarize_calls(sip_frame(sorted(a + b + c)))
    assert [x["call_ids"] for x in calls] == [["A1", "B1"], ["C1"]]


# ----------------------------------------------------------------------------- 15b: no Call-ID

def test_messages_without_call_id_are_named_in_a_warning():
    from flowviz.sip.calls import unplaced_warnings

    ladder = _leg("k1", UA1, UA2, 0, caller=("alice", "a1"), callee=("bob", None), bye=3000, sent_by=UA1)
    ladder = [(t, s, d, text.replace("Call-ID: k1\r\n", "") if n in (2, 5) else text)
              for n, (t, s, d, text) in enumerate(ladder)]
    sip = sip_frame(ladder)
    assert sip["call_id"].null_count() == 2
    [c] = summarize_calls(sip)
    assert c["messages"] == 5
    assert unplaced_warnings(sip, "x.pcap") == ["x.pcap: 2 SIP message(s) without a Call-ID header are in no call "
                                                "(frames 3, 6)"]
    assert unplaced_warnings(sip.filter(pl.col("call_id").is_not_null()), "x.pcap") == []
    assert unplaced_warnings(pl.DataFrame(schema=SIP_MESSAGES), "x.pcap") == []


# ----------------------------------------------------------------------------- 15d: R within 0..100

def test_r_factor_stays_within_the_models_range():
    worst = e_model("G723", 100.0, burst_ratio=50.0, one_way_ms=400.0)  # Ie_eff far above 95: R was -422.7
    assert (worst["r_factor"], worst["mos"]) == (0.0, 1.0)
    assert e_model("PCMU", 0.0)["r_factor"] == 93.2


# ----------------------------------------------------------------------------- 15e: negative RTCP round trip

def _rtcp(rows: list[dict]) -> pl.DataFrame:
    base = {c: None for c in RTCP_REPORTS}
    return pl.DataFrame([{**base, **r} for r in rows], schema=RTCP_REPORTS)


def negative_rtt_reports(ssrc: int = 1, src=A_MEDIA, dst=B_MEDIA, t_ns: int = T0_NS + 2_000_000_000,
                         dlsr_s: float = 0.25) -> pl.DataFrame:
    """A sends an SR about its stream; B's RR comes 100 ms later claiming it held the SR 250 ms (DLSR)."""
    ntp = 3_900_000_000.5
    sr = {"frame": 9000, "ts_ns": t_ns, "src_ip": src[0], "dst_ip": dst[0], "src_port": src[1] + 1,
          "dst_port": dst[1] + 1, "packet_type": "SR", "sender_ssrc": ssrc, "ntp_ts": ntp}
    rr = {"frame": 9001, "ts_ns": t_ns + 100_000_000, "src_ip": dst[0], "dst_ip": src[0], "src_port": dst[1] + 1,
          "dst_port": src[1] + 1, "packet_type": "RR", "sender_ssrc": 99, "source_ssrc": ssrc, "fraction_lost": 0,
          "cumulative_lost": 0, "jitter": 8, "lsr": int(ntp * 65536) % 2**32, "dlsr": round(dlsr_s * 65536)}
    return _rtcp([sr, rr])


def test_negative_round_trip_is_dropped_counted_and_a_finding():
    [block] = block_rtt(negative_rtt_reports()).to_dicts()
    assert (block["rtt_ms"], block["rtt_negative"]) == (None, True)  # was -150.0 ms
    # a capture point beside the reporter: 100 ms - 100.2 ms is the units' granularity, a round trip of 0
    [block] = block_rtt(negative_rtt_reports(dlsr_s=0.1002)).to_dicts()
    assert (block["rtt_ms"], block["rtt_negative"]) == (0.0, False)
    rows = stream(A_MEDIA, B_MEDIA) + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000)
    rtp = pl.DataFrame(sorted(rows, key=lambda r: r["ts_ns"]), schema=RTP_PACKETS)
    stats = stream_stats(rtp, t0_ns=T0_NS)
    [row] = rtcp_per_stream(stats, negative_rtt_reports()).to_dicts()
    assert (row["rtcp_blocks"], row["rtt_ms"], row["rtt_negative"], row["rtt_negative_frame"]) == (1, None, 1, 9001)
    findings = diagnose(sip_frame(call()), rtp, negative_rtt_reports(), capture_start_ns=T0_NS)
    found = _only(findings, "media.rtcp_negative_rtt")
    assert found["evidence"]["frames"] == [9001] and found["evidence"]["values"]["negative_blocks"] == 1


# ----------------------------------------------------------------------------- 15f: quoted display names

@pytest.mark.parametrize("header, display", [
    ('"<script>alert(1)</script>" <sip:alice@example.com>;tag=a1', "<script>alert(1)</script>"),
    ('"Mallory <sip:evil@x.org>" <sip:alice@example.com>;tag=a1', "Mallory <sip:evil@x.org>"),
    (r'"A \"quoted\" name" <sip:alice@example.com>;tag=a1', 'A "quoted" name'),
    (r'"back\\slash<" <sip:alice@example.com>;tag=a1', "back\\slash<"),
    ('"Bob, Jr. ;tag=x" <sip:alice@example.com>;tag=a1', "Bob, Jr. ;tag=x"),
    ("Plain Name <sip:alice@example.com>;tag=a1", "Plain Name"),
])
def test_quoted_display_name_may_hold_angle_brackets_quotes_and_semicolons(header, display):
    text = request("INVITE", call_id="d", cseq=1, vias=[(UA1, "z9hG4bK-d")]).replace(
        'From: "Alice" <sip:alice@example.com>;tag=a1', f"From: {header}")
    row = parse_message(text)
    assert (row["from_user"], row["from_uri"], row["from_tag"], row["from_display"]) == (
        "alice", "sip:alice@example.com", "a1", display)

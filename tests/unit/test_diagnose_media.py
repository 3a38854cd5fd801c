"""Media and capture rules of flowviz diagnose: a typed ladder with SDP plus RTP packets built row by row
(20 ms G.711 packets), so every expected value comes from the construction."""

from __future__ import annotations

import polars as pl

from flowviz.analysis.diagnose import Thresholds, diagnose
from flowviz.schemas import RTP_PACKETS
from tests.kit.sip_ladders import T0_NS, offer, request, response, sip_frame

A, B = "10.0.0.1:5060", "10.0.0.9:5060"
A_MEDIA, B_MEDIA = ("10.0.0.1", 40000), ("10.0.0.9", 30000)
NAT_MEDIA = ("203.0.113.5", 61000)  # B's media seen from behind a NAT: not what B's SDP says


def _with_sdp(text: str, sdp: str) -> str:
    body = sdp.replace("\n", "\r\n")
    return text.replace("Content-Length: 0\r\n\r\n",
                        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")


def call(*, bye_ms: float | None = 10_000, hold: bool = False) -> list:
    """A calls B with SDP on both sides; 200 OK at 1000 ms; BYE at bye_ms."""
    inv = request("INVITE", call_id="m1", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-m1")], sdp=offer(port=40000))
    ok = _with_sdp(response(200, "OK", inv, to_tag="tb"), offer(address="10.0.0.9", port=30000))
    ack = request("ACK", call_id="m1", cseq=1, callee=("bob", "tb"), vias=[("10.0.0.1:5060", "z9hG4bK-ack")])
    ladder = [(0, A, B, inv), (50, B, A, response(180, "Ringing", inv, to_tag="tb")), (1000, B, A, ok),
              (1001, A, B, ack)]
    if hold:
        re = request("INVITE", call_id="m1", cseq=2, callee=("bob", "tb"), vias=[("10.0.0.1:5060", "z9hG4bK-re")],
                     sdp=offer("sendonly", port=40000))
        ladder += [(5000, A, B, re), (5010, B, A, response(200, "OK", re, to_tag="tb"))]
    if bye_ms is not None:
        bye = request("BYE", call_id="m1", cseq=3, callee=("bob", "tb"), vias=[("10.0.0.1:5060", "z9hG4bK-bye")])
        ladder += [(bye_ms, A, B, bye), (bye_ms + 2, B, A, response(200, "OK", bye))]
    return ladder


def stream(src, dst, *, ssrc=1, start_ms=1020.0, end_ms=9980.0, lose=(), stall=(0, 0), first_seq=0,
           first_frame=100, pt=0, ptime=20) -> list[dict]:
    """Packets every `ptime` ms from start_ms to end_ms; `lose`: packet indexes left out; `stall` (i, n):
    packets i..i+n-1 are held up and arrive together with packet i+n (a delay spike)."""
    rows = []
    for i in range(int((end_ms - start_ms) // ptime) + 1):
        if i in lose:
            continue
        arrives = stall[0] + stall[1] if stall[0] <= i < stall[0] + stall[1] else i
        rows.append({"frame": first_frame + i, "ts_ns": T0_NS + int((start_ms + ptime * arrives) * 1e6),
                     "src_ip": src[0], "src_port": src[1], "dst_ip": dst[0], "dst_port": dst[1], "ssrc": ssrc,
                     "seq": (first_seq + i) % 65536, "rtp_ts": 8 * ptime * i, "payload_type": pt, "marker": i == 0,
                     "payload_len": 8 * ptime})
    return rows


def run(ladder, packets: list[dict], **thresholds) -> list[dict]:
    rtp = pl.DataFrame(sorted(packets, key=lambda r: r["ts_ns"]), schema=RTP_PACKETS)
    return diagnose(sip_frame(ladder), rtp, capture_start_ns=T0_NS,
                    thresholds=Thresholds().with_overrides(**thresholds))


def two_way(**kwargs) -> list[dict]:
    return stream(A_MEDIA, B_MEDIA, ssrc=1, **kwargs) + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000)


def rules(findings):
    return [f["rule"] for f in findings]


def only(findings, rule_id):
    [found] = [f for f in findings if f["rule"] == rule_id]
    return found


def test_clean_two_way_call_triggers_nothing():
    assert run(call(), two_way()) == []


def test_no_rtp_in_an_answered_call():
    found = only(run(call(), []), "media.no_rtp")
    assert found["evidence"]["values"] == {"announced": ["10.0.0.1:40000", "10.0.0.9:30000"], "capture_has_rtp": False}
    assert found["evidence"]["frames"] == [3]  # the 200 OK
    other = stream(("192.0.2.1", 7000), ("192.0.2.2", 7002), ssrc=9)  # RTP of something else: the capture has RTP
    assert only(run(call(), other), "media.no_rtp")["evidence"]["values"]["capture_has_rtp"] is True


def test_one_way_audio():
    found = only(run(call(), stream(A_MEDIA, B_MEDIA)), "media.one_way")
    assert found["evidence"]["values"] == {"flows": ["10.0.0.1:40000 -> 10.0.0.9:30000"]}


def test_media_from_a_nat_address_does_not_match_the_sdp():
    packets = stream(A_MEDIA, B_MEDIA) + stream(NAT_MEDIA, A_MEDIA, ssrc=2, first_frame=5000)
    found = only(run(call(), packets), "media.sdp_mismatch")
    values = found["evidence"]["values"]
    assert (values["src"], values["dst"]) == ("203.0.113.5:61000", "10.0.0.1:40000")
    assert "10.0.0.9:30000" in values["sdp_announced"]
    assert found["evidence"]["frames"] == [5000]


def test_loss_and_low_mos():
    lost = set(range(10, 449, 10))  # 44 of the 449 packets (indexes 0..448): 9.8 %
    findings = run(call(), stream(A_MEDIA, B_MEDIA, lose=lost) + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000))
    loss = only(findings, "media.packet_loss")["evidence"]["values"]
    assert (loss["src"], loss["lost_pct"]) == ("10.0.0.1:40000", round(44 / 449 * 100, 3))
    assert only(findings, "media.low_mos")["evidence"]["values"]["mos"] < 3.6
    assert "media.packet_loss" not in rules(run(call(), stream(A_MEDIA, B_MEDIA, lose=lost)
                                                + stream(B_MEDIA, A_MEDIA, ssrc=2), loss_pct=20))


def test_high_jitter():
    # packets 100..129 held up 620 ms: packet 100 arrives 600 ms later than its RTP time says, J = 600 / 16
    spike = stream(A_MEDIA, B_MEDIA, stall=(100, 30)) + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000)
    found = only(run(call(), spike), "media.high_jitter")
    assert found["evidence"]["values"]["src"] == "10.0.0.1:40000" and found["evidence"]["values"]["max_jitter_ms"] == 37.5
    assert "media.high_jitter" not in rules(run(call(), spike, jitter_ms=40))


def test_rtp_starting_late_and_going_on_after_bye():
    late = stream(A_MEDIA, B_MEDIA, start_ms=5000) + stream(B_MEDIA, A_MEDIA, ssrc=2, start_ms=5000, first_frame=5000)
    assert only(run(call(), late), "media.late_rtp")["evidence"]["values"] == {"after_answer_s": 4.0}
    on = stream(A_MEDIA, B_MEDIA, end_ms=15_000) + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000)
    found = only(run(call(), on), "media.rtp_after_bye")
    assert found["evidence"]["values"]["after_bye_s"] == 5.0 and found["evidence"]["values"]["src"] == "10.0.0.1:40000"


def test_ssrc_change_mid_call_is_information():
    packets = (stream(A_MEDIA, B_MEDIA, end_ms=5000) + stream(A_MEDIA, B_MEDIA, ssrc=7, start_ms=5020, first_frame=3000)
               + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000))
    [found] = run(call(), packets)
    assert (found["rule"], found["severity"]) == ("media.ssrc_change", "info")
    assert found["evidence"]["values"]["ssrcs"] == ["0x00000001", "0x00000007"]


def test_hold_is_information_not_a_fault():
    [found] = run(call(hold=True), two_way())
    assert (found["rule"], found["severity"]) == ("media.hold", "info")
    assert found["evidence"]["frames"] == [5]


def test_capture_starting_and_ending_mid_call():
    [ends] = run(call(bye_ms=None), two_way())
    assert (ends["rule"], ends["evidence"]["values"]) == ("capture.ends_mid_call", {"state": "in call"})
    [starts] = run(call()[-2:], [])
    assert (starts["rule"], starts["severity"]) == ("capture.starts_mid_call", "info")


def test_payload_type_the_sdp_did_not_negotiate():
    packets = stream(A_MEDIA, B_MEDIA, pt=8) + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000)  # SDP: PCMU (0) only
    found = only(run(call(), packets), "media.codec_mismatch")
    values = found["evidence"]["values"]
    assert (values["src"], values["payload_types"], values["negotiated"]) == ("10.0.0.1:40000", [8], [0])


def test_packet_time_differs_between_directions():
    packets = stream(A_MEDIA, B_MEDIA) + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000, ptime=30)
    found = only(run(call(), packets), "media.ptime_asymmetry")
    assert found["evidence"]["values"]["packet_time_ms"] == [20.0, 30.0]
    lost = set(range(1, 449, 5)) | set(range(2, 449, 5))  # 2 packets in 5: deltas 60, 20, 20 (mean 33 ms)
    lossy = stream(A_MEDIA, B_MEDIA, lose=lost) + stream(B_MEDIA, A_MEDIA, ssrc=2, first_frame=5000)
    assert "media.ptime_asymmetry" not in rules(run(call(), lossy))  # the packet time is still 20 ms
    assert found["evidence"]["frames"] == [100, 5000]


def test_one_direction_stopping_mid_call():
    packets = stream(A_MEDIA, B_MEDIA) + stream(B_MEDIA, A_MEDIA, ssrc=2, end_ms=3000, first_frame=5000)
    found = only(run(call(), packets), "media.rtp_stopped")
    assert found["evidence"]["values"] == {"src": "10.0.0.9:30000", "dst": "10.0.0.1:40000", "stopped_before_s": 6.98}
    assert "media.rtp_stopped" not in rules(run(call(hold=True), packets))  # on hold: expected


def test_rtp_captured_twice_is_a_capture_fact():
    packets = two_way()
    doubled = packets + [{**r, "frame": r["frame"] + 20_000, "ts_ns": r["ts_ns"] + 100_000} for r in packets]
    [found] = run(call(), doubled)
    assert (found["rule"], found["evidence"]["values"]) == ("capture.duplicate_packets",
                                                            {"sip_duplicates": 0, "rtp_streams_doubled": 2})

"""Media rules: no RTP, one-way audio, NAT/SDP mismatch, quality, late or lingering RTP, SSRC change, hold."""

from __future__ import annotations

import polars as pl

from flowviz.analysis.rulebook import CallFacts, Hit, Thresholds, rule


STREAM_KEY = ["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"]


def median_deltas(rtp: pl.DataFrame) -> pl.DataFrame:
    """Per stream: `median_ts_step`, the median RTP timestamp step between consecutive packets of the same
    payload type (samples per packet: the packetization, RFC 3550 5.1, which neither loss, silence
    suppression nor bursty arrival moves), and `median_delta_ms`, the median time between their arrivals.

    Steps are taken in capture order; a step of 0 (the packets of one DTMF event, RFC 4733 2.5.1.3) or
    backwards (reordering, 2^31 or more modulo 2^32) is not a packetization and is left out."""
    step = (pl.col("rtp_ts").cast(pl.Int64) - pl.col("rtp_ts").cast(pl.Int64).shift(1)) % 2**32
    same_pt = pl.col("payload_type") == pl.col("payload_type").shift(1)
    return (rtp.select(*STREAM_KEY, "ts_ns", "rtp_ts", "payload_type")
            .with_columns(step=step.over(STREAM_KEY), same_pt=same_pt.over(STREAM_KEY),
                          delta=pl.col("ts_ns").diff().over(STREAM_KEY))
            .filter(pl.col("same_pt") & (pl.col("step") > 0) & (pl.col("step") < 2**31))
            .group_by(STREAM_KEY).agg(median_ts_step=pl.col("step").median(),
                                      median_delta_ms=pl.col("delta").median() / 1e6))


def packet_time_ms(s: dict) -> float | None:
    """A stream's packet time from its RTP timestamps: median step / clock rate; None without a known clock."""
    step, clock = s.get("median_ts_step"), s.get("clock_rate")
    return step * 1000.0 / clock if step is not None and clock else None


def _ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _src(s: dict) -> str:
    return _ep(s["src_ip"], s["src_port"])


def _dst(s: dict) -> str:
    return _ep(s["dst_ip"], s["dst_port"])


def _answered(f: CallFacts) -> bool:
    return f.call["method"] == "INVITE" and f.call["answer_ns"] is not None


def _announced_audio(f: CallFacts) -> list[str]:
    """ip:port of every audio m= line with a port the call's SDPs announced."""
    out = []
    for r in f.msgs.filter(pl.col("has_sdp").fill_null(False)).to_dicts():
        for m in r["sdp_media"] or []:
            address = m["connection"] or r["sdp_connection"]
            if m["media"] == "audio" and m["port"] and address:
                out.append(_ep(address, m["port"]))
    return list(dict.fromkeys(out))


@rule("media.no_rtp", "warning", "No RTP in an answered call",
      "Either the capture point does not see the media path (filter, other interface) or the media is blocked "
      "(firewall, wrong SDP address).")
def no_rtp(f: CallFacts, th: Thresholds) -> list[Hit]:
    if not _answered(f) or f.streams:
        return []
    announced = _announced_audio(f)
    until = f.call["end_ns"] if f.call["state"] == "completed" else f.capture_end_ns
    if not announced or until - f.call["answer_ns"] < th.min_media_s * 1e9:
        return []
    where = "" if f.capture_has_rtp else " (the capture has no RTP at all: it may have been filtered to SIP)"
    answer = f.msgs.filter(pl.col("ts_ns") == f.call["answer_ns"])
    return [Hit(f"No RTP was seen for the call although the SDP announced {', '.join(announced)}{where}.",
                answer["frame"].to_list()[:1], {"announced": announced, "capture_has_rtp": f.capture_has_rtp})]


@rule("media.one_way", "warning", "One-way audio",
      "Only one direction flows: typically NAT (media sent to a private SDP address), a firewall, or a muted/held side.")
def one_way(f: CallFacts, th: Thresholds) -> list[Hit]:
    if not _answered(f) or not f.streams:
        return []
    pairs = {(_src(s), _dst(s)) for s in f.streams}
    if any((dst, src) in pairs for src, dst in pairs):
        return []
    flows = sorted(f"{src} -> {dst}" for src, dst in pairs)
    return [Hit(f"RTP flows only {', '.join(flows)}, never back.", [s["first_frame"] for s in f.streams],
                {"flows": flows})]


@rule("media.sdp_mismatch", "warning", "Media does not match the SDP",
      "RTP comes from an address no SDP announced: a NAT in the path; make the endpoint announce its public address "
      "(STUN, ALG off) or have the far end latch (symmetric RTP, RFC 4961).")
def sdp_mismatch(f: CallFacts, th: Thresholds) -> list[Hit]:
    return [Hit(f"The stream {_src(s)} -> {_dst(s)} does not use the addresses of the SDP ({s['sdp_announced']}).",
                [s["first_frame"]], {"src": _src(s), "dst": _dst(s), "sdp_announced": s["sdp_announced"],
                                     "stream_id": s["stream_id"]})
            for s in f.streams if s["sdp_match"] is False]


def _stream_values(s: dict, **values) -> dict:
    return {"stream_id": s["stream_id"], "src": _src(s), "dst": _dst(s), **values}


@rule("media.packet_loss", "warning", "High RTP packet loss",
      "Loss on the network path (congestion, Wi-Fi, policing) or at the capture point; compare captures nearer each end.")
def packet_loss(f: CallFacts, th: Thresholds) -> list[Hit]:
    return [Hit(f"The stream {_src(s)} -> {_dst(s)} lost {s['lost']} of {s['expected']} packets "
                f"({s['lost_pct']:.1f} %).", [s["first_frame"]],
                _stream_values(s, lost=s["lost"], lost_pct=round(s["lost_pct"], 3), seq_errors=s["seq_errors"]))
            for s in f.streams if s["lost_pct"] is not None and s["lost_pct"] > th.loss_pct]


@rule("media.loss_unmeasurable", "warning", "RTP loss cannot be measured",
      "The stream's sequence numbers end below where they started (records reversed or shuffled, the capture's "
      "clock going back, or a sender restarting its numbering): Wireshark's lost count is then negative and "
      "no loss ratio or MOS exists.")
def loss_unmeasurable(f: CallFacts, th: Thresholds) -> list[Hit]:
    return [Hit(f"The stream {_src(s)} -> {_dst(s)} received {s['packets']} packets but its sequence numbers "
                f"give {s['expected']} expected: loss % and MOS are not computed.",
                [s["first_frame"], s.get("last_frame") or s["first_frame"]],
                _stream_values(s, packets=s["packets"], expected=s["expected"], lost=s["lost"]))
            for s in f.streams if s["expected"] is not None and s["expected"] <= 0]


@rule("media.high_jitter", "warning", "High RTP jitter",
      "Packets arrive irregularly: congestion or missing QoS (DSCP EF) on the path; the jitter buffer may discard them.")
def high_jitter(f: CallFacts, th: Thresholds) -> list[Hit]:
    return [Hit(f"The stream {_src(s)} -> {_dst(s)} reached {s['max_jitter_ms']:.1f} ms of jitter.", [s["first_frame"]],
                _stream_values(s, max_jitter_ms=round(s["max_jitter_ms"], 3), mean_jitter_ms=round(s["mean_jitter_ms"], 3)))
            for s in f.streams if s["max_jitter_ms"] is not None and s["max_jitter_ms"] > th.jitter_ms]


@rule("media.low_mos", "warning", "Low estimated MOS",
      "The E-model estimate (loss, codec, delay) says listeners are dissatisfied; see the loss and jitter findings.")
def low_mos(f: CallFacts, th: Thresholds) -> list[Hit]:
    return [Hit(f"The stream {_src(s)} -> {_dst(s)} has an estimated MOS of {s['mos']:.2f} ({s['codec']}, "
                f"{max(s['lost_pct'] or 0, 0):.1f} % loss" + (f", RTCP round trip {s['rtt_ms']:.0f} ms)." if s["rtt_ms"] else ")."),
                [s["first_frame"]], _stream_values(s, mos=s["mos"], r_factor=s["r_factor"], codec=s["codec"],
                                                   lost_pct=round(s["lost_pct"], 3), rtt_ms=s["rtt_ms"]))
            for s in f.streams if s["mos"] is not None and s["mos"] < th.mos]


@rule("media.rtcp_negative_rtt", "info", "RTCP round trip came out negative",
      "The receiver's report says it held the sender report (DLSR) longer than the time between the two in the "
      "capture: a wrong LSR/DLSR in the endpoint's RTCP, or the capture's clock going back. These blocks are left out "
      "of the round trip (and of the MOS delay term).")
def rtcp_negative_rtt(f: CallFacts, th: Thresholds) -> list[Hit]:
    return [Hit(f"{s['rtt_negative']} RTCP report block(s) about the stream {_src(s)} -> {_dst(s)} gave a negative "
                "round trip; they are left out of its RTT.", [s["rtt_negative_frame"] or s["first_frame"]],
                _stream_values(s, negative_blocks=s["rtt_negative"], rtcp_blocks=s.get("rtcp_blocks"),
                               rtt_ms=s["rtt_ms"]))
            for s in f.streams if s.get("rtt_negative")]


@rule("media.late_rtp", "warning", "RTP starts long after the answer",
      "The first seconds of the call are silent (clipping): the media path opens late (ICE, NAT, slow gateway).")
def late_rtp(f: CallFacts, th: Thresholds) -> list[Hit]:
    if not _answered(f) or not f.streams:
        return []
    first = min(f.streams, key=lambda s: s["start_ts_ns"])
    late = first["start_ts_ns"] - f.call["answer_ns"]
    if late <= th.rtp_start_s * 1e9:
        return []
    return [Hit(f"The first RTP packet came {late / 1e9:.1f} s after the 200 OK.", [first["first_frame"]],
                {"after_answer_s": round(late / 1e9, 3)})]


@rule("media.rtp_after_bye", "warning", "RTP continues after BYE",
      "An endpoint or media relay did not stop its stream when the call ended (BYE lost or not acted on).")
def rtp_after_bye(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.call["state"] != "completed" or f.call["end_ns"] is None:
        return []
    bye = f.call["end_ns"]
    return [Hit(f"The stream {_src(s)} -> {_dst(s)} went on {(s['end_ts_ns'] - bye) / 1e9:.1f} s after the BYE.",
                [s["first_frame"]], _stream_values(s, after_bye_s=round((s["end_ts_ns"] - bye) / 1e9, 3)))
            for s in f.streams if s["end_ts_ns"] - bye > th.rtp_after_bye_s * 1e9]


@rule("media.ssrc_change", "info", "SSRC changed mid-call",
      "A new synchronization source on the same addresses: a media relay, transfer or re-INVITE switched the source; "
      "receivers that do not follow it go silent.")
def ssrc_change(f: CallFacts, th: Thresholds) -> list[Hit]:
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for s in sorted(f.streams, key=lambda s: s["start_ts_ns"]):
        by_pair.setdefault((_src(s), _dst(s)), []).append(s)
    return [Hit(f"The stream {src} -> {dst} used {len(ss)} SSRCs one after the other.", [s["first_frame"] for s in ss],
                {"src": src, "dst": dst, "ssrcs": [f"0x{s['ssrc']:08X}" for s in ss]})
            for (src, dst), ss in by_pair.items() if len(ss) > 1]


@rule("media.hold", "info", "Call put on hold",
      "Not a fault: a re-INVITE/UPDATE offered sendonly/inactive (RFC 3264 8.4), so one-way or no media is expected then.")
def hold(f: CallFacts, th: Thresholds) -> list[Hit]:
    holds = [e for e in f.call["in_dialog"] or [] if e["hold"] == "hold"]
    if not holds:
        return []
    resumed = sum(1 for e in f.call["in_dialog"] if e["hold"] == "resume")
    return [Hit(f"The call was put on hold {len(holds)} time(s) and resumed {resumed} time(s).",
                [e["frame"] for e in f.call["in_dialog"] if e["hold"]], {"holds": len(holds), "resumes": resumed})]


def _announced_payload_types(f: CallFacts) -> dict[str, set[int]]:
    """ip:port -> payload types the call's SDPs offered or answered for it."""
    out: dict[str, set[int]] = {}
    for r in f.msgs.filter(pl.col("has_sdp").fill_null(False)).to_dicts():
        for m in r["sdp_media"] or []:
            address = m["connection"] or r["sdp_connection"]
            if m["port"] and address:
                out.setdefault(_ep(address, m["port"]), set()).update(m["payload_types"] or [])
    return out


@rule("media.codec_mismatch", "warning", "RTP payload type not negotiated",
      "The sender uses a codec (payload type) the SDP did not agree on: the receiver may drop or mis-decode it; "
      "check codec lists and transcoding on both ends.")
def codec_mismatch(f: CallFacts, th: Thresholds) -> list[Hit]:
    if not f.streams:
        return []
    announced = _announced_payload_types(f)
    hits = []
    for s in f.streams:
        agreed = announced.get(_dst(s)) or announced.get(_src(s))
        extra = sorted(set(s["payload_types"] or []) - agreed) if agreed else []
        if extra:
            hits.append(Hit(f"The stream {_src(s)} -> {_dst(s)} carries payload type(s) {extra}, not in its SDP "
                            f"({sorted(agreed)}).", [s["first_frame"]],
                            _stream_values(s, payload_types=extra, negotiated=sorted(agreed))))
    return hits


def _directions(f: CallFacts) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for s in sorted(f.streams, key=lambda s: s["start_ts_ns"]):
        out.setdefault((_src(s), _dst(s)), []).append(s)
    return out


@rule("media.ptime_asymmetry", "warning", "Packet time differs between directions",
      "The two sides packetize differently (a=ptime ignored or changed by a gateway): some endpoints and SBCs "
      "handle it badly (clicks, jitter-buffer trouble).")
def ptime_asymmetry(f: CallFacts, th: Thresholds) -> list[Hit]:
    hits = []
    for (src, dst), forward in _directions(f).items():
        back = _directions(f).get((dst, src))
        if not back or src > dst:  # each pair once
            continue
        a, b = packet_time_ms(forward[0]), packet_time_ms(back[0])
        if a is not None and b is not None and min(forward[0]["packets"], back[0]["packets"]) >= 50 \
                and abs(a - b) >= th.ptime_diff_ms:
            hits.append(Hit(f"{src} puts {a:.0f} ms of audio in each packet, {dst} {b:.0f} ms.",
                            [forward[0]["first_frame"], back[0]["first_frame"]],
                            {"src": src, "dst": dst, "packet_time_ms": [round(a, 3), round(b, 3)],
                             "samples_per_packet": [forward[0]["median_ts_step"], back[0]["median_ts_step"]]}))
    return hits


@rule("media.rtp_stopped", "warning", "One RTP direction stopped",
      "One side stopped sending mid-call while the other went on: a NAT binding or firewall pinhole timed out, "
      "a re-INVITE moved the media, or the sender muted (check for hold).")
def rtp_stopped(f: CallFacts, th: Thresholds) -> list[Hit]:
    if not _answered(f) or any(e["hold"] for e in f.call["in_dialog"] or []):
        return []
    directions = _directions(f)
    hits = []
    for (src, dst), streams in directions.items():
        back = directions.get((dst, src))
        if not back:
            continue
        end, other = max(s["end_ts_ns"] for s in streams), max(s["end_ts_ns"] for s in back)
        if other - end > th.rtp_stop_s * 1e9:
            hits.append(Hit(f"RTP {src} -> {dst} stopped {(other - end) / 1e9:.1f} s before the other direction.",
                            [streams[-1]["first_frame"]], {"src": src, "dst": dst,
                                                           "stopped_before_s": round((other - end) / 1e9, 3)}))
    return hits

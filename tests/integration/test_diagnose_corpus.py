"""Diagnostics on the public corpus (../shared/pcaps, FLOWVIZ_CORPUS_DIR; skipped when absent): facts read
from the captures, not a dump of flowviz's output.

Each test names the rule that must fire (or must not), on which call and why, and derives the frames and
numbers it expects from tshark in the test: `tshark -Y sip -T fields` for the signalling rules, the
reference `<capture>.rtp_streams.txt` (tshark -z rtp,streams, MANIFEST.md) for the media rules. The
thresholds are the defaults of docs/diagnostics.md. A finding is found by the frames that prove it (the
frame numbers are tshark's) and its call by the Call-ID tshark shows in those frames.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pytest

from flowviz.analysis.diagnose import RULES, Thresholds
from flowviz.analyze import analyze
from flowviz.errors import CaptureError
from tests.conftest import SHARED_PCAPS, corpus_params, run_tshark, skip_where_tshark_is_blind
from tests.integration.test_ingest_corpus import DECODE_AS
from tests.integration.test_media_corpus import FULL_LINE

# The defaults of docs/diagnostics.md ("Thresholds"), written out: the facts below are stated against them.
INVITE_RETRANSMISSIONS, AUTH_CHALLENGES, LOSS_PCT, JITTER_MS, DUPLICATE_S = 2, 2, 2.0, 30.0, 0.002
LOOP_CODES = (481, 482, 483)


def test_documented_thresholds_are_the_defaults():
    th = Thresholds()
    assert (th.invite_retransmissions, th.auth_challenges, th.loss_pct, th.jitter_ms, th.duplicate_ms / 1000) == (
        INVITE_RETRANSMISSIONS, AUTH_CHALLENGES, LOSS_PCT, JITTER_MS, DUPLICATE_S)


# ---------------------------------------------------------------- what tshark and flowviz say

AGGREGATOR = "\x1f"
SIP_FIELDS = {
    "frame": "frame.number", "time": "frame.time_epoch", "ip_src": "ip.src", "ip6_src": "ipv6.src",
    "udp_src": "udp.srcport", "tcp_src": "tcp.srcport", "sctp_src": "sctp.srcport", "ip_dst": "ip.dst",
    "ip6_dst": "ipv6.dst", "udp_dst": "udp.dstport", "tcp_dst": "tcp.dstport", "sctp_dst": "sctp.dstport",
    "call_id": "sip.Call-ID", "method": "sip.Method", "status": "sip.Status-Code", "status_line": "sip.Status-Line",
    "cseq": "sip.CSeq.seq", "cseq_method": "sip.CSeq.method", "to_tag": "sip.to.tag", "branch": "sip.Via.branch",
    "reason_header": "sip.Reason", "warning": "sip.Warning", "request_line": "sip.Request-Line", "icmp": "icmp.type",
}


def corpus(name: str) -> Path:
    path = SHARED_PCAPS / name
    if not path.exists():
        pytest.skip(f"{path} is absent (public corpus)")
    return path


@lru_cache(maxsize=None)
def tshark_sip(path: Path) -> tuple[dict, ...]:
    """One dict per SIP frame that was delivered (not quoted in an ICMP error): the message's fields (the
    first occurrence; Via branch: the top one), src/dst as "ip:port". The captures used here carry one
    SIP message per frame; a frame with more fails the test (the fields of its messages would mix)."""
    args = ["-r", str(path), "-n", *DECODE_AS.get(path.name, []), "-Y", "sip", "-T", "fields", "-E", "separator=/t",
            "-E", "occurrence=a", "-E", f"aggregator={AGGREGATOR}", "-E", "quote=n"]
    for field in SIP_FIELDS.values():
        args += ["-e", field]
    rows = []
    for line in run_tshark(*args).splitlines():
        values = {k: (v.split(AGGREGATOR) if v else []) for k, v in zip(SIP_FIELDS, line.split("\t"))}
        if values["icmp"]:
            continue
        starts = len(values["request_line"]) + len(values["status_line"])
        assert starts <= 1, f"{path.name} frame {values['frame'][0]} holds {starts} SIP messages"
        row = {k: (v[0] if v else None) for k, v in values.items()}
        row["frame"], row["time"] = int(row["frame"]), float(row["time"])
        row["status"] = int(row["status"]) if row["status"] else None
        row["cseq"] = int(row["cseq"]) if row["cseq"] else None
        row["reason"] = row["status_line"].split(" ", 2)[2] if row["status_line"] else None
        for side in ("src", "dst"):
            ip = row[f"ip_{side}"] or row[f"ip6_{side}"]
            port = row[f"udp_{side}"] or row[f"tcp_{side}"] or row[f"sctp_{side}"]
            row[side] = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        rows.append(row)
    return tuple(rows)


@lru_cache(maxsize=None)
def flowviz(path: Path):
    """(findings, Call-ID -> call_group_id) of `flowviz diagnose` / `flowviz calls` on the capture."""
    analysis = analyze(path)
    return analysis.findings, analysis.group_of_call_id


def findings_of(path: Path, rule: str) -> list[dict]:
    return [f for f in flowviz(path)[0] if f["rule"] == rule]


def group_of(path: Path, call_id: str) -> str:
    return flowviz(path)[1][call_id]


def reference_streams(path: Path) -> list[dict]:
    """The rows of tshark's rtp,streams reference: addresses, Lost and its %, max jitter, start time."""
    streams = []
    for line in path.with_name(path.name + ".rtp_streams.txt").read_text().splitlines():
        if m := FULL_LINE.match(line):
            streams.append({"start_s": float(m[1]), "src": f"{m[3]}:{m[4]}", "dst": f"{m[5]}:{m[6]}",
                            "packets": int(m[9]), "lost": int(m[10]), "lost_pct": float(m[11]),
                            "max_jitter_ms": float(m[17])})
    return streams


# ---------------------------------------------------------------- every capture

@pytest.mark.parametrize("path", corpus_params())
def test_every_rule_runs_and_points_at_frames_of_the_capture(path):
    """No rule crashes on any corpus capture, and every finding is a registered rule with its severity whose
    evidence frames are frames tshark shows as SIP (signalling rules) or as SIP or RTP (media and capture rules)."""
    skip_where_tshark_is_blind(path)
    try:
        findings, _ = flowviz(path)
    except CaptureError:
        pytest.skip(f"{path.name} is not a capture flowviz reads (its own tests say why)")
    if not findings:
        return
    sip = set(map(int, run_tshark("-r", str(path), "-n", *DECODE_AS.get(path.name, []), "-Y", "sip", "-T", "fields",
                                  "-e", "frame.number").split()))
    rtp = set(map(int, run_tshark("-r", str(path), "-n", "-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp", "-T", "fields",
                                  "-e", "frame.number").split()))
    for f in findings:
        assert f["rule"] in RULES and f["severity"] == RULES[f["rule"]].severity
        frames = set(f["evidence"]["frames"])
        if f["rule"] == "capture.truncated":
            continue  # frames after TCP gaps: not SIP for tshark by construction
        allowed = sip if f["rule"].startswith("sip.") else sip | rtp
        assert frames and frames <= allowed, (f["rule"], sorted(frames - allowed))


# ---------------------------------------------------------------- sip.rejected

def invite_finals(rows, call_id: str) -> list[dict]:
    """Final responses (>= 200) to the initial INVITEs (those sent without a To tag) of one Call-ID, in order."""
    initial = {r["cseq"] for r in rows if r["call_id"] == call_id and r["method"] == "INVITE" and not r["to_tag"]}
    return [r for r in rows if r["call_id"] == call_id and r["status"] and r["status"] >= 200
            and r["cseq_method"] == "INVITE" and r["cseq"] in initial]


# (capture, status code, why it is the call's final answer)
REJECTED = [
    ("goffinet__sip_captures/sip-488-Not-Acceptable-Here-codec-null.pcapng", 488,
     "the INVITE is challenged 401, sent again with credentials and answered 488 (a=inactive, no codec)"),
    ("NormB__sipnab/SIP_DTMF2.cap", 603, "the callee declines the first of three INVITEs"),
    ("sipcapture__heplify/sip_sctp.pcap", 403, "over SCTP: INVITE -> 100 -> 403 with a Reason header (Q.850 21)"),
    ("irontec__sngrep/aaa.pcap", 408, "the proxy gives up on the callee: 408 with a Warning header"),
    ("irontec__sngrep/aaa.pcap", 480, "480 with Reason q.850 cause 21"),
    ("goffinet__sip_captures/sip-routing-error-wireshark.pcapng", 404, "the dialled user does not exist"),
]


@pytest.mark.corpus
@pytest.mark.parametrize("name, code, why", REJECTED, ids=[f"{n.split('/')[1]}-{c}" for n, c, _ in REJECTED])
def test_final_failure_of_an_invite_gives_sip_rejected(name, code, why):
    path = corpus(name)
    rows = tshark_sip(path)
    answered = [r for r in rows if r["status"] == code and r["cseq_method"] == "INVITE"]
    assert answered, f"tshark shows no {code} to an INVITE in {name}"
    for call_id in dict.fromkeys(r["call_id"] for r in answered):
        finals = invite_finals(rows, call_id)
        assert finals[-1]["status"] == code, f"{call_id}: the last final answer is {finals[-1]['status']}"
        # the answer's first copy on each link it crossed (a repeat on the same link is a retransmission)
        frames = list({(r["src"], r["dst"]): r["frame"] for r in reversed(answered) if r["call_id"] == call_id}.values())
        [hit] = [f for f in findings_of(path, "sip.rejected") if set(frames) & set(f["evidence"]["frames"])]
        assert sorted(hit["evidence"]["frames"]) == sorted(frames)
        assert hit["call_group_id"] == group_of(path, call_id)
        first = next(r for r in answered if r["call_id"] == call_id)
        values = hit["evidence"]["values"]
        assert (values["status_code"], values["reason"], values["sent_by"]) == (code, first["reason"], first["src"])
        assert (values["reason_header"], values["warning"]) == (first["reason_header"], first["warning"])


@pytest.mark.corpus
def test_486_whose_invite_is_not_in_the_capture_still_gives_sip_rejected():
    """sip_ipv4_tcp_fragmented.pcap (SIP over TCP 6060): `tshark -Y 'sip.Status-Code == 486'` finds frame 12,
    a 486 Busy Here to an INVITE tshark never shows (the capture starts after it was sent); the only other
    message of that Call-ID is the caller's ACK. The 486 is still the call's final answer: sip.rejected with
    frame 12 and code 486 on that call."""
    path = corpus("sipcapture__heplify/sip_ipv4_tcp_fragmented.pcap")
    out = run_tshark("-r", str(path), "-n", *DECODE_AS[path.name], "-Y", "sip.Status-Code == 486", "-T", "fields",
                     "-e", "frame.number", "-e", "sip.Call-ID", "-e", "sip.CSeq.method")
    [(frame, call_id, method)] = [line.split("\t") for line in out.splitlines()]
    same_call = run_tshark("-r", str(path), "-n", *DECODE_AS[path.name], "-Y", f'sip.Call-ID == "{call_id}"',
                           "-T", "fields", "-e", "frame.number", "-e", "sip.Method", "-e", "sip.Status-Code")
    assert (int(frame), method) == (12, "INVITE")
    assert [line.split("\t") for line in same_call.splitlines()] == [["12", "", "486"], ["15", "ACK", ""]]
    [hit] = [f for f in findings_of(path, "sip.rejected") if 12 in f["evidence"]["frames"]]
    assert hit["call_group_id"] == group_of(path, call_id)
    assert hit["evidence"]["values"]["status_code"] == 486


# ---------------------------------------------------------------- sip.invite_retransmitted

def invite_copies(rows) -> dict[tuple, list[int]]:
    """INVITE copies per (Call-ID, top Via branch, src, dst): one transaction on one link (RFC 3261 17.1.1.2),
    copies within 2 ms of the previous one left out (the capture saw the same packet twice)."""
    by_link: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if r["method"] == "INVITE":
            by_link[(r["call_id"], r["branch"], r["src"], r["dst"])].append(r)
    out = {}
    for key, copies in by_link.items():
        kept, previous = [], None
        for r in sorted(copies, key=lambda r: r["time"]):
            if previous is None or r["time"] - previous >= DUPLICATE_S:
                kept.append(r["frame"])
            previous = r["time"]
        out[key] = kept
    return out


RETRANSMITTED = [
    ("goffinet__sip_captures/voip-extension2downata.pcap",
     "the PBX rings the ATA's lines and the ATA is slow: four INVITEs sent three times each"),
    ("irontec__sngrep/aaa.pcap", "two INVITEs to unresponsive servers sent three times each before any answer"),
    ("goffinet__sip_captures/sip-2phones-B2BUA-Asterisk.pcapng",
     "Asterisk's INVITE to the phone is re-sent once after 500 ms (timer A): one retransmission, below the threshold"),
]


@pytest.mark.corpus
@pytest.mark.parametrize("name, why", RETRANSMITTED, ids=[n.split("/")[1] for n, _ in RETRANSMITTED])
def test_invite_sent_again_and_again_gives_invite_retransmitted(name, why):
    """An INVITE sent >= 1 + 2 times on one link must give sip.invite_retransmitted on its call with exactly
    those frames and the count; fewer repeats must give none."""
    path = corpus(name)
    links = invite_copies(tshark_sip(path))
    expected = {tuple(frames): key for key, frames in links.items() if len(frames) - 1 >= INVITE_RETRANSMISSIONS}
    hits = findings_of(path, "sip.invite_retransmitted")
    assert {tuple(f["evidence"]["frames"]): f for f in hits}.keys() == expected.keys()
    for f in hits:
        call_id, _, src, dst = expected[tuple(f["evidence"]["frames"])]
        assert f["call_group_id"] == group_of(path, call_id)
        assert f["evidence"]["values"] == {"src": src, "dst": dst, "retransmissions": len(f["evidence"]["frames"]) - 1}
    if "below the threshold" in why:
        assert not expected and any(len(frames) == 2 for frames in links.values())
    else:
        assert expected


# ---------------------------------------------------------------- sip.cancel_race

CANCELS = [
    ("NormB__sipnab/DTMFsipinfo.pcap", "the 200 OK to the INVITE crosses the caller's CANCEL (the echo answers at once)"),
    ("goffinet__sip_captures/voip-extension2downata.pcap", "the PBX cancels lines that never answer: 487, no race"),
    ("irontec__sngrep/aaa.pcap", "CANCELs answered 487 or unanswered: no 2xx after them"),
]


@pytest.mark.corpus
@pytest.mark.parametrize("name, why", CANCELS, ids=[n.split("/")[1] for n in [c[0] for c in CANCELS]])
def test_200_after_the_cancel_gives_cancel_race(name, why):
    """Per Call-ID: the first CANCEL and the first 2xx to the INVITE after it (tshark) must give sip.cancel_race
    with both frames, then the BYE's if one follows; a Call-ID with a CANCEL and no 2xx after it gives none."""
    path = corpus(name)
    rows = tshark_sip(path)
    expected = {}
    for call_id in dict.fromkeys(r["call_id"] for r in rows if r["method"] == "CANCEL"):
        mine = [r for r in rows if r["call_id"] == call_id]
        cancel = next(r for r in mine if r["method"] == "CANCEL")
        ok = next((r for r in mine if r["status"] and 200 <= r["status"] < 300 and r["cseq_method"] == "INVITE"
                   and r["time"] > cancel["time"]), None)
        if ok:
            bye = [r["frame"] for r in mine if r["method"] == "BYE"][:1]
            expected[group_of(path, call_id)] = [cancel["frame"], ok["frame"], *bye]
    assert {f["call_group_id"]: f["evidence"]["frames"] for f in findings_of(path, "sip.cancel_race")} == expected
    assert bool(expected) == ("crosses" in why)


# ---------------------------------------------------------------- sip.bye_unanswered (answered >= 300)

BYES = [
    ("goffinet__sip_captures/sip-flow-private.pcapng", "the BYE is answered 500 Request out of order"),
    ("goffinet__sip_captures/RTP-Protocol.pcap", "the BYE is answered 200: nothing to say"),
]


@pytest.mark.corpus
@pytest.mark.parametrize("name, why", BYES, ids=[n.split("/")[1] for n, _ in BYES])
def test_bye_refused_gives_bye_unanswered(name, why):
    """A BYE whose final answer (tshark) is >= 300 (481-483 have their own rule) must give sip.bye_unanswered with
    the BYE's copies and that answer as frames and the code as value."""
    path = corpus(name)
    rows = tshark_sip(path)
    expected = {}
    for (call_id, cseq) in dict.fromkeys((r["call_id"], r["cseq"]) for r in rows if r["method"] == "BYE"):
        final = next((r for r in rows if r["call_id"] == call_id and r["cseq"] == cseq and r["cseq_method"] == "BYE"
                      and r["status"] and r["status"] >= 200), None)
        if final and final["status"] >= 300 and final["status"] not in LOOP_CODES:
            copies = [r["frame"] for r in rows if r["call_id"] == call_id and r["cseq"] == cseq and r["method"] == "BYE"]
            expected[group_of(path, call_id)] = (copies + [final["frame"]], final["status"])
    got = {f["call_group_id"]: (f["evidence"]["frames"], f["evidence"]["values"]["status_code"])
           for f in findings_of(path, "sip.bye_unanswered")}
    assert got == expected
    assert bool(expected) == ("500" in why)


# ---------------------------------------------------------------- sip.auth_loop

AUTH = [
    ("irontec__sngrep/aaa.pcap", "a REGISTER refused again and again (CSeq 70..74), another three times (3..5)"),
    ("goffinet__sip_captures/private-test-sip.pcapng", "REGISTERs with wrong credentials: 407, 407 again, then 403"),
    ("MaryLS__Laborator09/sip.pcap", "each REGISTER challenge (401, 407) answered once: the normal handshake"),
]


@pytest.mark.corpus
@pytest.mark.parametrize("name, why", AUTH, ids=[n.split("/")[1] for n, _ in AUTH])
def test_challenged_again_and_again_gives_auth_loop(name, why):
    """Per Call-ID and method, the longest run of consecutive CSeq numbers (in the order the requests carry
    them) that were each answered 401/407 (tshark); a run of >= 2 must give sip.auth_loop with its length."""
    path = corpus(name)
    rows = tshark_sip(path)
    challenged = {(r["call_id"], r["cseq_method"], r["cseq"]) for r in rows if r["status"] in (401, 407)}
    expected = {}
    requests = defaultdict(set)
    for r in rows:
        if r["method"] and r["method"] not in ("ACK", "CANCEL"):
            requests[(r["call_id"], r["method"])].add(r["cseq"])
    for (call_id, method), numbers in requests.items():
        run, best = [], []
        for n in sorted(numbers):
            run = run + [n] if (call_id, method, n) in challenged else []
            best = run if len(run) > len(best) else best
        if len(best) >= AUTH_CHALLENGES:
            expected[(group_of(path, call_id), method, len(best))] = (best[0], best[-1])
    got = {(f["call_group_id"], f["evidence"]["values"]["method"], f["evidence"]["values"]["challenges"]): f
           for f in findings_of(path, "sip.auth_loop")}
    assert got.keys() == expected.keys()
    for key, (low, high) in expected.items():
        assert f"(CSeq {low}..{high})" in got[key]["explanation"]
    assert bool(expected) == ("again" in why)


# ---------------------------------------------------------------- media.packet_loss, media.high_jitter

MEDIA = [
    ("NormB__sipnab/Asterisk_ZFONE_XLITE.pcap", "one direction lost 64.3 % (ZRTP then SRTP), the other 0.1 %"),
    ("NormB__sipnab/sip-rtp-opus-hybrid.pcap", "5 Opus packets of a clipped stream: 98.4 % lost by sequence"),
    ("NormB__sipnab/SIP_DTMF2.cap", "0.3 % loss and 15.8 ms jitter at most: under both thresholds"),
    ("goffinet__sip_captures/Forensic_challenge_4.pcap", "jitter up to 122 ms; negative loss (duplicates) is no loss"),
    ("NormB__sipnab/h263-over-rtp.pcap", "H.263 video frames sent in bursts: 32.2 ms jitter"),
    ("sippy__rtpproxy/rtcp.o.pcap", "no SIP: 0.4 % loss on a stream of no call, no finding"),
]


@pytest.mark.corpus
@pytest.mark.parametrize("name, why", MEDIA, ids=[n.split("/")[1] for n, _ in MEDIA])
def test_loss_and_jitter_of_tsharks_streams_give_the_media_rules(name, why):
    """For each stream of the reference rtp,streams: Lost % above 2 must give media.packet_loss with tshark's
    Lost, max jitter above 30 ms media.high_jitter with tshark's max jitter (3 decimals), each pointing at the
    stream's first packet (tshark's Start time); at or under the thresholds, neither."""
    path = corpus(name)
    streams = reference_streams(path)
    assert streams
    times = {}
    for line in run_tshark("-r", str(path), "-n", "-T", "fields", "-e", "frame.number", "-e",
                           "frame.time_relative").splitlines():
        number, relative = line.split("\t")
        times[int(number)] = round(float(relative), 6)
    loss = {(f["evidence"]["values"]["src"], f["evidence"]["values"]["dst"]): f for f in findings_of(path, "media.packet_loss")}
    jitter = {(f["evidence"]["values"]["src"], f["evidence"]["values"]["dst"]): f
              for f in findings_of(path, "media.high_jitter")}
    expected_loss = {(s["src"], s["dst"]): s for s in streams if s["lost_pct"] > LOSS_PCT}
    expected_jitter = {(s["src"], s["dst"]): s for s in streams if s["max_jitter_ms"] > JITTER_MS}
    assert loss.keys() == expected_loss.keys() and jitter.keys() == expected_jitter.keys()
    for key, s in expected_loss.items():
        assert loss[key]["evidence"]["values"]["lost"] == s["lost"]
        assert round(loss[key]["evidence"]["values"]["lost_pct"], 1) == s["lost_pct"]
        assert [times[n] for n in loss[key]["evidence"]["frames"]] == [s["start_s"]]
    for key, s in expected_jitter.items():
        assert jitter[key]["evidence"]["values"]["max_jitter_ms"] == s["max_jitter_ms"]
        assert [times[n] for n in jitter[key]["evidence"]["frames"]] == [s["start_s"]]
    assert bool(expected_loss or expected_jitter) == ("under" not in why and "no finding" not in why)


# ---------------------------------------------------------------- a clean call

@pytest.mark.corpus
def test_clean_call_has_no_warning_or_error():
    """RTP-Protocol.pcap (tshark): one INVITE answered 200 and ACKed, a BYE answered 200, two RTP streams in
    opposite directions with nothing lost and jitter far under 30 ms. No rule may call that a problem."""
    path = corpus("goffinet__sip_captures/RTP-Protocol.pcap")
    rows = tshark_sip(path)
    [call_id] = {r["call_id"] for r in rows}
    assert [r["status"] for r in invite_finals(rows, call_id)] == [200]
    assert {r["method"] for r in rows if r["method"]} >= {"INVITE", "ACK", "BYE"}
    assert [r["status"] for r in rows if r["cseq_method"] == "BYE" and r["status"]] == [200]
    streams = reference_streams(path)
    assert sorted((s["src"], s["dst"]) for s in streams) == sorted((s["dst"], s["src"]) for s in streams)
    assert all(s["lost"] == 0 and s["max_jitter_ms"] < JITTER_MS for s in streams) and len(streams) == 2
    findings, groups = flowviz(path)
    assert [f for f in findings if f["severity"] != "info"] == []
    assert groups[call_id] == hashlib.sha1(call_id.encode()).hexdigest()[:10]  # docs/correlation.md section 3


def test_ids_are_what_the_captures_are_called():
    """The handful lists above name captures of MANIFEST.md (a typo would only skip)."""
    manifest = (SHARED_PCAPS / "MANIFEST.md")
    if not manifest.exists():
        pytest.skip(f"{SHARED_PCAPS} is absent (public corpus)")
    listed = set(re.findall(r"^\| ([^|]+?) \| ", manifest.read_text(), re.M))
    for name, *_ in REJECTED + RETRANSMITTED + CANCELS + BYES + AUTH + MEDIA:
        assert name in listed, name

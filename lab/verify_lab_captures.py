#!/usr/bin/env python3
"""Check the lab captures against sample_pcaps/lab/expected.json with tshark
(independent of flowviz's own parser).

Checks per capture: total packets; every packet is SIP or RTP (no ICMP, no
stray traffic); SIP message count; the set of Call-IDs; per call and per link
the exact sequence of (message, CSeq, src, dst, number of Via values); the
final status of each call on UA1's link; RTP streams (src, dst, SSRC, payload
type, packets, no loss) from `tshark -z rtp,streams`.

Usage: verify_lab_captures.py [DIR]   (default: sample_pcaps/lab next to lab/)
Exit status 0 when everything matches.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def tshark(*args):
    r = subprocess.run(["tshark", "-n", *args], capture_output=True, text=True, check=True)
    return r.stdout


def sip_messages(pcap):
    fields = ["frame.number", "ip.src", "udp.srcport", "ip.dst", "udp.dstport", "sip.Method",
              "sip.Status-Code", "sip.CSeq.seq", "sip.CSeq.method", "sip.Call-ID", "sip.Via.transport"]
    out = tshark("-r", pcap, "-Y", "sip", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
                 "-E", "aggregator=|", *sum((["-e", f] for f in fields), []))
    msgs = []
    for line in out.splitlines():
        n, src, sport, dst, dport, method, status, cseq, cmethod, cid, via = line.split("\t")
        msgs.append({"frame": int(n), "src": f"{src}:{sport}", "dst": f"{dst}:{dport}",
                     "msg": method or status, "cseq": f"{cseq} {cmethod}", "call_id": cid,
                     "via_values": len(via.split("|")) if via else 0})
    return msgs


def rtp_streams(pcap):
    out = tshark("-r", pcap, "-q", "-o", "rtp.heuristic_rtp:TRUE", "-z", "rtp,streams")
    streams = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 10 and f[2].count(".") == 3 and f[6].startswith("0x"):
            streams.append({"src": f"{f[2]}:{f[3]}", "dst": f"{f[4]}:{f[5]}", "ssrc": f[6].lower(),
                            "payload": f[7], "packets": int(f[8]), "lost": int(f[9])})
    return streams


def count_frames(pcap, dfilter=None):
    args = ["-r", pcap, "-o", "rtp.heuristic_rtp:TRUE", "-T", "fields", "-e", "frame.number"]
    if dfilter:
        args += ["-Y", dfilter]
    return len(tshark(*args).split())


def link_of(src, dst, links):
    for k, (a, b) in links.items():
        if {a, b} == {src, dst}:
            return k
    return None


def check(name, pcap, exp, links, problems):
    def bad(msg):
        problems.append(f"{name}: {msg}")

    total = count_frames(pcap)
    if total != exp["packets_total"]:
        bad(f"{total} packets, expected {exp['packets_total']}")
    other = count_frames(pcap, "not sip and not rtp")
    if other:
        bad(f"{other} packets that are neither SIP nor RTP")

    msgs = sip_messages(pcap)
    if len(msgs) != exp["sip_messages"]:
        bad(f"{len(msgs)} SIP messages, expected {exp['sip_messages']}")
    cids = sorted({x["call_id"] for x in msgs})
    if cids != sorted(exp["call_ids"]):
        bad(f"Call-IDs {cids[:5]}... differ from expected {sorted(exp['call_ids'])[:5]}...")

    for c in exp["calls_detail"]:
        mine = [x for x in msgs if x["call_id"] == c["call_id"]]
        if len(mine) != c["sip_messages"]:
            bad(f"{c['call_id']}: {len(mine)} SIP messages, expected {c['sip_messages']}")
        final = [x["msg"] for x in mine if x["dst"] == exp_path0 and x["msg"].isdigit()
                 and int(x["msg"]) >= 200 and x["cseq"].endswith("INVITE")]
        if final != [str(c["final_status"])]:
            bad(f"{c['call_id']}: final INVITE response(s) to UA1 {final}, expected {c['final_status']}")
        ladder = LADDER_BY_STATE.get(c["final_state"])
        if ladder is None:
            continue
        for link in links:
            want = [(s["msg"], s["cseq"], s["src"], s["dst"], s["via_values"]) for s in ladder if s["link"] == link]
            got = [(x["msg"], x["cseq"], x["src"], x["dst"], x["via_values"]) for x in mine
                   if link_of(x["src"], x["dst"], links) == link]
            if got != want:
                bad(f"{c['call_id']} {link}: got {got}, expected {want}")

    streams = rtp_streams(pcap)
    if len(streams) != exp["rtp_streams"]:
        bad(f"{len(streams)} RTP streams, expected {exp['rtp_streams']}")
    want = sorted((s["src"], s["dst"], s["ssrc"], s["packets"]) for s in exp["rtp"])
    got = sorted((s["src"], s["dst"], s["ssrc"], s["packets"]) for s in streams)
    if got != want:
        diff = sorted(set(got) ^ set(want))[:6]
        bad(f"RTP streams differ from expected, e.g. {diff}")
    for s in streams:
        if s["lost"] or s["payload"] != "g711A":
            bad(f"RTP stream {s} lost packets or is not g711A")
    return len(msgs), streams


exp_path0 = None
LADDER_BY_STATE = {}


def main():
    global exp_path0
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "sample_pcaps", "lab")
    with open(os.path.join(d, "expected.json")) as f:
        doc = json.load(f)
    exp_path0 = doc["path"][0]
    caps = doc["captures"]
    LADDER_BY_STATE.update({"completed": caps["reference_call.pcap"]["ladder"],
                            "busy": caps["busy_486.pcap"]["ladder"],
                            "cancelled": caps["cancel.pcap"]["ladder"]})
    problems = []
    for name, exp in caps.items():
        pcap = os.path.join(d, name)
        if not os.path.exists(pcap):
            problems.append(f"{name}: missing")
            continue
        n, streams = check(name, pcap, exp, doc["links"], problems)
        pk = sorted({s["packets"] for s in streams})
        print(f"{name}: {os.path.getsize(pcap)} bytes, {exp['calls']} call(s), {n} SIP messages, "
              f"{len(streams)} RTP streams (packets per stream: {pk or '-'})")
    for p in problems[:20]:
        print("MISMATCH", p[:400])
    if len(problems) > 20:
        print(f"... and {len(problems) - 20} more")
    print("OK: all captures match expected.json" if not problems else f"{len(problems)} mismatch(es)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

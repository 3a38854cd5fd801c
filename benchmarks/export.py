#!/usr/bin/env python3
"""One call of 1,000 SIP messages: `flowviz export` and `flowviz ladder`, next to tshark and sngrep.

    .venv/bin/python benchmarks/export.py [--repeat 5] [--flowviz-root before=/tmp/fv-before ...]

Builds a capture with one call of exactly 1,000 SIP messages through one proxy
(UDP, Record-Route; INVITE/100/180/200/ACK on both hops, 245 in-dialog INFO
transactions with DTMF bodies from either side, one re-INVITE, BYE), plus 10 s of
G.711 RTP (and one RTCP SR + SDES per stream) between the two user agents. The packets are made by the
writers of tests/synth (imported, not copied), so the same arguments always give
the same bytes. Then it times whole commands, each in its own process:

  flowviz --no-cache export F --call ID --json OUT --pcap OUT2 --force
  flowviz --no-cache ladder F --call ID --format txt           (stdout to a file)
  flowviz --no-cache ladder F --call ID --format svg -o OUT --force
  flowviz --no-cache ladder F --call ID --format html -o OUT --force
                                            (--ladder-formats txt,svg,html,png,pdf for more)
  tshark -r F -Y 'sip.Call-ID == "ID"' -w OUT     (the call's SIP frames: the reference)
  tshark -r F -q -z sip,stat
  sngrep -N -q -r -I F -O OUT ID                   (sngrep saving the call: SIP, RTP and RTCP)

in rounds (every command once per round; odd rounds in reverse order), after one
untimed warm-up round (it fills numba's on-disk cache of a fresh tree). Reports best
and median wall seconds, each as a ratio to the tshark filter run (best / best,
median / median; > 1 = slower than tshark), and peak RSS (`/usr/bin/time -f %M`).

`--flowviz-root LABEL=PATH` (repeatable) runs the flowviz commands with the flowviz
package of PATH (PYTHONPATH=PATH, working directory outside any tree) through the
console script's entry point, so two versions are compared in the same rounds.
Without it, the flowviz of this repository runs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # tests.synth, for the packet writers
sys.path.insert(0, str(HERE))  # ingest.py's helpers

from ingest import (GNU_TIME, machine_info, md_escape, parse_root, python_for_children, read_timed,  # noqa: E402
                    timed)
from tests.synth import scenario_kit as K  # noqa: E402
from tests.synth import voip as V  # noqa: E402

# the console script `flowviz` (pyproject: flowviz.cli:run), for any tree on PYTHONPATH
CLI_ENTRY = "import sys; sys.argv[0] = 'flowviz'; from flowviz.cli import run; run()"
CALL_ID = "bench-1000-messages@atlanta.example.com"
MS = K.MS

# ---------------------------------------------------------------------------
# the capture
# ---------------------------------------------------------------------------

ALICE = V.Party("10.0.0.10", 5060, "alice", "Alice", "atlanta.example.com", rtp_port=40000, ssrc=0x1A2B3C4D)
PROXY = V.Party("10.0.0.1", 5060, "proxy", "Proxy", "proxy.example.com")
BOB = V.Party("10.0.0.20", 5060, "bob", "Bob", "biloxi.example.com", rtp_port=50000, ssrc=0x5E6F7081)
TAGS = {"alice": "a1b2c3", "bob": "d4e5f6"}
REASONS = {100: "Trying", 180: "Ringing", 200: "OK"}
DIGITS = "0123456789*#"


class OneCall:
    """The SIP of one dialog between Alice and Bob through a record-routing proxy."""

    def __init__(self, tl: K.Timeline):
        self.tl = tl
        self.cseq = {"alice": 0, "bob": 0}
        self.branches = 0
        self.messages = 0

    def _send(self, t: int, label: str, text: bytes, cseq: str, src: V.Party, dst: V.Party, sender: str) -> None:
        m = V.SipMessage(label, text, CALL_ID, cseq, sender)
        self.tl.sip_udp(t, m, (src.ip, src.sip_port), (dst.ip, dst.sip_port))
        self.messages += 1

    @staticmethod
    def _via(p: V.Party, branch: str) -> str:
        return f"SIP/2.0/UDP {V.hostport(p.ip, p.sip_port)};branch=z9hG4bK{branch};rport"

    @staticmethod
    def _aor(p: V.Party) -> str:
        return f'"{p.display}" <sip:{p.user}@{p.domain}>'

    @staticmethod
    def _contact(p: V.Party) -> str:
        return f"<sip:{p.user}@{V.hostport(p.ip, p.sip_port)};transport=udp>"

    def transaction(self, t: int, method: str, uac: V.Party, *, initial: bool = False, body: bytes = b"",
                    content_type: str = "application/sdp", answer: bytes = b"",
                    provisional: tuple[int, ...] = (), gap_ms: tuple[int, ...] = (2, 5, 7)) -> int:
        """One request from ``uac`` to the other side and its final 200, each on both hops
        (uac -> proxy -> uas, then back), with ``provisional`` responses before the 200.
        Returns the time after the last message."""
        uas = BOB if uac is ALICE else ALICE
        self.cseq[uac.user] += 1
        n = self.cseq[uac.user] if uac is ALICE else 100 + self.cseq[uac.user]
        cseq = f"{n} {method}"
        self.branches += 1
        b_uac, b_proxy = f"{uac.user[0]}{self.branches:04d}", f"p{self.branches:04d}"
        from_tag = TAGS[uac.user]
        to_tag = "" if initial else f";tag={TAGS[uas.user]}"
        rr = f"<sip:{V.hostport(PROXY.ip, PROXY.sip_port)};lr>"
        common = [("From", f"{self._aor(uac)};tag={from_tag}"), ("To", self._aor(uas) + to_tag),
                  ("Call-ID", CALL_ID), ("CSeq", cseq)]
        ruri = f"sip:{uas.user}@{V.hostport(uas.ip, uas.sip_port)}"
        if initial:
            ruri = f"sip:{uas.user}@{uas.domain}"
        first = [("Via", self._via(uac, b_uac)), ("Max-Forwards", "70")]
        if not initial:
            first.append(("Route", rr))
        req1 = V.build_message(f"{method} {ruri} SIP/2.0",
                               first + common + [("Contact", self._contact(uac)),
                                                 ("User-Agent", "flowviz-bench-ua/1.0")], body, content_type)
        second = [("Via", self._via(PROXY, b_proxy)), ("Via", self._via(uac, b_uac) + f"={uac.sip_port};received={uac.ip}"),
                  ("Max-Forwards", "69")]
        if initial:
            second.append(("Record-Route", rr))
        req2 = V.build_message(f"{method} {ruri} SIP/2.0",
                               second + common + [("Contact", self._contact(uac)),
                                                  ("User-Agent", "flowviz-bench-ua/1.0")], body, content_type)
        self._send(t, method, req1, cseq, uac, PROXY, "caller")
        t += gap_ms[0] * MS
        if initial:  # the proxy's 100 Trying to the caller
            trying = V.build_message("SIP/2.0 100 Trying", [("Via", self._via(uac, b_uac) + f"={uac.sip_port};received={uac.ip}"),
                                                            *common[:2], *common[2:]])
            self._send(t, "100", trying, cseq, PROXY, uac, "callee")
        self._send(t + MS, method, req2, cseq, PROXY, uas, "caller")
        t += gap_ms[1] * MS
        for code in (*provisional, 200):
            tag = "" if code == 100 else f";tag={TAGS[uas.user]}"
            hdr = [("From", common[0][1]), ("To", self._aor(uas) + tag), ("Call-ID", CALL_ID), ("CSeq", cseq)]
            extra = [] if code == 100 else [("Contact", self._contact(uas))]
            if initial and code != 100:
                extra.append(("Record-Route", rr))
            extra.append(("Server", "flowviz-bench-ua/1.0"))
            resp_body = answer if code == 200 else b""
            via_uac = ("Via", self._via(uac, b_uac) + f"={uac.sip_port};received={uac.ip}")
            r1 = V.build_message(f"SIP/2.0 {code} {REASONS[code]}",
                                 [("Via", self._via(PROXY, b_proxy) + f"={PROXY.sip_port};received={PROXY.ip}"), via_uac,
                                  *hdr, *extra], resp_body)
            r2 = V.build_message(f"SIP/2.0 {code} {REASONS[code]}", [via_uac, *hdr, *extra], resp_body)
            self._send(t, str(code), r1, cseq, uas, PROXY, "callee")
            if code != 100:  # the proxy absorbs the callee's 100
                self._send(t + MS, str(code), r2, cseq, PROXY, uac, "callee")
            t += (gap_ms[2] if code == 200 else 30) * MS
        return t

    def ack(self, t: int, cseq_n: int) -> int:
        self.branches += 1
        b_uac, b_proxy = f"a{self.branches:04d}", f"p{self.branches:04d}"
        cseq = f"{cseq_n} ACK"
        common = [("From", f"{self._aor(ALICE)};tag={TAGS['alice']}"), ("To", f"{self._aor(BOB)};tag={TAGS['bob']}"),
                  ("Call-ID", CALL_ID), ("CSeq", cseq)]
        ruri = f"sip:{BOB.user}@{V.hostport(BOB.ip, BOB.sip_port)}"
        rr = f"<sip:{V.hostport(PROXY.ip, PROXY.sip_port)};lr>"
        a1 = V.build_message(f"ACK {ruri} SIP/2.0", [("Via", self._via(ALICE, b_uac)), ("Max-Forwards", "70"),
                                                     ("Route", rr), *common])
        a2 = V.build_message(f"ACK {ruri} SIP/2.0", [("Via", self._via(PROXY, b_proxy)),
                                                     ("Via", self._via(ALICE, b_uac) + f"={ALICE.sip_port};received={ALICE.ip}"),
                                                     ("Max-Forwards", "69"), *common])
        self._send(t, "ACK", a1, cseq, ALICE, PROXY, "caller")
        self._send(t + MS, "ACK", a2, cseq, PROXY, BOB, "caller")
        return t + 10 * MS


def build_capture(info_transactions: int = 245, rtp_seconds: int = 10) -> tuple[bytes, dict]:
    """(pcap bytes, expected dict of tests.synth) of the one call: 10 setup messages, 4 per INFO
    transaction, 6 for the re-INVITE, 4 for the BYE (245 INFO transactions: 1,000 messages)."""
    tl = K.Timeline()
    call = OneCall(tl)
    t = K.BASE_TS_NS
    offer = V.sdp(ALICE, session_id=1001, payload_types=(0, 8, 101))
    answer = V.sdp(BOB, session_id=2002, payload_types=(0, 101))
    t = call.transaction(t, "INVITE", ALICE, initial=True, body=offer, answer=answer, provisional=(100, 180))
    t = call.ack(t, call.cseq["alice"])
    rtp_start = t + 20 * MS
    K.media(tl, start=rtp_start, caller=ALICE, callee=BOB, rtp_packets=rtp_seconds * 50, pt=0,
            rtcp_every=rtp_seconds * 50)  # one SR + SDES per stream, at the end
    step = (rtp_seconds * 1000 * MS) // (info_transactions + 2)
    for k in range(info_transactions):
        uac = ALICE if k % 3 else BOB
        digit = DIGITS[k % len(DIGITS)]
        call.transaction(rtp_start + (k + 1) * step, "INFO", uac,
                         body=f"Signal={digit}\r\nDuration=160\r\n".encode(), content_type="application/dtmf-relay")
    t = rtp_start + (info_transactions + 1) * step
    reoffer = V.sdp(ALICE, session_id=1001, payload_types=(0, 8, 101))
    t = call.transaction(t, "INVITE", ALICE, body=reoffer, answer=answer)
    call.ack(t, call.cseq["alice"])
    call.transaction(rtp_start + (rtp_seconds * 1000 + 200) * MS, "BYE", ALICE)
    cap = K.finish_pcap("export_1000", tl, link="ether", description="one call of 1,000 SIP messages")
    exp = cap.expected
    assert exp["sip_messages"] == call.messages, (exp["sip_messages"], call.messages)
    assert exp["call_ids"] == [CALL_ID]
    return cap.data, exp


# ---------------------------------------------------------------------------
# the commands
# ---------------------------------------------------------------------------


@dataclass
class Cmd:
    key: str
    label: str
    argv: list[str]
    env: dict
    cwd: str
    stdout_to: str | None = None  # stdout goes here (else: a log file)
    outputs: tuple[str, ...] = ()  # removed before each run
    reference: bool = False
    seconds: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    status: str = "ok"
    detail: str = ""
    check: str = ""

    @property
    def best(self):
        return min(self.seconds) if self.seconds else None

    @property
    def median(self):
        return statistics.median(self.seconds) if self.seconds else None


def flowviz_env(root: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = root
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def flowviz_commands(label: str, root: str, capture: str, out: str, work: str,
                     formats: tuple[str, ...] = ("txt", "svg", "html")) -> list[Cmd]:
    py = python_for_children()
    base = [py, "-c", CLI_ENTRY, "--no-cache"]
    env = flowviz_env(root)
    tag = f"{label}-" if label else ""
    name = f"flowviz ({label})" if label else "flowviz"
    j, p = os.path.join(out, f"{tag}call.json"), os.path.join(out, f"{tag}call.pcap")
    ladder = [*base, "ladder", capture, "--call", CALL_ID]
    cmds = [Cmd(f"{tag}export", f"{name} export --json --pcap",
                [*base, "export", capture, "--call", CALL_ID, "--json", j, "--pcap", p, "--force"], env, work,
                outputs=(j, p))]
    for fmt in formats:
        o = os.path.join(out, f"{tag}ladder.{fmt}")
        if fmt == "txt":  # a text format goes to stdout, as a user would type it
            cmds.append(Cmd(f"{tag}ladder-txt", f"{name} ladder --format txt", [*ladder, "--format", "txt"], env,
                            work, stdout_to=o, outputs=(o,)))
        else:
            cmds.append(Cmd(f"{tag}ladder-{fmt}", f"{name} ladder --format {fmt}",
                            [*ladder, "--format", fmt, "-o", o, "--force"], env, work, outputs=(o,)))
    return cmds


def reference_commands(capture: str, out: str, work: str) -> tuple[list[Cmd], list[str]]:
    cmds, missing = [], []
    env = dict(os.environ)
    tshark = shutil.which("tshark")
    if tshark:
        o = os.path.join(out, "tshark-call.pcap")
        cmds.append(Cmd("tshark-filter", "tshark -Y 'sip.Call-ID == ...' -w",
                        [tshark, "-r", capture, "-Y", f'sip.Call-ID == "{CALL_ID}"', "-w", o], env, work,
                        outputs=(o,), reference=True))
        cmds.append(Cmd("tshark-sipstat", "tshark -q -z sip,stat", [tshark, "-r", capture, "-q", "-z", "sip,stat"],
                        env, work, stdout_to=os.path.join(out, "tshark-sipstat.txt"), reference=True))
    else:
        missing.append("tshark (not in PATH)")
    sngrep = shutil.which("sngrep")
    if sngrep:
        o = os.path.join(out, "sngrep-call.pcap")
        cmds.append(Cmd("sngrep", "sngrep -N -q -r -I F -O OUT ID",
                        [sngrep, "-N", "-q", "-r", "-I", capture, "-O", o, CALL_ID],
                        env, work, outputs=(o,), reference=True))
    else:
        missing.append("sngrep (not in PATH)")
    return cmds, missing


def run_once(cmd: Cmd, timeout: float) -> dict:
    for o in cmd.outputs:
        if os.path.exists(o):
            os.remove(o)
    tfile = os.path.join(cmd.cwd, f"{cmd.key}.time")
    full = timed(cmd.argv, tfile)
    out_name = cmd.stdout_to or os.path.join(cmd.cwd, f"{cmd.key}.out")
    with open(out_name, "wb") as out, open(os.path.join(cmd.cwd, f"{cmd.key}.err"), "wb") as err:
        t0 = time.perf_counter()
        try:
            p = subprocess.run(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cmd.cwd, env=cmd.env,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"rc": None, "error": f"timeout after {timeout:.0f} s"}
        wall = time.perf_counter() - t0
    rss, rc = read_timed(tfile, None, p.returncode)
    if rc != 0:
        tail = open(os.path.join(cmd.cwd, f"{cmd.key}.err"), errors="replace").read().strip().splitlines()
        return {"rc": rc, "error": f"exit {rc}: {tail[-1][:200] if tail else ''}"}
    return {"rc": 0, "wall": wall, "rss_kb": rss}


def bench(cmds: list[Cmd], repeat: int, timeout: float) -> None:
    rounds = [("warm-up", None)] + [(f"{i + 1}/{repeat}", i) for i in range(repeat)]
    for name, i in rounds:
        order = cmds if (i or 0) % 2 == 0 else list(reversed(cmds))
        shown = []
        for c in order:
            if c.status != "ok":
                continue
            r = run_once(c, timeout)
            if "error" in r:
                c.status, c.detail = "failed", r["error"]
                shown.append(f"{c.key} FAILED")
                continue
            if i is not None:
                c.seconds.append(r["wall"])
                if r["rss_kb"] is not None:
                    c.rss_kb.append(r["rss_kb"])
            shown.append(f"{c.key} {r['wall']:.2f}")
        print(f"round {name}: " + ", ".join(shown), flush=True)


def checks(cmds: list[Cmd]) -> None:
    """What each command wrote, to see that they all did the work (after the last round)."""
    for c in cmds:
        if c.status != "ok":
            continue
        try:
            if c.key.endswith("export"):
                data = json.loads(Path(c.outputs[0]).read_text())
                msgs = data.get("messages") or data.get("ladder", {}).get("messages") or []
                c.check = (f"JSON {len(msgs)} messages, {len(data.get('streams') or [])} streams; "
                           f"pcap {count_frames(c.outputs[1])} frames")
            elif "ladder-" in c.key:
                c.check = f"{os.path.getsize(c.outputs[0]) / 1e3:,.0f} kB"
            elif c.key in ("tshark-filter", "sngrep"):
                c.check = f"{count_frames(c.outputs[0])} frames"
            elif c.key == "tshark-sipstat":
                txt = Path(c.stdout_to).read_text()
                total = [line for line in txt.splitlines() if "SIP Statistics" in line or "Number of" in line]
                c.check = "; ".join(s.strip() for s in total[:2])
        except (OSError, ValueError, IndexError, KeyError) as e:
            c.check = f"check failed: {e}"


def count_frames(path: str) -> str:
    capinfos = shutil.which("capinfos")
    if capinfos:
        p = subprocess.run([capinfos, "-c", "-M", path], capture_output=True, text=True)
        for line in p.stdout.splitlines():
            if "Number of packets" in line:
                return line.split(":", 1)[1].strip()
    return "?"


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------

HEAD = ["command", "best s", "median s", "best / tshark", "median / tshark", "peak RSS MB", "output"]


def rows_of(cmds: list[Cmd]) -> list[list[str]]:
    ref = next((c for c in cmds if c.key == "tshark-filter" and c.seconds), None)
    rows = []
    for c in cmds:
        if not c.seconds:
            rows.append([c.label, c.status, "", "", "", "", c.detail])
            continue
        rows.append([
            c.label, f"{c.best:.2f}", f"{c.median:.2f}",
            f"{c.best / ref.best:.2f}x" if ref else "n/a",
            f"{c.median / ref.median:.2f}x" if ref else "n/a",
            f"{max(c.rss_kb) / 1024:.0f}" if c.rss_kb else "n/a",
            c.check,
        ])
    return rows


def text_table(rows: list[list[str]]) -> str:
    w = [max(len(HEAD[i]), *(len(r[i]) for r in rows)) for i in range(len(HEAD) - 1)]

    def line(cells):
        return "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(cells[:-1])) + "  " + cells[-1]
    return "\n".join([line(HEAD), "  ".join("-" * x for x in w) + "  ------", *(line(r) for r in rows)])


def versions(roots: list[tuple[str, str]]) -> dict:
    v = {}
    for name, argv in (("tshark", ["tshark", "--version"]), ("sngrep", ["sngrep", "-V"])):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
            v[name] = out.splitlines()[0].strip()
        except (OSError, IndexError, subprocess.TimeoutExpired):
            v[name] = "not available"
    code = ("import sys, numpy, polars, plotly; print(sys.version.split()[0], numpy.__version__, polars.__version__, "
            "plotly.__version__)")
    out = subprocess.run([python_for_children(), "-c", code], capture_output=True, text=True).stdout.split()
    if len(out) == 4:
        v["python"] = f"{out[0]} ({python_for_children()})"
        v["numpy"], v["polars"], v["plotly"] = out[1:]
    for label, root in roots:
        rev = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "flowviz"],
                               capture_output=True, text=True)
        s = rev.stdout.strip() or "not a git tree"
        if dirty.stdout.strip():
            s += f" (flowviz/ has uncommitted changes: {len(dirty.stdout.splitlines())} paths)"
        v[f"flowviz {label}" if label else "flowviz"] = f"{root}: git {s}"
    return v


def markdown(cmdline: list[str], capture: str, exp: dict, cmds: list[Cmd], rows: list[list[str]], machine: dict,
             load_end: str, vers: dict, repeat: int, missing: list[str]) -> str:
    L = ["## flowviz export benchmark: one call of 1,000 SIP messages", ""]
    L.append(f"Run {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}:")
    L += ["", "```", f"cd {os.getcwd()}", shlex.join(cmdline), "```", "", "### Capture", ""]
    rtcp = exp["rtcp_packets"]
    L.append(f"- built by benchmarks/export.py (tests/synth writers): `{capture}`, {exp['frames']} frames, "
             f"{os.path.getsize(capture) / 1e6:.2f} MB, classic pcap, Ethernet/IPv4/UDP")
    L.append(f"- one call, Call-ID `{CALL_ID}`: {exp['sip_messages']} SIP messages through one proxy "
             f"(INVITE, 245 INFO, re-INVITE, BYE transactions), {len(exp['rtp_streams'])} G.711 RTP streams "
             f"({exp['rtp_packets']} packets), {rtcp} RTCP packets")
    L += ["", "### Machine", ""]
    L.append(f"- {machine['nproc']} CPUs (nproc), {machine['cpu']}, {machine['mem_gb']} GB RAM, "
             f"Linux {machine['kernel']}")
    L.append(f"- load average at start: {machine['loadavg']}; at the end: {load_end} (shared machine: timings are noisy)")
    for k, val in vers.items():
        L.append(f"- {k}: {val}")
    L += ["", "### Results", ""]
    L.append(f"{repeat} timed round(s) after one untimed warm-up round; every command once per round (odd rounds in "
             "reverse order); wall seconds of the whole process, best and median; ratios to the tshark filter "
             "run (best / best, median / median; > 1 = slower than tshark); peak RSS = largest of the runs.")
    L += ["", "| " + " | ".join(HEAD) + " |", "|" + "|".join(["---"] + ["---:"] * (len(HEAD) - 2) + ["---"]) + "|"]
    for r in rows:
        L.append("| " + " | ".join(md_escape(c) for c in r) + " |")
    L += ["", "### Commands", ""]
    for c in cmds:
        shown = ["flowviz" if a == CLI_ENTRY else a for a in c.argv]
        if shown[0] == python_for_children() and len(shown) > 1 and shown[1] == "-c":
            shown = shown[2:]
        prefix = f"PYTHONPATH={c.env['PYTHONPATH']} " if c.env.get("PYTHONPATH") and not c.reference else ""
        redirect = f" > {c.stdout_to}" if c.stdout_to else ""
        L.append(f"- {c.label}: `{prefix}{shlex.join(shown)}{redirect}`")
    if any(not c.reference for c in cmds):
        L.append("")
        L.append(f"`flowviz` = `{python_for_children()} -c \"{CLI_ENTRY}\"` (the console script's entry point), "
                 "run from a directory outside the trees so that PYTHONPATH decides which flowviz runs.")
    for m in missing:
        L.append(f"- not run: {m}")
    rss = "`/usr/bin/time -f %M`" if os.access(GNU_TIME, os.X_OK) else "not measured (/usr/bin/time missing)"
    L += ["", f"Measurement: wall time around each subprocess (perf_counter); peak RSS {rss}.", ""]
    return "\n".join(L)


# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=5, help="timed rounds (best and median are shown)")
    p.add_argument("--flowviz-root", action="append", type=parse_root, default=[], metavar="LABEL=PATH",
                   help="run the flowviz commands with PYTHONPATH=PATH (repeatable; default: this repository)")
    p.add_argument("--capture", metavar="FILE", help="where to write the capture (default: a temporary directory)")
    p.add_argument("--timeout", type=float, default=600, help="seconds per run before it counts as failed")
    p.add_argument("--ladder-formats", default="txt,svg,html", metavar="LIST",
                   help="ladder formats to time (txt, svg, html, png, pdf, json, ...; default: txt,svg,html)")
    p.add_argument("--only", metavar="KEYS", help="comma-separated subset of command keys (see the round lines)")
    p.add_argument("--markdown", metavar="FILE", help="also write the Markdown report here")
    a = p.parse_args(argv)
    if a.repeat < 1:
        p.error("--repeat must be >= 1")
    cmdline = [os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd() + os.sep) else sys.executable,
               sys.argv[0] if argv is None else os.path.relpath(__file__), *(sys.argv[1:] if argv is None else argv)]
    roots = a.flowviz_root or [("", str(ROOT))]
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="flowviz-export-bench-") as tmp:
        work, out = os.path.join(tmp, "work"), os.path.join(tmp, "out")
        os.makedirs(work)
        os.makedirs(out)
        capture = os.path.abspath(a.capture) if a.capture else os.path.join(tmp, "call-1000.pcap")
        t0 = time.perf_counter()
        data, exp = build_capture()
        os.makedirs(os.path.dirname(capture), exist_ok=True)
        Path(capture).write_bytes(data)
        print(f"{capture}: {exp['frames']} frames, {len(data) / 1e6:.2f} MB, {exp['sip_messages']} SIP messages "
              f"in one call, built in {time.perf_counter() - t0:.1f} s", flush=True)
        cmds = []
        for label, root in roots:
            cmds += flowviz_commands(label, root, capture, out, work,
                                     tuple(f.strip() for f in a.ladder_formats.split(",") if f.strip()))
        refs, missing = reference_commands(capture, out, work)
        cmds += refs
        if a.only:
            keys = {k.strip() for k in a.only.split(",") if k.strip()}
            unknown = keys - {c.key for c in cmds}
            if unknown:
                p.error(f"--only: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(c.key for c in cmds)}")
            cmds = [c for c in cmds if c.key in keys]
        bench(cmds, a.repeat, a.timeout)
        checks(cmds)
        load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
        rows = rows_of(cmds)
        print()
        print(text_table(rows))
        md = markdown(cmdline, capture, exp, cmds, rows, machine, load_end, versions(roots), a.repeat, missing)
        print()
        print(md)
        if a.markdown:
            os.makedirs(os.path.dirname(os.path.abspath(a.markdown)), exist_ok=True)
            Path(a.markdown).write_text(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())

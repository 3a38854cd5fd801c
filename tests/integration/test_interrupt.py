"""Ctrl-C during `calls` on a TCP capture (issue 19 item 9): exit 130, "flowviz: interrupted", promptly,
and no tshark left behind, whether the SIGINT goes to the flowviz process alone, to its whole process
group (a terminal's Ctrl-C: tshark gets it too) or reaches tshark alone first. It used to end with
exit 2 "tshark could not decode the SIP packets: Running as user root..." (tshark killed by the
terminal's SIGINT, read as a decode failure), or be ignored and the run finish.

The capture: many short SIP-over-TCP calls (tests.synth builders), so that tshark decodes for seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.synth import packets as P
from tests.synth import voip as V
from tests.synth import writers as W
from tests.synth.scenario_kit import MS, make_dialog
from tests.synth.scenarios import call_id_for, parties, tag_for

REPO = Path(__file__).resolve().parents[2]
CALLS = 1500


def tcp_calls_capture(n: int) -> bytes:
    """n SIP calls over TCP (INVITE .. 200 OK to BYE), one connection each, 0.1 ms apart."""
    a, b = parties()
    records = []
    t = 1_705_312_800 * 1_000_000_000
    for k in range(n):
        port = 10000 + k
        caller = V.Party(f"10.0.{k // 250}.{k % 250 + 1}", port, a.user, a.display, a.domain, a.rtp_port, a.ssrc)
        dialog = make_dialog(caller, b, call_id=call_id_for("interrupt", k), tag=tag_for(f"interrupt{k}"),
                             transport="TCP")
        conn = P.TcpConnection((caller.ip, port), (b.ip, 5060), client_isn=1000 + k, server_isn=2000 + k)
        datagrams = [l3 for _, l3 in conn.handshake()]
        datagrams += [conn.segment("c" if m.sender == "caller" else "s", m.text) for m in dialog.all()]
        datagrams += [l3 for _, l3 in conn.close()]
        for l3 in datagrams:
            records.append(W.Record(t, P.ethernet(l3)))
            t += MS // 10
    return W.pcap_bytes(1, records)


@pytest.fixture(scope="module")
def tcp_capture(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("interrupt") / "tcp_calls.pcap"
    path.write_bytes(tcp_calls_capture(CALLS))
    return path


def _children(pid: int, name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == pid and comm == name:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.parametrize("target", ["flowviz", "group", "tshark"])
def test_ctrl_c_during_tcp_decode(tcp_capture: Path, tmp_path: Path, target: str):
    proc = subprocess.Popen([sys.executable, "-m", "flowviz", "--no-cache", "calls", str(tcp_capture)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, TMPDIR=str(tmp_path)), start_new_session=True)
    try:
        deadline = time.monotonic() + 90  # import, numba kernels and the packet pass on a busy machine
        tsharks: list[int] = []
        while not tsharks and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            tsharks = _children(proc.pid, "tshark")
        assert tsharks, f"no tshark child seen (exit {proc.poll()}): the capture decodes too fast to interrupt"
        time.sleep(0.5)  # tshark reading its input and writing lines
        assert proc.poll() is None, "the command ended before the signal"
        sent = time.monotonic()
        if target == "flowviz":
            os.kill(proc.pid, signal.SIGINT)
        elif target == "group":  # a terminal's Ctrl-C
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(tsharks[0], signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"SIGINT to {target}: still running 10 s later")
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = err.decode("utf-8", "replace")
    assert proc.returncode == 130, f"SIGINT to {target}: exit {proc.returncode} after {took:.1f} s: {text}"
    assert "flowviz: interrupted" in text, text
    assert "Traceback" not in text and "could not decode" not in text, text
    time.sleep(0.2)
    assert not [p for p in tsharks if _alive(p)], "tshark outlived flowviz"
    assert not list(tmp_path.iterdir()), "files left in TMPDIR"

"""`flowviz live` with real components: dumpcap capturing on lo while this test places a SIP call with
its own sockets, and the HEP collector fed HEPv3 packets over UDP and TCP (tests/kit/hep.py). The call
must appear in the output while it runs; SIGINT must save one pcapng holding what was sent (counted by
tshark), leave no dumpcap behind and end with 130 (Ctrl-C, docs/robustness.md "Interrupts")."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.kit import hep

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.77"  # a loopback address of its own: the capture filter sees only this test's call
WAIT = 20.0  # seconds an expected line may take before the test fails (a bound, not a measurement)


def _can_capture(tmp_path: Path) -> str:
    """Why dumpcap cannot capture on lo here, or '' when it can."""
    if not shutil.which("dumpcap") or not shutil.which("mergecap"):
        return "dumpcap/mergecap not installed (they come with tshark)"
    done = subprocess.run(["dumpcap", "-q", "-i", "lo", "-a", "duration:1", "-w", str(tmp_path / "probe.pcapng")],
                          capture_output=True, text=True, timeout=30)
    return "" if done.returncode == 0 else f"dumpcap cannot capture on lo: {done.stderr.strip()[-200:]}"


class Live:
    """`python -m flowviz live ...` with stdout and stderr read line by line by threads."""

    def __init__(self, args: list[str], cwd: Path):
        self.tmp = cwd / "tmp"  # flowviz's TMPDIR: the ring's folder must be gone at the end
        self.tmp.mkdir()
        self.process = subprocess.Popen([sys.executable, "-m", "flowviz", "--no-cache", "live", *args], cwd=cwd,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(self.tmp)},
                                        start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, kept in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, kept), daemon=True).start()

    def _read(self, stream, kept: list[str]) -> None:
        for line in stream:
            kept.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, *words: str) -> str:
        """The first line (stdout or stderr) holding every word; fails after WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                assert self.process.poll() is None, f"flowviz live ended early: {self.err}"
                continue
            if all(w in line for w in words):
                return line
        raise AssertionError(f"no line with {words} within {WAIT} s; stdout {self.out}, stderr {self.err}")

    def interrupt(self, group: bool = False) -> int:
        """SIGINT to flowviz alone, or to its process group as a terminal's Ctrl-C does (dumpcap gets it too)."""
        if group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def children_left(self) -> list[str]:
        """Processes whose parent is flowviz (read from /proc), e.g. a dumpcap not reaped."""
        left = []
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
            except (OSError, ValueError):
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if entry.name.isdigit() and int(fields[1]) == self.process.pid:
                left.append(stat)
        return left


def _dumpcaps_writing_in(folder_prefix: str) -> list[str]:
    """dumpcap processes whose command line writes into a flowviz-live temporary folder."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"dumpcap") and any(folder_prefix.encode() in part for part in cmd):
            found.append(entry.name)
    return found


def _sip(first: str, call_id: str, cseq: str, to_tag: str = "") -> bytes:
    via = f"SIP/2.0/UDP {HOST}:5060;branch=z9hG4bK-live-{cseq.split()[0]}"
    return (f"{first}\r\nVia: {via}\r\nFrom: <sip:alice@{HOST}>;tag=al1\r\nTo: <sip:bob@{HOST}>{to_tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq}\r\nContact: <sip:alice@{HOST}:5060>\r\nContent-Length: 0\r\n\r\n"
            ).encode()


def _saved_path(live: Live) -> Path:
    line = next(line for line in live.out if line.startswith("saved to "))
    return live.process_cwd / line.removeprefix("saved to ")


def _tshark_sip(path: Path) -> list[str]:
    done = subprocess.run(["tshark", "-r", str(path), "-Y", "sip", "-T", "fields", "-e", "sip.Call-ID", "-e",
                           "sip.CSeq.method", "-e", "sip.Status-Code"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("group", [False, True], ids=["sigint-flowviz", "sigint-group"])
def test_live_capture_on_lo_shows_a_call_as_it_happens_and_keeps_it(tmp_path, group):
    why = _can_capture(tmp_path)
    if why:
        pytest.skip(why)
    call_id = f"live-{os.getpid()}@{HOST}"
    live = Live(["-i", "lo", "-f", f"udp and host {HOST}", "-o", "kept.pcapng", "--interval", "0.5"], tmp_path)
    live.process_cwd = tmp_path
    try:
        live.wait_for("capturing on lo")
        alice = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        bob = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        alice.bind((HOST, 5060))
        bob.bind((HOST, 5080))
        to_bob, to_alice = (HOST, 5080), (HOST, 5060)
        tag = ";tag=bo1"
        with alice, bob:
            alice.sendto(_sip(f"INVITE sip:bob@{HOST}:5080 SIP/2.0", call_id, "1 INVITE"), to_bob)
            bob.sendto(_sip("SIP/2.0 100 Trying", call_id, "1 INVITE"), to_alice)
            bob.sendto(_sip("SIP/2.0 180 Ringing", call_id, "1 INVITE", tag), to_alice)
            # the call shows while it rings: a line for the new call
            live.wait_for("new call", "alice -> bob")
            bob.sendto(_sip("SIP/2.0 200 OK", call_id, "1 INVITE", tag), to_alice)
            alice.sendto(_sip(f"ACK sip:bob@{HOST}:5080 SIP/2.0", call_id, "1 ACK", tag), to_bob)
            live.wait_for("in call", "200")
            alice.sendto(_sip(f"BYE sip:bob@{HOST}:5080 SIP/2.0", call_id, "2 BYE", tag), to_bob)
            bob.sendto(_sip("SIP/2.0 200 OK", call_id, "2 BYE", tag), to_alice)
            live.wait_for("completed")
        code = live.interrupt(group)
    finally:
        if live.process.poll() is None:
            live.process.kill()
    assert code == 130, live.err
    assert "flowviz: interrupted" in live.err
    assert live.children_left() == [] and _dumpcaps_writing_in(str(live.tmp)) == []
    assert list(live.tmp.iterdir()) == []
    saved = _saved_path(live)
    assert saved == tmp_path / "kept.pcapng" and list(tmp_path.glob(".*partial")) == []
    messages = _tshark_sip(saved)
    assert len(messages) == 7 and all(m.startswith(call_id) for m in messages)
    # the saved capture is an ordinary one: `flowviz calls` reads the same call from it
    done = subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", "calls", str(saved), "--format", "json"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert '"completed"' in done.stdout and call_id in done.stdout


def _free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP at the time of asking."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def test_hep_collector_over_udp_and_tcp_shows_the_calls_and_keeps_them(tmp_path):
    port = _free_port()
    start = time.time() - 5
    over_udp = hep.sip_call(call_id="hep-live-udp", start=start)
    over_tcp = hep.sip_call(a="10.3.3.3", b="10.4.4.4", call_id="hep-live-tcp", start=start + 1)
    live = Live(["--hep-listen", f"127.0.0.1:{port}", "-o", "hep.pcapng", "--interval", "0.5"], tmp_path)
    live.process_cwd = tmp_path
    try:
        live.wait_for("collecting HEP on 127.0.0.1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for inner in over_udp:
                udp.sendto(hep.hep3(inner), ("127.0.0.1", port))
        live.wait_for("new call", "alice -> bob")
        stream = b"".join(hep.hep3(inner) for inner in over_tcp)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as tcp:
            # cut mid-packet, so the collector must join the stream back into HEP packets
            for lo, hi in ((0, 7), (7, len(stream) // 2), (len(stream) // 2, len(stream))):
                tcp.sendall(stream[lo:hi])
                time.sleep(0.05)
        live.wait_for("new call", "completed")
        deadline = time.monotonic() + WAIT
        while sum("new call" in line for line in live.out) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        code = live.interrupt()
    finally:
        if live.process.poll() is None:
            live.process.kill()
    assert code == 130, live.err
    assert live.children_left() == [] and list(live.tmp.iterdir()) == []
    assert sum("new call" in line for line in live.out) == 2, live.out
    saved = _saved_path(live)
    # flowviz's HEP decoder reads the kept capture: the ten messages sent, inner addresses and Call-IDs
    done = subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", "messages", str(saved), "--format", "json"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    sent = [(i.src, i.dst, i.correlation, _label(i.payload)) for i in over_udp + over_tcp]
    got = [(r["src_ip"], r["dst_ip"], r["call_id"], r["method"] if r["is_request"] else str(r["status_code"]))
           for r in rows]
    assert len(sent) == 10 and sorted(got) == sorted(sent)


def _label(payload: bytes) -> str:
    """INVITE for a request, 200 for a response: from the first line of the SIP text sent."""
    first = payload.split(b"\r\n")[0].decode().split()
    return first[1] if first[0] == "SIP/2.0" else first[0]


PROXY_CONFIG = """#!KAMAILIO
# one stateful proxy for test_live.py: every request to the sipp UAS at {uas}
debug=2
log_stderror=yes
children=1
disable_tcp=yes
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=off
listen=udp:{proxy}:5060
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "maxfwd.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "siptrace.so"
# every SIP message the proxy receives or sends, mirrored as HEPv3 to the collector under test
modparam("siptrace", "duplicate_uri", "sip:127.0.0.1:{hep_port}")
modparam("siptrace", "hep_mode_on", 1)
modparam("siptrace", "hep_version", 3)
modparam("siptrace", "trace_to_database", 0)
modparam("siptrace", "trace_on", 1)
modparam("siptrace", "trace_mode", 1)
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    $du = "sip:{uas}:5060";
    if (is_method("ACK") && !t_check_trans()) {{ forward(); exit; }}
    t_relay();
}}
"""
UAC, PROXY, UAS = "127.0.0.81", "127.0.0.82", "127.0.0.83"  # in 127.0.0.80/29, apart from the lab's .10-.13


def _bound(address: tuple[str, int]) -> bool:
    """Something listens on this UDP address (we cannot bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


def _wait_bound(address: tuple[str, int], process: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT
    while not _bound(address):
        assert process.poll() is None and time.monotonic() < deadline, f"nothing listens on {address}"
        time.sleep(0.05)


def test_sipp_call_through_kamailio_shows_live(tmp_path):
    """The issue's acceptance on lo: a sipp call through a kamailio proxy shows up in `flowviz live -i lo`
    and in `flowviz live --hep-listen`, fed by the proxy's siptrace; the saved captures hold every SIP
    packet a second, independent dumpcap saw."""
    why = _can_capture(tmp_path) or ("" if shutil.which("sipp") and shutil.which("kamailio") else
                                     "sipp and kamailio not installed (lab/make_lab_captures.sh installs them)")
    if why:
        pytest.skip(why)
    if any(_bound((host, 5060)) for host in (UAC, PROXY, UAS)):
        pytest.skip(f"UDP port 5060 busy on {UAC}, {PROXY} or {UAS}")
    config = tmp_path / "proxy.cfg"
    hep_port = _free_port()
    config.write_text(PROXY_CONFIG.format(proxy=PROXY, uas=UAS, hep_port=hep_port))
    bpf = "udp and src net 127.0.0.80/29 and dst net 127.0.0.80/29"  # not siptrace's HEP to 127.0.0.1
    started: list[subprocess.Popen] = []

    def start(command: list[str], name: str) -> subprocess.Popen:
        with open(tmp_path / f"{name}.log", "wb") as log:
            process = subprocess.Popen(command, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        started.append(process)
        return process

    live = collector = None
    try:
        reference = start(["dumpcap", "-q", "-i", "lo", "-f", bpf, "-w", str(tmp_path / "reference.pcapng")],
                          "reference")
        proxy = start(["kamailio", "-f", str(config), "-DD", "-E", "-m", "32", "-M", "4", "-Y", str(tmp_path),
                       "-w", str(tmp_path)], "kamailio")
        uas = start(["sipp", "-sn", "uas", "-i", UAS, "-p", "5060", "-m", "1", "-nostdin"], "uas")
        _wait_bound((PROXY, 5060), proxy)
        _wait_bound((UAS, 5060), uas)
        live = Live(["-i", "lo", "-f", bpf, "-o", "sipp.pcapng", "--interval", "0.5"], tmp_path)
        live.process_cwd = tmp_path
        (tmp_path / "hep").mkdir()
        collector = Live(["--hep-listen", f"127.0.0.1:{hep_port}", "-o", "hep.pcapng", "--interval", "0.5"],
                         tmp_path / "hep")
        collector.process_cwd = tmp_path / "hep"
        live.wait_for("capturing on lo")
        collector.wait_for("collecting HEP")
        # sipp's built-in UAC: INVITE, 100/180/200, ACK, 3 s in the call, BYE, 200
        uac = start(["sipp", "-sn", "uac", "-i", UAC, "-p", "5060", "-m", "1", "-d", "3000", "-nostdin", "-s", "ua2",
                     f"{PROXY}:5060"], "uac")
        live.wait_for("new call")
        live.wait_for("completed")
        collector.wait_for("new call")
        collector.wait_for("completed")
        assert uac.wait(WAIT) == 0
        time.sleep(0.5)  # the last packets into both captures
        code = live.interrupt(group=True)
        hep_code = collector.interrupt()
    finally:
        for run in (live, collector):
            if run is not None and run.process.poll() is None:
                run.process.kill()
        for process in reversed(started):
            if process.poll() is None:
                process.send_signal(signal.SIGINT if process.args[0] == "dumpcap" else signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    assert code == 130, live.err
    assert live.children_left() == [] and list(live.tmp.iterdir()) == []
    expected = _tshark_sip(tmp_path / "reference.pcapng")
    assert len(expected) >= 13  # 7 messages UAC-proxy, 6 proxy-UAS (the proxy's own 100 Trying stays on its leg)
    assert sorted(_tshark_sip(_saved_path(live))) == sorted(expected)
    # the collector: the same messages, read by flowviz's HEP decoder from its saved capture
    assert hep_code == 130 and collector.children_left() == []
    done = subprocess.run(["tshark", "-r", str(tmp_path / "reference.pcapng"), "-Y", "sip", "-T", "fields",
                           "-e", "ip.src", "-e", "ip.dst", "-e", "sip.Call-ID", "-e", "sip.Method", "-e",
                           "sip.Status-Code"], capture_output=True, text=True, timeout=60)
    sent = [tuple(line.split("\t")[:3]) + (line.split("\t")[3] or line.split("\t")[4],)
            for line in done.stdout.splitlines()]
    done = subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", "messages", str(_saved_path(collector)),
                           "--format", "json"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    got = [(r["src_ip"], r["dst_ip"], r["call_id"], r["method"] if r["is_request"] else str(r["status_code"]))
           for r in json.loads(done.stdout)]
    assert len(sent) >= 13 and sorted(got) == sorted(sent)


@pytest.mark.parametrize("args, says", [
    (["-i", "nosuch0"], 'There is no device named "nosuch0"'),
    (["-i", "lo", "-o", "exists.pcapng"], "exists.pcapng exists; give another -o"),
    (["--hep-listen", "localhost"], "give an IPv4 address and a port"),
])
def test_bad_live_input_is_one_line(tmp_path, args, says):
    (tmp_path / "exists.pcapng").write_bytes(b"kept")
    done = subprocess.run([sys.executable, "-m", "flowviz", "live", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and says in done.stderr, done.stderr
    assert (tmp_path / "exists.pcapng").read_bytes() == b"kept"

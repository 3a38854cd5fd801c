"""Issue 19 item 8: memory follows what a call holds. 10,000 one-INVITE calls took 1.08-1.16 GB (one small
polars frame per call, held all at once in the summaries and the diagnostics); the acceptance bound is
600 MB peak for the whole command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.synth import packets as P, voip as V, writers as W
from tests.synth.scenario_kit import BASE_TS_NS, MS, make_dialog
from tests.synth.scenarios import call_id_for, parties, tag_for

REPO = Path(__file__).resolve().parents[2]


def _invites(n: int) -> bytes:
    """n calls of one INVITE each (with SDP), each from its own caller address, 1 ms apart."""
    a, b = parties()
    records, t = [], BASE_TS_NS
    for k in range(n):
        caller = V.Party(f"10.{1 + k // 60000}.{(k // 250) % 240}.{k % 250 + 1}", 5060, a.user, a.display,
                         a.domain, a.rtp_port, a.ssrc)
        invite = make_dialog(caller, b, call_id=call_id_for("mem", k), tag=tag_for(f"m{k}")).all()[0]
        records.append(W.Record(t, P.ethernet(P.ip_udp(caller.ip, b.ip, 5060, 5060, invite.text))))
        t += MS
    return W.pcap_bytes(1, records)


def test_ten_thousand_calls_stay_under_600_mb(tmp_path):
    path = tmp_path / "invites.pcap"
    path.write_bytes(_invites(10_000))
    out, err = tmp_path / "calls.csv", tmp_path / "stderr.txt"
    peak = tmp_path / "peak_kib"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        # through a small launcher: the command's own peak, not the size of this test process it forks from
        done = subprocess.run([sys.executable, "-m", "tests.kit.peak_rss", str(peak), sys.executable, "-m",
                               "flowviz", "--no-cache", "calls", "--format", "csv", str(path)],
                              stdout=stdout, stderr=stderr, cwd=REPO)
    assert done.returncode == 0, err.read_text()
    assert out.read_text().count("\n") == 10_001  # header + one row per call
    assert int(peak.read_text()) < 600 * 1024, f"peak RSS {int(peak.read_text()) // 1024} MB"

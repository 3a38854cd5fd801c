"""Built signalling scenarios of tests/unit/test_diagnose_sip.py written as real pcap files and read back
through ingest (tshark decoding included): the whole chain capture -> findings. Also: every rule is
documented in docs/diagnostics.md."""

from __future__ import annotations

import re

from flowviz.analysis.diagnose import RULES, diagnose_capture
from flowviz.ingest import read_capture
from tests.conftest import REPO
from tests.unit.test_correlation_calls import UA1, UA2, _call
from tests.kit.sip_ladders import request, response, write_pcap


def _findings(tmp_path, ladder) -> list[dict]:
    path = tmp_path / "built.pcap"
    write_pcap(sorted(ladder, key=lambda m: m[0]), path)
    return diagnose_capture(read_capture(path, use_cache=False))


def test_200_ok_retransmitted_without_ack_through_a_capture(tmp_path):
    ladder = [m for m in _call("na", UA1, UA2, 0) if not m[3].startswith("ACK")]
    ladder += [(t, *ladder[3][1:]) for t in (1500, 2500, 4500)]
    [found] = [f for f in _findings(tmp_path, ladder) if f["rule"] == "sip.ok_without_ack"]
    assert found["evidence"]["values"]["retransmissions"] == 3 and found["evidence"]["frames"] == [4, 5, 6, 7]


def test_rejection_with_reason_and_auth_loop_through_a_capture(tmp_path):
    ladder = []
    for n, t in ((1, 0), (2, 100), (3, 200)):
        reg = request("REGISTER", call_id="reg", cseq=n, vias=[("10.0.0.1:5060", f"z9hG4bK-r{n}")], callee=("alice", None))
        code = (401, "Unauthorized") if n < 3 else (403, "Forbidden")
        ladder += [(t, UA1, UA2, reg), (t + 5, UA2, UA1, response(*code, reg, to_tag=f"s{n}",
                                                                  headers=('Warning: 399 reg "bad password"',)))]
    rules = {f["rule"]: f for f in _findings(tmp_path, ladder)}
    assert set(rules) == {"sip.auth_loop", "sip.rejected"}
    assert "bad password" in rules["sip.rejected"]["explanation"]
    assert rules["sip.rejected"]["evidence"]["frames"] == [6]


def test_every_rule_is_documented():
    text = (REPO / "docs" / "diagnostics.md").read_text()
    documented = set(re.findall(r"^\| `((?:sip|media|capture)\.[a-z_0-9]+)` \|", text, flags=re.M))
    from flowviz.analysis.rules_capture import FILE_RULES
    from flowviz.captureset.findings import RULE as LOST_BETWEEN_POINTS

    assert documented == set(RULES) | set(FILE_RULES) | {LOST_BETWEEN_POINTS}

"""RFC 6076 KPIs on built ladders: counts written from the ladder."""

from __future__ import annotations

from tests.unit.test_correlation_calls import UA1, UA2, _call
from tests.kit.sip_ladders import request, response, sip_frame

from flowviz.analysis.kpis import capture_kpis

REGISTRAR = "10.0.0.5:5060"


def _kpis(ladder):
    return {k["kpi"]: k for k in capture_kpis(sip_frame(sorted(ladder, key=lambda m: m[0])))}


def test_ratios_exclude_redirects_and_count_each_attempt_once():
    ladder = (_call("ok", UA1, UA2, 0, bye=3000) + _call("busy", UA1, UA2, 10_000, final=(486, "Busy Here"))
              + _call("moved", UA1, UA2, 20_000, final=(302, "Moved Temporarily"))
              + _call("down", UA1, UA2, 30_000, final=(503, "Service Unavailable")))
    k = _kpis(ladder)
    assert (k["SER"]["numerator"], k["SER"]["denominator"]) == (1, 3)  # 4 INVITEs - 1 redirected
    assert (k["SEER"]["numerator"], k["SEER"]["denominator"]) == (2, 3)  # 200 and 486
    assert (k["ISA"]["numerator"], k["ISA"]["denominator"]) == (1, 4)  # 503
    assert (k["SCR"]["numerator"], k["SCR"]["denominator"]) == (1, 4)
    assert k["SRD"]["count"] == 4 and k["SRD"]["value"] == 50  # every call rang 50 ms after its INVITE
    assert k["SRD failed"]["count"] == 0  # the failures all rang first
    assert (k["SDT"]["value"], k["SDT"]["count"]) == (2.0, 1)  # 200 at 1000 ms, BYE at 3000 ms
    assert (k["SDD"]["value"], k["SDD"]["count"]) == (2, 1)


def test_retransmitted_invite_does_not_move_the_srd_start():
    ladder = _call("rt", UA1, UA2, 0)
    ladder.insert(1, (500, ladder[0][1], ladder[0][2], ladder[0][3]))  # INVITE again at 500 ms (timer A)
    assert _kpis(ladder)["SRD"]["value"] == 50


def test_rrd_counted_from_the_register_with_credentials():
    r1 = request("REGISTER", call_id="reg", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-r1")], callee=("alice", None))
    r2 = request("REGISTER", call_id="reg", cseq=2, vias=[("10.0.0.1:5060", "z9hG4bK-r2")], callee=("alice", None),
                 headers=('Authorization: Digest username="alice"',))
    r3 = request("REGISTER", call_id="reg2", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-r3")], callee=("carol", None))
    ladder = [(0, UA1, REGISTRAR, r1), (3, REGISTRAR, UA1, response(401, "Unauthorized", r1, to_tag="r")),
              (10, UA1, REGISTRAR, r2), (14, REGISTRAR, UA1, response(200, "OK", r2, to_tag="r")),
              (20, UA1, REGISTRAR, r3), (25, REGISTRAR, UA1, response(403, "Forbidden", r3, to_tag="s"))]
    k = _kpis(ladder)
    assert (k["RRD"]["value"], k["RRD"]["count"]) == (4, 1)  # 10 -> 14 ms, not 0 -> 14
    assert (k["IRA"]["numerator"], k["IRA"]["denominator"]) == (1, 2)  # the 403; the 401 was a challenge

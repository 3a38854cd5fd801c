"""Transactions and retransmissions (RFC 3261 17): built ladders, expected values from the ladder."""

from __future__ import annotations

from tests.kit.sip_ladders import request, response, sip_frame

from flowviz.sip.transactions import with_transactions

A, B = "10.0.0.1:5060", "10.0.0.2:5060"


def _invite(**kw) -> str:
    return request("INVITE", call_id="c1", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-inv")], **kw)


def test_retransmitted_invite_and_200_are_marked_not_dropped():
    invite = _invite()
    ok = response(200, "OK", invite, to_tag="b1")
    ack = request("ACK", call_id="c1", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-ack")], callee=("bob", "b1"))
    ladder = [
        (0, A, B, invite),
        (500, A, B, invite),  # timer A fired: INVITE again
        (600, B, A, ok),
        (1100, B, A, ok),  # 2xx retransmitted by the UAS until the ACK comes (13.3.1.4)
        (1101, A, B, ack),
    ]
    msgs = with_transactions(sip_frame(ladder))
    assert msgs["is_retransmission"].to_list() == [False, True, False, True, False]
    assert msgs["txn_id"][0] == msgs["txn_id"][1] == msgs["txn_id"][2] == msgs["txn_id"][3]
    assert msgs["txn_id"][4] != msgs["txn_id"][0]  # the 2xx ACK has its own branch: own transaction


def test_cancel_and_non2xx_ack_belong_to_the_invite():
    invite = _invite()
    cancel = request("CANCEL", call_id="c1", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-inv")])
    terminated = response(487, "Request Terminated", invite, to_tag="b1")
    ack = request("ACK", call_id="c1", cseq=1, vias=[("10.0.0.1:5060", "z9hG4bK-inv")], callee=("bob", "b1"))
    ladder = [
        (0, A, B, invite),
        (10, B, A, response(180, "Ringing", invite, to_tag="b1")),
        (900, A, B, cancel),
        (901, B, A, response(200, "OK", cancel)),
        (902, B, A, terminated),
        (903, A, B, ack),
    ]
    msgs = with_transactions(sip_frame(ladder))
    invite_txn = msgs["txn_id"][0]
    assert msgs["txn_id"][5] == invite_txn  # non-2xx ACK: same transaction as the INVITE (17.1.1.3)
    assert msgs["txn_id"][2] != invite_txn  # CANCEL is its own transaction (9.2)...
    assert msgs["invite_txn_id"][2] == invite_txn  # ...that points at the INVITE it cancels
    assert msgs["txn_id"][3] == msgs["txn_id"][2]  # the 200 answers the CANCEL, not the INVITE
    assert not msgs["is_retransmission"].any()


def test_same_message_in_the_other_direction_is_not_a_retransmission():
    invite = _invite()
    # A mirrored capture shows the INVITE leaving A and, separately, the copy B echoes back (loop):
    ladder = [(0, A, B, invite), (1, B, A, invite)]
    msgs = with_transactions(sip_frame(ladder))
    assert msgs["is_retransmission"].to_list() == [False, False]


def test_rfc2543_messages_without_branch_fall_back_on_cseq_and_tags():
    old = request("INVITE", call_id="c2", cseq=7, vias=[("10.0.0.1:5060", "1")])  # branch without magic cookie
    ladder = [(0, A, B, old), (500, A, B, old), (600, B, A, response(200, "OK", old, to_tag="x"))]
    msgs = with_transactions(sip_frame(ladder))
    assert msgs["is_retransmission"].to_list() == [False, True, False]
    assert msgs["txn_id"].n_unique() == 1

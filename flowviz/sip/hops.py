"""Hops: the copies of one request (and its responses) that proxies forward link by link.

A proxy that forwards a request pushes its own Via on top (RFC 3261 16.6 step 8), so the
forwarded copy has via[1] == via[0] of the copy it received, with the same Call-ID and CSeq.
This holds for stateful and stateless proxies (16.11) and for in-dialog requests routed by
Route/Record-Route (16.12 loose routing), so one rule links them all. A proxy that sends the
same received request to several next hops forks (16.6): each copy is its own edge.
Responses travel back along the Via stack (16.7): the forwarded response is the one with the same
status in the upstream transaction; 100 Trying is hop-local and never forwarded (16.7 step 3).
"""

from __future__ import annotations

import polars as pl

from flowviz.sip.transactions import first_transmissions

HOP_WINDOW_NS = 32_000_000_000  # 64*T1 (Timer B): a proxy forwards well within one transaction lifetime


def request_hops(msgs: pl.DataFrame) -> pl.DataFrame:
    """Edges upstream copy -> forwarded copy, one row per forwarded request.

    Columns: up_msg, down_msg, up_txn, down_txn, call_id, method, proxy (who forwarded: the
    address it received the request at, which is how the path names it even when it sends from
    another port), forward_ns (forwarded time - received time).
    """
    requests = first_transmissions(msgs).filter(pl.col("is_request"))
    up = requests.select(
        up_msg="msg_id", up_txn="txn_id", up_ts="ts_ns", proxy="dst", call_id="call_id", cseq_num="cseq_num",
        cseq_method="cseq_method", link_branch="top_branch",
    )
    down = requests.filter(pl.col("via_count") >= 2).select(
        down_msg="msg_id", down_txn="txn_id", down_ts="ts_ns", call_id="call_id",
        cseq_num="cseq_num", cseq_method="cseq_method", link_branch=pl.col("via_branches").list.get(1),
    )
    edges = down.join(up, on=["call_id", "cseq_num", "cseq_method", "link_branch"], how="inner")
    edges = edges.filter(
        ((pl.col("down_ts") - pl.col("up_ts")).abs() <= HOP_WINDOW_NS) & (pl.col("up_msg") != pl.col("down_msg"))
    )
    # Several candidate upstream copies (e.g. the request seen twice on a mirrored link):
    # keep the nearest one before the forwarded copy.
    edges = (
        edges.with_columns(gap=(pl.col("down_ts") - pl.col("up_ts")).abs())
        .sort("gap", "up_msg")
        .unique("down_msg", keep="first")
        .sort("down_msg")
    )
    return edges.select(
        "up_msg", "down_msg", "up_txn", "down_txn", "call_id", method="cseq_method",
        proxy="proxy", forward_ns=pl.col("down_ts") - pl.col("up_ts"),
    )


def response_hops(msgs: pl.DataFrame, req_hops: pl.DataFrame) -> pl.DataFrame:
    """Edges downstream response -> the copy the proxy forwarded upstream.

    Columns: down_msg, up_msg, status_code, method, proxy, forward_ns.
    """
    responses = first_transmissions(msgs).filter(~pl.col("is_request") & (pl.col("status_code") > 100))
    txn_pairs = req_hops.select("up_txn", "down_txn", "proxy").unique(["up_txn", "down_txn"])
    down = responses.select(
        down_msg="msg_id", down_txn="txn_id", down_ts="ts_ns", status_code="status_code",
        method="cseq_method", to_tag=pl.col("to_tag").fill_null(""),
    )
    up = responses.select(
        up_msg="msg_id", up_txn="txn_id", up_ts="ts_ns", status_code="status_code", to_tag=pl.col("to_tag").fill_null(""),
    )
    edges = (
        down.join(txn_pairs, on="down_txn")
        .join(up, on=["up_txn", "status_code", "to_tag"])
        .filter((pl.col("up_ts") >= pl.col("down_ts")) & (pl.col("up_ts") - pl.col("down_ts") <= HOP_WINDOW_NS))
        .sort("up_ts", "up_msg")
        .unique("down_msg", keep="first")
        .unique("up_msg", keep="first")
        .sort("down_msg")
    )
    return edges.select(
        "down_msg", "up_msg", "status_code", "method", "proxy", forward_ns=pl.col("up_ts") - pl.col("down_ts"),
    )


def cancel_hops(msgs: pl.DataFrame, req_hops: pl.DataFrame) -> pl.DataFrame:
    """A stateful proxy answers the CANCEL it received and sends its own CANCEL on each branch
    (RFC 3261 16.10); that CANCEL carries only the proxy's Via (9.1), so it is tied to the one
    received through the INVITE hop it cancels. Same columns as response_hops (up = received)."""
    cancels = first_transmissions(msgs).filter(pl.col("is_request") & (pl.col("method") == "CANCEL"))
    received = cancels.select(up_msg="msg_id", up_txn="invite_txn_id", up_ts="ts_ns")
    sent = cancels.select(down_msg="msg_id", down_txn="invite_txn_id", down_ts="ts_ns")
    pairs = req_hops.filter(pl.col("method") == "INVITE").select("up_txn", "down_txn", "proxy")
    edges = (
        received.join(pairs, on="up_txn").join(sent, on="down_txn")
        .filter((pl.col("down_ts") >= pl.col("up_ts")) & (pl.col("down_ts") - pl.col("up_ts") <= HOP_WINDOW_NS))
        .sort("down_ts", "down_msg")
        .unique("down_msg", keep="first", maintain_order=True)  # one CANCEL per branch of a fork
        .sort("down_msg")
    )
    return edges.select("up_msg", "down_msg", "proxy", forward_ns=pl.col("down_ts") - pl.col("up_ts"))


def children_of(req_hops: pl.DataFrame) -> dict[int, list[int]]:
    """up_msg -> forwarded copies, for walking the hop tree."""
    children: dict[int, list[int]] = {}
    for up, down in zip(req_hops["up_msg"].to_list(), req_hops["down_msg"].to_list()):
        children.setdefault(up, []).append(down)
    return children


def request_path(root_msg: int, children: dict[int, list[int]]) -> list[int]:
    """Messages of one request from the originator down every branch, depth first in time order.

    Forks appear as several children of the same message; each branch is walked to its end
    before the next one starts, so the first branch reads as a straight path.
    """
    order, stack, seen = [], [root_msg], set()
    while stack:
        msg = stack.pop()
        if msg in seen:  # a loop in broken captures must not hang us
            continue
        seen.add(msg)
        order.append(msg)
        stack.extend(sorted(children.get(msg, []), reverse=True))
    return order

"""Transactions (RFC 3261 section 17): which messages belong together on one link, and which are repeats.

A transaction is named by the top Via branch plus the CSeq method (17.1.3, 17.2.3). Two exceptions
from the RFC: the ACK of a non-2xx final response reuses the INVITE's branch and belongs to the
INVITE transaction (17.1.1.3), and a CANCEL reuses the branch but is its own transaction that
points at the INVITE it cancels (9.1). The ACK of a 2xx carries a new branch, so it is its own.
Messages without an RFC 3261 branch (RFC 2543 peers) fall back on Call-ID + CSeq + From tag.

A retransmission is the same message sent again in the same direction (17.1.1.2 timer A,
17.2.1 response repeats): it is kept and marked, never dropped, so counts stay honest.
"""

from __future__ import annotations

import polars as pl

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 8.1.1.7: branches that are unique per transaction start with this


def endpoint(ip: str, port: str) -> pl.Expr:
    """ "ip:port", with IPv6 addresses in brackets (as in URIs), from two columns."""
    ip_col, port_col = pl.col(ip), pl.col(port).cast(pl.Utf8)
    return (
        pl.when(ip_col.str.contains(":"))
        .then(pl.concat_str([pl.lit("["), ip_col, pl.lit("]:"), port_col]))
        .otherwise(pl.concat_str([ip_col, pl.lit(":"), port_col]))
    )


def with_transactions(sip: pl.DataFrame) -> pl.DataFrame:
    """sip_messages (delivered ones) -> the same rows in time order with transaction columns.

    Added: msg_id (row number after sorting), src/dst ("ip:port"), top_branch, via_count,
    txn_id, txn_method, invite_txn_id (INVITE/CANCEL/non-2xx ACK: the INVITE transaction),
    is_retransmission.
    """
    msgs = (
        sip.filter(~pl.col("icmp_quoted").fill_null(False))  # quoted in an ICMP error: never delivered
        .sort("ts_ns", "frame", "msg_index")
        .with_row_index("msg_id")
        .with_columns(
            src=endpoint("src_ip", "src_port"),
            dst=endpoint("dst_ip", "dst_port"),
            top_branch=pl.col("via_branches").list.first(),
            top_sent_by=pl.col("via_sent_by").list.first(),
            via_count=pl.col("via_sent_by").list.len().cast(pl.UInt16),
        )
    )
    rfc3261 = pl.col("top_branch").fill_null("").str.starts_with(MAGIC_COOKIE)
    legacy_key = pl.concat_str(
        [pl.col("cseq_num").cast(pl.Utf8), pl.col("from_tag"), pl.col("top_sent_by")], separator="/", ignore_nulls=True
    )
    msgs = msgs.with_columns(
        branch_key=pl.concat_str(
            [pl.col("call_id").fill_null(""), pl.when(rfc3261).then(pl.col("top_branch")).otherwise(legacy_key)],
            separator="|",
        )
    )
    invite_branches = msgs.filter(pl.col("is_request") & (pl.col("method") == "INVITE")).select("branch_key").unique()
    msgs = msgs.with_columns(
        shares_invite_branch=pl.col("branch_key").is_in(invite_branches["branch_key"].implode())
    )
    # ACK with the INVITE's branch = ACK of a non-2xx = part of the INVITE transaction.
    # For a 2xx ACK the branch differs, so it stays an ACK transaction of its own.
    txn_method = (
        pl.when((pl.col("cseq_method") == "ACK") & pl.col("shares_invite_branch"))
        .then(pl.lit("INVITE"))
        .otherwise(pl.col("cseq_method").fill_null("?"))
    )
    msgs = msgs.with_columns(txn_method=txn_method).with_columns(
        txn_id=pl.concat_str([pl.col("branch_key"), pl.col("txn_method")], separator="|"),
    )
    msgs = msgs.with_columns(
        invite_txn_id=pl.when(pl.col("shares_invite_branch") & pl.col("cseq_method").is_in(["INVITE", "ACK", "CANCEL"]))
        .then(pl.concat_str([pl.col("branch_key"), pl.lit("INVITE")], separator="|"))
        .otherwise(None)
    )
    # Same transaction, same direction, same message (method, or status + To tag) seen before.
    repeat_key = ["txn_id", "src", "dst", "is_request", "method", "status_code", "cseq_num", "to_tag"]
    msgs = msgs.with_columns(
        is_retransmission=(pl.col("msg_id").rank("ordinal").over(repeat_key) > 1)
    )
    return msgs.drop("shares_invite_branch")


def first_transmissions(msgs: pl.DataFrame) -> pl.DataFrame:
    """Only the first copy of each message: timings are measured from these (RFC 6076 section 3)."""
    return msgs.filter(~pl.col("is_retransmission"))

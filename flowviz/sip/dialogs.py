"""Dialogs (RFC 3261 section 12): Call-ID + From tag + To tag.

A response with a To tag to a dialog-creating request makes a dialog: early while only 1xx
carried that tag, confirmed by a 2xx (12.1). A forking proxy can give one INVITE several early
dialogs (one To tag per UAS that answered, 13.2.2.4); at most one of them is normally confirmed,
so each To tag stays its own row.
"""

from __future__ import annotations

import polars as pl

from flowviz.sip.transactions import first_transmissions

DIALOG_KEY = ["call_id", "from_tag", "to_tag"]


def dialogs(msgs: pl.DataFrame) -> pl.DataFrame:
    """One row per dialog seen in responses: call_id, from_tag, to_tag, method (that created it),
    first_ts_ns, early (a 101-199 carried the tag), confirmed (a 2xx did), final_status (highest
    final status seen for the creating method), responder (who sent the first response with this tag).
    """
    creating = first_transmissions(msgs).filter(
        ~pl.col("is_request") & pl.col("to_tag").is_not_null() & (pl.col("status_code") > 100)
        & pl.col("cseq_method").is_in(["INVITE", "SUBSCRIBE", "REFER", "NOTIFY"])
    )
    return (
        creating.group_by(DIALOG_KEY, maintain_order=True)
        .agg(
            method=pl.col("cseq_method").first(),
            first_ts_ns=pl.col("ts_ns").min(),
            early=(pl.col("status_code") < 200).any(),
            confirmed=((pl.col("status_code") >= 200) & (pl.col("status_code") < 300)).any(),
            final_status=pl.col("status_code").filter(pl.col("status_code") >= 200).max(),
            responder=pl.col("src").first(),
        )
        .sort("first_ts_ns")
    )


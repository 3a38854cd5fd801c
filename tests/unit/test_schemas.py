"""schemas.from_rows: the one way ingest turns parsed rows into frames."""

import polars as pl


def test_from_rows_equals_polars_own_conversion():
    """The JSON route for nested columns gives what pl.DataFrame(rows, schema) gives, nulls and all."""
    from flowviz.schemas import SIP_MESSAGES, from_rows

    rows = [
        {"frame": 1, "frames": [1, 2], "msg_index": 0, "src_port": 5060, "max_forwards": -1, "method": "INVITE",
         "via_sent_by": ["a:5060", "b"], "leg_headers": [{"name": "X-CID", "value": "é\\\"x"}],
         "sdp_media": [{"media": "audio", "port": 65535, "payload_types": [0, 8, 101], "rtpmap": ["0 PCMU/8000"],
                        "rtcp_port": None, "rtcp_mux": True, "ptime_ms": 20}],
         "raw": "INVITE sip:x SIP/2.0\r\n\u00fc\n"},
        {"frame": 2, "frames": [], "via_sent_by": None, "leg_headers": [], "sdp_media": None, "raw": None,
         "unknown_key": 3},
    ]
    expected = pl.DataFrame([{k: r.get(k) for k in SIP_MESSAGES} for r in rows], schema=SIP_MESSAGES)
    assert from_rows(rows, SIP_MESSAGES).equals(expected)
    assert from_rows([], SIP_MESSAGES).schema == SIP_MESSAGES
    for one in rows:  # a single row: each nested column is then a one-element JSON array
        alone = pl.DataFrame([{k: one.get(k) for k in SIP_MESSAGES}], schema=SIP_MESSAGES)
        assert from_rows([one], SIP_MESSAGES).equals(alone)

"""Schemas of the batch dataset (documented in docs/batch.md) and the words the other parts share."""

from __future__ import annotations

import polars as pl

from flowviz.export.tables import CALL_KEYS, STREAM_KEYS

SEVERITIES = ("info", "warning", "error")
FAILED_STATES = ("rejected", "busy", "timed out", "cancelled")


_S, _I, _F, _B = pl.Utf8, pl.Int64, pl.Float64, pl.Boolean
PROBLEM = pl.Struct({"rule": _S, "severity": _S, "title": _S})
# Nested call details that vary in shape are stored as JSON text.
CALL_JSON = ("legs", "forwarding", "forks", "in_dialog")
_CALL_TYPES = {
    "call_group_id": _S, "call_ids": pl.List(_S), "method": _S, "from_user": _S, "to_user": _S, "from_uri": _S,
    "to_uri": _S, "state": _S, "final_status": _I, "start_ts": _S, "srd_ms": _F, "setup_ms": _F, "duration_s": _F,
    "hosts": pl.List(_S), "hop_delays_ms": pl.List(_F), "legs": _S, "messages": _I, "retransmissions": _I,
    "final_reason": _S, "from_display": _S, "to_display": _S, "answer_ts": _S, "end_ts": _S, "failed_srd_ms": _F,
    "disconnect_ms": _F, "hung_up_by": _S, "host_roles": pl.List(_S), "host_names": pl.List(_S), "forwarding": _S,
    "forks": _S, "in_dialog": _S, "dialogs": _I, "first_frame": _I, "capture": _S, "problems": pl.List(PROBLEM),
}
CALL_EXTRA = {"capture_id": _S, "errors": _I, "warnings": _I, "worst_severity": _S, "worst_mos": _F}
CALL_SCHEMA = pl.Schema({**{k: _CALL_TYPES[k] for k in CALL_KEYS}, **CALL_EXTRA})

_STREAM_INT = {"src_port", "dst_port", "payload_type", "packets", "expected", "lost", "seq_errors", "loss_bursts",
               "markers", "comfort_noise", "duplicates", "out_of_order", "wrong_timestamps", "first_frame",
               "clock_rate", "rtcp_blocks", "rtcp_cumulative_lost", "rtcp_max_jitter", "endpoint_r_factor"}
_STREAM_STR = {"stream_id", "call_group_id", "src", "dst", "ssrc", "codec", "mos_method", "start_ts", "end_ts",
               "bound_by", "sdp_announced", "codecs", "capture"}


def _stream_type(key: str) -> pl.DataType:
    if key == "payload_types":
        return pl.List(_I)
    if key == "sdp_match":
        return _B
    return _I if key in _STREAM_INT else _S if key in _STREAM_STR else _F


STREAM_SCHEMA = pl.Schema({**{k: _stream_type(k) for k in STREAM_KEYS}, "capture_id": _S})
KPI_SCHEMA = pl.Schema({"capture_id": _S, "kpi": _S, "description": _S, "kind": _S, "unit": _S, "value": _F,
                        "mean": _F, "min": _F, "median": _F, "max": _F, "count": _I, "numerator": _I,
                        "denominator": _I})
CAPTURE_SCHEMA = pl.Schema({"capture_id": _S, "capture": _S, "ok": _B, "error": _S, "seconds": _F, "calls": _I,
                            "streams": _I, "failed_calls": _I, "errors": _I, "warnings": _I, "worst_mos": _F,
                            "states": _S, "ser_pct": _F, "srd_ms": _F})
DATASETS = {"calls": CALL_SCHEMA, "streams": STREAM_SCHEMA, "kpis": KPI_SCHEMA}
# Everything `batch` writes into OUTDIR (what --force replaces).
OUTPUTS = ("calls", "streams", "kpis", "calls.csv", "streams.csv", "kpis.csv", "kpis_all.csv", "kpis_all.parquet",
           "captures.csv", "captures.parquet", "report.md", "report.html")

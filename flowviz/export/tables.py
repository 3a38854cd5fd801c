"""Tables: the one representation of flowviz's row outputs (calls, streams, DTMF, findings) for the CLI,
batch and the web: keys and their order, ISO 8601 UTC times, SSRC as Wireshark writes it, one CSV encoding.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

# Call rows: the keys the call list promised first, then the details.
CALL_KEYS = [
    "call_group_id", "call_ids", "method", "from_user", "to_user", "from_uri", "to_uri", "state", "final_status",
    "start_ts", "srd_ms", "setup_ms", "duration_s", "hosts", "hop_delays_ms", "legs", "messages", "retransmissions",
    "final_reason", "from_display", "to_display", "answer_ts", "end_ts", "failed_srd_ms", "disconnect_ms",
    "hung_up_by", "host_roles", "host_names", "forwarding", "forks", "in_dialog", "dialogs", "first_frame", "capture",
    "problems",
]
# What a call's `problems` keep of each finding (the full findings: FINDING_KEYS of the diagnostics).
PROBLEM_KEYS = ("rule", "severity", "title")
# Stream rows: the keys the stream list promised first, then the details.
STREAM_KEYS = [
    "stream_id", "call_group_id", "src", "src_port", "dst", "dst_port", "ssrc", "payload_type", "codec", "packets",
    "expected", "lost", "lost_pct", "seq_errors", "min_delta_ms", "mean_delta_ms", "max_delta_ms", "min_jitter_ms",
    "mean_jitter_ms", "max_jitter_ms", "mos", "r_factor", "mos_method", "start_ts", "end_ts", "sdp_match",
    "burst_ratio", "loss_bursts", "bound_by", "sdp_announced", "codecs", "payload_types", "max_skew_ms",
    "duration_s", "markers", "comfort_noise", "duplicates", "out_of_order", "wrong_timestamps", "first_frame",
    "clock_rate", "rtt_ms", "rtcp_blocks", "rtcp_fraction_lost_pct", "rtcp_cumulative_lost", "rtcp_max_jitter",
    "rtcp_max_jitter_ms", "endpoint_mos_lq", "endpoint_mos_cq", "endpoint_r_factor", "capture",
]
# Stream values rounded to 3 decimals (microseconds of delay, thousandths of a percent).
ROUND3 = ["lost_pct", "min_delta_ms", "mean_delta_ms", "max_delta_ms", "min_jitter_ms", "mean_jitter_ms",
          "max_jitter_ms", "max_skew_ms", "burst_ratio", "rtt_ms", "rtcp_fraction_lost_pct", "rtcp_max_jitter_ms"]
DTMF_KEYS = ["source", "ts", "digit", "duration_ms", "volume_dbm0", "end_seen", "packets", "src", "dst", "stream_id",
             "call_id", "call_group_id", "frame", "event", "capture"]


def iso(ts_ns: int | None) -> str | None:
    """Nanoseconds since the epoch -> ISO 8601 UTC with microseconds ('2024-01-02T03:04:05.123456+00:00')."""
    if ts_ns is None:
        return None
    return datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).isoformat(timespec="microseconds")


def ssrc_text(ssrc: int | None) -> str | None:
    """An SSRC as Wireshark's RTP streams list writes it: 0x and 8 upper-case hex digits."""
    return None if ssrc is None else f"0x{ssrc:08X}"


def call_row(summary: dict, problems: list[dict], capture: str) -> dict:
    """A correlator summary (flowviz.sip.calls) -> the call row: CALL_KEYS, ISO times, its problems."""
    row = dict(summary)
    row["problems"] = [{k: p[k] for k in PROBLEM_KEYS} for p in problems]
    row["start_ts"], row["answer_ts"], row["end_ts"] = (iso(summary.get(k)) for k in ("start_ns", "answer_ns",
                                                                                        "end_ns"))
    row["capture"] = capture
    return {key: row.get(key) for key in CALL_KEYS}


def stream_row(report_row: dict, capture: str) -> dict:
    """A row of the streams report (flowviz.media.report) -> the stream row: STREAM_KEYS."""
    row = dict(report_row)
    row["src"], row["dst"] = row.pop("src_ip"), row.pop("dst_ip")
    row["ssrc"] = ssrc_text(row["ssrc"])
    row["start_ts"], row["end_ts"] = iso(row.get("start_ts_ns")), iso(row.get("end_ts_ns"))
    row["capture"] = capture
    for key in ROUND3:
        if row.get(key) is not None:
            row[key] = round(row[key], 3)
    return {key: row.get(key) for key in STREAM_KEYS}


def dtmf_row(event: dict, call_group_id: str | None, capture: str) -> dict:
    """A DTMF event (flowviz.media.dtmf.DTMF_EVENTS) -> the DTMF row: DTMF_KEYS."""
    row = {**event, "ts": iso(event["ts_ns"]), "call_group_id": call_group_id, "capture": capture}
    return {key: row.get(key) for key in DTMF_KEYS}


def csv_value(value):
    """The one CSV encoding of a value: null empty, a list of plain values joined by ';', anything nested
    (lists of dicts, dicts) as JSON."""
    if value is None:
        return ""
    if isinstance(value, list) and all(not isinstance(x, (dict, list)) for x in value):
        return ";".join("" if x is None else str(x) for x in value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def csv_text(rows: list[dict], keys: list[str]) -> str:
    """Rows as CSV with a header line of `keys`, every value in the one encoding."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(keys)
    for row in rows:
        writer.writerow([csv_value(row.get(k)) for k in keys])
    return out.getvalue()


def json_text(value) -> str:
    """JSON as every command writes it: one space indent, UTF-8 kept."""
    return json.dumps(value, indent=1, ensure_ascii=False)

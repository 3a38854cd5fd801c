"""Call report: the per-call JSON for a ticket (`flowviz export --json` and the web's JSON download)."""

from __future__ import annotations

import json

from flowviz.ladder import Ladder


def call_report(call: dict, streams: list[dict], ladder: Ladder) -> dict:
    """call: the call row (flowviz.export.tables.call_row); streams: its stream rows; ladder: its ladder
    model. Keys: call, streams, columns, messages (the ladder's arrows), media, dtmf, findings."""
    return {
        "call": call,
        "streams": streams,
        "columns": ladder.columns.to_dicts(),
        "messages": ladder.arrows.drop("summary").to_dicts(),
        "media": ladder.media.to_dicts(),
        "dtmf": ladder.events.to_dicts(),
        "findings": ladder.markers.to_dicts(),
    }


def report_json(report: dict) -> str:
    return json.dumps(report, indent=1, ensure_ascii=False)

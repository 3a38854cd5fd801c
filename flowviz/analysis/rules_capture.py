"""Capture rules: the capture starts or ends in the middle of a call (facts about the file, not faults)."""

from __future__ import annotations

from flowviz.analysis.diagnose import CallFacts, Hit, Thresholds, rule

OPEN_STATES = ("setup", "ringing", "in call")


@rule("capture.starts_mid_call", "info", "Capture starts mid-call",
      "The INVITE is before the capture: start the capture earlier to see the setup.")
def starts_mid_call(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.call["state"] != "unknown":
        return []
    return [Hit(f"Only in-dialog messages of the call are in the capture (first: frame {f.call['first_frame']}).",
                [f.call["first_frame"]], {"first_method": f.msgs["cseq_method"][0]})]


@rule("capture.ends_mid_call", "info", "Capture ends mid-call",
      "The call was still going when the capture stopped: capture longer to see how it ends.")
def ends_mid_call(f: CallFacts, th: Thresholds) -> list[Hit]:
    if f.call["method"] != "INVITE" or f.call["state"] not in OPEN_STATES:
        return []
    return [Hit(f"The capture ends while the call is in state '{f.call['state']}'.",
                [int(f.msgs["frame"][-1])], {"state": f.call["state"]})]

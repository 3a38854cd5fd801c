"""Call states: what happened to a call, from the responses its caller saw.

INVITE (RFC 3261 13, 15): setup until a provisional, ringing after 18x, in call after a 2xx,
completed once a BYE was sent. Final failures: busy (486 Busy Here, 600 Busy Everywhere, 480
Temporarily Unavailable), cancelled (487 Request Terminated, or a CANCEL without a final),
diverted (3xx redirect, or only 181 Being Forwarded seen), rejected (any other >= 400).
Without a final response the call is timed out when the capture goes on past Timer B (64*T1 =
32 s, 17.1.1.2) after the INVITE (Timer C, 3 min, once a 1xx came), else it is still in its last state when the capture ends.
Other methods (REGISTER, OPTIONS, MESSAGE, SUBSCRIBE...): completed on 2xx, diverted on 3xx,
rejected on >= 400 (after any 401/407 challenge was answered), timed out without an answer.
A group holding only in-dialog messages (its INVITE before the capture started) is unknown.
"""

from __future__ import annotations

TIMER_B_NS = 32_000_000_000
TIMER_C_NS = 180_000_000_000
BUSY = {486, 600, 480}
CANCELLED = {487}
STATES = ("setup", "ringing", "in call", "completed", "cancelled", "rejected", "busy", "diverted", "timed out", "unknown")


def invite_state(
    final_status: int | None, provisional: list[int], cancelled: bool, bye_sent: bool, waited_ns: int
) -> str:
    """State of an INVITE call. `provisional`: 1xx codes the caller saw; `waited_ns`: capture end - INVITE."""
    if final_status is not None:
        if 200 <= final_status < 300:
            return "completed" if bye_sent else "in call"
        if 300 <= final_status < 400:
            return "diverted"
        if final_status in CANCELLED:
            return "cancelled"
        if final_status in BUSY:
            return "busy"
        return "rejected"
    if cancelled:
        return "cancelled"
    # Any 1xx stops Timer B; a proxy then gives up after Timer C (> 3 min, 16.6 step 11).
    if waited_ns > (TIMER_C_NS if provisional else TIMER_B_NS):
        return "timed out"
    if 181 in provisional and not any(c in (180, 183) for c in provisional):
        return "diverted"
    if any(c > 100 for c in provisional):
        return "ringing"
    return "setup"


def request_state(final_status: int | None, waited_ns: int) -> str:
    """State of a non-INVITE exchange (REGISTER, OPTIONS, MESSAGE, SUBSCRIBE...)."""
    if final_status is None:
        return "timed out" if waited_ns > TIMER_B_NS else "setup"
    if final_status < 300:
        return "completed"
    if final_status < 400:
        return "diverted"
    return "rejected"

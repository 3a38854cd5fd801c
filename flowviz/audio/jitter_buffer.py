"""Jitter buffer: what a listener behind a fixed jitter buffer of B ms hears, simulated from arrival times.

The receiver plays the first packet of a segment (see timeline.py) B ms after it arrived, and every later
packet of the segment at that moment plus its RTP timestamp distance from the first. A packet that arrives
after the moment it should start playing is too late: the buffer drops it and the listener hears a gap, as
in Wireshark's RTP Player (Telephony > RTP > RTP Player) in its "Jitter Buffer" playback mode. Without a buffer (None), every packet is played where its timestamp puts it, however late.
"""

from __future__ import annotations

import numpy as np


def playout(arrival_ns: np.ndarray, placed_ns: np.ndarray, buffer_ms: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(playout time in ns, late mask) of packets that arrived at `arrival_ns` and whose timestamps place them at
    `placed_ns` (anchored at their segment's first arrival)."""
    if buffer_ms is None:
        return placed_ns, np.zeros(len(placed_ns), dtype=bool)
    play = placed_ns + int(round(buffer_ms * 1_000_000))
    return play, arrival_ns > play

"""What the user sees of the live call list: on a terminal, the table redrawn in place (cursor home,
clear screen, as sngrep does) under a status line; elsewhere (a pipe, a file) one line per new call and
per change of a call's state, so that a log holds the history."""

from __future__ import annotations

import shutil
import time

HOME_AND_CLEAR = "\x1b[H\x1b[2J"


class Screen:
    def __init__(self, stream, terminal: bool):
        self.stream, self.terminal = stream, terminal
        self.states: dict[str, tuple] = {}  # call group id -> what a change line reports

    def show(self, calls: list[dict], table: str, status: str) -> None:
        if self.terminal:
            height = shutil.get_terminal_size().lines
            lines = table.splitlines()
            if len(lines) > height - 2:  # keep the header and the newest calls, and the footer
                lines = lines[:1] + lines[len(lines) - (height - 3):]
            self.stream.write(HOME_AND_CLEAR + status + "\n" + "\n".join(lines) + "\n")
        else:
            for line in self.events(calls):
                self.stream.write(line + "\n")
        self.stream.flush()

    def events(self, calls: list[dict]) -> list[str]:
        """A line per call that is new or whose state or final code changed since the last refresh."""
        now = time.strftime("%H:%M:%S")
        lines = []
        for call in calls:
            key = call["call_group_id"]
            state = (call["state"], call["final_status"])
            code = f" {call['final_status']}" if call["final_status"] is not None else ""
            before = self.states.get(key)
            if before is None:
                lines.append(f"{now} new call {key}: {_party(call, 'from')} -> {_party(call, 'to')}, "
                             f"{call['method']}, {call['state']}{code}")
            elif before != state:
                lines.append(f"{now} call {key}: {before[0]} -> {call['state']}{code}")
            self.states[key] = state
        return lines


def _party(call: dict, side: str) -> str:
    return call[f"{side}_user"] or call[f"{side}_uri"] or "-"

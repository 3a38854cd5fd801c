"""Run a command and report its own peak RSS: `python -m tests.kit.peak_rss FILE CMD...`.

Linux carries into a process's peak RSS the resident pages of the process it was forked from: exec keeps
the high-water mark of the forked copy. A command started straight from a large test process (a pytest
worker that has run many tests and holds 600 MB) then reports that worker's size, not its own. Started
from this small launcher, the command's peak is its own. FILE receives it (KiB, ru_maxrss); SIGTERM and
SIGINT are passed on; the exit code is the command's (128 + N when a signal N ended it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def _die_with_launcher() -> None:
    """The command is killed if this launcher is (a test's timeout kills the launcher)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main() -> int:
    target, command = Path(sys.argv[1]), sys.argv[2:]
    proc = subprocess.Popen(command, preexec_fn=_die_with_launcher)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: proc.send_signal(number))
    _, status, usage = os.wait4(proc.pid, 0)
    target.write_text(str(usage.ru_maxrss))
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())

"""Saving a live capture: its files merged into one pcapng at the path the user chose, written next to it
under a temporary name and then linked into place, so an existing file is never replaced (one that appeared
since the command started makes it <name>-1, -2...)."""

from __future__ import annotations

import os
import subprocess
import secrets
from pathlib import Path

from flowviz.errors import FlowvizError


def keep(files: list[Path], output: Path) -> Path:
    # a name of its own beside the output (same file system, for the link below); mergecap creates it with
    # the user's umask, as any other output
    partial = str(output.parent / f".{output.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        done = subprocess.run(["mergecap", "-F", "pcapng", "-w", partial, *map(str, files)], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise FlowvizError(f"mergecap could not write {output}: {done.stderr.strip().splitlines()[-1:]}")
        for n in range(100):
            target = output if n == 0 else output.with_name(f"{output.stem}-{n}{output.suffix}")
            try:
                os.link(partial, target)  # fails if the file exists: it is never replaced
                return target
            except FileExistsError:  # created since the command started: the next free name
                continue
        raise FlowvizError(f"{output} and 99 numbered names next to it exist; the capture was not saved")
    finally:
        if os.path.exists(partial):
            os.unlink(partial)

"""One format conversion for every reader and writer (issue 12 item 4): a capture in a format the packet
kernel does not read is converted by the tshark of `--tshark`, for the analysis and for the per-call pcap."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

REFERENCE = SAMPLES / "lab" / "reference_call.pcap"


def test_other_formats_are_converted_by_the_tshark_of_the_option(tmp_path, tshark):
    editcap = shutil.which("editcap")
    if editcap is None:
        pytest.skip("editcap is not installed (it writes the snoop file of this test)")
    snoop = tmp_path / "call.snoop"
    subprocess.run([editcap, "-F", "snoop", str(REFERENCE), str(snoop)], check=True, capture_output=True)
    log = tmp_path / "tshark.log"
    wrapper = tmp_path / "my-tshark"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {tshark} "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"}

    def flowviz(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flowviz", "--no-cache", "--tshark", str(wrapper), *args],
                              capture_output=True, text=True, timeout=300, env=env)

    done = flowviz("calls", "--format", "json", str(snoop))
    assert done.returncode == 0, done.stderr
    [call] = json.loads(done.stdout)
    assert call["state"] == "completed" and len(call["hosts"]) == 4
    conversions = [line for line in log.read_text().splitlines() if "-F pcapng -w" in line]
    assert len(conversions) == 1 and str(snoop) in conversions[0]
    out = tmp_path / "call.pcapng"
    done = flowviz("export", str(snoop), "--call", call["call_group_id"], "--pcap", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    assert len([line for line in log.read_text().splitlines() if "-F pcapng -w" in line]) == 3
    frames = subprocess.run([tshark, "-r", str(out), "-T", "fields", "-e", "frame.number"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert len(frames) == len(subprocess.run([tshark, "-r", str(REFERENCE), "-T", "fields", "-e", "frame.number"],
                                             capture_output=True, text=True, check=True).stdout.split())

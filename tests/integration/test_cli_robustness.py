"""Issue 19, the command's side: one-line errors for outputs that cannot be written, inputs that are not
files, an output naming the input, and nothing left behind by image exports (the command ends with
os._exit, so atexit never runs)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

REFERENCE = SAMPLES / "lab" / "reference_call.pcap"
CALL = "83d0dbe7fe"  # sha1 of the reference call's Call-ID (docs/correlation.md), first 10 hex
FLOWVIZ = [sys.executable, "-m", "flowviz"]


def flowviz(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FLOWVIZ, *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def one_line_error(done: subprocess.CompletedProcess, *parts: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert lines and lines[-1].startswith("flowviz: error: ") and "Traceback" not in done.stderr
    assert all(p in lines[-1] for p in parts), lines[-1]
    assert "Usage:" not in done.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("args", [["export", "--json"], ["export", "--pcap"], ["ladder", "--format", "txt", "-o"]],
                         ids=["export-json", "export-pcap", "ladder-txt"])
def test_a_full_disk_is_a_one_line_error(args, tshark):
    command, *option = args
    done = flowviz(command, str(REFERENCE), "--call", CALL, *option, "/dev/full", "--force")
    one_line_error(done, "cannot write /dev/full", "No space left on device")


@pytest.mark.parametrize("how", ["same path", "symlink"])
def test_an_output_never_overwrites_the_capture_it_reads(how, tmp_path, tshark):
    capture = tmp_path / "call.pcap"
    shutil.copy(REFERENCE, capture)
    before = hashlib.sha256(capture.read_bytes()).hexdigest()
    target = capture
    if how == "symlink":
        target = tmp_path / "link.pcap"
        target.symlink_to(capture)
    for args in (["export", str(capture), "--call", CALL, "--pcap", str(target), "--force"],
                 ["ladder", str(capture), "--call", CALL, "--format", "txt", "-o", str(target), "--force"],
                 ["redact", str(capture), "-o", str(target), "--force"]):
        one_line_error(flowviz(*args), "is the capture being read")
    assert hashlib.sha256(capture.read_bytes()).hexdigest() == before


def test_inputs_that_are_not_files_get_one_line_each(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = flowviz("info", str(fifo), "/dev/zero", str(REFERENCE))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{fifo} is a FIFO, not a capture file" in done.stderr
    assert "/dev/zero is a device, not a capture file" in done.stderr
    assert "2 of 3 captures could not be read" in done.stderr
    assert "packets" in done.stdout  # the good capture is still shown
    one_line_error(flowviz("calls", str(fifo)), "is a FIFO")


def test_a_folder_as_output_is_a_one_line_error_not_a_usage_error(tmp_path, tshark):
    one_line_error(flowviz("export", str(REFERENCE), "--call", CALL, "--pcap", str(tmp_path)), "is a folder")
    one_line_error(flowviz("ladder", str(REFERENCE), "--call", CALL, "--alias", str(tmp_path / "none")),
                   "cannot read the alias file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_capture_is_a_one_line_error(tmp_path):
    capture = tmp_path / "locked.pcap"
    shutil.copy(REFERENCE, capture)
    capture.chmod(0)
    one_line_error(flowviz("calls", str(capture)), "permission denied")


def test_image_export_leaves_no_browser_and_no_temp_files(tmp_path, tshark):
    from flowviz.export.image import browser_path

    if browser_path() is None:
        pytest.skip("no Chromium: the SVG is drawn without kaleido")
    # a short path: Chromium's socket names under TMPDIR must fit in 108 bytes (pytest's tmp_path is long)
    tmp = Path(tempfile.mkdtemp(prefix="fvk-", dir="/tmp"))
    done = flowviz("ladder", str(REFERENCE), "--call", CALL, "--format", "svg", "-o", str(tmp_path / "l.svg"),
                   env={"TMPDIR": str(tmp)})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "l.svg").read_bytes().lstrip().startswith((b"<svg", b"<?xml"))
    assert list(tmp.iterdir()) == []
    left = subprocess.run(["pgrep", "-f", str(tmp)], capture_output=True, text=True)
    assert left.stdout.strip() == ""
    tmp.rmdir()

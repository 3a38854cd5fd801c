"""dumpcap's ring buffer: a capture on one interface written as a rotating set of files in a private
temporary folder, at most `files` of them, each closed at `file_kb` kilobytes or `file_seconds` seconds;
the oldest is deleted when a new one starts. snapshot() is what was captured so far as one readable file;
save() keeps it as one pcapng."""

from __future__ import annotations

import ctypes
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flowviz.errors import FlowvizError
from flowviz.live.pcapng import complete_length
from flowviz.live.saving import keep

START_WAIT = 5.0  # seconds for dumpcap to open the interface and its first file
STOP_WAIT = 5.0  # seconds for dumpcap to close its file after SIGINT, before it is killed


@dataclass(frozen=True)
class Limits:
    files: int = 10
    file_kb: int = 5_000
    file_seconds: int = 60


def _end_with_parent() -> None:
    """In dumpcap's process before it starts: SIGTERM when flowviz dies without stopping it (killed with
    SIGKILL, a crash), so that no capture runs on alone (Linux prctl PR_SET_PDEATHSIG = 1)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


class Ring:
    """A running dumpcap; stop() ends it (and is safe to call twice)."""

    def __init__(self, interface: str, bpf: str = "", limits: Limits = Limits()):
        program = shutil.which("dumpcap")
        if not program:
            raise FlowvizError("dumpcap not found: it comes with tshark (Debian: apt-get install tshark)")
        self.interface, self.bpf, self.limits = interface, bpf, limits
        self.folder = Path(tempfile.mkdtemp(prefix="flowviz-live-"))
        command = [program, "-q", "-i", interface, "-b", f"filesize:{limits.file_kb}", "-b", f"files:{limits.files}",
                   "-b", f"duration:{limits.file_seconds}", "-w", str(self.folder / "live.pcapng")]
        if bpf:
            command[4:4] = ["-f", bpf]
        # dumpcap stays in flowviz's process group: a terminal's Ctrl-C reaches it too, as it does tshark
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, preexec_fn=_end_with_parent)
        self._errors: list[str] = []
        self._reader = threading.Thread(target=self._read_errors, daemon=True)  # a full pipe would stop dumpcap
        self._reader.start()
        try:
            self._wait_for_first_file()
        except KeyboardInterrupt:  # Ctrl-C while dumpcap starts: nothing worth keeping yet
            self.stop()
            self._cleanup()
            raise

    def _read_errors(self) -> None:
        for line in self.process.stderr:
            self._errors.append(line.decode(errors="replace").strip())

    def _wait_for_first_file(self) -> None:
        deadline = time.monotonic() + START_WAIT
        while not self.files():
            if self.process.poll() is not None:
                self._reader.join(1)
                why = self.last_error
                self._cleanup()
                raise FlowvizError(f"dumpcap could not capture on {self.interface}: {why or 'it stopped'} "
                                   "(check the interface (`dumpcap -D` lists them), the -f filter, and the right "
                                   "to capture: root or the wireshark group)")
            if time.monotonic() > deadline:
                self.stop()
                self._cleanup()
                raise FlowvizError(f"dumpcap wrote nothing on {self.interface} within {START_WAIT:.0f} s")
            time.sleep(0.05)

    def files(self) -> list[Path]:
        """The ring's files, oldest first (dumpcap numbers them: live_00001_<time>.pcapng)."""
        return sorted(self.folder.glob("live_*.pcapng"))

    def size(self) -> tuple:
        """The ring's files and their sizes: changes as packets arrive."""
        try:
            return tuple((p.name, p.stat().st_size) for p in self.files())
        except FileNotFoundError:  # turned over meanwhile
            return ()

    def snapshot(self) -> Path | None:
        """What the ring holds now as one file: its files one after the other, the current one up to its
        last whole block. Each file is a pcapng section of its own, and a pcapng may hold several; the
        files are already in time order (one capture point), so nothing needs merging (mergecap took
        0.6-1 s a refresh on a full 100 MB ring, the concatenation 0.05-0.2 s: docs/live.md). None
        before any file exists."""
        files = self.files()
        if not files:
            return None
        snapshot = self.folder / "snapshot.pcapng"
        with open(snapshot, "wb") as out:
            for path in files:
                try:
                    with open(path, "rb") as part:
                        if path == files[-1]:
                            data = part.read()
                            out.write(data[: complete_length(data)])
                        else:
                            shutil.copyfileobj(part, out, 1 << 20)
                except FileNotFoundError:  # the ring dropped its oldest file meanwhile
                    continue
        return snapshot

    @property
    def last_error(self) -> str:
        """dumpcap's first line on standard error after its greeting ('dumpcap: There is no device named
        "eth9".', 'dumpcap: Invalid capture filter ...'), without the program's name."""
        said = (e for e in self._errors if e and not e.startswith("Capturing on"))
        return next(said, "").removeprefix("dumpcap: ")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGINT, as a terminal's Ctrl-C: dumpcap closes its file properly; killed if it does not end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(1)

    def save(self, output: Path) -> Path:
        """Stop, then keep the ring's files as one pcapng at `output` (never replacing a file there)."""
        self.stop()
        files = self.files()
        if not files:
            raise FlowvizError("dumpcap wrote no file; nothing to save")
        try:
            return keep(files, output)
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

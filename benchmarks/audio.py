#!/usr/bin/env python3
"""A 10-minute two-way G.711 call decoded to WAV by the whole `flowviz audio` command.

    .venv/bin/python benchmarks/audio.py [--minutes 10] [--repeat 5] [--out /tmp/flowviz-audio-bench]

Builds the call with tests/kit/tone_calls.py (imported, not copied): INVITE/200/ACK with SDP, then PCMA 1 kHz
from the caller and PCMU 440 Hz from the callee, 20 ms packets, 30,000 packets each way for 10 minutes, BYE.
Then times, each in its own process, best and median of --repeat runs after one untimed warm-up:

  flowviz --no-cache audio F --call ID -o OUT --force     (everything: read the capture, calls, streams, decode)
  flowviz audio F --call ID -o OUT --force                (the decoded frames from flowviz's cache)
  flowviz --no-cache streams F                            (reference: the same reading and stream analysis,
                                                           no audio; the difference is what audio adds)

and, inside one process on an Analysis whose capture is already read, the audio part alone (payloads read
again from the file, decoding, placement, WAV bytes). Peak RSS of the commands with /usr/bin/time -f %M.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build(folder: Path, minutes: float) -> tuple[Path, str]:
    from tests.kit.tone_calls import Direction, write_tone_call

    path = folder / f"g711_{minutes:g}min.pcap"
    call = write_tone_call(path, Direction("PCMA", 1000), Direction("PCMU", 440), seconds=minutes * 60)
    return path, call.call_id


def timed(cmd: list[str], env: dict) -> tuple[float, int | None]:
    time_bin = "/usr/bin/time"
    full = [time_bin, "-f", "%M", *cmd] if os.path.exists(time_bin) else cmd
    start = time.perf_counter()
    done = subprocess.run(full, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    rss = int(done.stderr.strip().splitlines()[-1]) if full is not cmd else None
    return wall, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=None, help="folder for the capture and the WAV (default: a temporary one)")
    args = parser.parse_args()
    folder = Path(args.out or tempfile.mkdtemp(prefix="flowviz-audio-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    capture, call_id = build(folder, args.minutes)
    wav = folder / "call.wav"
    env = dict(os.environ, FLOWVIZ_CACHE_DIR=str(folder / "cache"))
    flowviz = [sys.executable, "-m", "flowviz"]
    commands = {
        "flowviz --no-cache audio": [*flowviz, "--no-cache", "audio", str(capture), "--call", call_id, "-o", str(wav),
                                     "--force"],
        "flowviz audio (cached frames)": [*flowviz, "audio", str(capture), "--call", call_id, "-o", str(wav),
                                          "--force"],
        "flowviz --no-cache streams (ref)": [*flowviz, "--no-cache", "streams", str(capture)],
    }
    print(f"capture: {capture} ({capture.stat().st_size / 1e6:.1f} MB), {args.minutes:g} min, call {call_id}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs "
          "(a shared machine: timings are noisy)")
    for cmd in commands.values():  # warm-up: numba's cache, the decode cache, the page cache
        timed(cmd, env)
    results = {name: [] for name in commands}
    rss = {name: 0 for name in commands}
    for round_ in range(args.repeat):
        names = list(commands) if round_ % 2 == 0 else list(reversed(commands))
        for name in names:
            wall, peak = timed(commands[name], env)
            results[name].append(wall)
            rss[name] = max(rss[name], peak or 0)
    for name, walls in results.items():
        print(f"{name:<32} best {min(walls):.3f} s  median {statistics.median(walls):.3f} s  "
              f"peak RSS {rss[name] / 1024:.0f} MB  ({len(walls)} runs)")

    from flowviz.analyze import analyze
    from flowviz.audio import call_audio

    os.environ["FLOWVIZ_CACHE_DIR"] = env["FLOWVIZ_CACHE_DIR"]
    analysis = analyze(capture)
    view = analysis.call(call_id)
    view.stream_frame  # streams analysed before the clock starts
    parts = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        audio = call_audio(view)
        data = audio.wav_bytes()
        parts.append(time.perf_counter() - start)
    print(f"{'audio part alone (in process)':<32} best {min(parts):.3f} s  median {statistics.median(parts):.3f} s  "
          f"({audio.duration_s:.1f} s of stereo at {audio.rate} Hz, {len(data) / 1e6:.1f} MB WAV)")


if __name__ == "__main__":
    main()

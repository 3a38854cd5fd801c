#!/usr/bin/env python3
"""Listen (and discard) on the RTP ports that sipp announces but does not bind.

sipp binds only its -mp port (and -mp + 2). With [auto_media_port] every call
gets its own port (-mp + 4 * (call number - 1)); RTP sent to a port nobody has
bound makes the kernel answer with ICMP port unreachable, which would land in
the capture (rate-limited, so not even a stable number of them). This sink
plays the part of a phone's RTP socket for those ports.

Usage: rtp_sink.py [--max-seconds N] IP:FIRST:LAST:STEP ...
Prints "ready" once every port is bound; on SIGTERM/SIGINT (or after
--max-seconds, a guard against being orphaned) prints one JSON line with the
number of packets received per address and exits.
"""
import errno
import json
import selectors
import signal
import socket
import sys
import time


def main(argv):
    max_seconds = 600.0
    specs = []
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--max-seconds":
            max_seconds = float(args.pop(0))
        else:
            specs.append(a)
    sel = selectors.DefaultSelector()
    counts = {}
    skipped = []
    for spec in specs:
        ip, first, last, step = spec.split(":")
        for port in range(int(first), int(last) + 1, int(step)):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((ip, port))
            except OSError as e:
                s.close()
                if e.errno == errno.EADDRINUSE:   # sipp's own -mp socket
                    skipped.append(f"{ip}:{port}")
                    continue
                raise
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, f"{ip}:{port}")
            counts[f"{ip}:{port}"] = 0

    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    print(f"ready: {len(counts)} ports bound, in use already: {' '.join(skipped) or '-'}", flush=True)
    deadline = time.monotonic() + max_seconds
    while not stop and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            try:
                while True:
                    key.fileobj.recv(2048)
                    counts[key.data] += 1
            except BlockingIOError:
                pass
    print(json.dumps({k: v for k, v in counts.items() if v}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

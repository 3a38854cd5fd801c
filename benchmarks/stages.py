"""Time each stage of read_capture on one capture, in a fresh process (figures in docs/performance.md).

    .venv/bin/python benchmarks/stages.py CAPTURE [--repeat 3]

Each run is its own process, so the first call into the compiled kernel (numba loading its
cached machine code) is counted, as it is for a user.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

STAGES = r"""
import json, sys, time
from flowviz.settings import Settings
from flowviz.ingest import kernel
from flowviz.ingest.capture_file import read_packets
from flowviz.ingest.sip_decode import feed, select_candidates
from flowviz.ingest.tshark_sip import TsharkRun
from flowviz.ingest.rtp_decode import decode_rtcp, find_streams, rtp_columns, rtp_frame, select_streams
from flowviz.ingest.capture import sdp_endpoints
import numpy as np
path, settings, laps = sys.argv[1], Settings(), {}
t = time.perf_counter()
def lap(name):
    global t
    now = time.perf_counter(); laps[name] = round(now - t, 3); t = now
kernel.walk_pcap(np.zeros(64, np.uint8), 0, 0, False, 1000, 1, 1, np.zeros(1, kernel.PACKET), 0)
lap("kernel load")
job = TsharkRun(settings).start()
packets = read_packets(path, settings); lap("packets")
candidates = select_candidates(packets, settings); feed(job, packets, candidates); lap("sip candidates")
rtcp, xr = decode_rtcp(packets, candidates.packet_rows); lap("rtcp")
streams = find_streams(packets, candidates.packet_rows)
columns = rtp_columns(packets, streams); packets.release_table()
shaped = rtp_frame(columns, streams); lap("rtp")
sip = job.result(); lap("sip wait")
rtp, n = select_streams(shaped, streams, sdp_endpoints(sip), settings.rtp_min_packets); lap("select")
laps["total"] = round(sum(laps.values()), 3)
print(json.dumps(laps))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", STAGES, args.capture], capture_output=True, text=True)
        if out.returncode:
            print(out.stderr.strip().splitlines()[-1], file=sys.stderr)
            return 1
        print("  ".join(f"{k}={v:.3f}" for k, v in json.loads(out.stdout).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
from flowviz.ingest.rtp_decode import decode_rtcp, find_streams, rtcp_packets, rtp_columns, rtp_frame, select_streams
from flowviz.ingest import sip_udp
from flowviz.ingest.capture import _merge_sip, _packet_info, _tshark_starter, sdp_endpoints
from pathlib import Path
import numpy as np
path, analysis, settings, laps = sys.argv[1], sys.argv[2] == "1", Settings(), {}
if analysis:
    import flowviz.media.report, flowviz.sip.calls  # imported before the clock starts, as the benchmark does
t = time.perf_counter()
def lap(name):
    global t
    now = time.perf_counter(); laps[name] = round(now - t, 3); t = now
kernel.walk_pcap(np.zeros(64, np.uint8), 0, 0, False, 1000, 1, 1, np.zeros(1, kernel.PACKET), 0)
lap("kernel load")
job = TsharkRun(settings)
packets = read_packets(path, settings, on_rows=_tshark_starter(job, settings)); lap("packets")
candidates = select_candidates(packets, settings); feed(job, packets, candidates); lap("sip candidates")
own_sip = sip_udp.decode(packets, candidates.own_rows, settings.leg_link_headers); lap("sip udp")
info = _packet_info(Path(path), packets, candidates); lap("info")
rtcp, xr = decode_rtcp(rtcp_packets(packets, candidates.packet_rows)); lap("rtcp")
streams = find_streams(packets, candidates.packet_rows)
columns = rtp_columns(packets, streams); packets.release_table()
shaped = rtp_frame(columns, streams); lap("rtp")
sip = _merge_sip(own_sip, job.result()); lap("sip wait")
rtp, n = select_streams(shaped, streams, sdp_endpoints(sip), settings.rtp_min_packets); lap("select")
if analysis:
    from flowviz.sip.calls import Correlation
    from flowviz.media.report import streams_report
    groups = Correlation(sip).group_of_call_id(); lap("calls")
    streams_report(sip, rtp, t0_ns=info["first_ts_ns"], group_of_call_id=groups, rtcp=rtcp, xr=xr); lap("streams")
laps["total"] = round(sum(laps.values()), 3)
print(json.dumps(laps))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--analysis", action="store_true", help="also time the correlator and the stream report")
    args = parser.parse_args()
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", STAGES, args.capture, "1" if args.analysis else "0"], capture_output=True, text=True)
        if out.returncode:
            print(out.stderr.strip().splitlines()[-1], file=sys.stderr)
            return 1
        print("  ".join(f"{k}={v:.3f}" for k, v in json.loads(out.stdout).items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time the parts that docs/architecture.md sections 6-10 give figures for, on one capture.

    .venv/bin/python benchmarks/parts.py CAPTURE [--repeat 5]

- stream_stats(): the compiled stream statistics (section 6);
- the SIP frame from parsed rows: schemas.from_rows() against polars' own pl.DataFrame(rows, schema)
  (section 7; the rows are the capture's own messages);
- leaving the process: a Python that imports flowviz's modules, with a normal exit against os._exit
  (section 9);
- SIP in whole UDP datagrams: flowviz's own decode of the capture's datagrams, and read_capture with
  it against read_capture with every SIP packet sent to tshark (section 10).
Each figure is the best of --repeat runs (the fresh-process read_capture: the median); the machine's load
moves them, so compare runs made together.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from statistics import median

IMPORTS = "import flowviz.cli, flowviz.ingest, flowviz.media.report, flowviz.sip.calls"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def exit_cost(repeat: int) -> tuple[float, float]:
    """(normal exit, os._exit): wall time of a process that imports flowviz and leaves."""
    def run(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t

    normal = min(run(IMPORTS) for _ in range(repeat))
    quick = min(run(IMPORTS + "; import os; os._exit(0)") for _ in range(repeat))
    return normal, quick


FRESH_READ = """
import sys, time
import flowviz.media.report, flowviz.sip.calls
from flowviz.ingest import read_capture
from flowviz.settings import Settings
t = time.perf_counter()
read_capture(sys.argv[1], Settings(sip_decoder=sys.argv[2]), use_cache=False)
print(time.perf_counter() - t)
"""


def sip_udp_cost(capture: str, repeat: int) -> tuple[float, float, float]:
    """(flowviz's decode of the UDP SIP datagrams, read_capture, read_capture with tshark for all SIP).

    read_capture runs in a fresh process each time, as for a user: in a warm process tshark's start
    hides behind the packet pass and the two come out alike, which a user never sees."""
    from flowviz.ingest import sip_udp
    from flowviz.ingest.capture_file import read_packets
    from flowviz.ingest.sip_decode import select_candidates
    from flowviz.settings import Settings

    settings = Settings()
    packets = read_packets(capture, settings)
    rows = select_candidates(packets, settings).own_rows
    own = best(lambda: sip_udp.decode(packets, rows, settings.leg_link_headers), repeat)
    packets.close()
    times: dict[str, list[float]] = {"auto": [], "tshark": []}
    for _ in range(repeat):  # interleaved: the machine's slow spells hit both alike
        for decoder in times:
            out = subprocess.run([sys.executable, "-c", FRESH_READ, capture, decoder], check=True,
                                 capture_output=True, text=True)
            times[decoder].append(float(out.stdout))
    return own, median(times["auto"]), median(times["tshark"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import polars as pl

    from flowviz import schemas
    from flowviz.ingest import read_capture
    from flowviz.media.stats import stream_stats
    from flowviz.media.streams import sdp_payload_map

    cap = read_capture(args.capture)
    payload_map = sdp_payload_map(cap.sip_messages)
    stream_stats(cap.rtp_packets, payload_map=payload_map)  # numba loads its compiled code once
    stats_s = best(lambda: stream_stats(cap.rtp_packets, payload_map=payload_map), args.repeat)
    rows = cap.sip_messages.to_dicts()
    ours = best(lambda: schemas.from_rows(rows, schemas.SIP_MESSAGES), args.repeat)
    polars_own = best(lambda: pl.DataFrame(rows, schema=schemas.SIP_MESSAGES), args.repeat)
    normal, quick = exit_cost(args.repeat)
    own_s, with_own, with_tshark = sip_udp_cost(args.capture, args.repeat)
    print(f"stream_stats: {stats_s:.3f} s for {cap.rtp_packets.height:,} RTP packets")
    print(f"SIP frame from {len(rows):,} rows: from_rows {ours:.3f} s, pl.DataFrame(rows) {polars_own:.3f} s")
    print(f"process importing flowviz: normal exit {normal:.2f} s, os._exit {quick:.2f} s")
    print(f"SIP in UDP datagrams decoded by flowviz: {own_s:.3f} s; read_capture in a fresh process, median: "
          f"{with_own:.2f} s, with --sip-decoder tshark {with_tshark:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

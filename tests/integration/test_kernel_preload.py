"""The compiled kernels are loaded in the background at import for the argument types the code passes.

If a call passes another type (a read-only array, a strided field, another integer width), numba
loads or compiles a second version at the call, on the critical path. Checked in a fresh process:
after ingest and the stream report of a pcap and a pcapng, no kernel has a signature that the
preload did not already load.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO, SAMPLES

SCRIPT = r"""
import json, sys, threading
import flowviz.media.report, flowviz.sip.calls
from flowviz.ingest import kernel as ingest_kernel, read_capture
from flowviz.media import kernel as media_kernel
from flowviz.media.report import streams_report
from flowviz.sip.calls import Correlation

for thread in threading.enumerate():
    if thread.name in ("flowviz-numba-load", "flowviz-media-kernel-load"):
        thread.join()

def signatures():
    return {f"{m.__name__}.{name}": [str(s) for s in getattr(m, name).signatures]
            for m in (ingest_kernel, media_kernel) for name in dir(m) if hasattr(getattr(m, name), "signatures")}

before = signatures()
for path in sys.argv[1:]:
    cap = read_capture(path, use_cache=False)
    groups = Correlation(cap.sip_messages).group_of_call_id()
    streams_report(cap.sip_messages, cap.rtp_packets, t0_ns=cap.info["first_ts_ns"], group_of_call_id=groups,
                   rtcp=cap.rtcp_reports, xr=cap.rtcp_xr)
print(json.dumps({"before": before, "after": signatures()}))
"""


def test_ingest_and_stream_report_load_no_kernel_a_second_time():
    captures = [SAMPLES / "lab" / "reference_call.pcap", SAMPLES / "synth" / "pcapng_two_interfaces.pcapng",
                SAMPLES / "synth" / "rtp_loss_reorder_jitter.pcap"]
    out = subprocess.run([sys.executable, "-c", SCRIPT, *map(str, captures)], capture_output=True, text=True,
                         cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    added = {name: sorted(set(sigs) - set(result["before"][name])) for name, sigs in result["after"].items()}
    assert {name: new for name, new in added.items() if new} == {}
    preloaded = [name for name, sigs in result["before"].items() if sigs]
    assert "flowviz.ingest.kernel.walk_pcap" in preloaded and "flowviz.media.kernel.analyse_streams" in preloaded

"""flowviz: SIP/RTP capture analyzer and call-flow visualizer.

    from flowviz import analyze
    analysis = analyze("capture.pcap")
    analysis.calls, analysis.streams, analysis.findings, analysis.kpis, analysis.dtmf
    analysis.call(call_group_id).ladder()
"""

import os

# polars allocates through its own jemalloc, which by default keeps freed pages for 10 s before giving
# them back: the analysis after ingest then adds its memory on top of ingest's instead of reusing it
# (peak RSS 332 -> 301 MiB on the 1M-packet benchmark, docs/performance.md). Must be set before polars
# is first imported; a value the user set wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

from flowviz.errors import FlowvizError
from flowviz.settings import Settings

__all__ = ["Analysis", "Capture", "FlowvizError", "Settings", "analyze", "read_capture"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use: the SIP worker process and `flowviz --help` need no packet kernel.
    if name in ("Capture", "read_capture"):
        from flowviz import ingest

        return getattr(ingest, name)
    if name in ("Analysis", "analyze"):
        from flowviz import analyze as module

        return getattr(module, name)
    raise AttributeError(f"module 'flowviz' has no attribute {name!r}")

"""flowviz: SIP/RTP capture analyzer and call-flow visualizer."""

from flowviz.errors import FlowvizError
from flowviz.settings import Settings

__all__ = ["Capture", "FlowvizError", "Settings", "read_capture"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use: the SIP worker process and `flowviz --help` need no packet kernel.
    if name in ("Capture", "read_capture"):
        from flowviz import ingest

        return getattr(ingest, name)
    raise AttributeError(f"module 'flowviz' has no attribute {name!r}")

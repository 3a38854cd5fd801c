"""flowviz: SIP/RTP capture analyzer and call-flow visualizer."""

from flowviz.errors import FlowvizError
from flowviz.ingest import Capture, read_capture
from flowviz.settings import Settings

__all__ = ["Capture", "FlowvizError", "Settings", "read_capture"]
__version__ = "0.1.0"

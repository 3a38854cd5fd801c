"""Ingest: the only package that reads capture files or runs tshark."""

from flowviz.ingest.capture import Capture, read_capture

__all__ = ["Capture", "read_capture"]

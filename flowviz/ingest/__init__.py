"""Ingest: the only package that reads capture files or runs tshark."""

__all__ = ["Capture", "read_capture"]


def __getattr__(name: str):
    # Imported on first use, so a worker importing one module of this package stays light.
    if name in __all__:
        from flowviz.ingest import capture

        return getattr(capture, name)
    raise AttributeError(f"module 'flowviz.ingest' has no attribute {name!r}")

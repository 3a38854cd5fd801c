"""User-facing errors: each carries a one-line message saying what is wrong and what to do."""


class FlowvizError(Exception):
    """An error the user can cause and fix; the CLI prints it without a traceback."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CaptureError(FlowvizError):
    """The capture file cannot be read (missing, empty, not a capture, broken)."""


class ToolMissingError(FlowvizError):
    """An external program flowviz needs (tshark, editcap) is not installed."""


class NotFoundError(FlowvizError):
    """Something the user named (a call id, a stream id) is not in the capture."""

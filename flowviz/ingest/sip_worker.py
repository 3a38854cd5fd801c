"""SIP worker: the process that runs tshark on the sub-capture and parses its output for a big capture.

Started when a capture starts to be read (`python -m flowviz.ingest.sip_worker`), it starts tshark
first, then imports polars and the parser while tshark loads its dissectors, so both are ready when
the sub-capture arrives; parsing then uses the other core while the main process reads packets.
Job on stdin (pickled): (settings, sub-capture bytes, capture rows, their times, decode-as list).
Reply on stdout (pickled): ("ok", Arrow IPC bytes, gap frames) or ("error", class name, one-line message).
"""

from __future__ import annotations

import io
import pickle
import sys

from flowviz.errors import FlowvizError
from flowviz.ingest.tshark_cmd import start_tshark
from flowviz.settings import Settings


def main() -> None:
    proc, tshark = start_tshark(Settings())  # the default tshark; feed() restarts it if the job needs another
    from flowviz.ingest.tshark_sip import TsharkRun  # polars and the parser load while tshark starts

    run = TsharkRun(Settings()).adopt(proc, tshark)
    try:
        data = sys.stdin.buffer.read()
        if not data:
            return  # the capture had no SIP candidates, or the caller gave up
        settings, sub_bytes, rows, ts_of_row, decode_as = pickle.loads(data)
        run.settings = settings
        run.feed(sub_bytes, rows, ts_of_row, decode_as)
        buffer = io.BytesIO()
        run.result().write_ipc(buffer)
        reply = ("ok", buffer.getvalue(), run.gap_frames)
    except FlowvizError as exc:
        reply = ("error", type(exc).__name__, exc.message)
    except Exception as exc:  # a bug: carried to the main process to be reported there
        reply = ("error", "RuntimeError", f"SIP decoding failed: {type(exc).__name__}: {exc}")
    finally:
        run.cancel()
    sys.stdout.buffer.write(pickle.dumps(reply))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()

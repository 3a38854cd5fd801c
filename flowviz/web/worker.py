"""Analysis worker process: `python -m flowviz.web.worker FOLDER`, Settings pickled on stdin by the web app.

A process of its own (not multiprocessing) so the web app's main module is never imported again; SIGTERM
(cancel) exits through read_capture's cleanup, which stops tshark.
"""

from __future__ import annotations

import pickle
import signal
import sys
from pathlib import Path


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = pickle.load(sys.stdin.buffer)
    from flowviz.web.analysis import analyse_folder

    analyse_folder(Path(sys.argv[1]), settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())

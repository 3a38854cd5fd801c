"""Live capture: dumpcap's ring buffer on an interface (ring.py) or a HEP collector (collector.py) writes
the capture, a snapshot of it is analysed about once a second (refresh.py), and the call list is redrawn
in place or printed as events (screen.py). Ctrl-C keeps what was captured as one pcapng. docs/live.md."""

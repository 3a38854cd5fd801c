"""`flowviz live`: calls as they happen, from an interface (dumpcap's ring buffer) or a HEP collector;
Ctrl-C keeps what was captured as one pcapng."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from flowviz.cli.calls import calls_table
from flowviz.cli.common import Context, check_output
from flowviz.errors import FlowvizError

DEFAULTS = {"files": 10, "file_mb": 5, "file_seconds": 60}  # 50 MB: a refresh of a full ring ~1 s (docs/live.md)


@click.command()
@click.option("-i", "--interface", default=None, metavar="IFACE",
              help="Capture on this interface (dumpcap -D lists them).")
@click.option("-f", "--filter", "bpf", default="", metavar="BPF",
              help="Capture filter, e.g. 'udp port 5060 or udp portrange 10000-20000'.")
@click.option("--hep-listen", default=None, metavar="ADDR:PORT",
              help="Instead of an interface: collect HEPv3 on UDP and TCP at ADDR:PORT (IPv4), e.g. 127.0.0.1:9060.")
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Where Ctrl-C saves the capture (default ./flowviz-live-<date>-<time>.pcapng; never replaced).")
@click.option("--ring-files", type=click.IntRange(2, 1000), default=DEFAULTS["files"], show_default=True,
              help="Interface: the ring buffer keeps this many files, dropping the oldest.")
@click.option("--file-size", "file_mb", type=click.IntRange(1, 2000), default=DEFAULTS["file_mb"], show_default=True,
              metavar="MB", help="Interface: a ring file is closed at this size.")
@click.option("--file-seconds", type=click.IntRange(1, 86_400), default=DEFAULTS["file_seconds"], show_default=True,
              metavar="S", help="Interface: a ring file is closed after this long.")
@click.option("--duration", type=click.FloatRange(0, min_open=True), default=None, metavar="S",
              help="Stop and save after this many seconds (default: at Ctrl-C).")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=1.0, show_default=True, metavar="S",
              help="Refresh the call list this often (longer when one refresh takes longer).")
@click.pass_obj
def live(obj: Context, interface: str | None, bpf: str, hep_listen: str | None, output: str | None, ring_files: int,
         file_mb: int, file_seconds: int, duration: float | None, interval: float) -> None:
    """The call list of live traffic, refreshed in place (one line per new call or state change when
    the output is not a terminal).

    With -i, dumpcap captures into a ring buffer in a private temporary folder: at most --ring-files
    files of --file-size MB or --file-seconds each (defaults: 10 x 5 MB or 60 s, so the last 50 MB
    or 10 minutes at most); older traffic drops out. With --hep-listen, HEP packets from capture agents
    (heplify, kamailio siptrace...) are written as UDP packets to ADDR:PORT. About every second, what was
    captured is analysed again. Ctrl-C stops and keeps the capture as one pcapng (-o), which every
    flowviz command reads; the exit code is then 130 (Ctrl-C), 0 after --duration. See docs/live.md.
    """
    from flowviz.live.refresh import refreshes
    from flowviz.live.screen import Screen

    if bool(interface) == bool(hep_listen):
        raise FlowvizError("give -i IFACE (capture on an interface) or --hep-listen ADDR:PORT (collect HEP), "
                           "one of them")
    if hep_listen and bpf:
        raise FlowvizError("-f applies to -i: a HEP collector takes what its agents send")
    target = Path(output or f"flowviz-live-{time.strftime('%Y%m%d-%H%M%S')}.pcapng")
    if target.exists():
        raise FlowvizError(f"{target} exists; give another -o (a live capture never replaces a file)")
    check_output(str(target), force=False)  # a folder, a missing folder
    source, what = _start(interface, bpf, hep_listen, ring_files, file_mb, file_seconds)
    terminal = sys.stdout.isatty()
    screen = Screen(sys.stdout, terminal)
    click.echo(f"flowviz live: {what}; Ctrl-C stops and saves to {target}", err=True)
    started, last_error, interrupted = time.monotonic(), "", False
    try:
        for refresh in refreshes(source, obj.settings, interval):
            calls = refresh.calls if refresh.calls is not None else []
            if refresh.changed and (refresh.calls is not None or terminal):
                status = (f"flowviz live: {what} | {len(calls)} call(s) | updated {time.strftime('%H:%M:%S')} "
                          f"in {refresh.seconds:.2f} s | Ctrl-C: stop, save to {target}")
                if refresh.error:
                    status += f" | {refresh.error}"
                screen.show(calls, calls_table(calls), status)
            if refresh.error and refresh.error != last_error and not terminal:
                click.echo(f"flowviz: live: {refresh.error}", err=True)
            last_error = refresh.error
            if duration is not None and time.monotonic() - started >= duration:
                break
        else:
            if interface:  # dumpcap ended by itself (the interface went away...)
                click.echo(f"flowviz: live: dumpcap stopped: {source.last_error}", err=True)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        # a second Ctrl-C must not stop the saving (mergecap inherits the ignored signal)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            click.echo(f"saved to {source.save(target)}")  # here, so that SIGTERM's way out prints it too
        finally:
            signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise KeyboardInterrupt


def _start(interface, bpf, hep_listen, ring_files, file_mb, file_seconds):
    if interface:
        from flowviz.live.ring import Limits, Ring

        ring = Ring(interface, bpf, Limits(files=ring_files, file_kb=file_mb * 1000, file_seconds=file_seconds))
        return ring, f"capturing on {interface}" + (f" ({bpf})" if bpf else "")
    from flowviz.live.collector import Collector, parse_address

    host, port = parse_address(hep_listen)
    return Collector(host, port), f"collecting HEP on {host}:{port} (UDP and TCP)"

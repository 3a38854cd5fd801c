"""The `flowviz` command group, its global options, and what every command shares: reading captures through
flowviz.analyze with progress and warnings, the rule for several captures of which some fail, output checks.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from flowviz.errors import FlowvizError
from flowviz.settings import Settings, limit_options


class Context:
    """The global options: settings (part of the cache key) and whether to use the decode cache."""

    def __init__(self, use_cache: bool, settings: Settings):
        self.use_cache = use_cache
        self.settings = settings

    def analyze(self, sources, thresholds=None, *, merge: bool = False, offsets: tuple[str, ...] = ()):
        """The Analysis of one capture, or of a capture set (several paths, or merge=True), its capture read
        now (progress on a terminal, warnings printed)."""
        from flowviz.analyze import Analysis

        show = _ProgressLine() if sys.stderr.isatty() else None
        analysis = Analysis(sources, self.settings, thresholds, use_cache=self.use_cache, progress=show, merge=merge,
                            offsets=offsets)
        try:
            analysis.capture
        finally:
            if show:
                show.close()
        for warning in analysis.warnings:
            click.echo(f"flowviz: warning: {warning}", err=True)
        return analysis

    def analyze_one(self, captures: tuple[str, ...], thresholds=None, *, merge: bool = False,
                    offsets: tuple[str, ...] = ()):
        """The Analysis of a command that shows one capture: CAPTURE, or with --merge a set of CAPTURES."""
        if merge:
            return self.analyze(_set_paths(captures), thresholds, merge=True, offsets=offsets)
        if offsets:
            raise FlowvizError("--offset applies to a capture set: add --merge")
        if len(captures) != 1:
            raise FlowvizError(f"{len(captures)} captures given: give one, or several with --merge to read them as "
                               "one set (captures of the same calls at several points)")
        return self.analyze(captures[0], thresholds)


def _set_paths(captures: tuple[str, ...]) -> list[str]:
    """The files of a capture set (files, folders, globs); any that cannot be read is the command's error."""
    from flowviz.ingest.inputs import find_inputs

    paths, bad = find_inputs(captures)
    if bad:
        raise FlowvizError(f"{bad[0][0]}: {bad[0][1]} (every capture of a --merge set must be readable)")
    return [str(p) for p in paths]


def set_options(command):
    """--merge and --offset, for every command that reads captures."""
    command = click.option("--offset", "offsets", multiple=True, metavar="CAPTURE=SECONDS",
                           help="With --merge: CAPTURE's clock is SECONDS ahead of the first capture's (repeatable); "
                                "otherwise estimated from the packets the captures share.")(command)
    return click.option("--merge", is_flag=True,
                        help="Read the CAPTURES as one set: the same calls captured at several points, merged on "
                             "one timeline (clock offsets corrected, packets seen twice counted once).")(command)


class _ProgressLine:
    """'stage  42.0%' rewritten in place on stderr until closed."""

    def __init__(self):
        self.open = True

    def __call__(self, stage: str, done: float) -> None:
        if self.open:
            click.echo(f"\r{stage:<30} {done * 100:5.1f}%", nl=False, err=True)

    def close(self) -> None:
        if self.open:
            click.echo("\r" + " " * 60 + "\r", nl=False, err=True)
            self.open = False


class CaptureRun:
    """The analyses of the CAPTURES of a command, one at a time (memory holds one capture).

    The rule for several captures, the same in every command: a capture that cannot be read is reported
    on stderr in one line and the others are analysed and shown; finish() then ends the command with
    exit code 2. A single capture that cannot be read is the command's error."""

    def __init__(self, obj: Context, captures: tuple[str, ...], thresholds=None, *, merge: bool = False,
                 offsets: tuple[str, ...] = ()):
        from flowviz.ingest.inputs import find_inputs

        self.obj = obj
        self.thresholds = thresholds
        self.merge, self.offsets = merge, offsets
        if offsets and not merge:
            raise FlowvizError("--offset applies to a capture set: add --merge")
        if merge:  # one analysis of the whole set
            self.paths, self.bad_inputs, self.total, self.failed = [_set_paths(captures)], [], 1, 0
            return
        self.paths, self.bad_inputs = find_inputs(captures)
        self.total = len(self.paths) + len(self.bad_inputs)
        if self.total == 1 and self.bad_inputs:
            raise FlowvizError(f"{self.bad_inputs[0][0]}: {self.bad_inputs[0][1]}")
        self.failed = 0
        for name, why in self.bad_inputs:
            self._report(f"{name}: {why}")

    def __iter__(self):
        for path in self.paths:
            try:
                analysis = self.obj.analyze(path if self.merge else str(path), self.thresholds, merge=self.merge,
                                            offsets=self.offsets)
            except FlowvizError as exc:
                if self.total == 1:
                    raise
                self._report(exc.message)
                continue
            yield analysis

    def _report(self, message: str) -> None:
        click.echo(f"flowviz: error: {message}", err=True)
        self.failed += 1

    def finish(self) -> None:
        if self.failed:
            raise FlowvizError(f"{self.failed} of {self.total} captures could not be read (see above)")


def check_output(output: str, force: bool, inputs: tuple[str, ...] = ()) -> None:
    """An output file may be written: its folder exists, it is not one of the inputs, and it does not exist
    unless --force."""
    path = Path(output)
    if path.is_dir():
        raise FlowvizError(f"{output} is a folder; give a file name")
    if not path.parent.is_dir():
        raise FlowvizError(f"{path.parent}: no such folder for {path.name}")
    if any(path.exists() and Path(i).exists() and os.path.samefile(path, i) for i in inputs):
        raise FlowvizError(f"{output} is the capture being read; write the output to another file")
    if path.exists() and not force:
        raise FlowvizError(f"{output} exists; use --force to overwrite it")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--no-cache", is_flag=True, help="Decode the capture again instead of reusing the cached frames.")
@click.option("--tshark", "tshark_path", default="", metavar="PATH", help="tshark program to use (default: from PATH).")
@click.option("--sip-port", "sip_ports", multiple=True, type=click.IntRange(1, 65535), metavar="PORT",
              help="Extra UDP/TCP port carrying SIP (repeatable); 5060 and 5061 always are.")
@click.option("--sip-decoder", type=click.Choice(["auto", "tshark"]), default="auto", show_default=True,
              help="Who decodes SIP in whole UDP datagrams: flowviz itself, by tshark's rules (auto), or "
                   "tshark, as for TCP, fragments and tunnels (to compare the two).")
@click.option("--tls-keylog", "tls_keylog", default=None, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, readable=True),
              help="TLS key log (NSS format, as written by SSLKEYLOGFILE) to decrypt SIP over TLS.")
@click.option("--limit", "limits", multiple=True, metavar="NAME=VALUE",
              help="Raise (or lower) a safety limit, repeatable: packets=N (20M), interfaces=N (1M), "
                   "decompressed=SIZE (8G, what a .gz capture may unpack to), record=SIZE (256K); also "
                   "FLOWVIZ_MAX_PACKETS etc. See docs/robustness.md.")
@click.version_option(package_name="flowviz")
@click.pass_context
def cli(ctx: click.Context, no_cache: bool, tshark_path: str, sip_ports: tuple[int, ...], sip_decoder: str,
        tls_keylog: str, limits: tuple[str, ...]) -> None:
    """flowviz: turn a SIP/RTP capture into calls, ladders, media quality and diagnostics.

    CAPTURE is a pcap or pcapng file, optionally gzip-compressed; other formats that
    Wireshark reads (Network Monitor, ERF, snoop...) are converted on the fly. Where a command
    takes several CAPTURES (files, folders, globs), one that cannot be read is reported and the
    others are shown; the exit code is then 2. With --merge, the CAPTURES are one set: the same
    calls captured at several points, read as one timeline (docs/capture-sets.md).
    """
    ports = tuple(sorted({5060, 5061, *sip_ports}))
    ctx.obj = Context(use_cache=not no_cache, settings=Settings(tshark_path=tshark_path, sip_ports=ports,
                                                                   sip_decoder=sip_decoder, tls_keylog=tls_keylog or "",
                                                                   **limit_options(limits)))


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="flowviz", standalone_mode=False)
    except FlowvizError as exc:
        click.echo(f"flowviz: error: {exc.message}", err=True)
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):  # Ctrl-C: click turns it into Abort inside a command
        click.echo("flowviz: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line, details on request
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            # Ctrl-C inside compiled code: numba's dispatcher reports the pending KeyboardInterrupt as a
            # SystemError ("returned a result with an exception set"); it is still the user's Ctrl-C
            click.echo("flowviz: interrupted", err=True)
            return 130
        if os.environ.get("FLOWVIZ_DEBUG"):
            raise
        click.echo(f"flowviz: internal error: {type(exc).__name__}: {exc} (run with FLOWVIZ_DEBUG=1 for details)", err=True)
        return 3
    return 0


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _stop_helpers() -> None:
    """What atexit would stop, since the command leaves through os._exit: the kaleido server (and its
    Chromium and profile folder) when an image export started one."""
    image = sys.modules.get("flowviz.export.image")
    if image is not None:
        image.stop()
    capture_sets = sys.modules.get("flowviz.captureset")
    if capture_sets is not None:  # the merged captures of --merge sets
        capture_sets.cleanup()


def run() -> None:
    """The `flowviz` command: main(), then leave without the interpreter's teardown.

    Tearing down polars and numba at exit took 0.3-0.4 s of every command (measured against
    os._exit: docs/architecture.md). Everything a command writes is closed before main() returns;
    the standard streams are flushed here.
    """
    signal.signal(signal.SIGTERM, _terminated)
    try:
        code = main()
    except SystemExit as exc:  # SIGTERM, below: the command's own cleanup has run on the way out
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:  # Ctrl-C between click's handling and main's return
        code = 130
        try:
            sys.stderr.write("flowviz: interrupted\n")
        except (OSError, ValueError):
            pass
    # Leaving: a second Ctrl-C must not interrupt the helpers' cleanup and the flush with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _stop_helpers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # the reader went away (`| head`), or a stream is closed
        pass
    os._exit(code)

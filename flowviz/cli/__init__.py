"""Command line: the `flowviz` group and its commands, one module per group of commands. Each command
parses its options, asks flowviz.analyze, and formats; none chains the analysis stages itself."""

from flowviz.cli import audio, batch, calls, capture, diagnose, ladder, live, media, serve
from flowviz.cli.common import Context, cli, main, run

COMMANDS = (capture.info, capture.messages, calls.calls, calls.kpis, media.streams, media.dtmf, diagnose.diagnose,
            ladder.ladder, ladder.export, batch.batch_command, capture.redact, serve.serve, capture.frame,
            capture.schemas, audio.audio, live.live)
for _command in COMMANDS:
    cli.add_command(_command)

__all__ = ["COMMANDS", "Context", "cli", "main", "run"]

"""`flowviz audio`: a call (stereo) or one RTP stream (mono) decoded to a 16-bit WAV file."""

from __future__ import annotations

import click

from flowviz.cli.common import Context, check_output, set_options
from flowviz.errors import FlowvizError


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@set_options
@click.option("--call", "call_ref", default=None, metavar="ID", help="call_group_id (from `flowviz calls`) or a Call-ID: "
              "stereo, the caller's voice left, the callee's right.")
@click.option("--stream", "stream_id", default=None, metavar="ID", help="stream id (from `flowviz streams`): mono.")
@click.option("-o", "--output", required=True, metavar="FILE.wav", help="The WAV file to write.")
@click.option("--jitter-buffer", "jitter_buffer_ms", type=click.FloatRange(0, 10_000), default=None, metavar="MS",
              help="Play what a listener behind a fixed jitter buffer of MS ms heard: packets that arrive too late "
                   "are dropped (silent). Default: every packet where its RTP timestamp puts it.")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
@click.pass_obj
def audio(obj: Context, captures: tuple[str, ...], merge: bool, offsets: tuple[str, ...], call_ref: str | None, stream_id: str | None, output: str,
          jitter_buffer_ms: float | None, force: bool) -> None:
    """Hear a call: its RTP decoded (G.711, G.722, G.726, G.729, Opus, AMR, GSM, iLBC, Speex, L16 by FFmpeg's
    decoders in PyAV), placed by RTP timestamp, lost packets silent, written as 16-bit WAV at the codec's
    rate (the higher of the two for a call). A stream whose codec cannot be decoded is named and skipped.
    See docs/audio.md."""
    from flowviz.audio import call_audio, stream_audio

    if (call_ref is None) == (stream_id is None):
        raise FlowvizError("give either --call ID (stereo) or --stream ID (mono)")
    check_output(output, force, inputs=captures)
    analysis = obj.analyze_one(captures, merge=merge, offsets=offsets)
    if call_ref is not None:
        result = call_audio(analysis.call(call_ref), jitter_buffer_ms)
    else:
        result = stream_audio(analysis, stream_id, jitter_buffer_ms)
    for note in result.notes:
        click.echo(f"flowviz: {note}", err=True)
    if not result.heard:
        raise FlowvizError(f"nothing to write: no stream of {call_ref or stream_id} could be decoded")
    try:
        result.write_wav(output)
    except OSError as exc:
        raise FlowvizError(f"cannot write {output}: {exc.strerror or exc}") from None
    what = "stereo (caller left, callee right)" if len(result.channels) == 2 else "mono"
    click.echo(f"{output}: {result.duration_s:.3f} s, {result.rate} Hz, {what}", err=True)
    names = ("left (caller)", "right (callee)") if len(result.channels) == 2 else ("mono",)
    for name, channel in zip(names, result.channels):
        click.echo(f"  {name}: {_summary(channel)}", err=True)


def _summary(track) -> str:
    """'PCMA; 3 lost packets in 2 gaps; DTMF 5 at 4.20 s' (times from the file's start)."""
    if not len(track.samples):
        return "silent"
    parts = [", ".join(track.codecs)]
    for kind, what in (("lost", "lost"), ("late", "late (jitter buffer)"), ("undecoded", "not decoded")):
        gaps = [m for m in track.marks if m.kind == kind]
        if gaps:
            seconds = sum(m.end_s - m.start_s for m in gaps)
            parts.append(f"{what}: {len(gaps)} gap{'s' * (len(gaps) > 1)}, {seconds:.2f} s")
    noise = [m for m in track.marks if m.kind == "comfort_noise"]
    if noise:
        parts.append(f"comfort noise: {sum(m.end_s - m.start_s for m in noise):.2f} s")
    digits = [f"{m.text.removeprefix('DTMF ')} at {m.start_s:.2f} s" for m in track.marks if m.kind == "dtmf"]
    if digits:
        parts.append("DTMF " + ", ".join(digits))
    return "; ".join(parts)

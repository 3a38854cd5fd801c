"""Player: a call's audio for the call page, served as WAV files by GET routes (never base64 in a callback),
and the waveform of each direction on the media plots' time axis (capture time s) with lost packets and
DTMF marked. assets/audio.js moves the waveform's cursor while a player plays."""

from __future__ import annotations

import threading
import weakref

from flowviz.figures.theme import LIGHT, Theme

WAVEFORM_POINTS = 1500  # (min, max) pairs per direction: enough for a page's width
MARK_COLOURS = {"lost": "rgba(192, 57, 43, 0.35)", "late": "rgba(230, 126, 34, 0.35)"}
CHANNEL_NAMES = ("caller (left)", "callee (right)")

# decoded audio per Analysis, so the waveform, the player's range requests and the download decode once; it goes
# with its Analysis when the call cache drops that (a capture set's new point, eviction)
_decoded: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def audio_of(details: dict, stream_id: str | None = None):
    """The call's audio (stereo: caller left, callee right) or one of its streams' (mono), decoded once."""
    from flowviz.audio import call_audio, stream_audio

    view = details["view"]
    analysis = view.analysis
    key = (view.call_group_id, stream_id)
    with _lock:
        kept = _decoded.setdefault(analysis, {})
        if key in kept:
            return kept[key]
    audio = call_audio(view) if stream_id is None else stream_audio(analysis, stream_id)
    with _lock:
        kept[key] = audio
    return audio


def wav(details: dict, stream_id: str | None = None) -> bytes:
    """The WAV file; FlowvizError when nothing of it can be decoded (the notes say why)."""
    from flowviz.errors import FlowvizError

    audio = audio_of(details, stream_id)
    if not audio.heard:
        raise FlowvizError("; ".join(audio.notes) or "no audio could be decoded")
    return audio.wav_bytes()


def start_s(details: dict, stream_id: str | None = None) -> float | None:
    """Where sample 0 of the player's audio is on the media plots' axis (s from the capture's first packet),
    without decoding: call_audio starts at the call's first SIP message, or at its first RTP packet when
    media came first; stream_audio at the stream's first packet."""
    streams, origin = details["streams"], details["capture"].info.get("first_ts_ns") or 0
    if streams is None or streams.is_empty():
        return None
    if stream_id is not None:
        row = streams.filter(streams["stream_id"] == stream_id)
        return None if row.is_empty() else (int(row["start_ts_ns"][0]) - origin) / 1e9
    start = min(int(details["view"].summary["start_ns"]), int(streams["start_ts_ns"].min()))
    return (start - origin) / 1e9


def waveform_figure(details: dict, theme: Theme = LIGHT):
    """Each direction's waveform (min/max band) on the capture's time axis in s, lost and late packets as red
    and orange spans, DTMF as a labelled line; shapes[0] is the cursor (hidden until a player plays)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from flowviz.audio.waveform import waveform

    audio = audio_of(details)
    data = waveform(audio, WAVEFORM_POINTS, details["capture"].info.get("first_ts_ns") or audio.t0_ns)
    rows = len(data["channels"])
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[CHANNEL_NAMES[i] if rows == 2 else "audio" for i in range(rows)])
    x = [t / 1e3 for t in data["t_ms"]]
    fig.add_shape(type="line", xref="x", yref="paper", x0=x[0] if x else 0, x1=x[0] if x else 0, y0=0, y1=1,
                  line={"color": theme.severities["error"], "width": 2}, visible=False, name="cursor")
    for row, channel in enumerate(data["channels"], start=1):
        colour = theme.series[row - 1]
        fig.add_trace(go.Scatter(x=x, y=channel["max"], mode="lines", line={"width": 0.6, "color": colour},
                                 showlegend=False, hoverinfo="skip"), row=row, col=1)
        fig.add_trace(go.Scatter(x=x, y=channel["min"], mode="lines", line={"width": 0.6, "color": colour},
                                 fill="tonexty", fillcolor=colour, showlegend=False,
                                 hovertemplate="%{x:.3f} s<extra></extra>"), row=row, col=1)
        for mark in channel["marks"]:
            kind, x0, x1 = mark["kind"].lower(), mark["start_ms"] / 1e3, mark["end_ms"] / 1e3
            if kind == "dtmf":
                fig.add_vline(x=x0, line={"color": theme.dtmf, "width": 1.5}, row=row, col=1,
                              annotation_text=f"DTMF {mark['text'] or ''}".strip(),
                              annotation_font_color=theme.dtmf)
            elif kind in MARK_COLOURS:
                fig.add_vrect(x0=x0, x1=max(x1, x0 + data["bin_ms"] / 1e3), fillcolor=MARK_COLOURS[kind],
                              line_width=0, row=row, col=1, annotation_text=kind if x1 - x0 > 0.2 else None)
    fig.update_layout(height=150 + 110 * rows, margin={"l": 60, "r": 20, "t": 40, "b": 40},
                      paper_bgcolor=theme.paper, plot_bgcolor=theme.plot,
                      font={"family": theme.font_family, "size": theme.font_size, "color": theme.text},
                      meta={"t0_s": (audio.t0_ns - (details["capture"].info.get("first_ts_ns") or audio.t0_ns)) / 1e9})
    fig.update_xaxes(title_text="capture time s", row=rows, col=1)
    fig.update_xaxes(gridcolor=theme.grid, zerolinecolor=theme.grid)
    fig.update_yaxes(range=[-1, 1], gridcolor=theme.grid, zerolinecolor=theme.grid, fixedrange=True)
    return fig

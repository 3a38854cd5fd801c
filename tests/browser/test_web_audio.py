"""Hearing the reference call in the browser: its player plays and moves the waveform's cursor, and the WAV
download is a WAV as long as the call's media. Expected lengths come from tshark (-z rtp,streams: each
stream's start and packets; the RTP timestamp step per packet: 240 at 8 kHz, 30 ms), not from flowviz."""

from __future__ import annotations

import io
import re
import subprocess
import wave
from pathlib import Path

import pytest
from playwright.sync_api import expect

REFERENCE = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab" / "reference_call.pcap"
TIMEOUT = 30_000

pytestmark = pytest.mark.lab
expect.set_options(timeout=TIMEOUT)


def tshark(*args: str) -> str:
    return subprocess.run(["tshark", "-r", str(REFERENCE), *args], capture_output=True, text=True, check=True).stdout


def media_times() -> tuple[float, list[tuple[float, int]], float]:
    """(first SIP message's time, [(stream start, packets)], seconds of audio per packet), times from the
    capture's first packet."""
    first_sip = float(tshark("-Y", "sip", "-T", "fields", "-e", "frame.time_relative").split()[0])
    streams = [(float(m[0]), int(m[1])) for m in re.findall(
        r"^\s*([\d.]+)\s+[\d.]+\s+\S+\s+\d+\s+\S+\s+\d+\s+0x[0-9A-Fa-f]+\s+\S+\s+(\d+)", tshark("-q", "-z", "rtp,streams"),
        re.M)]
    stamps = tshark("-Y", "rtp", "-T", "fields", "-e", "rtp.ssrc", "-e", "rtp.timestamp").split("\n")
    first = [line.split("\t") for line in stamps if line][:40]
    ssrc = first[0][0]
    ts = [int(t) for s, t in first if s == ssrc][:2]
    return first_sip, streams, (ts[1] - ts[0]) / 8000  # PCMA: 8,000 Hz RTP clock (RFC 3551)


def wav_seconds(data: bytes) -> tuple[float, int]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate(), w.getnchannels()


def test_reference_call_plays_and_downloads_as_wav(page, base_url_app):
    first_sip, streams, ptime = media_times()
    assert len(streams) == 2 and all(n == 334 for _, n in streams), streams
    page.goto(base_url_app)
    page.click("button.sample:has-text('reference_call.pcap')")
    row = page.locator("tr[data-state='done']", has=page.locator(".capture-name", has_text="reference_call.pcap"))
    expect(row.first).to_be_visible()
    row.first.locator("a").click()
    page.locator("#calls-table tr:has(td) a").first.click()
    expect(page.locator("#waveform .js-plotly-plot")).to_be_visible()

    page.evaluate("document.getElementById('call-audio').play()")
    page.wait_for_function("() => document.getElementById('call-audio').currentTime > 0.5", timeout=TIMEOUT)
    t0 = float(page.get_attribute("#call-audio", "data-t0"))
    assert abs(t0 - min(first_sip, *(s for s, _ in streams))) < 1e-3
    # the cursor moved with it, on the capture's time axis
    page.wait_for_function(f"""() => {{ const s = document.querySelector('#waveform .js-plotly-plot').layout.shapes[0];
        return s.visible && s.x0 > {t0 + 0.5}; }}""", timeout=TIMEOUT)
    page.evaluate("document.getElementById('call-audio').pause()")

    data = page.request.get(base_url_app + page.get_attribute("#export-wav", "href")).body()
    seconds, channels = wav_seconds(data)
    expected = max(start + n * ptime for start, n in streams) - min(first_sip, *(s for s, _ in streams))
    assert channels == 2 and abs(seconds - expected) < 1e-3, (seconds, expected)
    stream_src = page.locator("audio[id^='stream-audio-']").first.get_attribute("src")
    seconds, channels = wav_seconds(page.request.get(base_url_app + stream_src).body())
    assert channels == 1 and abs(seconds - 334 * ptime) < 1e-3, seconds


def test_waveform_marks_lost_packets_and_dtmf_where_the_call_was_built_with_them(tmp_path):
    """A tone call built with the caller's packets 10-14 (20 ms each) left out and a SIP INFO digit 5 sent 600 ms
    after the caller's first packet (tests/kit/tone_calls.py): the waveform's red span and DTMF line are there,
    on the capture's time axis (s from the INVITE, the capture's first packet)."""
    from flowviz.settings import Settings
    from flowviz.web.analysis import CallCache
    from flowviz.web.player import MARK_COLOURS, waveform_figure
    from tests.kit.tone_calls import T0_NS, Direction, write_tone_call

    built = write_tone_call(tmp_path / "tone.pcap", Direction("PCMA", 1000, removed=frozenset(range(10, 15))),
                            Direction("PCMU", 440), seconds=1.0, sip_info=((600, "5", 100),))
    from flowviz.analyze import analyze

    gid = analyze(built.path).calls[0]["call_group_id"]
    details = CallCache().get(("s", "c"), ([built.path], None), gid, Settings())
    shapes = waveform_figure(details).layout.shapes
    start = (built.first_rtp_ns["caller"] - T0_NS) / 1e9
    lost = [s for s in shapes if s.fillcolor == MARK_COLOURS["lost"]]
    assert len(lost) == 1 and abs(lost[0].x0 - (start + 0.200)) < 1e-3 and abs(lost[0].x1 - (start + 0.300)) < 1e-3
    assert lost[0].yref.startswith("y") and lost[0].xref == "x"  # the caller's row
    dtmf = [s for s in shapes if s.type == "line" and s.name != "cursor"]
    assert len(dtmf) == 1 and abs(dtmf[0].x0 - (start + 0.600)) < 1e-3

"""Hearing calls: captures built by tests/kit/tone_calls.py with a known tone per direction, encoded by PyAV's
encoders, decoded by flowviz.audio and `flowviz audio`. Expected values come from the construction: the tone of
each direction, when its first packet was sent, how many packets of which duration, which were removed.

Checks (issue 15): each channel's dominant frequency (numpy FFT) is its tone; the audio lasts as long as the
media within one packet; the samples are silent exactly where packets were removed and nowhere else.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flowviz.analyze import analyze
from flowviz.audio import call_audio, call_wav_bytes, stream_audio
from flowviz.audio.wav import read_wav
from tests.kit.tone_calls import T0_NS, Direction, write_tone_call

REPO = Path(__file__).resolve().parents[2]
FLOWVIZ = [sys.executable, "-m", "flowviz"]
LOUD = 1000  # RMS of a packet of tone (the tones are at half of full scale: RMS about 11,600)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    x = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def packet_slots(start_ns: int, t0_ns: int, rate: int, ptime_ms: int, packets: int) -> list[slice]:
    """Where each packet's samples must be, from the construction: first packet's send time, then every ptime."""
    first = (start_ns - t0_ns) * rate // 1_000_000_000
    per = rate * ptime_ms // 1000
    return [slice(first + k * per, first + (k + 1) * per) for k in range(packets)]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


def check_channel(samples, rate, tone_hz, slots, removed, within_hz=None):
    """The tone, the silent slots exactly those of the removed packets, and nothing after the last packet."""
    assert abs(dominant_hz(samples, rate) - tone_hz) <= (within_hz or 2 * rate / len(samples))
    for k, slot in enumerate(slots):
        if k in removed:
            assert not samples[slot].any(), f"packet {k} was removed: its samples must be silent"
        else:
            assert rms(samples[slot]) > LOUD, f"packet {k} was sent: its samples must carry the tone"
    assert not samples[:slots[0].start].any()  # nothing before the first packet
    assert not samples[slots[-1].stop:].any()  # nor after the last one


def run_cli(*args: str, process: bool = False) -> subprocess.CompletedProcess:
    """`flowviz ARGS`: in its own process, or in this one through the same entry point (flowviz.cli.main: the
    same options, messages and exit codes, without a second Python start-up)."""
    if process:
        return subprocess.run([*FLOWVIZ, *args], capture_output=True, text=True, cwd=REPO, timeout=300)
    import contextlib
    import io

    from flowviz.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, "", err.getvalue())


@pytest.fixture(scope="module")
def g711_call(tmp_path_factory):
    """PCMA 1 kHz from the caller, PCMU 440 Hz from the callee, 1.2 s, some packets removed each way."""
    path = tmp_path_factory.mktemp("audio") / "g711.pcap"
    return write_tone_call(path, Direction("PCMA", 1000, removed=frozenset({10, 11, 30})),
                           Direction("PCMU", 440, removed=frozenset({20, 59})), seconds=1.2)


def test_cli_writes_the_call_in_stereo_caller_left_callee_right(g711_call, tmp_path):
    out = tmp_path / "call.wav"
    done = run_cli("audio", str(g711_call.path), "--call", g711_call.call_id, "-o", str(out), process=True)
    assert done.returncode == 0, done.stderr
    (left, right), rate = read_wav(out.read_bytes())
    assert rate == 8000
    # the summary on stderr: caller lost packets 10-11 and 30 (two gaps), callee 20 (59 was its last packet)
    assert "left (caller): PCMA; lost: 2 gaps, 0.06 s" in done.stderr
    assert "right (callee): PCMU; lost: 1 gap, 0.02 s" in done.stderr
    call = g711_call
    for samples, side in ((left, "caller"), (right, "callee")):
        d = getattr(call, side)
        slots = packet_slots(call.first_rtp_ns[side], T0_NS, rate, d.ptime_ms, call.packets)
        check_channel(samples, rate, d.tone_hz, slots, d.removed)
    # the file ends with the last packet of the later direction (the callee's), within one packet
    end_s = (call.first_rtp_ns["callee"] - T0_NS) / 1e9 + call.media_seconds("callee")
    assert abs(len(left) / rate - end_s) <= call.callee.ptime_ms / 1000


def test_cli_refuses_to_overwrite_and_names_what_to_give(g711_call, tmp_path):
    out = tmp_path / "exists.wav"
    out.write_bytes(b"keep")
    done = run_cli("audio", str(g711_call.path), "--call", g711_call.call_id, "-o", str(out))
    assert done.returncode != 0 and "--force" in done.stderr and out.read_bytes() == b"keep"
    assert "Traceback" not in done.stderr
    done = run_cli("audio", str(g711_call.path), "-o", str(tmp_path / "x.wav"))
    assert done.returncode != 0 and "--call" in done.stderr and "Traceback" not in done.stderr


def test_one_stream_is_mono_and_lasts_its_media_time(g711_call):
    analysis = analyze(g711_call.path)
    view = analysis.call(g711_call.call_id)
    by_src = {s["src"]: s["stream_id"] for s in view.streams}
    audio = stream_audio(analysis, by_src["10.0.0.2"])
    assert len(audio.channels) == 1 and audio.rate == 8000
    samples = audio.channels[0].samples
    d = g711_call.callee
    # sample 0 is the stream's first packet; the last packet (59) was removed, so it ends one packet early
    assert abs(audio.duration_s - (g711_call.media_seconds("callee") - d.ptime_ms / 1000)) <= d.ptime_ms / 1000
    slots = packet_slots(0, 0, 8000, d.ptime_ms, g711_call.packets - 1)
    check_channel(samples, 8000, 440, slots, d.removed)
    lost = [m for m in audio.channels[0].marks if m.kind == "lost"]
    assert [(round(m.start_s, 3), round(m.end_s, 3)) for m in lost] == [(0.4, 0.42)]


# Other codecs, each encoded by PyAV's encoder. Rates differ between directions here, so the exact silence is
# checked on each stream at its own rate (in the stereo file the lower-rate side is resampled, which rings for
# a few samples at the edges of a gap); the stereo file's tones and length are checked too.
VARIANTS = {
    "g722-vs-opus": (Direction("G722", 1000, removed=frozenset({5, 6})),
                     Direction("opus", 440, payload_type=111, removed=frozenset({12}))),
    "opus60-vs-opus-stereo": (Direction("opus", 1000, ptime_ms=60, payload_type=111, removed=frozenset({3})),
                              Direction("opus", 440, ptime_ms=60, payload_type=112, stereo=True,
                                        removed=frozenset({7}))),
    "g723-vs-pcmu-30ms": (Direction("G723", 1000, ptime_ms=30, removed=frozenset({5, 6})),
                          Direction("PCMU", 440, ptime_ms=30, removed=frozenset({20}))),
    "g726-vs-pcmu-in-red": (Direction("G726-32", 1000, payload_type=97, removed=frozenset({8})),
                            Direction("PCMU", 440, red_pt=100, removed=frozenset({15}))),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_codec_variants_decode_to_their_tones(name, tmp_path):
    caller, callee = VARIANTS[name]
    call = write_tone_call(tmp_path / f"{name}.pcap", caller, callee, seconds=1.2)
    analysis = analyze(call.path)
    view = analysis.call(call.call_id)
    stereo = call_audio(view)
    assert stereo.rate == max(caller.rate, callee.rate) and stereo.notes == []
    by_src = {s["src"]: s["stream_id"] for s in view.streams}
    for channel, side, src in ((stereo.channels[0], "caller", "10.0.0.1"), (stereo.channels[1], "callee", "10.0.0.2")):
        d = getattr(call, side)
        assert abs(dominant_hz(channel.samples, stereo.rate) - d.tone_hz) <= 2
        end_s = (call.first_rtp_ns[side] - T0_NS) / 1e9 + call.media_seconds(side)
        last = np.flatnonzero(channel.samples)[-1] / stereo.rate
        assert abs(last - end_s) <= d.ptime_ms / 1000
        mono = stream_audio(analysis, by_src[src]).channels[0]
        assert mono.rate == d.rate
        check_channel(mono.samples, d.rate, d.tone_hz, packet_slots(0, 0, d.rate, d.ptime_ms, call.packets), d.removed)
        assert abs(mono.duration_s - call.media_seconds(side)) <= d.ptime_ms / 1000
        if caller.rate == callee.rate:  # nothing resampled: the stereo channel is the stream, from its start
            at = (call.first_rtp_ns[side] - T0_NS) * d.rate // 1_000_000_000
            assert np.array_equal(channel.samples[at:at + len(mono.samples)], mono.samples)


def test_the_jitter_buffer_drops_late_packets_and_only_those(tmp_path):
    # caller's packet 15 arrives 35 ms late, packet 40 80 ms late: a 50 ms buffer plays 15 and drops 40
    caller = Direction("PCMA", 1000, delay_ms={15: 35, 40: 80})
    call = write_tone_call(tmp_path / "late.pcap", caller, Direction("PCMU", 440), seconds=1.2)
    analysis = analyze(call.path)
    stream = next(s["stream_id"] for s in analysis.call(call.call_id).streams if s["src"] == "10.0.0.1")
    heard = stream_audio(analysis, stream, jitter_buffer_ms=50).channels[0]
    slots = packet_slots(50_000_000, 0, 8000, 20, call.packets)  # everything played 50 ms after arrival
    check_channel(heard.samples, 8000, 1000, slots, {40})
    assert [(m.kind, round(m.start_s, 3)) for m in heard.marks] == [("late", 0.85)]
    everything = stream_audio(analysis, stream).channels[0]  # no buffer: every packet where its timestamp says
    check_channel(everything.samples, 8000, 1000, packet_slots(0, 0, 8000, 20, call.packets), set())
    done = run_cli("audio", str(call.path), "--stream", stream, "--jitter-buffer", "50", "-o", str(tmp_path / "s.wav"))
    assert done.returncode == 0, done.stderr
    (mono,), rate = read_wav((tmp_path / "s.wav").read_bytes())
    assert rate == 8000 and np.array_equal(mono, heard.samples)


def test_dtmf_and_comfort_noise_are_not_speech(tmp_path):
    # packets 20-24: RFC 4733 event "5" (one event: the timestamp of packet 20, durations growing, E bit last);
    # packet 40: CN at -50 dBov, then packets 41-49 not sent (silence suppression), speech again from 50
    events = {20 + i: (101, bytes([5, (0x80 if i == 4 else 0) | 10]) + ((i + 1) * 160).to_bytes(2, "big"), 20)
              for i in range(5)}
    caller = Direction("PCMU", 440, replaced={**events, 40: (13, bytes([50]), 40)},
                       suppressed=frozenset(range(41, 50)))
    call = write_tone_call(tmp_path / "dtmf_cn.pcap", caller, Direction("PCMA", 1000), seconds=1.2,
                           sip_info=((700, "9", 160),))
    analysis = analyze(call.path)
    stream = next(s["stream_id"] for s in analysis.call(call.call_id).streams if s["src"] == "10.0.0.1")
    track = stream_audio(analysis, stream).channels[0]
    slots = packet_slots(0, 0, 8000, 20, call.packets)
    assert not track.samples[slots[20].start:slots[24].stop].any()  # DTMF: silence, not a decoded tone
    noise = track.samples[slots[40].start:slots[49].stop]
    assert noise.any() and rms(noise) < 100  # comfort noise: low (-50 dBov is RMS about 100 of full scale 32768)
    assert abs(dominant_hz(track.samples, 8000) - 440) <= 2
    marks = [(m.kind, round(m.start_s, 3), round(m.end_s, 3), m.text) for m in track.marks]
    assert ("dtmf", 0.4, 0.5, "DTMF 5") in marks
    assert [m[:3] for m in marks if m[0] == "comfort_noise"] == [("comfort_noise", 0.8, 1.0)]
    assert not [m for m in marks if m[0] == "lost"]  # suppressed packets are not lost ones
    quiet = stream_audio(analysis, stream, comfort_noise=False).channels[0]
    assert not quiet.samples[slots[40].start:slots[49].stop].any()
    # a digit sent as SIP INFO by the caller, 700 ms after its first packet: marked on the caller's channel
    marks = call_audio(analysis.call(call.call_id)).channels[0].marks
    info_at = (call.first_rtp_ns["caller"] - T0_NS) / 1e9 + 0.7
    assert [(round(m.start_s, 3), round(m.end_s, 3)) for m in marks if m.text == "DTMF 9 (SIP INFO)"] == \
        [(round(info_at, 3), round(info_at + 0.16, 3))]
    # the event's packets all carry its first timestamp: a jitter buffer must not find the later ones late
    buffered = stream_audio(analysis, stream, jitter_buffer_ms=40).channels[0]
    assert [(m.kind, round(m.start_s, 3), round(m.end_s, 3)) for m in buffered.marks if m.kind in ("dtmf", "late")] \
        == [("dtmf", 0.44, 0.54)]


def test_a_codec_without_decoder_is_named_and_skipped(tmp_path):
    rng = np.random.default_rng(15)
    evs = Direction("EVS", 0, payload_type=98, rtpmap="EVS/16000",
                    raw_payloads=[rng.bytes(33) for _ in range(60)])
    call = write_tone_call(tmp_path / "evs.pcap", Direction("PCMA", 1000), evs, seconds=1.2)
    out = tmp_path / "call.wav"
    done = run_cli("audio", str(call.path), "--call", call.call_id, "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "EVS" in done.stderr and "cannot be decoded" in done.stderr and "Traceback" not in done.stderr
    (left, right), rate = read_wav(out.read_bytes())
    assert abs(dominant_hz(left, rate) - 1000) <= 2 and not right.any()
    analysis = analyze(call.path)
    stream = next(s["stream_id"] for s in analysis.call(call.call_id).streams if s["src"] == "10.0.0.2")
    done = run_cli("audio", str(call.path), "--stream", stream, "-o", str(tmp_path / "evs.wav"))
    assert done.returncode != 0 and "EVS" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "evs.wav").exists()


def gsm_frame(rng) -> bytes:
    return bytes([0xD0 | rng.integers(16)]) + rng.bytes(32)  # RFC 3551 4.5.8: 33 bytes, 0xD signature


def amr_octet_aligned(rng) -> bytes:
    return bytes([0xF0, 7 << 3 | 0x04]) + rng.bytes(31)  # RFC 4867 4.4: CMR, ToC (12.2 kbit/s), 31 bytes


def amr_bandwidth_efficient(rng) -> bytes:
    # RFC 4867 4.3: CMR 1111, ToC F=0 FT=7 Q=1, 244 speech bits, 2 bits of padding: 32 bytes
    bits = np.concatenate([[1, 1, 1, 1, 0, 0, 1, 1, 1, 1], rng.integers(0, 2, 244), [0, 0]]).astype(np.uint8)
    return np.packbits(bits).tobytes()


def amr_wb_octet_aligned(rng) -> bytes:
    return bytes([0xF0, 8 << 3 | 0x04]) + rng.bytes(60)  # 23.85 kbit/s: 477 bits in 60 bytes


# Codecs PyAV decodes but cannot encode (no G.729, GSM, iLBC, AMR encoder in its wheel): no tone can be made,
# so the frames are random bits (valid frames for these decoders) and what is checked is the timing: every
# packet gives its ptime of samples where its timestamp says, removed ones are silent.
# name -> (rtpmap, payload type, samples per packet at the decoder's rate, rate, payload maker)
NO_ENCODER = {
    "G729": ("G729/8000", 18, 160, 8000, lambda rng: rng.bytes(20)),
    "GSM": ("GSM/8000", 3, 160, 8000, gsm_frame),
    "iLBC-20": ("iLBC/8000", 97, 160, 8000, lambda rng: rng.bytes(38)),
    "AMR-octet-aligned": ("AMR/8000", 97, 160, 8000, amr_octet_aligned),
    "AMR-bandwidth-efficient": ("AMR/8000", 97, 160, 8000, amr_bandwidth_efficient),
    "AMR-WB": ("AMR-WB/16000", 97, 320, 16000, amr_wb_octet_aligned),
}


@pytest.mark.parametrize("name", list(NO_ENCODER))
def test_codecs_without_encoder_decode_to_their_duration(name, tmp_path):
    rtpmap, pt, per_packet, rate, make = NO_ENCODER[name]
    rng = np.random.default_rng(15)
    payloads = [make(rng) for _ in range(50)]
    if name == "G729":
        payloads[25] = rng.bytes(2)  # a SID frame alone (Annex B): comfort noise, no speech frame
    caller = Direction(rtpmap.split("/")[0], 0, payload_type=pt, rtpmap=rtpmap, raw_payloads=payloads,
                       removed=frozenset({30}))
    call = write_tone_call(tmp_path / f"{name}.pcap", caller, Direction("PCMU", 440), seconds=1.0)
    analysis = analyze(call.path)
    stream = next(s["stream_id"] for s in analysis.call(call.call_id).streams if s["src"] == "10.0.0.1")
    track = stream_audio(analysis, stream).channels[0]
    assert track.rate == rate and track.codecs == [rtpmap.split("/")[0]] and track.notes == []
    assert len(track.samples) == 50 * per_packet
    slots = [slice(k * per_packet, (k + 1) * per_packet) for k in range(50)]
    silent = {30, 25} if name == "G729" else {30}
    assert all(not track.samples[slots[k]].any() for k in silent)
    assert all(track.samples[slots[k]].any() for k in range(50) if k not in silent)
    assert [m.kind for m in track.marks] == (["comfort_noise", "lost"] if name == "G729" else ["lost"])


def test_the_lab_reference_call_decodes_both_directions(tmp_path):
    capture = REPO / "sample_pcaps" / "lab" / "reference_call.pcap"
    analysis = analyze(capture)
    call = analysis.calls[0]
    audio = call_audio(analysis.call(call["call_group_id"]))
    assert audio.rate == 8000 and len(audio.channels) == 2 and audio.notes == []
    # README of sample_pcaps/lab: RTP both ways from 1.010 s to 11.00 s after the INVITE, 334 packets of 30 ms
    for channel in audio.channels:
        heard = np.flatnonzero(channel.samples)
        assert abs(heard[0] / 8000 - 1.010) < 0.03 and abs(heard[-1] / 8000 - 11.02) < 0.05
        per_packet = channel.samples[heard[0]:heard[0] + 334 * 240].reshape(334, 240)
        assert (np.sqrt((per_packet.astype(float) ** 2).mean(axis=1)) > 0).all()
        assert channel.codecs == ["PCMA"] and not channel.marks
    # what a web page would serve: the same audio as a WAV file
    (left, right), rate = read_wav(call_wav_bytes(analysis, call["call_group_id"]))
    assert rate == 8000 and np.array_equal(left, audio.channels[0].samples)
    assert np.array_equal(right[:len(audio.channels[1].samples)], audio.channels[1].samples)


def test_one_way_audio_leaves_the_silent_side_silent_and_says_so(tmp_path):
    callee = Direction("PCMU", 440, removed=frozenset(range(60)))  # the callee sends nothing
    call = write_tone_call(tmp_path / "one_way.pcap", Direction("PCMA", 1000), callee, seconds=1.2)
    audio = call_audio(analyze(call.path).call(call.call_id))
    left, right = (c.samples for c in audio.channels)
    assert abs(dominant_hz(left, 8000) - 1000) <= 2 and not right.any()
    assert audio.notes == ["no RTP stream carries the callee's voice: its channel is silent"]
    (wav_left, wav_right), rate = read_wav(audio.wav_bytes())
    assert rate == 8000 and len(wav_right) == len(wav_left) == len(left) and not wav_right.any()


def test_gzip_and_pcapng_copies_give_the_same_wav(g711_call, tmp_path):
    import gzip
    import shutil

    gz = tmp_path / "call.pcap.gz"
    gz.write_bytes(gzip.compress(g711_call.path.read_bytes()))
    ng = tmp_path / "call.pcapng"
    if shutil.which("editcap") is None:
        pytest.skip("editcap (Wireshark) is not installed")
    subprocess.run(["editcap", "-F", "pcapng", str(g711_call.path), str(ng)], check=True, timeout=60)
    wavs = [call_wav_bytes(analyze(p), g711_call.call_id) for p in (g711_call.path, gz, ng)]
    assert wavs[0] == wavs[1] == wavs[2]

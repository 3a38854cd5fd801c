"""Codecs: an RTP encoding name (SDP rtpmap, else the static payload type table) -> the PyAV (FFmpeg) decoder
that turns its payloads into 16-bit samples, and what the payload is when it is not speech.

Sample rates are the codec's, not the RTP clock: G.722 samples at 16 kHz on an 8 kHz RTP clock
(RFC 3551 4.5.2), Opus always decodes at 48 kHz (RFC 7587 4). Payload layouts come from RFC 3551 4.5
(G.711, G.722, G.726, GSM, L16, G.729 with its 2-byte Annex B SID frame), RFC 3952 (iLBC: 38 bytes per 20 ms
frame, 50 per 30 ms), RFC 4867 (AMR, AMR-WB), RFC 7587 (Opus), RFC 5574 (Speex).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SPEECH, EVENT, COMFORT_NOISE, REDUNDANCY, UNDECODABLE = "speech", "event", "comfort_noise", "redundancy", "undecodable"


@dataclass(frozen=True)
class Codec:
    """How to decode one payload type."""

    name: str  # the encoding as shown (rtpmap name or static name), e.g. "PCMA", "opus", "PT 101"
    kind: str  # SPEECH, EVENT (telephone-event), COMFORT_NOISE (CN), REDUNDANCY (red), UNDECODABLE
    decoder: str | None = None  # PyAV decoder name
    rate: int = 8000  # samples per second the decoder gives
    clock: int = 8000  # RTP timestamp units per second
    samples_per_byte: float = 0.0  # > 0: every payload byte is this many samples (sample-by-sample codecs)
    options: dict = field(default_factory=dict)  # decoder options (AVOptions)


# Encoding name (lower case) -> (decoder, sample rate, RTP clock, samples per payload byte, options).
_SPEECH: dict[str, tuple[str, int, int, float, dict]] = {
    "pcmu": ("pcm_mulaw", 8000, 8000, 1.0, {}),
    "pcma": ("pcm_alaw", 8000, 8000, 1.0, {}),
    "g722": ("g722", 16000, 8000, 2.0, {}),
    # RFC 3551 4.5.4: G.726 in RTP packs codewords from the least significant bit (FFmpeg's "g726le")
    "g726-16": ("g726le", 8000, 8000, 4.0, {"bits_per_coded_sample": "2"}),
    "g726-24": ("g726le", 8000, 8000, 8 / 3, {"bits_per_coded_sample": "3"}),
    "g726-32": ("g726le", 8000, 8000, 2.0, {"bits_per_coded_sample": "4"}),
    "g721": ("g726le", 8000, 8000, 2.0, {"bits_per_coded_sample": "4"}),
    "g726-40": ("g726le", 8000, 8000, 1.6, {"bits_per_coded_sample": "5"}),
    "l16": ("pcm_s16be", 0, 0, 0.5, {}),  # rate from the rtpmap (static PT 10/11: 44100)
    "g729": ("g729", 8000, 8000, 0.0, {}),
    "g729a": ("g729", 8000, 8000, 0.0, {}),
    "g729d": ("g729", 8000, 8000, 0.0, {}),
    "g729e": ("g729", 8000, 8000, 0.0, {}),
    "gsm": ("gsm", 8000, 8000, 0.0, {}),
    "g723": ("g723_1", 8000, 8000, 0.0, {}),
    "g728": ("g728", 8000, 8000, 0.0, {}),
    "ilbc": ("ilbc", 8000, 8000, 0.0, {}),
    "amr": ("amrnb", 8000, 8000, 0.0, {}),
    "amr-wb": ("amrwb", 16000, 16000, 0.0, {}),
    "opus": ("opus", 48000, 48000, 0.0, {}),
    "speex": ("speex", 0, 0, 0.0, {}),  # rate from the rtpmap (8000, 16000 or 32000)
}


def codec_for(payload_type: int, encoding: str | None, rtpmap_rate: int = 0) -> Codec:
    """The Codec of a payload type whose encoding name is `encoding` (rtpmap or static table; None if unknown)."""
    if not encoding:
        return Codec(f"PT {payload_type}", UNDECODABLE)
    name = encoding.lower()
    if name.startswith("telephone-event"):
        return Codec(encoding, EVENT, clock=rtpmap_rate or 8000)
    if name == "red":
        return Codec(encoding, REDUNDANCY, clock=rtpmap_rate or 8000)
    if name == "cn":
        return Codec(encoding, COMFORT_NOISE, "comfortnoise", rtpmap_rate or 8000, rtpmap_rate or 8000)
    found = _SPEECH.get(name)
    if found is None:
        return Codec(encoding, UNDECODABLE)
    decoder, rate, clock, per_byte, options = found
    if name in ("l16", "speex"):
        rate = clock = rtpmap_rate or (44100 if name == "l16" else 8000)
    elif name != "g722" and rtpmap_rate and name not in ("opus",):
        clock = rtpmap_rate
    return Codec(encoding, SPEECH, decoder, rate, clock, per_byte, dict(options))


def available(codec: Codec) -> bool:
    """Whether the installed PyAV has this codec's decoder."""
    import av

    return codec.decoder is not None and codec.decoder in av.codecs_available

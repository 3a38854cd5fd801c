"""Media: RTP streams, Wireshark-compatible statistics, codecs and the E-model MOS."""

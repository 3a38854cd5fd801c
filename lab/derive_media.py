#!/usr/bin/env python3
"""Derive the RTP media pcaps that the lab's sipp scenarios play.

Source: the G.711 A-law (PCMA, payload type 8, 30 ms / 240-byte frames) pcap
that the Debian package sip-tester ships (/usr/share/sip-tester/g711a.pcap,
236 RTP packets, 7.05 s, SSRC 0xDEE0EE8F). sipp's play_pcap_audio replays the
UDP payload unchanged (RTP header included) with the pcap's own timing, only
rewriting addresses and ports, so everything we want to be different in the
capture has to be in the file sipp plays:

  ref_uac.pcap   334 packets (~10.0 s): the 236 original packets followed by
                 the first 98 again, seq/timestamp continued (+1 / +240 per
                 packet) so the stream has no sequence/timestamp jump; the
                 original SSRC 0xDEE0EE8F.
  ref_uas.pcap   same packets, SSRC 0x4C414232 ("LAB2") so the two directions
                 of the reference call also differ by SSRC.
  burst.pcap     the first 34 original packets (~1.0 s), original SSRC,
                 unchanged -- every call and both directions of the burst
                 therefore share one SSRC, as sipp's bundled media does.

Only the Python standard library is used. Usage:
    derive_media.py SRC_PCAP OUT_DIR
"""
import os
import struct
import sys

REF_PACKETS = 334      # 334 x 30 ms = 10.0 s of audio
BURST_PACKETS = 34     # 34 x 30 ms = 1.0 s of audio
UAS_SSRC = 0x4C414232  # "LAB2"


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a classic microsecond pcap (magic {magic.hex()})")
    header = data[:24]
    packets = []
    off = 24
    while off < len(data):
        sec, usec, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        off += 16
        packets.append([sec, usec, bytearray(data[off:off + incl]), orig])
        off += incl
    return endian, header, packets


def write_pcap(path, endian, header, packets):
    with open(path, "wb") as f:
        f.write(header)
        for sec, usec, frame, orig in packets:
            f.write(struct.pack(endian + "IIII", sec, usec, len(frame), len(frame)))
            f.write(bytes(frame))


def rtp_offset(frame):
    """Offset of the RTP header in an Ethernet/IPv4/UDP frame."""
    ethertype = struct.unpack("!H", frame[12:14])[0]
    if ethertype != 0x0800:
        raise SystemExit("expected Ethernet/IPv4 frames")
    ihl = (frame[14] & 0x0F) * 4
    return 14 + ihl + 8


def fix_udp_checksum(frame):
    ihl = (frame[14] & 0x0F) * 4
    # a zero UDP checksum means "not computed" (valid for IPv4)
    frame[14 + ihl + 6:14 + ihl + 8] = b"\x00\x00"


def set_rtp(frame, seq=None, ts=None, ssrc=None):
    o = rtp_offset(frame)
    if seq is not None:
        frame[o + 2:o + 4] = struct.pack("!H", seq & 0xFFFF)
    if ts is not None:
        frame[o + 4:o + 8] = struct.pack("!I", ts & 0xFFFFFFFF)
    if ssrc is not None:
        frame[o + 8:o + 12] = struct.pack("!I", ssrc)
    fix_udp_checksum(frame)


def get_rtp(frame):
    o = rtp_offset(frame)
    seq, ts, ssrc = struct.unpack("!HII", frame[o + 2:o + 12])
    return seq, ts, ssrc


def extend(packets, count):
    """The original packets, then repeated from the start, with seq/ts and
    capture time continued so the result is one continuous stream."""
    n = len(packets)
    first_t = packets[0][0] * 1_000_000 + packets[0][1]
    last_t = packets[-1][0] * 1_000_000 + packets[-1][1]
    seq0, ts0, _ = get_rtp(packets[0][2])
    # capture-time period of one pass: last packet + one 30 ms frame
    period = last_t - first_t + 30_000
    out = []
    for i in range(count):
        sec, usec, frame, orig = packets[i % n]
        frame = bytearray(frame)
        t = sec * 1_000_000 + usec + (i // n) * period
        set_rtp(frame, seq=seq0 + i, ts=ts0 + 240 * i)
        out.append([t // 1_000_000, t % 1_000_000, frame, len(frame)])
    return out


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    src, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    endian, header, packets = read_pcap(src)
    if len(packets) != 236:
        print(f"warning: {src} has {len(packets)} packets, expected 236", file=sys.stderr)

    ref = extend(packets, REF_PACKETS)
    write_pcap(os.path.join(out_dir, "ref_uac.pcap"), endian, header, ref)
    ref_uas = []
    for sec, usec, frame, orig in ref:
        frame = bytearray(frame)
        set_rtp(frame, ssrc=UAS_SSRC)
        ref_uas.append([sec, usec, frame, orig])
    write_pcap(os.path.join(out_dir, "ref_uas.pcap"), endian, header, ref_uas)
    write_pcap(os.path.join(out_dir, "burst.pcap"), endian, header,
               [[s, u, bytearray(f), o] for s, u, f, o in packets[:BURST_PACKETS]])


if __name__ == "__main__":
    main()

"""Per-call pcap: frame selection and record-by-record copies of hand-made pcap and pcapng files."""

from __future__ import annotations

import struct

import polars as pl

from flowviz.export.pcap import call_frames, write_call_pcap
from flowviz.settings import Settings

KEY = {"src_ip": pl.Utf8, "src_port": pl.UInt16, "dst_ip": pl.Utf8, "dst_port": pl.UInt16, "ssrc": pl.UInt32}


def test_call_frames_takes_sip_of_every_call_id_and_the_streams_rtp_and_rtcp():
    sip = pl.DataFrame({"call_id": ["a", "b", "a2", "a"], "frames": [[1], [2], [3, 4], [9]]})
    rtp = pl.DataFrame({"frame": [5, 6, 7], "src_ip": ["1.1.1.1", "1.1.1.1", "9.9.9.9"], "src_port": [4000] * 3,
                        "dst_ip": ["2.2.2.2"] * 3, "dst_port": [6000] * 3, "ssrc": [7, 8, 7]},
                       schema_overrides={"src_port": pl.UInt16, "dst_port": pl.UInt16, "ssrc": pl.UInt32})
    rtcp = pl.DataFrame({"frame": [8, 10, 11], "src_ip": ["1.1.1.1", "1.1.1.1", "1.1.1.1"],
                         "src_port": [4001, 4001, 4003], "dst_ip": ["2.2.2.2", "3.3.3.3", "2.2.2.2"],
                         "dst_port": [6001, 6001, 6001]})
    streams = pl.DataFrame([{"src_ip": "1.1.1.1", "src_port": 4000, "dst_ip": "2.2.2.2", "dst_port": 6000,
                             "ssrc": 7}], schema=KEY)
    assert call_frames(sip, rtp, rtcp, ["a", "a2"], streams) == [1, 3, 4, 5, 8, 9]
    assert call_frames(sip, rtp, None, ["b"], None) == [2]


HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def record(i: int) -> bytes:
    data = bytes([i]) * (10 + i)
    return struct.pack("<IIII", 1000 + i, i, len(data), len(data)) + data


def test_pcap_copy_keeps_header_and_chosen_records(tmp_path):
    source = tmp_path / "in.pcap"
    source.write_bytes(HEADER + b"".join(record(i) for i in range(1, 5)))
    assert write_call_pcap(source, [2, 4], tmp_path / "out.pcap", Settings()) == 2
    assert (tmp_path / "out.pcap").read_bytes() == HEADER + record(2) + record(4)


def block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def test_pcapng_copy_keeps_section_and_interface_blocks(tmp_path):
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 65535))
    epbs = [block(6, struct.pack("<IIIII", 0, 0, i, 5, 5) + bytes([i]) * 5) for i in range(1, 4)]
    source = tmp_path / "in.pcapng"
    source.write_bytes(shb + idb + b"".join(epbs))
    assert write_call_pcap(source, [1, 3], tmp_path / "out.pcapng", Settings()) == 2
    assert (tmp_path / "out.pcapng").read_bytes() == shb + idb + epbs[0] + epbs[2]


def test_pcapng_cut_in_a_block_stops_before_it(tmp_path):
    """A file cut inside a block (or inside its length field) gives the whole blocks before the cut, no error."""
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = block(1, struct.pack("<HHI", 1, 0, 65535))
    epbs = [block(6, struct.pack("<IIIII", 0, 0, i, 5, 5) + bytes([i]) * 5) for i in range(1, 4)]
    whole = shb + idb + b"".join(epbs)
    for cut in (len(whole) - 3, len(whole) - len(epbs[2]) + 6):
        source = tmp_path / "cut.pcapng"
        source.write_bytes(whole[:cut])
        assert write_call_pcap(source, [1, 3], tmp_path / "out.pcapng", Settings()) == 1
        assert (tmp_path / "out.pcapng").read_bytes() == shb + idb + epbs[0]

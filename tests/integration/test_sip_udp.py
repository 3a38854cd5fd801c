"""SIP in UDP datagrams and SIP headers, checked against tshark.

Two references, both tshark 4.0's SIP dissector (packet-sip.c):
- message boundaries and text: flowviz's own UDP decode gives exactly the rows of the same capture read
  with `Settings(sip_decoder="tshark")`, where tshark cuts every SIP message out (dissect_sip_common,
  sip_parse_line), on built datagrams and on every capture the tests have. Both sides go through the
  same header parser there, so that check says nothing about parsing;
- header parsing: `test_header_fields_equal_tsharks_own_fields` compares the parsed columns (Call-ID,
  From/To user and tag, CSeq, status, method, Via branch and sent-by) with tshark's own header fields
  (`sip.Call-ID`, `sip.from.user` ...), message by message, on the lab and corpus captures. Where the two
  differ for a reason, the difference is listed per capture in HEADER_FIELD_DIFFERENCES with that reason.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from polars.testing import assert_frame_equal

from flowviz.ingest import read_capture
from flowviz.ingest.sip_udp import message_text
from flowviz.settings import Settings
from tests import synth
from tests.conftest import SAMPLES, corpus_params, run_tshark, skip_where_tshark_is_blind
from tests.integration.test_ingest_corpus import DECODE_AS
from tests.synth.packets import ethernet, ip_udp
from tests.synth.writers import Record, pcap_bytes

HEAD = b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: \"A\" <sip:a@a>;tag=1\r\nTo: <sip:b@b>\r\n"
SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"


def invite(content_length: int | None, extra: bytes = b"") -> bytes:
    cl = b"" if content_length is None else b"Content-Length: %d\r\n" % content_length
    return (b"INVITE sip:b@b SIP/2.0\r\n" + HEAD + b"Call-ID: c1\r\nCSeq: 1 INVITE\r\n" + extra + cl
            + b"Content-Type: application/sdp\r\n\r\n" + SDP)


# (datagram, is it a SIP message for tshark 4.0?) All but the keepalives at the end start like SIP for
# the packet kernel.
DATAGRAMS = [
    (invite(len(SDP)), True),
    (invite(20), True),  # Content-Length shorter than the body: the rest is still the message's text
    (invite(500), True),  # longer than the datagram
    (invite(None), True),
    (invite(len(SDP), "Subject: caf\u00e9 \\ x\tz\r\n".encode()), True),  # UTF-8, backslash, tab
    (invite(len(SDP), b"Subject: bad \xff\xfe \xe2\x82 \xc0\xaf \xed\xa0\x80\r\n"), True),  # invalid UTF-8
    (invite(len(SDP), b"Subject: nul \x00 byte\r\n"), True),  # the text ends at the NUL
    (invite(len(SDP)) + invite(len(SDP)), True),  # two messages in one datagram: tshark shows one
    ("SIP/2.0 200 OK\r\nCall-ID: c1\r\nSubject: \u0085\u00a0\u2028\U0001F600\ufeff\r\n\r\n".encode(), True),
    (b"SIP/2.0 200 OK\nVia: SIP/2.0/UDP 10.0.0.1\nCall-ID: lf-only\nCSeq: 1 INVITE\n\n", True),
    (b"OPTIONS sip:x SIP/2.0\rCall-ID: cr-only\r\r\n", True),
    (b"OPTIONS sip:x SIP/2.0\n\rCall-ID: lf-then-cr\r\n\r\n", True),
    (b"OPTIONS sip:x SIP/2.0", True),  # one line, no line end
    (b"OPTIONS sip:x SIP/2.0\r\nCall-ID: noblank\r\n", True),
    (b"SIP/2.0 200 OK\r\nCall-ID: trailing\r\nContent-Length: 0\r\n\r\n\r\n\r\n", True),
    (b"REGISTER sip:x SIP/2.0\r\nCall-ID: r\r\nl: 0\r\n\r\n", True),
    (b"SIP/2.0 200 \r\nCall-ID: empty-reason\r\n\r\n", True),
    (b"MESSAGE sip:x SIP/2.0\r\nCall-ID: m\r\nContent-Length: 8\r\n\r\nhi\x01\x7f\x80ok", True),
    (b"OPTIONS sip:x SIP/2.0\r\n\r\n\x00\x00tail", True),
    (b"INFO x:y SIP/2.0\r\n\r\n", True),  # any URI with a colon
    (b"INVITE sip:b@b\r\nCall-ID: no-version\r\n\r\n", False),
    (b"SIP/2.0 abc OK\r\nCall-ID: x\r\n\r\n", False),  # status code not 3 digits
    (b"SIP/2.0 2000 OK\r\n\r\n", False),
    (b"SIP/2.0 200\r\nCall-ID: no-reason\r\n\r\n", False),  # the 2nd token runs to the next space
    (b"INVITE  sip:x  SIP/2.0\r\nCall-ID: double-space\r\n\r\n", False),
    (b"OPTIONS sip:x SIP/2.0 \r\nCall-ID: trailing-space\r\n\r\n", False),
    (b"OPTIONS sipx SIP/2.0\r\nCall-ID: a:b\r\n\r\n", False),  # the URI's colon must come before the version
    (b"OPTIONS sip:x sip/2.0\r\n\r\n", False),  # the version is case-sensitive
    (b"OPTIONS sip:x\x00 SIP/2.0\r\nCall-ID: nul\r\n\r\n", False),  # NUL in the first line
    (b"SIP/2.0 200\tOK\r\nCall-ID: tab\r\n\r\n", False),
    # keepalives on the SIP port (RFC 5626 CRLF, zero bytes, empty): no message, and no tshark needed
    (b"\r\n\r\n", False),
    (b"\r\n", False),
    (b"\x00\x00\x00\x00", False),
    (b"", False),
    (b" \r\n", False),
]


def write_datagrams(path, datagrams: list[bytes]) -> None:
    records = [Record(1_700_000_000_000_000_000 + i * 1_000_000,
                      ethernet(ip_udp("10.0.0.1", "10.0.0.2", 5060, 5060, payload)))
               for i, payload in enumerate(datagrams)]
    path.write_bytes(pcap_bytes(1, records))


def test_message_text_follows_tsharks_rules():
    assert [message_text(d) is not None for d, _ in DATAGRAMS] == [sip for _, sip in DATAGRAMS]
    assert message_text(b"SIP/2.0 200 OK\nCall-ID: a\n\n") == "SIP/2.0 200 OK\r\nCall-ID: a\n\n"
    assert message_text(b"OPTIONS sip:x SIP/2.0\r\n\r\n\x00tail") == "OPTIONS sip:x SIP/2.0\r\n\r\n"


def test_built_datagrams_equal_tshark(tmp_path, tshark):
    path = tmp_path / "datagrams.pcap"
    write_datagrams(path, [d for d, _ in DATAGRAMS])
    reference = read_capture(path, Settings(sip_decoder="tshark"), use_cache=False).sip_messages
    assert reference["frame"].to_list() == [i + 1 for i, (_, sip) in enumerate(DATAGRAMS) if sip]
    # No tshark at all: flowviz alone must give tshark's rows, text and parsed columns alike.
    own = read_capture(path, Settings(tshark_path=str(tmp_path / "no-tshark")), use_cache=False).sip_messages
    assert_frame_equal(own, reference)


def sample_captures():
    bad = {"empty.pcap", "not_a_capture.pcap"}
    files = [p for p in sorted((SAMPLES / "lab").glob("*.pcap")) + sorted((SAMPLES / "synth").glob("*.pcap*"))
             if p.name not in bad]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in files]


@pytest.mark.parametrize("path", sample_captures() + corpus_params())
def test_capture_equals_tshark(path, tshark):
    own = read_capture(path, use_cache=False)  # with no SIP in whole UDP datagrams, tshark does all of it
    reference = read_capture(path, Settings(sip_decoder="tshark"), use_cache=False)
    assert_frame_equal(own.sip_messages, reference.sip_messages)


# flowviz column -> tshark field, compared message by message (frame by frame, every occurrence in order).
HEADER_FIELDS = {
    "call_id": "sip.Call-ID", "from_user": "sip.from.user", "to_user": "sip.to.user", "from_tag": "sip.from.tag",
    "to_tag": "sip.to.tag", "cseq_num": "sip.CSeq.seq", "cseq_method": "sip.CSeq.method",
    "status_code": "sip.Status-Code", "method": "sip.Method", "via_branches": "sip.Via.branch",
    "via_host": "sip.Via.sent-by.address", "via_port": "sip.Via.sent-by.port",
}
AGGREGATOR = "\x1f"  # between the occurrences of one field in a frame (several Vias, several TCP messages)

# Differences with tshark's fields that are not flowviz bugs, per capture: (column, frames, reason).
# "message" = a frame tshark shows as SIP where flowviz finds no message. The test fails when a difference
# appears that is not listed, and when a listed one goes away.
HEADER_FIELD_DIFFERENCES: dict[str, list[tuple[str, list[int], str]]] = {
    "c07-sip-r2.cap": [
        ("method", list(range(5, 16)),
         "PROTOS c07 test messages with lower-case garbage methods (`aaaaaaaaa sip:tori@localhost SIP/2.0`): "
         "tshark keeps the token as sent, flowviz upper-cases request methods (RFC 3261 7.1 says the method is "
         "case-sensitive; see the report of issue 20)"),
    ],
    "sip-488-Not-Acceptable-Here-codec-null.pcapng": [
        ("to_user", [5, 6],
         "OPTIONS `To: sip:s@176.132.182.27:5060;line=...` and its 200: tshark 4.0 leaves sip.to.user empty "
         "although its own sip.to.addr is sip:s@176.132.182.27; the user part is `s` (RFC 3261 19.1.1), as "
         "flowviz says"),
    ],
    "sip_ipv6_udp.pcap": [
        (column, [1, 2, 3, 4, 5, 6],
         "`Via: SIP/2.0/UDP fe80:0:0:0:21a:a0ff:fe07:32e0:5060;branch=...` carries an IPv6 address without the "
         "brackets RFC 3261 25.1 (IPv6reference) requires: tshark stops at the first colon (address `fe80`, no "
         "port, no branch), flowviz keeps the whole sent-by and finds the branch")
        for column in ("via_branches", "via_host", "via_port")
    ],
    "voip-extension2downata.pcap": [
        ("via_port", [403, 409],
         "`Via: SIP/2.0/UDP 192.168.5.5:11853` and `...:14600`, Via values without any parameter: tshark 4.0 "
         "gives the sent-by address but no sip.Via.sent-by.port for them (it shows the port in the Via line); "
         "flowviz gives both ports"),
    ],
    "http_on_sip_port.pcap": [
        ("message", [3, 4],
         "HTTP over TCP from port 5060: tshark shows the segments as SIP `Continuation` with no start line "
         "and no header field; there is no SIP message in them, so flowviz has none"),
    ],
}


def tshark_header_fields(path) -> dict[int, dict[str, list[str]]]:
    """frame -> {column: every occurrence of its tshark field in the frame, in order}."""
    args = ["-r", str(path), "-n", *DECODE_AS.get(path.name, []), "-Y", "sip", "-T", "fields",
            "-E", "separator=/t", "-E", "occurrence=a", "-E", f"aggregator={AGGREGATOR}", "-E", "quote=n",
            "-e", "frame.number"]
    for field in HEADER_FIELDS.values():
        args += ["-e", field]
    frames = {}
    for line in run_tshark(*args).splitlines():
        number, *values = line.split("\t")
        frames[int(number)] = {col: v.split(AGGREGATOR) if v else [] for col, v in zip(HEADER_FIELDS, values)}
    return frames


def sent_by_parts(sent_by: str) -> tuple[str, str | None]:
    """RFC 3261 25.1: sent-by = host [ ":" port ], an IPv6 host in brackets."""
    if sent_by.startswith("["):
        host, _, rest = sent_by[1:].partition("]")
        return host, rest[1:] or None
    if sent_by.count(":") == 1:
        host, port = sent_by.split(":")
        return host, port
    return sent_by, None


def flowviz_header_fields(path) -> dict[int, dict[str, list[str]]]:
    """The same shape from read_capture(...).sip_messages: the messages of one frame in order."""
    frames: dict[int, dict[str, list[str]]] = defaultdict(lambda: {col: [] for col in HEADER_FIELDS})
    for row in read_capture(path, use_cache=False).sip_messages.sort("frame", "msg_index").iter_rows(named=True):
        fields = frames[row["frame"]]
        for col in HEADER_FIELDS:
            if col == "via_branches":
                fields[col] += [b for b in row[col] or [] if b is not None]
            elif col in ("via_host", "via_port"):
                parts = [sent_by_parts(s)[col == "via_port"] for s in row["via_sent_by"] or []]
                fields[col] += [p for p in parts if p is not None]
            elif row[col] is not None:
                fields[col].append(str(row[col]))
    return frames


def header_field_differences(path) -> dict[tuple[str, int], tuple]:
    theirs, ours = tshark_header_fields(path), flowviz_header_fields(path)
    out = {}
    for frame in sorted(set(theirs) | set(ours)):
        if frame not in ours or frame not in theirs:
            out[("message", frame)] = ("tshark" if frame in theirs else "flowviz only",)
            continue
        for col in HEADER_FIELDS:
            if theirs[frame][col] != ours[frame][col]:
                out[(col, frame)] = (theirs[frame][col], ours[frame][col])
    return out


def header_field_captures():
    lab = [p for p in sorted((SAMPLES / "lab").glob("*.pcap")) if p.name not in ("empty.pcap", "not_a_capture.pcap")]
    return [pytest.param(p, id=f"lab/{p.name}") for p in lab] + corpus_params()


@pytest.mark.parametrize("path", header_field_captures())
def test_header_fields_equal_tsharks_own_fields(path, tshark):
    """Every SIP message's parsed headers equal tshark's fields for it: same frames, same messages per frame,
    same values in the same order (Vias top first), apart from the listed differences."""
    skip_where_tshark_is_blind(path)
    differences = header_field_differences(path)
    listed = {(col, frame): reason for col, frames, reason in HEADER_FIELD_DIFFERENCES.get(path.name, [])
              for frame in frames}
    unexplained = {k: v for k, v in differences.items() if k not in listed}
    assert not unexplained, "tshark vs flowviz (column, frame): " + "; ".join(
        f"{k}: {str(v)[:200]}" for k, v in unexplained.items())
    assert set(listed) <= set(differences), f"listed differences no longer seen: {sorted(set(listed) - set(differences))}"


def test_header_field_differences_name_real_frames():
    """A listed difference is not a way to skip a capture: the list stays small and names SIP frames."""
    assert sum(len(frames) for diffs in HEADER_FIELD_DIFFERENCES.values() for _, frames, _ in diffs) < 40
    assert all(col in (*HEADER_FIELDS, "message") for diffs in HEADER_FIELD_DIFFERENCES.values() for col, _, _ in diffs)


def test_mixed_capture_merges_in_frame_order(tmp_path, tshark):
    """SIP over TCP (tshark) and over UDP (flowviz) in one capture come out in capture order."""
    tcp_data, _ = synth.build("sip_tcp_coalesced_split")
    udp_data, _ = synth.build("basic_call_udp")
    path = tmp_path / "mixed.pcap"
    # Both are little-endian microsecond pcaps on Ethernet: keep the first header, then alternate records.
    path.write_bytes(tcp_data[:24] + interleaved_records(tcp_data[24:], udp_data[24:]))
    own = read_capture(path, use_cache=False)
    assert own.info["sip_udp_messages"] > 0 and set(own.sip_messages["transport"]) == {"tcp", "udp"}
    frames = own.sip_messages["frame"].to_list()
    assert frames == sorted(frames)
    assert_frame_equal(own.sip_messages, read_capture(path, Settings(sip_decoder="tshark"),
                                                      use_cache=False).sip_messages)


def interleaved_records(a: bytes, b: bytes) -> bytes:
    """Records of two pcap bodies, alternating (timestamps need not be ordered for this test)."""
    def records(body: bytes) -> list[bytes]:
        out, pos = [], 0
        while pos + 16 <= len(body):
            caplen = int.from_bytes(body[pos + 8 : pos + 12], "little")
            out.append(body[pos : pos + 16 + caplen])
            pos += 16 + caplen
        return out
    ra, rb = records(a), records(b)
    mixed = [r for pair in zip(ra, rb) for r in pair] + ra[len(rb):] + rb[len(ra):]
    return b"".join(mixed)


def recording_tshark(tmp_path, real: str):
    """A tshark that notes each start in a file, then runs the real one."""
    log = tmp_path / "tshark-starts"
    wrapper = tmp_path / "tshark"
    wrapper.write_text(f'#!/bin/sh\necho started >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, log


def test_tshark_starts_only_for_a_capture_that_needs_it(tmp_path, tshark):
    wrapper, log = recording_tshark(tmp_path, tshark)
    settings = Settings(tshark_path=str(wrapper))
    udp = read_capture(SAMPLES / "lab" / "reference_call.pcap", settings, use_cache=False)
    expected = json.loads((SAMPLES / "lab" / "expected.json").read_text())["captures"]["reference_call.pcap"]
    assert len(udp.sip_messages) == expected["sip_messages"] and not log.exists()  # all whole UDP datagrams
    built = tmp_path / "datagrams.pcap"  # SIP datagrams and keepalives on port 5060
    write_datagrams(built, [d for d, _ in DATAGRAMS])
    assert read_capture(built, settings, use_cache=False).info["sip_udp_messages"] > 0 and not log.exists()
    tcp = read_capture(SAMPLES / "synth" / "sip_tcp_coalesced_split.pcap", settings, use_cache=False)
    assert log.read_text().count("started") == 1  # once, during the packet pass: no restart at feed time
    assert_frame_equal(tcp.sip_messages, read_capture(SAMPLES / "synth" / "sip_tcp_coalesced_split.pcap",
                                                      Settings(sip_decoder="tshark"), use_cache=False).sip_messages)

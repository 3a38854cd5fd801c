"""flowviz.ingest.hep's readers on HEP packets built by tests/kit/hep.py (the layout the kit writes is
the HEP3 specification's; the values are the ones the kit was given)."""

from __future__ import annotations

import struct
import zlib

from flowviz.ingest import hep
from tests.kit import hep as kit

INNER = kit.Inner("10.1.1.1", "10.2.2.2", 5060, 5080, 1_700_000_000.123456,
                  b"OPTIONS sip:x@10.2.2.2 SIP/2.0\r\n\r\n", agent=4242, correlation="corr-1")


def test_hep3_fields():
    rec = hep.parse_v3(kit.hep3(INNER))
    assert rec.clean and rec.problems == [] and rec.readable
    assert (rec.src, rec.dst, rec.sport, rec.dport, rec.proto, rec.family) == ("10.1.1.1", "10.2.2.2", 5060, 5080, 17, 2)
    assert (rec.seconds, rec.micros, rec.agent, rec.payload_type) == (1_700_000_000, 123456, 4242, 1)
    assert rec.correlation == "corr-1" and rec.payload == INNER.payload


def test_the_auth_key_is_not_kept():
    rec = hep.parse_v3(kit.hep3(INNER))
    assert kit.AUTH_KEY not in repr(rec).encode()


def test_compressed_payload_and_vendor_chunks():
    data = kit.hep3(INNER)
    at = data.rindex(struct.pack("!HH", 0, 15))
    packed = zlib.compress(INNER.payload)
    body = data[6:at] + kit.chunk(15, b"vendor payload", vendor=0x0009) + kit.chunk(16, packed)
    rec = hep.parse_v3(b"HEP3" + struct.pack("!H", 6 + len(body)) + body)
    assert rec.clean and rec.payload == INNER.payload  # the vendor's chunk 15 is not the generic payload


def test_impossible_chunk_length():
    data = kit.hep3(INNER)
    bad = data[:6] + struct.pack("!HHH", 0, 1, 3) + data[12:]
    rec = hep.parse_v3(bad)
    assert not rec.clean and not rec.readable and "impossible length (3)" in rec.problems[0]


def test_fixed_size_chunk_of_the_wrong_size():
    data = kit.hep3(INNER)
    at = data.index(struct.pack("!HH", 0, 7))  # source port: 2 bytes; give it 3
    bad_chunk = kit.chunk(7, b"\x13\xc4\x00")
    body = data[6:at] + bad_chunk + data[at + 8 :]
    rec = hep.parse_v3(b"HEP3" + struct.pack("!H", 6 + len(body)) + body)
    assert rec.sport is None and rec.problems == ["the source port chunk holds 3 bytes, not 2"]


def test_hep2_ipv4_and_ipv6():
    for src, dst in (("10.1.1.1", "10.2.2.2"), ("2001:db8::1", "2001:db8::2")):
        inner = kit.Inner(src, dst, 5060, 5080, 1_700_000_000.5, INNER.payload, agent=77)
        rec = hep.parse_v2(kit.hep2(inner))
        assert (rec.version, rec.src, rec.dst, rec.sport, rec.dport) == (2, src, dst, 5060, 5080)
        assert (rec.seconds, rec.micros, rec.agent, rec.payload) == (1_700_000_000, 500_000, 77, INNER.payload)


def test_value_spans_point_at_the_values():
    data = kit.hep3(INNER)
    spans = {t: data[a:b] for t, a, b in hep.value_spans(data)}
    assert spans[3] == bytes([10, 1, 1, 1]) and spans[4] == bytes([10, 2, 2, 2])
    assert spans[14] == kit.AUTH_KEY and spans[15] == INNER.payload and spans[17] == b"corr-1"
    v2 = kit.hep2(kit.Inner("2001:db8::1", "2001:db8::2", 1, 2, 1.0, b"BYE x SIP/2.0\r\n\r\n"))
    spans = {t: v2[a:b] for t, a, b in hep.value_spans(v2)}
    assert spans[5][-1] == 1 and spans[6][-1] == 2 and spans[15] == b"BYE x SIP/2.0\r\n\r\n"

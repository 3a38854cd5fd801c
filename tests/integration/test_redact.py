"""`flowviz redact` and flowviz/export/redact/ on the lab captures (sample_pcaps/lab/README.md): no original
address (text or 4 bytes) or user left in the file, tshark reads the copy as it read the original, and
flowviz finds the same calls, states, hosts and RTP streams in it. Plus packets made here for what the lab
does not have: TCP, IPv6, ICMP, Digest credentials, tel: numbers, checksums that must stay right."""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import subprocess
from collections import Counter
from pathlib import Path

import dpkt
import pytest

from flowviz.cli import main
from flowviz.errors import CaptureError
from flowviz.export.redact import Redactor, redact_capture
from flowviz.ingest import read_capture
from flowviz.settings import Settings
from flowviz.sip.calls import Correlation
from tests.conftest import SAMPLES, corpus_params

LAB = SAMPLES / "lab"
LAB_IPS = ["127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"]
LAB_USERS = [b"ua1", b"ua2"]  # users, Digest-free; display names "UA1"/"UA2" (searched case-insensitively)


@pytest.fixture(scope="module")
def redacted(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("redact")
    files = {}
    for name in ("reference_call.pcap", "burst_100.pcap"):
        target = out / name
        assert main(["redact", str(LAB / name), "-o", str(target)]) == 0
        files[name] = target
    return files


NAMES = ["reference_call.pcap", "burst_100.pcap"]


@pytest.mark.parametrize("name", NAMES)
def test_no_original_address_or_user_is_left(redacted, name):
    data = redacted[name].read_bytes()
    original = (LAB / name).read_bytes()
    assert len(data) == len(original)  # same-length pseudonyms: every record keeps its size
    for ip in LAB_IPS:
        assert ip.encode() in original and socket.inet_aton(ip) in original
        assert ip.encode() not in data, ip
        assert socket.inet_aton(ip) not in data, ip
    lowered = data.lower()
    for user in LAB_USERS:
        assert user in original
        assert user not in lowered, user


def _tshark(*args: str) -> str:
    done = subprocess.run(["tshark", *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name", NAMES)
def test_tshark_reads_it_like_the_original(tshark, redacted, name):
    bad = "_ws.malformed or _ws.expert.severity>=error"
    fields = ["-T", "fields", "-e", "frame.protocols", "-e", "sip.Method", "-e", "sip.Status-Code"]
    for path in (LAB / name, redacted[name]):
        _tshark("-r", str(path), "-q", "-z", "expert")
    assert _tshark("-r", str(redacted[name]), "-Y", bad) == _tshark("-r", str(LAB / name), "-Y", bad) == ""
    assert _tshark("-r", str(redacted[name]), *fields) == _tshark("-r", str(LAB / name), *fields)
    # checksums: as right (RTP) or as wrong (SIP: checksum offload on lo) as in the original
    check = ["-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", "-T", "fields",
             "-e", "ip.checksum.status", "-e", "udp.checksum.status"]
    assert _tshark("-r", str(redacted[name]), *check) == _tshark("-r", str(LAB / name), *check)


def _calls(path: Path, use_cache: bool) -> tuple[list[tuple], Counter]:
    capture = read_capture(path, Settings(), use_cache=use_cache)
    calls = Correlation(capture.sip_messages, capture.info.get("last_ts_ns")).summaries()
    shapes = sorted((c["state"], c["final_status"], len(c["hosts"]), c["messages"], len(c["call_ids"]))
                    for c in calls)
    streams = Counter(capture.rtp_packets.group_by(["src_ip", "src_port", "dst_ip", "dst_port", "ssrc"])
                      .len()["len"].to_list())
    return shapes, streams


@pytest.mark.parametrize("name", NAMES)
def test_flowviz_finds_the_same_calls_and_streams(redacted, name):
    before, before_streams = _calls(LAB / name, use_cache=True)
    after, after_streams = _calls(redacted[name], use_cache=False)
    assert after == before
    assert after_streams == before_streams
    assert sum(n * k for n, k in after_streams.items()) == {"reference_call.pcap": 668, "burst_100.pcap": 6120}[name]


def test_refuses_to_overwrite_without_force(redacted, capsys):
    target = redacted["reference_call.pcap"]
    assert main(["redact", str(LAB / "reference_call.pcap"), "-o", str(target)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--force" in err
    assert main(["redact", str(LAB / "reference_call.pcap"), "-o", str(target), "--force"]) == 0


def test_pcapng_stays_pcapng_and_is_redacted(tshark, tmp_path):
    plain = tmp_path / "plain.pcapng"
    subprocess.run(["tshark", "-r", str(LAB / "reference_call.pcap"), "-F", "pcapng", "-w", str(plain)],
                   check=True, capture_output=True, timeout=120)
    ng = tmp_path / "ref.pcapng"  # a packet comment naming what is redacted: comments are dropped
    subprocess.run(["editcap", "-a", "1:call from ua1 at 127.0.0.10", str(plain), str(ng)],
                   check=True, capture_output=True, timeout=120)
    assert b"ua1 at 127.0.0.10" in ng.read_bytes()
    out = tmp_path / "ref-redacted.pcapng"
    redact_capture(ng, out)
    data = out.read_bytes()
    assert data[:4] == b"\x0a\x0d\x0d\x0a"
    for ip in LAB_IPS:
        assert ip.encode() not in data and socket.inet_aton(ip) not in data
    assert b"ua1" not in data.lower()
    assert _tshark("-r", str(out), "-Y", "sip").count("\n") == 21
    assert _tshark("-r", str(out), "-Y", "frame.comment") == ""
    assert _tshark("-r", str(out), "-Y", "_ws.malformed or _ws.expert.severity>=error") == ""


# --- made-up packets: TCP, IPv6, ICMP, Digest, tel: ------------------------------------------------------

SIP_MSG = (
    "INVITE sip:+4930123456@192.168.1.20 SIP/2.0\r\n"
    "Via: SIP/2.0/{t} 192.168.1.10:5060;branch=z9hG4bK-alice-1\r\n"
    "From: Alice Smith <sip:alice@192.168.1.10>;tag=alice-77\r\n"
    "To: \"Bob J\xfcrgens\" <tel:+4930123456>\r\n"
    "Call-ID: c1-alice@192.168.1.10\r\n"
    "CSeq: 2 INVITE\r\n"
    "Contact: <sip:alice@[2001:db8:aaaa::10]:5060>\r\n"
    "Proxy-Authorization: Digest username=\"alice\", realm=\"corp.example\", nonce=\"8f2a1c\", "
    "uri=\"sip:+4930123456@192.168.1.20\", response=\"0123456789abcdef0123456789abcdef\"\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {n}\r\n\r\n"
)
SDP = "v=0\r\no=alice 1 1 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
SECRETS = [b"+4930123456", b"alice", b"Alice Smith", "Bob J\xfcrgens".encode(), b"corp.example", b"8f2a1c",
           b"0123456789abcdef0123456789abcdef", b"192.168.1.10", b"192.168.1.20", b"2001:db8:aaaa::10"]


def _sip(transport: str) -> bytes:
    body = SDP.encode()
    return SIP_MSG.format(t=transport, n=len(body)).encode("utf-8") + body


def _eth(ip) -> bytes:
    kind = dpkt.ethernet.ETH_TYPE_IP6 if isinstance(ip, dpkt.ip6.IP6) else dpkt.ethernet.ETH_TYPE_IP
    return bytes(dpkt.ethernet.Ethernet(src=b"\x02" * 6, dst=b"\x04" * 6, type=kind, data=ip))


def _ip4(proto, l4) -> dpkt.ip.IP:
    ip = dpkt.ip.IP(src=socket.inet_aton("192.168.1.10"), dst=socket.inet_aton("192.168.1.20"), p=proto, data=l4)
    ip.len = len(bytes(ip))
    return ip


def _packets() -> list[bytes]:
    udp = dpkt.udp.UDP(sport=5060, dport=5060, data=_sip("UDP"))
    udp.ulen = len(udp)
    tcp = dpkt.tcp.TCP(sport=40000, dport=5060, seq=1000, ack=1, flags=dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH,
                       data=_sip("TCP"))
    udp6 = dpkt.udp.UDP(sport=5060, dport=5060, data=_sip("UDP"))
    udp6.ulen = len(udp6)
    ip6 = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, "2001:db8:aaaa::10"),
                       dst=socket.inet_pton(socket.AF_INET6, "2001:db8:aaaa::20"), nxt=17, hlim=64, data=udp6)
    ip6.plen = len(udp6)
    quoted = bytes(_ip4(17, dpkt.udp.UDP(sport=5060, dport=5060, ulen=8)))[:28]
    icmp = dpkt.icmp.ICMP(type=3, code=3, data=dpkt.icmp.ICMP.Unreach(data=quoted))
    return [_eth(_ip4(17, udp)), _eth(_ip4(6, tcp)), _eth(ip6), _eth(_ip4(1, icmp))]


def _checksums_ok(frame: bytes) -> bool:
    eth = dpkt.ethernet.Ethernet(frame)
    ip = eth.data
    l4 = ip.data
    given = l4.sum
    l4.sum = 0
    if isinstance(ip, dpkt.ip.IP):
        header_sum = ip.sum
        ip.sum = 0
        rebuilt = dpkt.ip.IP(bytes(ip))  # recomputes the header and the UDP/TCP/ICMP checksums
        return rebuilt.sum == header_sum and rebuilt.data.sum == given
    rebuilt = dpkt.ethernet.Ethernet(bytes(eth)).data.data
    return rebuilt.sum == given


def test_made_up_packets_keep_lengths_and_checksums_and_lose_every_secret():
    packets = _packets()
    assert all(_checksums_ok(p) for p in packets)
    redactor = Redactor()
    for p in packets:
        redactor.learn_packet(p, 1)
    out = [redactor.redact_packet(p, 1) for p in packets]
    assert [len(p) for p in out] == [len(p) for p in packets]
    assert all(_checksums_ok(p) for p in out)
    blob = b"".join(out)
    for secret in SECRETS + [socket.inet_aton("192.168.1.10"), socket.inet_pton(socket.AF_INET6, "2001:db8:aaaa::10")]:
        assert secret not in blob, secret
    # TCP: sequence numbers unchanged, payload the same length; SIP still parses with a right Content-Length
    tcp_before = dpkt.ethernet.Ethernet(packets[1]).data.data
    tcp_after = dpkt.ethernet.Ethernet(out[1]).data.data
    assert (tcp_after.seq, tcp_after.ack, len(tcp_after.data)) == (tcp_before.seq, tcp_before.ack, len(tcp_before.data))
    message = dpkt.sip.Request(dpkt.ethernet.Ethernet(out[0]).data.data.data)
    assert int(message.headers["content-length"]) == len(message.body) == len(SDP)
    # consistent: the same originals got the same pseudonyms in every packet and in the text
    udp_text = dpkt.ethernet.Ethernet(out[0]).data.data.data.decode("utf-8", "replace")
    tcp_text = tcp_after.data.decode("utf-8", "replace")
    assert udp_text.replace("/UDP ", "/TCP ") == tcp_text
    fake_ip = redactor.pseudonym_ip("192.168.1.10")
    assert len(fake_ip) == len("192.168.1.10") and f"c=IN IP4 {fake_ip}" in udp_text
    assert socket.inet_aton(fake_ip) == dpkt.ethernet.Ethernet(out[0]).data.src
    # MAC addresses: locally administered pseudonyms
    assert b"\x02" * 6 not in blob and b"\x04" * 6 not in blob
    assert dpkt.ethernet.Ethernet(out[0]).src[:3] == b"\x02\x00\x00"
    # the ICMP error's quoted header carries the pseudonyms too
    quoted = bytes(dpkt.ethernet.Ethernet(out[3]).data.data.data.data)
    assert quoted[12:16] == socket.inet_aton(fake_ip)


def test_text_exports_use_the_same_pseudonyms():
    redactor = Redactor()
    redactor.learn_text(_sip("UDP").decode("utf-8"))
    ladder = "Alice Smith (alice) 192.168.1.10:5060 -> +4930123456 at 192.168.1.20, Bob J\xfcrgens"
    text = redactor.redact_text(ladder)
    for secret in ("Alice Smith", "alice", "192.168.1.10", "+4930123456", "192.168.1.20", "Bob J\xfcrgens"):
        assert secret not in text
    assert redactor.redact_text(ladder) == text  # same input, same pseudonym
    assert redactor.pseudonym_ip("192.168.1.10") in text
    report = redactor.redact_obj({"from_user": "alice", "hosts": ["192.168.1.10:5060"], "n": 3})
    assert report["from_user"] in text and report["n"] == 3
    assert report["hosts"] == [redactor.pseudonym_ip("192.168.1.10") + ":5060"]


def test_pseudonym_addresses_have_the_original_text_length():
    redactor = Redactor()
    for text in ["1.2.3.4", "10.0.0.1", "172.16.5.4", "192.168.100.200", "8.8.8.8", "::1", "fe80::1",
                 "2001:db8:1:2:3:4:5:6", "2a00:1450:4001:81c::200e"]:
        fake = redactor.pseudonym_ip(text)
        assert len(fake) == len(text) and fake != text, (text, fake)
        assert redactor.pseudonym_ip(text) == fake
    assert redactor.pseudonym_ip("0.0.0.0") == "0.0.0.0"  # SDP hold address kept



def test_every_ipv6_text_length_has_a_pseudonym_and_odd_texts_keep_their_length():
    from flowviz.export.redact.pseudonyms import _ipv6_of_length

    for length in range(3, 40):
        assert len(str(ipaddress.IPv6Address(_ipv6_of_length(length, 7)))) == length
    redactor = Redactor()
    for text in ["2001:0DB8:0000:0000:0000:0000:0000:0010", "0:0:0:0:0:0:0:1", "FE80::0001"]:
        fake = redactor.redact_text(f"c=IN IP6 {text}")[len("c=IN IP6 "):]
        assert len(fake) == len(text) and ipaddress.IPv6Address(fake) != ipaddress.IPv6Address(text)
        # the same pseudonym as the canonical text of the same address, written as long as the original
        canonical = str(ipaddress.IPv6Address(text))
        assert ipaddress.IPv6Address(fake) == ipaddress.IPv6Address(redactor.pseudonym_ip(canonical))


def test_fragmented_sip_datagram_is_redacted_in_every_fragment():
    udp = dpkt.udp.UDP(sport=5060, dport=5060, data=_sip("UDP"))
    udp.ulen = len(udp)
    datagram = bytes(udp)
    cut = 200  # a multiple of 8, inside the headers
    frames = []
    for offset, part, more in ((0, datagram[:cut], True), (cut, datagram[cut:], False)):
        ip = dpkt.ip.IP(src=socket.inet_aton("192.168.1.10"), dst=socket.inet_aton("192.168.1.20"), p=17, id=77,
                        _flags_offset=(dpkt.ip.IP_MF if more else 0) | offset // 8)
        ip.data = part
        ip.len = 20 + len(part)
        frames.append(_eth(ip))
    redactor = Redactor()
    for frame in frames:
        redactor.learn_packet(frame, 1)
    out = [redactor.redact_packet(frame, 1) for frame in frames]
    whole = b"".join(bytes(dpkt.ethernet.Ethernet(f).data.data) for f in out)
    for secret in SECRETS:
        assert secret not in whole, secret
    assert len(whole) == len(datagram)
    message = dpkt.sip.Request(whole[8:])
    assert int(message.headers["content-length"]) == len(message.body)


def test_keywords_are_not_replaced_as_bare_words():
    redactor = Redactor()
    redactor.learn_text("INVITE sip:udp@10.1.1.1 SIP/2.0\r\nFrom: <sip:alice@10.1.1.2>;tag=1\r\n\r\n")
    text = "Via: SIP/2.0/UDP 10.1.1.2;branch=z9hG4bK-alice\r\nSubject: call from alice\r\n"
    out = redactor.redact_text(text)
    assert "SIP/2.0/UDP " in out and "alice" not in out


def test_rtcp_sdes_items_are_redacted():
    redactor = Redactor()
    redactor.learn_text(_sip("UDP").decode("utf-8"))
    cname = b"alice@192.168.1.10"
    chunk = struct.pack("!I", 0x1234) + bytes([1, len(cname)]) + cname
    chunk += b"\0" * (4 - len(chunk) % 4)  # the null item and padding to 32 bits
    sdes = struct.pack("!BBH", 0x81, 202, (4 + len(chunk)) // 4 - 1) + chunk
    rr = struct.pack("!BBHI", 0x80, 201, 1, 0x1234)
    udp = dpkt.udp.UDP(sport=4001, dport=4001, data=rr + sdes)
    udp.ulen = len(udp)
    frame = _eth(_ip4(17, udp))
    redactor.learn_packet(frame, 1)
    out = redactor.redact_packet(frame, 1)
    assert len(out) == len(frame) and _checksums_ok(out)
    assert b"alice" not in out and b"192.168.1.10" not in out
    fake = redactor.pseudonym_ip("192.168.1.10").encode()
    assert b"@" + fake in out


def test_export_hook_ladder_text_and_call_pcap_share_pseudonyms(capsys, tmp_path):
    """What `--redact` on `flowviz ladder`/`flowviz export` does with the hook: one Redactor learns the capture,
    redacts the ladder text and the per-call pcap; both name the same pseudonym hosts."""
    capture = read_capture(LAB / "reference_call.pcap", Settings())
    redactor = Redactor()
    redactor.learn_capture(capture)
    assert main(["ladder", str(LAB / "reference_call.pcap"), "--call", "lab-ref-1@127.0.0.10", "--format", "txt"]) == 0
    ladder = redactor.redact_text(capsys.readouterr().out)
    for ip in LAB_IPS:
        assert ip not in ladder
    assert "ua1" not in ladder.lower() and "ua2" not in ladder.lower()
    pcap = tmp_path / "call.pcap"
    assert main(["export", str(LAB / "reference_call.pcap"), "--call", "lab-ref-1@127.0.0.10", "--pcap", str(pcap)]) == 0
    redact_capture(pcap, pcap, redactor)
    hosts = set(_tshark("-r", str(pcap), "-T", "fields", "-e", "ip.src").split())
    assert hosts == {redactor.pseudonym_ip(ip) for ip in LAB_IPS}
    assert all(f"{host}:5060" in ladder for host in hosts)


def test_numbers_with_user_parameters_and_separators_and_ports():
    message = ("INVITE sip:+12015550123;phone-context=example.com@10.9.9.9:5060;user=phone SIP/2.0\r\n"
               "From: <tel:+1-201-555-0199>;tag=abc\r\n"
               "To: <sip:50600@10.9.9.8:50600>\r\n"
               "Call-ID: 50600-12015550123@10.9.9.9\r\n\r\n")
    redactor = Redactor()
    redactor.learn_text(message)
    out = redactor.redact_text(message)
    assert len(out) == len(message)
    assert "12015550123" not in out and "555-0199" not in out
    fake = redactor.users["+1-201-555-0199"]
    assert re.fullmatch(r"\+\d-\d{3}-\d{3}-\d{4}", fake)
    assert ":50600>" in out  # the port stays, the user 50600 does not
    assert "sip:50600@" not in out and "Call-ID: 50600-" not in out


def test_request_uri_words_and_a_uri_cut_at_the_end_of_a_segment():
    redactor = Redactor()
    register = ("REGISTER sip:acme7.example.com SIP/2.0\r\n"
                "Authorization: Digest username=\"acme7\", realm=\"example.com\", nonce=\"1\", response=\"2\"\r\n\r\n")
    cut = "INVITE sip:x@10.1.1.1 SIP/2.0\r\nP-Asserted-Identity: <sip:79263776264"
    for text in (register, cut):
        redactor.learn_text(text)
    out = redactor.redact_text(register) + redactor.redact_text(cut)
    assert "acme7" not in out and "79263776264" not in out
    assert out.startswith("REGISTER sip:") and " SIP/2.0\r\n" in out


def test_not_a_capture_is_one_error_line_and_no_output(tshark, tmp_path, capsys):
    target = tmp_path / "out.pcap"
    assert main(["redact", str(SAMPLES / "synth" / "not_a_capture.pcap"), "-o", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flowviz: error:") and "\n" not in err and "Running as" not in err
    assert not target.exists()


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_capture_correlates_the_same_after_redaction(path, tmp_path):
    """Every public corpus capture (../shared/pcaps): redaction works and flowviz reads the copy into the same
    calls (state, final status, hosts, messages) and RTP streams (packet counts)."""
    target = tmp_path / (path.name.removesuffix(".gz") + ("" if path.suffix in (".pcap", ".pcapng", ".gz") else ".pcapng"))
    try:
        redact_capture(path, target)
    except CaptureError:
        pytest.skip("not a capture flowviz reads")
    assert _calls(target, use_cache=False) == _calls(path, use_cache=True)


def test_utf8_segment_without_start_line_is_text_and_sip_numbers_are_not_ports():
    segment = ("Contact: \"\u0421\u043a\u043b\u0430\u0434 \u041e\u0445\u0440\u0430\u043d\u0430\" "
               "<sip:402446@192.168.7.7:6060;transport=tcp>\r\nMax-Forwards: 70\r\n").encode("utf-8")
    tcp = dpkt.tcp.TCP(sport=6060, dport=40001, seq=7, flags=dpkt.tcp.TH_ACK, data=segment)
    frame = _eth(_ip4(6, tcp))
    redactor = Redactor()
    redactor.learn_packet(frame, 1)
    out = redactor.redact_packet(frame, 1)
    assert len(out) == len(frame) and _checksums_ok(out)
    assert b"402446" not in out and "\u0421\u043a\u043b\u0430\u0434".encode() not in out
    assert b":6060;" in out  # the port stays

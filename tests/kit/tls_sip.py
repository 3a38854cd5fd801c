"""A SIP call over TLS, made by Python's ssl module (a real TLS client and server, in memory) and written
as a pcap: the TCP segments carry the exact bytes each side sent, and the client's key log (NSS format,
ssl's keylog_filename) decrypts them. The construction gives the expected call: INVITE, 200, ACK, BYE,
200 between CLIENT and SERVER.

No socket and no capture privilege are needed: client and server talk through ssl.MemoryBIO pairs;
every flight of bytes becomes one TCP segment in the pcap, with sequence numbers counted by hand.
tests/kit/tls_test_cert.pem is a self-signed certificate and key for sip.example.test (made once with
`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500`).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import dpkt

CERT = Path(__file__).with_name("tls_test_cert.pem")
CLIENT = ("10.5.0.1", 40123)
SERVER = ("10.5.0.2", 5061)
CALL_ID = "tls-call-1@10.5.0.1"
START = 1_700_000_100.0


def sip_messages(server_port: int = 5061, transport: str = "TLS") -> list[tuple[bool, bytes]]:
    """(sent by the client?, message) of the call, in order."""
    def msg(first: str, cseq: str, to_tag: bool) -> bytes:
        return (f"{first}\r\nVia: SIP/2.0/{transport} {CLIENT[0]}:{CLIENT[1]};branch=z9hG4bK-{cseq.split()[0]}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sips:alice@{CLIENT[0]}>;tag=a1\r\n"
                f"To: <sips:bob@{SERVER[0]}>{';tag=b1' if to_tag else ''}\r\nCall-ID: {CALL_ID}\r\n"
                f"CSeq: {cseq}\r\nContact: <sips:alice@{CLIENT[0]}:{CLIENT[1]}>\r\nContent-Length: 0\r\n\r\n").encode()

    uri = f"sips:bob@{SERVER[0]}:{server_port}"
    return [(True, msg(f"INVITE {uri} SIP/2.0", "1 INVITE", False)), (False, msg("SIP/2.0 200 OK", "1 INVITE", True)),
            (True, msg(f"ACK {uri} SIP/2.0", "1 ACK", True)), (True, msg(f"BYE {uri} SIP/2.0", "2 BYE", True)),
            (False, msg("SIP/2.0 200 OK", "2 BYE", True))]


@dataclass
class Flight:
    from_client: bool
    data: bytes


def tls_flights(keylog: Path, messages: list[tuple[bool, bytes]], tls_version=ssl.TLSVersion.TLSv1_3) -> list[Flight]:
    """Run the TLS handshake and the messages through a client and a server in memory; the bytes each
    side put on the wire, flight by flight. The client writes the session keys to `keylog`."""
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.maximum_version = tls_version
    client_ctx.keylog_filename = str(keylog)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(CERT)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    from_client, from_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(to_client, from_client, server_hostname="sip.example.test")
    server = server_ctx.wrap_bio(to_server, from_server, server_side=True)
    flights: list[Flight] = []

    def pump() -> None:
        for out, into, is_client in ((from_client, to_server, True), (from_server, to_client, False)):
            data = out.read()
            if data:
                flights.append(Flight(is_client, data))
                into.write(data)

    def step(obj) -> bool:
        try:
            obj.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    done_c = done_s = False
    for _ in range(10):
        done_c = done_c or step(client)
        pump()
        done_s = done_s or step(server)
        pump()
        if done_c and done_s:
            break
    for by_client, text in messages:
        sender, receiver = (client, server) if by_client else (server, client)
        sender.write(text)
        pump()
        got = b""
        while len(got) < len(text):
            got += receiver.read(65536)
        pump()  # TLS 1.3 session tickets and the like
        assert got == text
    return flights


def write_pcap(path: Path, flights: list[Flight], client=CLIENT, server=SERVER, start: float = START) -> Path:
    """The flights as one TCP connection (handshake, one segment per flight, FIN both ways)."""
    seq = {True: 1000, False: 5000}
    frames = []
    ts = start

    def segment(from_client: bool, payload: bytes, flags: int) -> None:
        nonlocal ts
        src, dst = (client, server) if from_client else (server, client)
        tcp = dpkt.tcp.TCP(sport=src[1], dport=dst[1], seq=seq[from_client], ack=seq[not from_client], off=5,
                           flags=flags, win=65535, data=payload)
        ip = dpkt.ip.IP(src=ipaddress.ip_address(src[0]).packed, dst=ipaddress.ip_address(dst[0]).packed,
                        p=dpkt.ip.IP_PROTO_TCP, ttl=64, data=tcp)
        ip.len = 20 + len(bytes(tcp))
        frames.append((ts, bytes(dpkt.ethernet.Ethernet(src=b"\x02\0\0\0\0\1", dst=b"\x02\0\0\0\0\2",
                                                       type=dpkt.ethernet.ETH_TYPE_IP, data=ip))))
        seq[from_client] = (seq[from_client] + len(payload) + (1 if flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN)
                                                              else 0)) % (1 << 32)
        ts += 0.01

    ack, push = dpkt.tcp.TH_ACK, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH
    segment(True, b"", dpkt.tcp.TH_SYN)
    segment(False, b"", dpkt.tcp.TH_SYN | ack)
    segment(True, b"", ack)
    for flight in flights:
        segment(flight.from_client, flight.data, push)
    segment(True, b"", dpkt.tcp.TH_FIN | ack)
    segment(False, b"", dpkt.tcp.TH_FIN | ack)
    with open(path, "wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_EN10MB, nano=False)
        for t, data in frames:
            writer.writepkt(data, ts=t)
    return path


def build(folder: Path, server_port: int = 5061, name: str = "sip_tls",
          tls_version=ssl.TLSVersion.TLSv1_3) -> tuple[Path, Path]:
    """(capture, key log) of one SIP call over TLS to SERVER's address on `server_port`."""
    keylog = folder / f"{name}.keys"
    keylog.unlink(missing_ok=True)
    flights = tls_flights(keylog, sip_messages(server_port), tls_version)
    pcap = write_pcap(folder / f"{name}.pcap", flights, server=(SERVER[0], server_port))
    return pcap, keylog


def build_wss(folder: Path, server_port: int = 443, name: str = "sip_wss") -> tuple[Path, Path, list]:
    """(capture, key log, messages) of one SIP call over secure WebSocket (RFC 7118: HTTP Upgrade with
    the 'sip' subprotocol inside TLS, one SIP message per WebSocket text frame)."""
    from tests.kit.transports import ws_frame, ws_upgrade

    keylog = folder / f"{name}.keys"
    keylog.unlink(missing_ok=True)
    messages = sip_messages(server_port, "WSS")
    request, response = ws_upgrade(SERVER[0], server_port)
    framed = [(True, request), (False, response)] + [(c, ws_frame(text, masked=c)) for c, text in messages]
    flights = tls_flights(keylog, framed)
    pcap = write_pcap(folder / f"{name}.pcap", flights, server=(SERVER[0], server_port))
    return pcap, keylog, messages

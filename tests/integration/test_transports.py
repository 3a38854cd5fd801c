"""SIP over each transport, on captures built on purpose (tests/kit/transports.py): the messages read
back must be the exact texts sent, in order, from the right side, with the transport named."""

from __future__ import annotations

import pytest

from flowviz.ingest.capture import read_capture
from flowviz.settings import Settings
from tests.kit import tls_sip
from tests.kit.transports import Conversation, ws_frame, ws_upgrade

pytestmark = pytest.mark.usefixtures("tshark")

CLIENT = ("10.6.0.1", 40500)


def _messages(server_port: int, transport: str):
    return tls_sip.sip_messages(server_port, transport)


def _check(capture, conv: Conversation, sent, transport: str):
    sip = capture.sip_messages
    assert sip["raw"].to_list() == [text.decode() for _, text in sent]
    assert set(sip["transport"]) == {transport}
    assert [(r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"]) for r in sip.iter_rows(named=True)] == \
        [(*conv.client, *conv.server) if by_client else (*conv.server, *conv.client) for by_client, _ in sent]


@pytest.mark.parametrize("port", [8080, 10080])
def test_websocket(tmp_path, port):
    conv = Conversation(CLIENT, ("10.6.0.2", port))
    conv.open_tcp()
    request, response = ws_upgrade("10.6.0.2", port)
    conv.tcp(True, request)
    conv.tcp(False, response)
    sent = _messages(port, "WS")
    for by_client, text in sent:
        conv.tcp(by_client, ws_frame(text, masked=by_client))
    _check(read_capture(conv.write(tmp_path / "ws.pcap"), use_cache=False), conv, sent, "ws")


def test_sctp(tmp_path):
    conv = Conversation(CLIENT, ("10.6.0.2", 5060))
    sent = _messages(5060, "SCTP")
    tsn = {True: 100, False: 900}
    for by_client, text in sent:
        conv.sctp_data(by_client, text, tsn[by_client])
        tsn[by_client] += 1
    _check(read_capture(conv.write(tmp_path / "sctp.pcap"), use_cache=False), conv, sent, "sctp")


@pytest.mark.parametrize("named", [False, True])
def test_tcp_on_an_unusual_port(tmp_path, named):
    """Port 6060: found by content, or named with --sip-port; one message split over two segments and
    two messages in one segment."""
    conv = Conversation(CLIENT, ("10.6.0.2", 6060))
    conv.open_tcp()
    sent = _messages(6060, "TCP")
    invite, ok, ack, bye, ok_bye = (text for _, text in sent)
    conv.tcp(True, invite[:100])
    conv.tcp(True, invite[100:])
    conv.tcp(False, ok)
    conv.tcp(True, ack + bye)
    conv.tcp(False, ok_bye)
    settings = Settings(sip_ports=(5060, 5061, 6060)) if named else Settings()
    _check(read_capture(conv.write(tmp_path / "tcp6060.pcap"), settings, use_cache=False), conv, sent, "tcp")


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_ipv6(tmp_path, transport):
    conv = Conversation(("2001:db8:6::1", 40500), ("2001:db8:6::2", 5060))
    sent = _messages(5060, transport)
    if transport == "TCP":
        conv.open_tcp()
    for by_client, text in sent:
        (conv.tcp if transport == "TCP" else conv.udp)(by_client, text)
    _check(read_capture(conv.write(tmp_path / "v6.pcap"), use_cache=False), conv, sent, transport.lower())

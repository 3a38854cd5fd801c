"""SIP over TLS: a call made by Python's ssl module (tests/kit/tls_sip.py), decrypted by tshark with the
key log the client wrote. The construction gives the expected messages: the exact plaintext sent."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

from flowviz.errors import FlowvizError
from flowviz.ingest.capture import read_capture
from flowviz.settings import Settings
from tests.kit import tls_sip

pytestmark = pytest.mark.usefixtures("tshark")


@pytest.fixture(scope="module")
def call(tmp_path_factory):
    return tls_sip.build(tmp_path_factory.mktemp("tls"))


def _sent(server_port=5061):
    return [text.decode() for _, text in tls_sip.sip_messages(server_port)]


def _check_complete(capture, server_port=5061):
    sip = capture.sip_messages
    assert sip["raw"].to_list() == _sent(server_port)
    assert set(sip["transport"]) == {"tls"}
    client, server = tls_sip.CLIENT, (tls_sip.SERVER[0], server_port)
    by_client = [c for c, _ in tls_sip.sip_messages()]
    assert [(r["src_ip"], r["src_port"]) for r in sip.iter_rows(named=True)] == \
        [client if c else server for c in by_client]
    assert capture.info["tls"]["decrypted"] == 1 and capture.info["tls"]["not_decrypted"] == 0
    assert capture.info["warnings"] == []


def test_with_the_key_log_the_call_is_complete(call):
    pcap, keys = call
    _check_complete(read_capture(pcap, Settings(tls_keylog=str(keys)), use_cache=False))


def test_tls12_too(tmp_path):
    pcap, keys = tls_sip.build(tmp_path, tls_version=ssl.TLSVersion.TLSv1_2)
    _check_complete(read_capture(pcap, Settings(tls_keylog=str(keys)), use_cache=False))


def test_without_keys_info_and_warning_say_keys_are_missing(call):
    pcap, _ = call
    capture = read_capture(pcap, use_cache=False)
    assert capture.sip_messages.is_empty()
    assert capture.info["tls"] == {"connections": 1, "decrypted": 0, "not_decrypted": 1, "keys": "none",
                                   "secrets_blocks": 0, "not_decrypted_frames": [4]}
    (warning,) = capture.info["warnings"]  # this one, not "no SIP message found"
    assert "1 TLS connection(s) carry SIP without keys" in warning and "give --tls-keylog" in warning
    assert "frame 4" in warning  # the ClientHello: SYN, SYN-ACK, ACK come first


def test_keys_in_a_pcapng_need_no_option(call, tmp_path):
    editcap = shutil.which("editcap")
    if not editcap:
        pytest.skip("editcap (wireshark-common) is not installed")
    pcap, keys = call
    out = tmp_path / "with_keys.pcapng"
    subprocess.run([editcap, "--inject-secrets", f"tls,{keys}", str(pcap), str(out)], check=True, capture_output=True)
    capture = read_capture(out, use_cache=False)
    _check_complete(capture)
    assert capture.info["tls"]["keys"] == "the capture's Decryption Secrets Blocks"
    assert capture.info["tls"]["secrets_blocks"] == 1


def test_a_run_with_keys_after_one_without_is_decrypted(call, tmp_path, monkeypatch):
    """The key log's content is part of the decode cache key, not its path."""
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path / "cache"))
    pcap, keys = call
    assert read_capture(pcap).sip_messages.is_empty()
    first = read_capture(pcap, Settings(tls_keylog=str(keys)))
    assert not first.info["from_cache"]
    _check_complete(first)
    assert read_capture(pcap, Settings(tls_keylog=str(keys))).info["from_cache"]
    # the same path with other content: decoded again, not served from the cache
    log = tmp_path / "keys.log"
    log.write_bytes(keys.read_bytes())
    assert len(read_capture(pcap, Settings(tls_keylog=str(log))).sip_messages) == 5
    log.write_text("# emptied\n")
    again = read_capture(pcap, Settings(tls_keylog=str(log)))
    assert not again.info["from_cache"] and again.sip_messages.is_empty()


def test_keys_of_another_session_give_a_warning(call, tmp_path):
    pcap, _ = call
    _, other_keys = tls_sip.build(tmp_path, name="other")
    capture = read_capture(pcap, Settings(tls_keylog=str(other_keys)), use_cache=False)
    assert capture.sip_messages.is_empty()
    assert capture.info["tls"]["not_decrypted"] == 1 and capture.info["tls"]["keys"] == "--tls-keylog"
    (warning,) = capture.info["warnings"]
    assert "were not decrypted with the keys of --tls-keylog" in warning and "frame 4" in warning


def test_tls_on_a_port_named_with_sip_port(tmp_path):
    pcap, keys = tls_sip.build(tmp_path, server_port=5070)
    settings = Settings(tls_keylog=str(keys), sip_ports=(5060, 5061, 5070))
    _check_complete(read_capture(pcap, settings, use_cache=False), server_port=5070)


def test_a_key_log_that_cannot_be_read_is_a_one_line_error(call, tmp_path):
    pcap, _ = call
    with pytest.raises(FlowvizError, match="--tls-keylog .*cannot read it"):
        read_capture(pcap, Settings(tls_keylog=str(tmp_path / "missing.keys")))


@pytest.mark.parametrize("port", [443, 7443])
def test_secure_websocket_with_keys(tmp_path, port):
    """SIP over wss (RFC 7118) on an HTTPS port: with keys every TLS connection goes to tshark, which finds
    HTTP, the WebSocket and SIP inside; without keys the connection is not on a SIP port and not counted."""
    pcap, keys, messages = tls_sip.build_wss(tmp_path, port)
    capture = read_capture(pcap, Settings(tls_keylog=str(keys)), use_cache=False)
    sip = capture.sip_messages
    assert sip["raw"].to_list() == [text.decode() for _, text in messages]
    assert set(sip["transport"]) == {"wss"}
    assert capture.info["tls"]["decrypted"] == 1 and capture.info["warnings"] == []
    plain = read_capture(pcap, use_cache=False)
    assert plain.sip_messages.is_empty() and "tls" not in plain.info

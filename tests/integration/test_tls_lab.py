"""SIP over TLS from real software: lab/make_tls_capture.sh's call (Python ssl UAC -> kamailio over TLS
-> sipp UAS over UDP), recorded on lo with the UAC's key log. The reference is tshark with the same key
log: which frames hold SIP, and their start lines."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from flowviz.analyze import analyze
from flowviz.ingest.capture import read_capture
from flowviz.settings import Settings
from tests.conftest import SAMPLES, run_tshark

PCAP = SAMPLES / "transports" / "tls" / "sip_tls_call.pcap"
KEYS = SAMPLES / "transports" / "tls" / "sip_tls_call.keys"


def _tshark_messages(*options: str) -> list[tuple[int, str]]:
    out = run_tshark("-r", str(PCAP), "-n", *options, "-Y", "sip", "-T", "fields", "-e", "frame.number",
                     "-e", "sip.Request-Line", "-e", "sip.Status-Line")
    return [(int(f), (r or s)) for f, r, s in (line.split("\t") for line in out.splitlines())]


def _ours(capture) -> list[tuple[int, str]]:
    return [(r["frame"], r["raw"].split("\r\n")[0]) for r in capture.sip_messages.iter_rows(named=True)]


def test_with_the_key_log_every_message_of_both_legs(tshark):
    capture = read_capture(PCAP, Settings(tls_keylog=str(KEYS)), use_cache=False)
    expected = _tshark_messages("-o", f"tls.keylog_file:{KEYS}")
    assert len(expected) == 14 and _ours(capture) == expected
    legs = {(r["src_ip"], r["dst_ip"]): r["transport"] for r in capture.sip_messages.iter_rows(named=True)}
    assert legs[("127.0.0.10", "127.0.0.11")] == "tls" and legs[("127.0.0.11", "127.0.0.13")] == "udp"
    (call,) = analyze(PCAP, Settings(tls_keylog=str(KEYS)), use_cache=False).calls
    assert call["state"] == "completed"
    assert [h.rsplit(":", 1)[0] for h in call["hosts"]] == ["127.0.0.10", "127.0.0.11", "127.0.0.13"]


def test_without_keys_only_the_udp_leg_and_a_warning(tshark):
    capture = read_capture(PCAP, use_cache=False)
    assert _ours(capture) == _tshark_messages() and len(capture.sip_messages) == 7
    assert capture.info["tls"]["not_decrypted"] == 1
    assert any("1 TLS connection(s) carry SIP without keys" in w for w in capture.info["warnings"])


def test_keys_injected_into_a_pcapng(tshark, tmp_path):
    editcap = shutil.which("editcap")
    if not editcap:
        pytest.skip("editcap (wireshark-common) is not installed")
    out = tmp_path / "with_keys.pcapng"
    subprocess.run([editcap, "--inject-secrets", f"tls,{KEYS}", str(PCAP), str(out)], check=True, capture_output=True)
    assert len(read_capture(out, use_cache=False).sip_messages) == 14

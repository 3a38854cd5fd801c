"""The SIP decode gives the same frame whether it runs in a thread or in a worker process."""

from __future__ import annotations

from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from flowviz.errors import ToolMissingError
from flowviz.ingest import read_capture
from flowviz.settings import Settings

SAMPLES = Path(__file__).resolve().parents[2] / "sample_pcaps"
IN_THREAD = Settings(sip_worker_min_bytes=1 << 60)
IN_WORKER = Settings(sip_worker_min_bytes=0)


@pytest.mark.parametrize("name", ["lab/reference_call.pcap", "synth/sip_tcp_coalesced_split.pcap",
                                  "synth/sip_nonstandard_port_tcp.pcap"])
def test_worker_and_thread_give_the_same_messages(name, tshark):
    threaded = read_capture(SAMPLES / name, IN_THREAD, use_cache=False)
    worker = read_capture(SAMPLES / name, IN_WORKER, use_cache=False)
    assert len(worker.sip_messages) > 0
    assert_frame_equal(threaded.sip_messages, worker.sip_messages)


def test_worker_reports_a_missing_tshark(tmp_path):
    settings = Settings(sip_worker_min_bytes=0, tshark_path=str(tmp_path / "no-tshark"))
    with pytest.raises(ToolMissingError, match="apt-get install tshark"):
        read_capture(SAMPLES / "lab" / "reference_call.pcap", settings, use_cache=False)

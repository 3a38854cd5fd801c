"""The Parquet cache: a capture is decoded once; the same frames come back; settings change the key."""

from __future__ import annotations

import shutil
from pathlib import Path

from polars.testing import assert_frame_equal

from flowviz.ingest import read_capture
from flowviz.settings import Settings

REFERENCE = Path(__file__).resolve().parents[2] / "sample_pcaps" / "lab" / "reference_call.pcap"


def test_second_read_comes_from_the_cache_with_equal_frames(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path / "cache"))
    first = read_capture(REFERENCE)
    second = read_capture(REFERENCE)
    assert not first.info["from_cache"] and second.info["from_cache"]
    for name in ("sip_messages", "rtp_packets", "rtcp_reports"):
        assert_frame_equal(getattr(first, name), getattr(second, name))
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_key_follows_content_and_settings_not_the_name(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path / "cache"))
    read_capture(REFERENCE)
    copy = tmp_path / "renamed.pcap"
    shutil.copy(REFERENCE, copy)
    assert read_capture(copy).info["from_cache"]  # same bytes, other name: same entry
    assert not read_capture(copy, Settings(sip_ports=(5060, 5061, 5080))).info["from_cache"]
    assert not read_capture(copy, use_cache=False).info["from_cache"]
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_key_holds_the_flowviz_version_and_a_hash_of_the_decoding_code(monkeypatch):
    import flowviz
    from flowviz.ingest import cache

    package = Path(flowviz.__file__).resolve().parent
    sources = [p.relative_to(package).as_posix() for p in cache.decoding_sources()]
    assert {"ingest/sip_udp.py", "ingest/rtp_decode.py", "ingest/kernel.py", "schemas.py", "settings.py"} <= set(sources)
    assert sources == sorted(sources) and all(s.startswith("ingest/") or s in ("schemas.py", "settings.py")
                                              for s in sources)
    key = cache.key_for(REFERENCE, Settings())
    assert f"-{flowviz.__version__}-" in key
    try:
        monkeypatch.setattr(flowviz, "__version__", "99.0.0")
        cache.code_version.cache_clear()
        other = cache.key_for(REFERENCE, Settings())
    finally:
        monkeypatch.undo()
        cache.code_version.cache_clear()
    assert other != key and "-99.0.0-" in other
    assert cache.key_for(REFERENCE, Settings()) == key

"""The CLI and the web give the same files for the same call: the per-call JSON of `flowviz export --json`
and the web's JSON download, and `flowviz ladder`'s files and the web's ladder downloads (issue 12).
Both run for real: the CLI's main() and the web server with its analysis worker process."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest

from flowviz.cli import main
from tests.conftest import SAMPLES, SHARED_PCAPS

REFERENCE = SAMPLES / "lab" / "reference_call.pcap"
B2BUA = SHARED_PCAPS / "goffinet__sip_captures" / "sip-2phones-B2BUA-Asterisk.pcapng"
DTMF = SHARED_PCAPS / "NormB__sipnab" / "SIP_DTMF2.cap"
LADDER_FORMATS = ("txt", "mermaid", "plantuml", "svg", "html")


def _cli_json(*args: str, capsys) -> object:
    assert main([*args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def _pick_call(path: Path, kind: str, capsys) -> str:
    """The call the case is about, chosen from what the capture holds (not from a fixed id)."""
    calls = _cli_json("calls", str(path), capsys=capsys)
    if kind == "reference":
        [call] = calls
        return call["call_group_id"]
    if kind == "b2bua":
        return next(c["call_group_id"] for c in calls if len(c["call_ids"]) == 2)
    digits = _cli_json("dtmf", str(path), capsys=capsys)
    return next(d["call_group_id"] for d in digits if d["call_group_id"])


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    from flowviz.web import create_app

    app = create_app(tmp_path_factory.mktemp("web"), max_upload_bytes=64 << 20)
    client = app.server.test_client()
    page = client.get("/").get_data(as_text=True)
    # what the app's own page sends with every POST (flowviz.web.security): its origin and its session token
    token = re.search(r'<meta name="flowviz-csrf" content="([^"]+)"', page).group(1)
    client.environ_base.update(HTTP_ORIGIN="http://localhost", HTTP_X_CSRF_TOKEN=token)
    yield app, client
    app.flowviz["analyzer"].shutdown()


def _upload(app, client, path: Path) -> str:
    r = client.post("/api/upload", data={"file": (io.BytesIO(path.read_bytes()), path.name)},
                    content_type="multipart/form-data")
    assert r.status_code == 200, r.json
    cid = r.json["added"][0]
    sid = client.get_cookie("flowviz_session").value.rsplit(".", 1)[0]  # the signed cookie: "<sid>.<signature>"
    end = time.monotonic() + 120
    while time.monotonic() < end:
        state = next(c for c in app.flowviz["store"].captures(sid) if c["id"] == cid)["state"]
        if state in ("done", "error"):
            assert state == "done"
            return cid
        time.sleep(0.2)
    raise AssertionError("the web analysis did not finish")


def _without_capture(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    report["call"].pop("capture")
    for stream in report["streams"]:
        stream.pop("capture")
    return report


def _svg_texts(data: bytes) -> list[str]:
    return re.findall(rb">([^<>]+)</text>", data)


def _html_without_ids(data: bytes) -> bytes:
    # plotly gives each plot div a random id
    return re.sub(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", b"ID", data)


@pytest.mark.parametrize("path,kind", [(REFERENCE, "reference"), (B2BUA, "b2bua"), (DTMF, "dtmf")],
                         ids=["reference", "b2bua", "dtmf"])
def test_web_downloads_equal_the_cli_files(path, kind, web, tmp_path, capsys, tshark):
    if not path.exists():
        pytest.skip(f"{path} is absent")
    app, client = web
    gid = _pick_call(path, kind, capsys)
    cid = _upload(app, client, path)
    url = f"/capture/{cid}/call/{gid}/export/"

    out = tmp_path / "call.json"
    assert main(["export", str(path), "--call", gid, "--json", str(out)]) == 0
    cli_text = out.read_text(encoding="utf-8")
    web_text = client.get(url + "json").get_data(as_text=True)
    cli_report, web_report = json.loads(cli_text), json.loads(web_text)
    assert _without_capture(web_report) == _without_capture(cli_report)
    # byte for byte, apart from the capture's name
    assert web_text.replace(json.dumps(web_report["call"]["capture"]), json.dumps(str(path))) == cli_text
    if kind == "dtmf":
        assert cli_report["dtmf"] and any(m["source"] == "rfc4733" for m in cli_report["dtmf"])
    if kind == "b2bua":
        assert len(cli_report["call"]["call_ids"]) == 2 and cli_report["call"]["legs"]

    for fmt in LADDER_FORMATS:
        target = tmp_path / f"ladder.{fmt}"
        assert main(["ladder", str(path), "--call", gid, "--format", fmt, "-o", str(target)]) == 0
        cli_file, web_file = target.read_bytes(), client.get(url + fmt).data
        if fmt == "svg":
            assert _svg_texts(web_file) == _svg_texts(cli_file) and _svg_texts(cli_file)
        elif fmt == "html":
            assert _html_without_ids(web_file) == _html_without_ids(cli_file)
        else:
            assert web_file == cli_file, fmt
    if kind == "dtmf":  # the web's ladder used to lack the digits the CLI draws
        assert b"DTMF" in client.get(url + "txt").data


def test_export_correlates_once_and_diagnoses_once(tmp_path, monkeypatch, tshark):
    from flowviz.analysis import diagnose
    from flowviz.sip import calls

    counts = {"correlation": 0, "diagnose": 0}
    real_init, real_diagnose = calls.Correlation.__init__, diagnose.diagnose

    def counting_init(self, *args, **kwargs):
        counts["correlation"] += 1
        real_init(self, *args, **kwargs)

    def counting_diagnose(*args, **kwargs):
        counts["diagnose"] += 1
        return real_diagnose(*args, **kwargs)

    monkeypatch.setattr(calls.Correlation, "__init__", counting_init)
    monkeypatch.setattr(diagnose, "diagnose", counting_diagnose)
    code = main(["export", str(REFERENCE), "--call", "83d0dbe7fe", "--json", str(tmp_path / "c.json"),
                 "--pcap", str(tmp_path / "c.pcap"), "--redact"])
    assert code == 0 and (tmp_path / "c.pcap").stat().st_size > 0
    assert counts == {"correlation": 1, "diagnose": 1}

"""`flowviz ladder` on the lab reference call (UA1 -> P1 -> P2 -> UA2, sample_pcaps/lab/expected.json):
golden txt / Mermaid / PlantUML, SVG/PNG/PDF through kaleido (one server for the module), offline HTML,
the browser-free SVG writer, and the CLI's file rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from flowviz.cli import main
from tests.conftest import SAMPLES, run_tshark

LAB_CALL = SAMPLES / "lab" / "reference_call.pcap"
CALL_ID = "lab-ref-1@127.0.0.10"
HOSTS = ["127.0.0.10:5060", "127.0.0.11:5060", "127.0.0.12:5060", "127.0.0.13:5060"]

# From the scenario: INVITE, a 100 from each hop, 180 and 200 back over the 3 links, ACK and BYE forward,
# the BYE's 200 back; SDP (PCMA/8000) in the INVITEs and the 200s; RTP both ways UA1 <-> UA2 after the
# ACK, 334 packets each; 200 about 1 s after the INVITE, BYE 10.5 s after the ACK.
GOLDEN_TXT = """\
               UA-1                      kamailio-1                   kamailio-2                      UA-2
          127.0.0.10:5060              127.0.0.11:5060              127.0.0.12:5060              127.0.0.13:5060
  time s         |                            |                            |                            |
   0.000         |-- INVITE (SDP PCMA/8000) ->|                            |                            |  +0.000 ms
   0.000         |<- 100 trying -- your ca~ --|                            |                            |  +0.494 ms
   0.001         |                            |-- INVITE (SDP PCMA/8000) ->|                            |  +0.059 ms
   0.003         |                            |<- 100 trying -- your ca~ --|                            |  +2.474 ms
   0.003         |                            |                            |-- INVITE (SDP PCMA/8000) ->|  +0.159 ms
   0.003         |                            |                            |<------- 100 Trying --------|  +0.267 ms
   0.005         |                            |                            |<------ 180 Ringing --------|  +1.106 ms
   0.005         |                            |<------ 180 Ringing --------|                            |  +0.111 ms
   0.005         |<------ 180 Ringing --------|                            |                            |  +0.079 ms
   1.008         |                            |                            |<- 200 OK (SDP PCMA/8000) --|  +1003.657 ms
   1.009         |                            |<- 200 OK (SDP PCMA/8000) --|                            |  +0.289 ms
   1.009         |<- 200 OK (SDP PCMA/8000) --|                            |                            |  +0.196 ms
   1.009         |----------- ACK ----------->|                            |                            |  +0.244 ms
   1.009         |                            |----------- ACK ----------->|                            |  +0.206 ms
   1.010         |                            |                            |----------- ACK ----------->|  +0.170 ms
   1.010         |<============= RTP PCMA: 334 pkts, loss 0.0%, jitter 0.34 ms, MOS 4.41 ===============|
   1.010         |============== RTP PCMA: 334 pkts, loss 0.0%, jitter 0.34 ms, MOS 4.41 ==============>|
  11.516         |----------- BYE ----------->|                            |                            |  +10506.323 ms
  11.516         |                            |----------- BYE ----------->|                            |  +0.378 ms
  11.516         |                            |                            |----------- BYE ----------->|  +0.260 ms
  11.517         |                            |                            |<--------- 200 OK ----------|  +0.097 ms
  11.517         |                            |<--------- 200 OK ----------|                            |  +0.097 ms
  11.517         |<--------- 200 OK ----------|                            |                            |  +0.067 ms
"""

RTP_LABEL = "RTP PCMA: 334 pkts, loss 0.0%, jitter 0.34 ms, MOS 4.41"
GOLDEN_MERMAID = f"""\
sequenceDiagram
    participant C0 as UA-1<br/>127.0.0.10:5060
    participant C1 as kamailio-1<br/>127.0.0.11:5060
    participant C2 as kamailio-2<br/>127.0.0.12:5060
    participant C3 as UA-2<br/>127.0.0.13:5060
    C0->>C1: INVITE (SDP PCMA/8000)
    C1-->>C0: 100 trying -- your call is important to us
    C1->>C2: INVITE (SDP PCMA/8000)
    C2-->>C1: 100 trying -- your call is important to us
    C2->>C3: INVITE (SDP PCMA/8000)
    C3-->>C2: 100 Trying
    C3-->>C2: 180 Ringing
    C2-->>C1: 180 Ringing
    C1-->>C0: 180 Ringing
    C3-->>C2: 200 OK (SDP PCMA/8000)
    C2-->>C1: 200 OK (SDP PCMA/8000)
    C1-->>C0: 200 OK (SDP PCMA/8000)
    C0->>C1: ACK
    C1->>C2: ACK
    C2->>C3: ACK
    C3--)C0: {RTP_LABEL}
    C0--)C3: {RTP_LABEL}
    C0->>C1: BYE
    C1->>C2: BYE
    C2->>C3: BYE
    C3-->>C2: 200 OK
    C2-->>C1: 200 OK
    C1-->>C0: 200 OK
"""

GOLDEN_PLANTUML = f"""\
@startuml
skinparam responseMessageBelowArrow true
participant "UA-1\\n127.0.0.10:5060" as C0
participant "kamailio-1\\n127.0.0.11:5060" as C1
participant "kamailio-2\\n127.0.0.12:5060" as C2
participant "UA-2\\n127.0.0.13:5060" as C3
C0 -> C1 : INVITE (SDP PCMA/8000)
C1 --> C0 : 100 trying -- your call is important to us
C1 -> C2 : INVITE (SDP PCMA/8000)
C2 --> C1 : 100 trying -- your call is important to us
C2 -> C3 : INVITE (SDP PCMA/8000)
C3 --> C2 : 100 Trying
C3 --> C2 : 180 Ringing
C2 --> C1 : 180 Ringing
C1 --> C0 : 180 Ringing
C3 --> C2 : 200 OK (SDP PCMA/8000)
C2 --> C1 : 200 OK (SDP PCMA/8000)
C1 --> C0 : 200 OK (SDP PCMA/8000)
C0 -> C1 : ACK
C1 -> C2 : ACK
C2 -> C3 : ACK
C3 ->> C0 : {RTP_LABEL}
C0 ->> C3 : {RTP_LABEL}
C0 -> C1 : BYE
C1 -> C2 : BYE
C2 -> C3 : BYE
C3 --> C2 : 200 OK
C2 --> C1 : 200 OK
C1 --> C0 : 200 OK
@enduml
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    if not LAB_CALL.exists():
        pytest.skip(f"{LAB_CALL} is absent")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLOWVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield tmp_path_factory.mktemp("out")


def run(*args: str) -> int:
    return main(["ladder", str(LAB_CALL), "--call", CALL_ID, *args])


@pytest.fixture(scope="module")
def model(env):
    from flowviz.analyze import analyze

    return analyze(LAB_CALL).call(CALL_ID).ladder()


@pytest.fixture(scope="module")
def images(env):
    """svg/png/pdf through kaleido: one server for all three (started once per process)."""
    from flowviz.export.image import browser_path

    if browser_path() is None:
        pytest.skip("no Chromium for kaleido")
    out = {}
    for fmt in ("svg", "png", "pdf"):
        path = env / f"ladder.{fmt}"
        assert run("--format", fmt, "-o", str(path)) == 0
        out[fmt] = path.read_bytes()
    return out


def expected_ladder() -> list[dict]:
    facts = json.loads((SAMPLES / "lab" / "expected.json").read_text())
    return facts["captures"]["reference_call.pcap"]["ladder"]


def test_model_has_the_expected_ladder(model):
    assert model.columns["key"].to_list() == HOSTS
    arrows = model.arrows.to_dicts()
    got = [(a["label"].split()[0], a["src"], a["dst"], a["sdp"] is not None) for a in arrows]
    assert got == [(m["msg"], m["src"], m["dst"], m["sdp"]) for m in expected_ladder()]
    assert model.media["packets"].to_list() == [334, 334]
    assert sorted(zip(model.media["src_col"], model.media["dst_col"])) == [(0, 3), (3, 0)]


@pytest.mark.parametrize("fmt, golden", [("txt", GOLDEN_TXT), ("mermaid", GOLDEN_MERMAID),
                                         ("plantuml", GOLDEN_PLANTUML)])
def test_text_formats_match_the_golden_text(env, capsys, fmt, golden):
    assert run("--format", fmt) == 0
    assert capsys.readouterr().out == golden


# The numbers of the txt ladder come from the capture, so tshark gives them too: per SIP arrow the time since
# the call's first message, which is the capture's frame 1 (frame.time_relative, s), and since the previous SIP
# message of the call (frame.time_delta_displayed under a Call-ID filter, ms); per RTP line the stream's start,
# packets, loss and mean jitter (tshark -z rtp,streams). The MOS is flowviz's E-model estimate: no tshark value
# to check it by.
SIP_ROW = re.compile(r"^\s*(\d+\.\d{3})\s+.*?[-<]\s(\S+).*\|\s+\+(\d+\.\d{3}) ms$")
RTP_ROW = re.compile(r"^\s*(\d+\.\d{3})\s+\|(<?)=+ RTP \S+ (\d+) pkts, loss (\d+\.\d)%, jitter (\d+\.\d\d) ms")


def ladder_numbers(text: str) -> tuple[list[tuple], list[tuple]]:
    """(time, first word of the label, delta) per SIP arrow; (time, src, dst, packets, loss %, jitter) per RTP
    line, src/dst as the first (UA1) and last (UA2) columns' hosts."""
    sip, rtp = [], []
    for line in text.splitlines():
        if m := RTP_ROW.match(line):
            ends = (HOSTS[-1], HOSTS[0]) if m[2] else (HOSTS[0], HOSTS[-1])
            rtp.append((m[1], *(e.split(":")[0] for e in ends), int(m[3]), m[4], m[5]))
        elif m := SIP_ROW.match(line):
            sip.append((m[1], m[2], m[3]))
    return sip, rtp


def tshark_ladder_numbers() -> tuple[list[tuple], list[tuple]]:
    out = run_tshark("-r", str(LAB_CALL), "-n", "-Y", f'sip.Call-ID == "{CALL_ID}"', "-T", "fields",
                     "-e", "frame.number", "-e", "frame.time_relative", "-e", "frame.time_delta_displayed",
                     "-e", "sip.Method", "-e", "sip.Status-Code")
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0][0] == "1"  # the call starts the capture: its times are the capture's
    sip = [(f"{float(rel):.3f}", method or status, f"{float(delta) * 1000:.3f}") for _, rel, delta, method, status in rows]
    streams = run_tshark("-r", str(LAB_CALL), "-n", "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams")
    from tests.integration.test_media_corpus import FULL_LINE

    rtp = [(f"{float(m[1]):.3f}", m[3], m[5], int(m[9]), f"{float(m[11]):.1f}", f"{float(m[16]):.2f}")
           for m in map(FULL_LINE.match, streams.splitlines()) if m]
    return sip, sorted(rtp)


def test_txt_numbers_are_tsharks_for_the_same_messages(env, capsys):
    """The golden text's times and deltas, and those flowviz prints now, are tshark's for the same frames."""
    sip, rtp = tshark_ladder_numbers()
    assert len(sip) == 21 and len(rtp) == 2  # sample_pcaps/lab/README.md: 21 SIP messages, 2 x 334 RTP packets
    golden_sip, golden_rtp = ladder_numbers(GOLDEN_TXT)
    assert golden_sip == sip
    assert sorted(golden_rtp) == rtp
    assert run("--format", "txt") == 0
    printed_sip, printed_rtp = ladder_numbers(capsys.readouterr().out)
    assert printed_sip == sip and sorted(printed_rtp) == rtp


def test_txt_respects_the_max_width(env, capsys):
    assert run("--width", "80") == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 80
    assert len(lines) == 3 + 21 + 2


MERMAID_LINE = re.compile(
    r"^(sequenceDiagram|    participant C\d+ as [^;#\n]+|    C\d+(->>|-->>|--\))C\d+: [^;\n]+)$")


def test_mermaid_is_valid(env, tmp_path):
    """A parser check of the subset we write; then the real renderer if mermaid-cli is installed."""
    assert all(MERMAID_LINE.match(line) for line in GOLDEN_MERMAID.splitlines())
    svg = mermaid_renders(GOLDEN_MERMAID, tmp_path)
    if svg is None:
        pytest.skip("mermaid-cli (mmdc) is not installed")
    assert "180 Ringing" in svg and "kamailio-2" in svg


def mermaid_renders(text: str, folder: Path) -> str | None:
    """SVG text from mermaid-cli with the system Chromium; None when mmdc is not installed."""
    local = Path(__file__).resolve().parents[2] / ".tools" / "mermaid" / "node_modules" / ".bin" / "mmdc"
    mmdc = shutil.which("mmdc") or (local if local.exists() else None)  # scripts/install-test-tools.sh
    if mmdc is None:
        return None
    (folder / "in.mmd").write_text(text)
    (folder / "pp.json").write_text(json.dumps({"executablePath": "/usr/bin/chromium",
                                                "args": ["--no-sandbox", "--headless=new"]}))
    done = subprocess.run([str(mmdc), "-p", str(folder / "pp.json"), "-i", str(folder / "in.mmd"),
                           "-o", str(folder / "out.svg")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return (folder / "out.svg").read_text()


BUSY = SAMPLES / "lab" / "busy_486.pcap"


def test_rejected_call_has_its_diagnostic_on_the_486_in_txt_and_mermaid(env, capsys, tmp_path):
    """busy_486: UA2 answers 486; `flowviz diagnose` says sip.rejected with the 486s as evidence."""
    if not BUSY.exists():
        pytest.skip(f"{BUSY} is absent")
    call = ["ladder", str(BUSY), "--call", "lab-busy-1@127.0.0.10"]
    assert main([*call]) == 0
    lines = capsys.readouterr().out.splitlines()
    first_486 = next(line for line in lines if "486 Busy Here" in line)
    assert first_486.endswith("  !1") and first_486.index("<-") > first_486.index("|", 20)
    assert lines[-2] == "Diagnostics (!n marks the message that shows it):"
    assert lines[-1].startswith("  !1 warning sip.rejected: Call rejected")
    assert main([*call, "--no-diagnostics"]) == 0
    assert "!1" not in capsys.readouterr().out
    assert main([*call, "--format", "mermaid"]) == 0
    text = capsys.readouterr().out
    assert "    Note over C2,C3: !1 warning: Call rejected" in text
    svg = mermaid_renders(text, tmp_path)
    if svg is not None:
        assert "Call rejected" in svg


def test_svg_has_the_labels_in_order(images):
    svg = images["svg"].decode()
    ET.fromstring(svg)
    at = [svg.index(label) for label in ("INVITE", "180 Ringing", "200 OK", "ACK", "BYE")]
    assert at == sorted(at)


def test_png_and_pdf_are_valid(images):
    assert images["png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert images["pdf"].startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page(?!s)", images["pdf"])) == 1


def test_svg_without_a_browser_is_written_by_flowviz(env, model, monkeypatch, tmp_path):
    from flowviz.errors import ToolMissingError
    from flowviz.export import image
    from flowviz.export.render import render_ladder

    monkeypatch.setattr(image, "browser_path", lambda: None)
    root = ET.fromstring(render_ladder(model, "svg"))
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts[:8] == ["UA-1", "127.0.0.10:5060", "kamailio-1", "127.0.0.11:5060", "kamailio-2",
                         "127.0.0.12:5060", "UA-2", "127.0.0.13:5060"]
    labels = [t for t in texts if not t.endswith(" ms") and t not in texts[:8]]
    assert labels[:3] == ["INVITE (SDP PCMA/8000)", "100 trying -- your call is important to us",
                          "INVITE (SDP PCMA/8000)"]
    assert labels.count(RTP_LABEL) == 2 and len(labels) == 23
    with pytest.raises(ToolMissingError):
        render_ladder(model, "png")


def test_html_is_offline_and_holds_each_raw_message(env):
    path = env / "ladder.html"
    assert run("--format", "html", "-o", str(path)) == 0
    html = path.read_text()
    assert re.search(r"<script[^>]*\bsrc=", html) is None  # nothing loaded from the network
    assert len(html) > 3_000_000  # plotly.js embedded
    raw = json.loads(re.search(r'id="flowviz-raw">(.*?)</script>', html, re.S).group(1))
    assert len(raw) == 21
    assert raw[0]["raw"].startswith("INVITE sip:ua2@127.0.0.13:5060 SIP/2.0")
    assert "plotly_click" in html


def test_cli_file_rules(env, capsys):
    out = env / "rules.txt"
    assert run("--format", "png") == 2
    assert "-o FILE" in capsys.readouterr().err
    out.write_text("keep me")
    assert run("-o", str(out)) == 2
    assert "exists; use --force" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert run("-o", str(out), "--force") == 0
    assert out.read_text() == GOLDEN_TXT
    assert main(["ladder", str(LAB_CALL), "--call", "no-such-call"]) == 2
    assert "no call 'no-such-call'" in capsys.readouterr().err
    assert run("-o", str(env / "no-such-folder" / "x.txt")) == 2
    assert "no-such-folder: no such folder for x.txt" in capsys.readouterr().err
    assert run("-o", str(env)) == 2
    assert f"{env} is a folder; give a file name" in capsys.readouterr().err  # one line, not a usage error


def test_call_group_id_and_aliases(env, capsys, tmp_path):
    aliases = tmp_path / "names.txt"
    aliases.write_text("127.0.0.10 alice\n127.0.0.13:5060=bob\n")
    assert run("--format", "mermaid", "--alias", str(aliases)) == 0
    text = capsys.readouterr().out
    assert "participant C0 as alice<br/>127.0.0.10:5060" in text
    assert "participant C3 as bob<br/>127.0.0.13:5060" in text


def test_html_click_on_a_label_shows_its_raw_message(env):
    """In Chromium, offline: clicking the '180 Ringing' label of UA2 -> P2 shows that message's text."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from flowviz.export.image import browser_path

    if browser_path() is None:
        pytest.skip("no Chromium")
    path = env / "click.html"
    assert run("--format", "html", "-o", str(path)) == 0
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:")
                       else route.continue_())
            page.goto(path.as_uri())
            box = page.locator("text", has_text="180 Ringing").first.bounding_box()
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_function("document.getElementById('flowviz-message').textContent.length > 0")
            assert page.inner_text("#flowviz-message-title").startswith("#6 frame 7: 180 Ringing")
            assert page.inner_text("#flowviz-message").startswith("SIP/2.0 180 Ringing")
        finally:
            browser.close()


BURST = SAMPLES / "lab" / "burst_100.pcap"


def frame_facts(path: Path, *extra: str) -> list[tuple[str, ...]]:
    out = subprocess.run(["tshark", "-r", str(path), "-o", "frame.generate_md5_hash:TRUE", "-o",
                          "rtp.heuristic_rtp:TRUE", "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.md5_hash",
                          *[a for f in extra for a in ("-e", f)]], capture_output=True, text=True, timeout=300)
    return [tuple(line.split("\t")) for line in out.stdout.splitlines()]


def test_export_pcap_and_json_of_one_call_among_a_hundred(env, capsys):
    """lab-burst-2: 21 SIP messages over 3 links and 34 RTP packets each way (expected.json), nothing else;
    every frame has its original timestamp and bytes."""
    if not BURST.exists():
        pytest.skip(f"{BURST} is absent")
    pcap, report = env / "burst-2.pcap", env / "burst-2.json"
    assert main(["export", str(BURST), "--call", "lab-burst-2@127.0.0.10", "--pcap", str(pcap),
                 "--json", str(report)]) == 0
    got = frame_facts(pcap, "sip.Call-ID", "rtp.ssrc", "udp.srcport")
    assert sorted(r[2] for r in got if r[2]) == ["lab-burst-2@127.0.0.10"] * 21
    assert sorted(r[4] for r in got if r[3]) == ["16004"] * 34 + ["20004"] * 34
    assert len(got) == 21 + 68
    original = set(r[:2] for r in frame_facts(BURST))
    assert all(r[:2] in original for r in got)
    data = json.loads(report.read_text())
    assert data["call"]["call_ids"] == ["lab-burst-2@127.0.0.10"] and data["call"]["state"] == "completed"
    assert len(data["messages"]) == 21 and [s["packets"] for s in data["streams"]] == [34, 34]
    assert [c["key"] for c in data["columns"]] == HOSTS
    assert main(["export", str(BURST), "--call", "lab-burst-2@127.0.0.10", "--pcap", str(pcap)]) == 2
    assert "exists; use --force" in capsys.readouterr().err


def test_export_pcapng_keeps_the_format(env, tmp_path):
    """The reference call as pcapng (editcap's default): the whole capture is that one call."""
    source = tmp_path / "ref.pcapng"
    subprocess.run(["editcap", str(LAB_CALL), str(source)], check=True, capture_output=True, timeout=60)
    out = tmp_path / "out.pcapng"
    assert main(["export", str(source), "--call", CALL_ID, "--pcap", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    assert frame_facts(out) == frame_facts(source)

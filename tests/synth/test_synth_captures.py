"""Guard the synthetic captures: real tshark must see exactly what the construction says.

Each scenario is built fresh into a temp dir and read back with tshark:
  * ``tshark -r F -Y sip`` frame count           == expected["sip_frames"]
  * SIP messages from ``-T fields -e sip.Method -e sip.Status-Code -e sip.Call-ID``
    (frame, label, Call-ID)                       == expected["sip"]
  * ``-q -o rtp.heuristic_rtp:TRUE -z rtp,streams``: per stream (src, dst, SSRC)
    packets, lost, and delta/jitter               == expected["rtp_streams"]
  * RTCP frames, total frames, first/last timestamps, interfaces, protocols.
Bad files must make tshark fail after exactly ``whole_records`` frames.

The committed copies in sample_pcaps/synth must be byte-identical to a fresh build.

Run:  .venv/bin/python -m pytest tests/synth -q
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from . import SCENARIOS, build, filename, write
from . import write_all

TSHARK = shutil.which("tshark")
REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "sample_pcaps" / "synth"

needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark not installed")

GOOD = [n for n in SCENARIOS if not build(n)[1].get("bad")]
BAD = [n for n in SCENARIOS if build(n)[1].get("bad")]


def run_tshark(path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [TSHARK, "-n", "-r", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"tshark failed on {path.name} ({proc.returncode}): {proc.stderr}")
    return proc


def tshark_lines(path: Path, *args: str, check: bool = True) -> list[str]:
    return [ln for ln in run_tshark(path, *args, check=check).stdout.splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def outdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("synth")
    for n in SCENARIOS:
        write(n, d / filename(n))
    return d


def opts(exp: dict) -> list[str]:
    return list(exp.get("tshark_options", []))


# --------------------------------------------------------------------------- construction / files


def test_build_is_deterministic():
    from . import scenarios

    for n in SCENARIOS:
        first = scenarios.BUILDERS[n]()
        again = scenarios.BUILDERS[n]()
        assert first.data == again.data, n
        assert first.expected == again.expected, n


def test_committed_files_are_current(tmp_path):
    """sample_pcaps/synth must equal a fresh build (re-run `python -m tests.synth.build`)."""
    if not COMMITTED.exists():
        pytest.skip("sample_pcaps/synth not generated")
    fresh = write_all(tmp_path)
    committed = json.loads((COMMITTED / "expected.json").read_text())
    assert committed == json.loads(json.dumps(fresh)), "expected.json is stale"
    for fname in fresh:
        assert (COMMITTED / fname).read_bytes() == (tmp_path / fname).read_bytes(), f"{fname} is stale"


def test_readme_lists_every_file():
    readme = (COMMITTED / "README.md").read_text() if (COMMITTED / "README.md").exists() else ""
    if not readme:
        pytest.skip("sample_pcaps/synth/README.md missing")
    for n in SCENARIOS:
        assert f"`{filename(n)}`" in readme, filename(n)


def test_total_size_small():
    assert sum(len(build(n)[0]) for n in SCENARIOS) < 5_000_000


def test_api_accepts_file_names():
    data, exp = build("basic_call_udp.pcap")
    assert exp["file"] == "basic_call_udp.pcap" and data[:4] == bytes.fromhex("d4c3b2a1")


@pytest.mark.parametrize("name", ["pcapng_two_interfaces", "pcapng_big_endian"])
def test_pcapng_block_walk(name):
    """Walk the blocks by their lengths (no tshark): counts match, both length fields agree."""
    import struct

    data, exp = build(name)
    e = "<" if exp["byte_order"] == "little" else ">"
    names = {0x0A0D0D0A: "SHB", 1: "IDB", 3: "SPB", 5: "ISB", 6: "EPB"}
    counts: dict[str, int] = {}
    off = 0
    while off < len(data):
        btype, blen = struct.unpack_from(e + "II", data, off)
        assert blen % 4 == 0 and struct.unpack_from(e + "I", data, off + blen - 4)[0] == blen
        key = names.get(btype, "unknown")
        counts[key] = counts.get(key, 0) + 1
        off += blen
    assert off == len(data)
    assert counts == {k: v for k, v in exp["blocks"].items() if k != "unknown_type"}


def test_pcap_record_walk():
    """pcap records chain exactly to the end; usec files store floored timestamps."""
    import struct

    for name in ["basic_call_udp", "pcap_nsec", "pcap_big_endian"]:
        data, exp = build(name)
        e = "<" if exp["byte_order"] == "little" else ">"
        assert struct.unpack_from(e + "I", data)[0] == int(exp["magic"], 16)
        off, stamps = 24, []
        while off < len(data):
            sec, frac, incl, orig = struct.unpack_from(e + "IIII", data, off)
            assert incl == orig
            stamps.append(sec * 10**9 + frac * (1 if exp["ts_resolution"] == "ns" else 1000))
            off += 16 + incl
        assert off == len(data) and len(stamps) == exp["frames"]
        assert stamps[0] == exp["first_ts_ns"] and stamps[-1] == exp["last_ts_ns"]


# --------------------------------------------------------------------------- SIP


def tshark_sip_messages(path: Path, exp: dict) -> list[tuple[int, str, str]]:
    """(frame, label, Call-ID) per SIP message as tshark dissects them.

    tshark's ``-Y sip`` counts FRAMES; a frame with two coalesced messages (TCP) is
    one frame, and a message split over two TCP segments (or IP fragments) appears
    only in the frame that completes it.  So messages are counted from field
    occurrences: sip.Method / sip.Status-Code give one value per message in the
    frame (comma-separated).  A frame mixing requests and responses would lose their
    relative order here; no scenario builds one.
    """
    lines = tshark_lines(
        path, *opts(exp), "-Y", "sip", "-T", "fields", "-E", "occurrence=a", "-E", "separator=\t",
        "-e", "frame.number", "-e", "sip.Method", "-e", "sip.Status-Code", "-e", "sip.Call-ID",
    )
    out = []
    for ln in lines:
        frame, methods, codes, call_ids = (ln.split("\t") + ["", "", ""])[:4]
        labels = [x for x in methods.split(",") if x] + [x for x in codes.split(",") if x]
        cids = [x for x in call_ids.split(",") if x]
        assert not (methods and codes), f"frame {frame} mixes requests and responses"
        assert len(cids) == len(labels), ln
        out += [(int(frame), lbl, cid) for lbl, cid in zip(labels, cids)]
    return out


@needs_tshark
@pytest.mark.parametrize("name", GOOD)
def test_sip_frames_and_messages(outdir, name):
    exp = build(name)[1]
    path = outdir / exp["file"]
    sip_frames = tshark_lines(path, *opts(exp), "-Y", "sip")
    assert len(sip_frames) == exp["sip_frames"]
    got = tshark_sip_messages(path, exp)
    want = [(m["frame"], m["label"], m["call_id"]) for m in exp["sip"]]
    assert got == want
    assert len(got) == exp["sip_messages"]
    assert [g[1] for g in got] == exp["sip_sequence"]
    assert list(dict.fromkeys(g[2] for g in got)) == exp["call_ids"]


@needs_tshark
@pytest.mark.parametrize("name", GOOD)
def test_sip_endpoints_and_cseq(outdir, name):
    exp = build(name)[1]
    if not exp["sip"]:
        pytest.skip("no SIP")
    lines = tshark_lines(
        outdir / exp["file"], *opts(exp), "-Y", "sip", "-T", "fields", "-E", "occurrence=l", "-E", "separator=\t",
        "-e", "frame.number", "-e", "ipv6.src", "-e", "ip.src", "-e", "ipv6.dst", "-e", "ip.dst",
        "-e", "udp.srcport", "-e", "tcp.srcport", "-e", "udp.dstport", "-e", "tcp.dstport", "-e", "sip.CSeq",
    )
    got = {}
    for ln in lines:
        f, s6, s4, d6, d4, us, ts, ud, td, cseq = ln.split("\t")
        src = f"[{s6}]:{us or ts}" if s6 else f"{s4}:{us or ts}"
        dst = f"[{d6}]:{ud or td}" if d6 else f"{d4}:{ud or td}"
        got[int(f)] = (src, dst, cseq)
    for m in exp["sip"]:  # the last message of each frame (occurrence=l)
        last = [x for x in exp["sip"] if x["frame"] == m["frame"]][-1]
        assert got[m["frame"]] == (last["src"], last["dst"], last["cseq"]), m["frame"]


# --------------------------------------------------------------------------- RTP / RTCP

STREAM_RE = re.compile(
    r"^\s*(?P<start>[\d.]+)\s+(?P<end>[\d.]+)\s+(?P<src>\S+)\s+(?P<sport>\d+)\s+(?P<dst>\S+)\s+(?P<dport>\d+)\s+"
    r"(?P<ssrc>0x[0-9A-Fa-f]+)\s+(?P<payload>.+?)\s+(?P<pkts>\d+)\s+(?P<lost>-?\d+)\s+\((?P<pct>[^)]*)\)\s+"
    r"(?P<min_d>[\d.]+)\s+(?P<mean_d>[\d.]+)\s+(?P<max_d>[\d.]+)\s+(?P<min_j>[\d.]+)\s+(?P<mean_j>[\d.]+)\s+(?P<max_j>[\d.]+)\s*(?P<problem>X?)\s*$"
)


def tshark_rtp_streams(path: Path, exp: dict) -> dict[tuple, dict]:
    out = run_tshark(path, *opts(exp), "-q", "-o", "rtp.heuristic_rtp:TRUE", "-z", "rtp,streams").stdout
    streams = {}
    for ln in out.splitlines():
        m = STREAM_RE.match(ln)
        if m:
            key = (m["src"], int(m["sport"]), m["dst"], int(m["dport"]), int(m["ssrc"], 16))
            streams[key] = m.groupdict()
    return streams


@needs_tshark
@pytest.mark.parametrize("name", GOOD)
def test_rtp_streams(outdir, name):
    exp = build(name)[1]
    got = tshark_rtp_streams(outdir / exp["file"], exp)
    want = {(s["src_ip"], s["src_port"], s["dst_ip"], s["dst_port"], s["ssrc"]): s for s in exp["rtp_streams"]}
    assert set(got) == set(want)
    for key, s in want.items():
        g = got[key]
        assert int(g["pkts"]) == s["packets"], key
        assert int(g["lost"]) == s["lost"], key
        assert (g["problem"] == "X") == (s["seq_errors"] > 0), key
        ws = s["wireshark_4_0"]
        for col, field in [("min_d", "min_delta_ms"), ("mean_d", "mean_delta_ms"), ("max_d", "max_delta_ms"),
                           ("min_j", "min_jitter_ms"), ("mean_j", "mean_jitter_ms"), ("max_j", "max_jitter_ms")]:
            assert float(g[col]) == pytest.approx(ws[field], abs=0.0015), (key, field)


@needs_tshark
@pytest.mark.parametrize("name", GOOD)
def test_rtp_packets_and_rtcp(outdir, name):
    exp = build(name)[1]
    path = outdir / exp["file"]
    rtp = tshark_lines(path, *opts(exp), "-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp", "-T", "fields", "-e", "frame.number", "-e", "rtp.seq")
    want = sorted((f, s["ssrc"]) for s in exp["rtp_streams"] for f in [s["first_frame"], s["last_frame"]])
    assert len(rtp) == exp["rtp_packets"]
    frames = {int(ln.split("\t")[0]) for ln in rtp}
    assert all(f in frames for f, _ in want)
    rtcp = tshark_lines(path, *opts(exp), "-Y", "rtcp", "-T", "fields", "-e", "frame.number", "-e", "rtcp.senderssrc", "-e", "rtcp.pt")
    assert [int(ln.split("\t")[0]) for ln in rtcp] == [r["frame"] for r in exp["rtcp"]]
    for ln, r in zip(rtcp, exp["rtcp"]):
        _, ssrc, pts = ln.split("\t")
        assert int(ssrc.split(",")[0], 16) == r["ssrc"]
        assert [{"200": "SR", "201": "RR", "202": "SDES"}[p] for p in pts.split(",")] == r["types"]


# --------------------------------------------------------------------------- frames, time, encapsulation


@needs_tshark
@pytest.mark.parametrize("name", GOOD)
def test_frames_and_timestamps(outdir, name):
    exp = build(name)[1]
    lines = tshark_lines(outdir / exp["file"], "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch", "-e", "frame.interface_id")
    assert len(lines) == exp["frames"]
    if not lines:
        return
    stamps = [ln.split("\t")[1] for ln in lines]

    def ns(text: str) -> int | None:
        if not text:
            return None
        sec, frac = text.split(".")
        return int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])

    got = [ns(t) for t in stamps]
    assert got[0] == exp["first_ts_ns"]
    assert max(t for t in got if t is not None) == exp["last_ts_ns"]
    for m in exp["sip"]:
        assert got[m["frame"] - 1] == m["ts_ns"], m
    if exp["format"] == "pcapng":
        ifaces = [ln.split("\t")[2] for ln in lines]
        assert {k: ifaces.count(k) for k in set(ifaces)} == exp["frame_interfaces"]
        assert got[exp["spb_frame"] - 1] is None  # Simple Packet Block: no timestamp


# The protocol chain tshark must show in every frame (frame.protocols substring).
PROTOCOLS = {
    "ether": "eth:ethertype:ip",
    "vlan": "eth:ethertype:vlan:ethertype:ip",
    "qinq": "eth:ethertype:ieee8021ad:ethertype:vlan:ethertype:ip",  # outer 0x88a8 tag is "ieee8021ad"
    "sll": "sll:ethertype:ip",
    "sll2": "sll:ethertype:ip",
    "null": "null:ip",
    "raw": "raw:ip",
    "ipip": "eth:ethertype:ip:ip",
    "gre": "eth:ethertype:ip:gre:ip",
    "vxlan": "eth:ethertype:ip:udp:vxlan:eth:ethertype:ip",
    "gtpu": "eth:ethertype:ip:udp:gtp:ip",
}


@needs_tshark
@pytest.mark.parametrize("name", [n for n in GOOD if build(n)[1].get("encapsulation")])
def test_encapsulation(outdir, name):
    exp = build(name)[1]
    protos = tshark_lines(outdir / exp["file"], "-T", "fields", "-e", "frame.protocols", "-e", "sll.pkttype")
    chain = PROTOCOLS[exp["encapsulation"]]
    if exp["encapsulation"] == "ether" and exp["sip"] and exp["sip"][0]["src"].startswith("["):
        chain = "eth:ethertype:ipv6"
    assert all(p.split("\t")[0].startswith(chain) for p in protos), (chain, protos[:3])


# Header fields the construction sets, as tshark prints them: scenario -> field -> {value: frames}.
HEADER_FIELDS = {
    "vlan_call": {"vlan.id": {"100": 511}},
    "qinq_call": {"ieee8021ad.id": {"200": 511}, "vlan.id": {"100": 511}},
    "sll_call": {"sll.pkttype": {"4": 255, "0": 256}},  # Alice's packets are "outgoing"
    "sll2_call": {"sll.pkttype": {"4": 255, "0": 256}, "sll.ifindex": {"3": 511}},
    "null_loopback_call": {"null.family": {"2": 511}},
    "null_loopback_big_endian": {"null.family": {"2": 511}},
    "tunnel_gre": {"gre.proto": {"0x0800": 27}},
    "tunnel_vxlan": {"vxlan.vni": {"5001": 27}},
    "tunnel_gtpu": {"gtp.teid": {"0x00001001": 13, "0x00002002": 14}},
}


@needs_tshark
@pytest.mark.parametrize("name", list(HEADER_FIELDS))
def test_header_fields(outdir, name):
    exp = build(name)[1]
    for field, want in HEADER_FIELDS[name].items():
        values = tshark_lines(outdir / exp["file"], "-T", "fields", "-e", field)
        assert {v: values.count(v) for v in set(values)} == want, field


@needs_tshark
@pytest.mark.parametrize("name", ["pcapng_two_interfaces", "pcapng_big_endian", "gzip_pcapng"])
def test_pcapng_blocks(outdir, name):
    """The EPB comment is seen; the unknown block, SPB and ISBs are read without complaint."""
    exp = build(name)[1]
    path = outdir / exp["file"]
    comments = tshark_lines(path, "-Y", "frame.comment", "-T", "fields", "-e", "frame.number", "-e", "frame.comment")
    assert comments == ["1\tINVITE with SDP offer (flowviz synth)"]
    proc = run_tshark(path, "-T", "fields", "-e", "frame.number")
    assert [ln for ln in proc.stderr.splitlines() if "Running as user" not in ln] == []
    spb = tshark_lines(path, "-Y", f"frame.number == {exp['spb_frame']}", "-T", "fields", "-e", "sip.Method", "-e", "frame.interface_id")
    assert spb == ["OPTIONS\t0"]


@needs_tshark
@pytest.mark.parametrize("name", GOOD)
def test_checksums_valid(outdir, name):
    """IPv4 header, UDP and TCP checksums are all correct (tshark validates them when asked)."""
    exp = build(name)[1]
    bad = tshark_lines(
        outdir / exp["file"], *opts(exp),
        "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
        "-Y", "ip.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\"",
    )
    assert bad == []
    if exp["frames"]:
        good = tshark_lines(
            outdir / exp["file"], *opts(exp), "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
            "-Y", "udp.checksum.status == \"Good\" || tcp.checksum.status == \"Good\"",
        )
        assert good, "checksum validation did not run"


@needs_tshark
@pytest.mark.parametrize("name", ["sip_tcp_coalesced_split", "ipv4_fragmented_sip"])
def test_reassembly_frames(outdir, name):
    """Messages spread over several frames: every earlier frame points at the completing one."""
    exp = build(name)[1]
    # two passes (-2): in one pass tshark cannot know, at frame 4, where it will be reassembled
    lines = tshark_lines(outdir / exp["file"], "-2", "-T", "fields", "-e", "frame.number", "-e", "tcp.reassembled_in", "-e", "ip.reassembled_in")
    reassembled_in = {}
    for ln in lines:
        f, tcp_in, ip_in = ln.split("\t")
        if tcp_in or ip_in:
            reassembled_in[int(f)] = int(tcp_in or ip_in)
    multi = [m for m in exp["sip"] if len(m["frames"]) > 1]
    assert multi
    want = {f: m["frame"] for m in multi for f in m["frames"] if f != m["frame"]}
    assert {f: t for f, t in reassembled_in.items() if f != t} == want


# --------------------------------------------------------------------------- bad inputs


@needs_tshark
@pytest.mark.parametrize("name", BAD)
def test_bad_inputs(outdir, name):
    exp = build(name)[1]
    proc = run_tshark(outdir / exp["file"], "-T", "fields", "-e", "frame.number", check=False)
    frames = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(frames) == exp["whole_records"]
    if exp["error"] == "empty":
        # tshark 4.0 silently treats a 0-byte file as an empty capture (exit 0, no
        # message); flowviz should still tell the user the file is empty.
        assert proc.returncode == 0
    elif exp["error"] == "not_a_capture":
        assert proc.returncode == 2 and "understands" in proc.stderr
    elif exp["error"] == "truncated":
        assert proc.returncode == 2 and "cut short in the middle of a packet" in proc.stderr
    elif exp["error"] == "impossible_length":
        assert proc.returncode == 2 and "damaged or corrupt" in proc.stderr and "2147483647-byte packet" in proc.stderr
    content = exp.get("content_of_whole_records")
    if content:
        sip = tshark_lines(outdir / exp["file"], "-Y", "sip", "-T", "fields", "-e", "frame.number", check=False)
        assert [int(f) for f in sip] == [m["frame"] for m in content["sip"]]

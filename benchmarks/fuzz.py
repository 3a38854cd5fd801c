"""Fuzzing harness (issue 19 Deliver 2): mutants of the bundled and corpus captures through the CLI.

    .venv/bin/python benchmarks/fuzz.py --minutes 30 --seed 1 --markdown fuzz.md   # `make fuzz`
    .venv/bin/python benchmarks/fuzz.py --count 12 --seed 7 --sources lab,synth    # a short run
    .venv/bin/python benchmarks/fuzz.py --seed 1 --regenerate 417 --out /tmp/m     # one mutant again

Seeds: sample_pcaps/lab, sample_pcaps/synth and the corpus ($FLOWVIZ_CORPUS_DIR, default
/work/shared/pcaps; skipped when absent), every capture file in them, sorted by path. Mutant number I
of seed S is built from random.Random(f"{S}:{I}") and seed file I modulo the number of seed files, so
it is the same on every run with the same seed files whatever --jobs, --minutes or --count (listed in
the report: the corpus changing changes the numbering).

Mutations (one to three per mutant, then sometimes gzip): random bit flips at a ratio (zzuf-like),
truncation at a random offset, records shuffled / dropped / duplicated on pcap or pcapng record
boundaries, targeted header mutations (pcap/pcapng length fields, link types, pcapng if_tsresol and
if_tsoffset options, the IPv4 total length, the UDP length, SIP Content-Length, the RTP version and CSRC
count), and the result wrapped in gzip (sometimes cut short).

Each mutant goes through `info`, `calls`, `streams`, `diagnose`, and for about a third of them
`ladder --format txt` and `export --json` of the first call: each `python -m flowviz --no-cache ...` in
its own session with a timeout, TMPDIR an empty folder of its own, FLOWVIZ_CACHE_DIR a temporary
folder, and a tag in its environment (FLOWVIZ_FUZZ_TAG) that every process it starts inherits.

Failures: an exit code other than 0/1/2, a traceback or "internal error" on stderr, a timeout, peak RSS
(os.wait4's rusage, the command and the children it waited for) over --rss-mb, a process with the
command's tag still alive after it ended (tshark, dumpcap, chromium...: whatever it started), or a file
left in its TMPDIR. Each failing mutant is saved in --out with the command, its stderr and how to
regenerate it. --markdown FILE writes the summary.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import random
import re
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = "/work/shared/pcaps"
NOT_CAPTURES = {".txt", ".md", ".json", ".csv", ".html", ".svg", ".py", ".sh"}
INTERESTING32 = [0, 1, 2, 3, 4, 7, 8, 12, 15, 16, 20, 24, 28, 32, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x4000,
                 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x40000, 0x40001, 0x40400, 0x7FFFFFFF, 0x80000000,
                 0xFFFFFFF0, 0xFFFFFFFC, 0xFFFFFFFF]
INTERESTING16 = [0, 1, 7, 8, 20, 28, 0x7F, 0x80, 0xFF, 0x5DC, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF]
LINKTYPES = [0, 1, 9, 12, 101, 105, 113, 127, 147, 228, 229, 252, 276, 0xFFFF, 0xFFFFFFFF]
BASE_COMMANDS = ("info", "calls", "streams", "diagnose")


# ----------------------------------------------------------------------------------------------- seeds

def seed_files(sources: list[str]) -> list[Path]:
    dirs = []
    if "lab" in sources:
        dirs.append(REPO / "sample_pcaps" / "lab")
    if "synth" in sources:
        dirs.append(REPO / "sample_pcaps" / "synth")
    if "corpus" in sources:
        corpus = Path(os.environ.get("FLOWVIZ_CORPUS_DIR", DEFAULT_CORPUS))
        if corpus.is_dir():
            dirs.append(corpus)
        else:
            print(f"fuzz: corpus {corpus} not found; skipped", file=sys.stderr)
    files = []
    for d in dirs:
        for p in sorted(d.rglob("*")):
            if p.is_file() and p.suffix.lower() not in NOT_CAPTURES and p.name != "README":
                files.append(p)
    return files


# -------------------------------------------------------------------------------------------- records

@dataclass
class Layout:
    kind: str                      # "pcap", "pcapng" or "raw"
    endian: str = "<"
    header: tuple[int, int] = (0, 0)   # pcap global header
    records: list[tuple[int, int, int]] = field(default_factory=list)  # (offset, total length, type)


def layout(data: bytes) -> Layout:
    """Best-effort record boundaries; stops at the first length that does not fit."""
    if len(data) >= 24 and data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        lay = Layout("pcap", e, (0, 24))
        off = 24
        while off + 16 <= len(data):
            incl = struct.unpack_from(e + "I", data, off + 8)[0]
            if off + 16 + incl > len(data):
                break
            lay.records.append((off, 16 + incl, 0))
            off += 16 + incl
        return lay
    if len(data) >= 28 and data[:4] == b"\x0a\x0d\x0d\x0a":
        lay = Layout("pcapng")
        off = 0
        e = "<"
        while off + 12 <= len(data):
            if data[off:off + 4] == b"\x0a\x0d\x0d\x0a":
                e = "<" if data[off + 8:off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            btype, blen = struct.unpack_from(e + "II", data, off)
            if blen < 12 or blen % 4 or off + blen > len(data):
                break
            lay.records.append((off, blen, btype))
            off += blen
        lay.endian = e
        return lay
    return Layout("raw")


def _put(data: bytearray, off: int, fmt: str, value: int) -> None:
    if 0 <= off and off + struct.calcsize(fmt) <= len(data):
        struct.pack_into(fmt, data, off, value & ((1 << (8 * struct.calcsize(fmt))) - 1))


# ------------------------------------------------------------------------------------------ mutations

def bit_flips(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    ratio = rng.choice([0.0001, 0.0004, 0.001, 0.004, 0.01, 0.04])
    out = bytearray(data)
    n = max(1, int(len(out) * 8 * ratio))
    for _ in range(n):
        pos = rng.randrange(len(out) * 8)
        out[pos // 8] ^= 1 << (pos % 8)
    return bytes(out), f"bitflip(ratio={ratio},bits={n})"


def truncate(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    lay = layout(data)
    if lay.records and rng.random() < 0.4:  # near a record boundary, where readers decide lengths
        off = rng.choice(lay.records)[0] + rng.choice([0, 1, 4, 8, 12, 15, 16, 17, 20, 24, 28])
    else:
        off = rng.randrange(len(data) + 1)
    off = min(off, len(data))
    return data[:off], f"truncate({off}/{len(data)})"


def shuffle_records(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    lay = layout(data)
    if len(lay.records) < 2:
        return bit_flips(rng, data)
    head = data[:lay.header[1]] if lay.kind == "pcap" else b""
    recs = [data[o:o + n] for o, n, _ in lay.records]
    end = lay.records[-1][0] + lay.records[-1][1]
    tail = data[end:]
    how = rng.choice(["shuffle", "swap", "drop", "duplicate", "reverse"])
    keep_first = lay.kind == "pcapng" and rng.random() < 0.7  # the SHB first, mostly
    first, rest = (recs[:1], recs[1:]) if keep_first else ([], recs)
    if how == "shuffle":
        rng.shuffle(rest)
    elif how == "swap" and len(rest) >= 2:
        i, j = rng.randrange(len(rest)), rng.randrange(len(rest))
        rest[i], rest[j] = rest[j], rest[i]
    elif how == "drop" and rest:
        for _ in range(rng.randint(1, max(1, len(rest) // 10))):
            if rest:
                rest.pop(rng.randrange(len(rest)))
    elif how == "duplicate" and rest:
        for _ in range(rng.randint(1, 20)):
            i = rng.randrange(len(rest))
            rest.insert(rng.randrange(len(rest) + 1), rest[i])
    else:
        rest.reverse()
    return head + b"".join(first + rest) + tail, f"records.{how}({lay.kind},{len(recs)})"


def _packet_spans(lay: Layout, data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of packet bytes in pcap records and pcapng EPB/SPB."""
    spans = []
    for off, n, btype in lay.records:
        if lay.kind == "pcap":
            spans.append((off + 16, n - 16))
        elif btype == 6 and n >= 32:
            cap = struct.unpack_from(lay.endian + "I", data, off + 20)[0]
            spans.append((off + 28, min(cap, n - 32)))
        elif btype == 3 and n >= 16:
            spans.append((off + 12, n - 16))
    return spans


def _ipv4_headers(data: bytes, spans: list[tuple[int, int]]) -> list[int]:
    found = []
    for start, n in spans:
        for rel in (14, 18, 22, 16, 20, 4, 0, 24, 44, 50):  # Ethernet, VLAN, QinQ, SLL, SLL2, null, raw, tunnels
            o = start + rel
            if rel + 20 <= n and data[o] == 0x45 and data[o + 9] in (6, 17, 47, 4, 1):
                found.append(o)
                break
    return found


def header_mutation(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    lay = layout(data)
    out = bytearray(data)
    e = lay.endian
    choices = ["ip_len", "udp_len", "content_length", "rtp"]
    if lay.kind == "pcap":
        choices += ["pcap_linktype", "pcap_snaplen", "pcap_version", "pcap_incl", "pcap_incl", "pcap_orig"]
    elif lay.kind == "pcapng":
        choices += ["ng_len", "ng_len", "ng_trailing_len", "ng_linktype", "ng_tsresol", "ng_tsresol",
                    "ng_tsoffset", "ng_tsoffset", "ng_section_len", "ng_epb_iface", "ng_epb_caplen"]
    what = rng.choice(choices)
    v32 = rng.choice(INTERESTING32) if rng.random() < 0.8 else rng.getrandbits(32)
    recs = lay.records
    if what == "pcap_linktype":
        v = rng.choice(LINKTYPES)
        _put(out, 20, e + "I", v)
        return bytes(out), f"pcap.linktype={v}"
    if what == "pcap_snaplen":
        _put(out, 16, e + "I", v32)
        return bytes(out), f"pcap.snaplen={v32}"
    if what == "pcap_version":
        v = rng.choice([0, 1, 2, 3, 0xFFFF])
        _put(out, 4 + 2 * rng.randrange(2), e + "H", v)
        return bytes(out), f"pcap.version={v}"
    if what in ("pcap_incl", "pcap_orig") and recs:
        off = rng.choice(recs)[0]
        _put(out, off + (8 if what == "pcap_incl" else 12), e + "I", v32)
        return bytes(out), f"{what}@{off}={v32}"
    if what in ("ng_len", "ng_trailing_len", "ng_section_len") and recs:
        if what == "ng_section_len":
            shbs = [r for r in recs if r[2] == 0x0A0D0D0A] or recs[:1]
            off = rng.choice(shbs)[0]
            v = rng.choice([0, 1, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 2 ** 63, 12, 100])
            _put(out, off + 16, e + "Q", v)
            return bytes(out), f"ng.section_len@{off}={v}"
        off, n, _ = rng.choice(recs)
        pos = off + 4 if what == "ng_len" else off + n - 4
        _put(out, pos, e + "I", v32)
        return bytes(out), f"{what}@{off}={v32}"
    idbs = [r for r in recs if r[2] == 1]
    if what == "ng_linktype" and idbs:
        off = rng.choice(idbs)[0]
        v = rng.choice(LINKTYPES)
        _put(out, off + 8, e + "H", v)
        return bytes(out), f"ng.idb.linktype@{off}={v}"
    if what in ("ng_tsresol", "ng_tsoffset") and idbs:
        off, n, _ = rng.choice(idbs)
        if what == "ng_tsresol":
            code, value = 9, bytes([rng.choice([0, 3, 6, 9, 19, 20, 63, 64, 65, 127, 0x80, 0x81, 0x9F, 0xBF, 0xC0, 0xFF])])
        else:
            v = rng.choice([1, -1, 2 ** 62, -(2 ** 62), 2 ** 63 - 1, -(2 ** 63), 2 ** 33, 10 ** 10, -(10 ** 10)])
            code, value = 14, struct.pack(e + "q", v)
        block = _with_option(bytes(out[off:off + n]), e, code, value)
        return bytes(out[:off]) + block + bytes(out[off + n:]), f"ng.idb.opt{code}@{off}={value.hex()}"
    epbs = [r for r in recs if r[2] == 6]
    if what == "ng_epb_iface" and epbs:
        off = rng.choice(epbs)[0]
        v = rng.choice([1, 2, 255, 65535, 65536, 0xFFFFFFFF])
        _put(out, off + 8, e + "I", v)
        return bytes(out), f"ng.epb.interface@{off}={v}"
    if what == "ng_epb_caplen" and epbs:
        off = rng.choice(epbs)[0]
        _put(out, off + 20 + 4 * rng.randrange(2), e + "I", v32)
        return bytes(out), f"ng.epb.len@{off}={v32}"
    ips = _ipv4_headers(data, _packet_spans(lay, data))
    if what == "ip_len" and ips:
        o = rng.choice(ips)
        v = rng.choice(INTERESTING16)
        _put(out, o + 2, ">H", v)
        return bytes(out), f"ipv4.total_length@{o}={v}"
    if what == "udp_len" and ips:
        udp = [o for o in ips if data[o + 9] == 17]
        if udp:
            o = rng.choice(udp)
            v = rng.choice(INTERESTING16)
            _put(out, o + 20 + 4, ">H", v)
            return bytes(out), f"udp.length@{o + 20}={v}"
    if what == "content_length":
        hits = [m for m in re.finditer(rb"(?im)^(content-length|l)[ \t]*:[ \t]*(\d*)", data)]
        if hits:
            m = rng.choice(hits)
            v = rng.choice([b"0", b"1", b"-1", b"", b"99999999", b"18446744073709551616", b"2147483648",
                            str(rng.randrange(0, 5000)).encode(), b"1e3", b"0x10"])
            a, b = m.span(2)
            return data[:a] + v + data[b:], f"sip.content_length@{a}={v.decode()}"  # lengths change: records too
    if what == "rtp" and ips:
        rtps = [o + 28 for o in ips if data[o + 9] == 17 and o + 40 <= len(data) and data[o + 28] & 0xC0 == 0x80]
        if rtps:
            o = rng.choice(rtps)
            v = rng.choice([0x00, 0x40, 0xC0, 0x8F, 0x9F, 0xAF, 0xBF, 0x81, 0x88, rng.getrandbits(8)])
            out[o] = v
            return bytes(out), f"rtp.byte0@{o}={v:#04x}"
    return bit_flips(rng, data)


def _with_option(block: bytes, e: str, code: int, value: bytes) -> bytes:
    """An IDB with option `code` set to value: replaced in place if there, else added first."""
    body = block[8:-4]
    fixed, opts = body[:8], body[8:]
    new_opt = struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)
    pos = 0
    kept = b""
    while pos + 4 <= len(opts):
        c, n = struct.unpack_from(e + "HH", opts, pos)
        step = 4 + n + (-n % 4)
        if c == 0:
            break
        if c != code:
            kept += opts[pos:pos + step]
        pos += step
    opts = new_opt + kept + struct.pack(e + "HH", 0, 0)
    total = 12 + len(fixed) + len(opts)
    return struct.pack(e + "II", 1, total) + fixed + opts + struct.pack(e + "I", total)


MUTATIONS = [(bit_flips, 3), (truncate, 2), (shuffle_records, 2), (header_mutation, 5)]


def make_mutant(seed: int, index: int, seeds: list[Path]) -> tuple[bytes, str, Path, list[str]]:
    """Mutant `index` for `seed`: (bytes, file suffix, seed file, mutations applied)."""
    rng = random.Random(f"{seed}:{index}")
    src = seeds[index % len(seeds)]
    data = src.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except Exception:
            pass
    suffix = ".pcapng" if data[:4] == b"\x0a\x0d\x0d\x0a" else ".pcap"
    applied = []
    funcs, weights = zip(*MUTATIONS)
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        if not data:
            break
        fn = rng.choices(funcs, weights)[0]
        data, label = fn(rng, data)
        applied.append(label)
    if rng.random() < 0.12:
        data = gzip.compress(data, mtime=0)
        suffix += ".gz"
        applied.append("gzip")
        if rng.random() < 0.3 and len(data) > 20:
            cut = rng.randrange(10, len(data))
            data = data[:cut]
            applied.append(f"gzip.truncate({cut})")
    return data, suffix, src, applied


# ------------------------------------------------------------------------------------------- running

@dataclass
class Outcome:
    index: int
    seed_file: str
    mutations: list[str]
    argv: list[str]
    code: int | None
    seconds: float
    rss_kb: int
    stderr: str
    problems: list[str]


def _tagged_pids(tag: str) -> list[int]:
    needle = f"FLOWVIZ_FUZZ_TAG={tag}\0".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read():
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


HELPERS = ("tshark", "dumpcap", "chromium", "chrome", "chromium-browse", "kaleido", "editcap")


def helper_orphans(exclude: set[int] = frozenset()) -> list[str]:
    """tshark/dumpcap/chromium... processes whose parent is gone (reparented to init or a subreaper):
    the `ps` comparison before and after a run, for whatever escapes the environment tag."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in exclude:
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if comm.startswith(HELPERS) and (ppid == 1 or _comm(ppid) in ("?", "systemd", "init", "tini", "dumb-init")):
            found.append(f"{entry} {comm}")
    if any(not f.endswith("chrome_crashpad") for f in found) or not _any_named("chromium"):
        return found
    return []  # Chromium's crash handler lives re-parented to init beside a running Chromium: by design


def _any_named(prefix: str) -> bool:
    return any(_comm(int(e)).startswith(prefix) for e in os.listdir("/proc") if e.isdigit())


def run_command(argv: list[str], env: dict, tmpdir: Path, out_path: Path, err_path: Path, timeout: float,
                cwd: Path) -> tuple[int | None, float, int, list[str]]:
    """Run argv in its own session; (exit code or None on timeout, seconds, peak RSS KB, leftovers)."""
    start = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
                                start_new_session=True)
    code, rss = None, 0
    delay = 0.005
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            code = os.waitstatus_to_exitcode(status)
            rss = usage.ru_maxrss
            proc.returncode = code
            break
        if time.monotonic() - start > timeout:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            rss = usage.ru_maxrss
            break
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)
    seconds = time.monotonic() - start
    leftovers = []
    tag = env["FLOWVIZ_FUZZ_TAG"]
    left = _tagged_pids(tag)
    deadline = time.monotonic() + 2.0  # a helper whose pipe just closed may need a moment
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _tagged_pids(tag)
    if left and code is not None:
        leftovers += [f"process {pid} {_comm(pid)}" for pid in left]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for p in sorted(tmpdir.rglob("*")) if tmpdir.exists() else []:
        leftovers.append(f"file {p.relative_to(tmpdir)}")
        if len(leftovers) > 20:
            leftovers.append("...")
            break
    return code, seconds, rss, leftovers


def _first_call(stdout: str) -> str | None:
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("ID ") and i + 1 < len(lines):
            word = lines[i + 1].split()
            return word[0] if word else None
    return None


class Fuzzer:
    def __init__(self, args: argparse.Namespace, seeds: list[Path]):
        self.args = args
        self.seeds = seeds
        self.python = args.python
        self.cwd = Path(args.src).resolve() if args.src else REPO
        self.work = Path(tempfile.mkdtemp(prefix="flowviz-fuzz-"))
        self.out = Path(args.out)
        self.outcomes: list[Outcome] = []
        self.mutants = 0
        self.lock = threading.Lock()
        self.rss_budget_kb = args.rss_mb * 1024

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def command(self, words: list[str], path: Path) -> list[str]:
        return [self.python, "-m", "flowviz", "--no-cache", *words]

    def run_mutant(self, index: int) -> list[Outcome]:
        rng_cmds = random.Random(f"{self.args.seed}:{index}:commands")
        data, suffix, src, applied = make_mutant(self.args.seed, index, self.seeds)
        wd = self.work / f"m{index}"
        wd.mkdir()
        path = wd / f"mutant-{index}{suffix}"
        path.write_bytes(data)
        cache = wd / "cache"
        cache.mkdir()
        results = []
        names = self.args.commands.split(",")
        if self.args.rotate:  # one command per mutant, in turn: a short run that still meets each of them
            names = [names[index % len(names)]]
        plan = [[c, str(path)] for c in names]
        extra = rng_cmds.random() < 0.35 and not self.args.no_extra
        k = 0
        while k < len(plan):
            words = plan[k]
            k += 1
            tmp = wd / f"tmp{k}"
            tmp.mkdir()
            env = dict(os.environ, TMPDIR=str(tmp), FLOWVIZ_CACHE_DIR=str(cache),
                       FLOWVIZ_FUZZ_TAG=f"{os.getpid()}-{index}-{k}")
            env.pop("FLOWVIZ_DEBUG", None)
            if self.args.src:
                env["PYTHONPATH"] = str(self.cwd)
            argv = self.command(words, path)
            out_p, err_p = wd / f"out{k}", wd / f"err{k}"
            code, secs, rss, leftovers = run_command(argv, env, tmp, out_p, err_p, self.args.timeout, self.cwd)
            stderr = err_p.read_text("utf-8", "replace")
            problems = []
            if code is None:
                problems.append("timeout")
            elif code not in (0, 1, 2):
                problems.append(f"exit {code}")
            if "Traceback" in stderr:
                problems.append("traceback")
            if "internal error" in stderr:
                problems.append("internal error")
            if rss > self.rss_budget_kb:
                problems.append(f"rss {rss // 1024} MB")
            problems += [f"leftover {x}" for x in leftovers]
            results.append(Outcome(index, str(src), applied, argv, code, secs, rss, stderr[-4000:], problems))
            if words[0] == "calls" and extra and code == 0:
                call = _first_call(out_p.read_text("utf-8", "replace"))
                if call:
                    plan.append(["ladder", "--format", "txt", "--call", call, str(path)])
                    plan.append(["export", "--call", call, "--json", str(wd / f"export-{k}.json"), str(path)])
            shutil.rmtree(tmp, ignore_errors=True)
        if any(o.problems for o in results):
            self.save(index, data, path.name, results)
        shutil.rmtree(wd, ignore_errors=True)
        return results

    def save(self, index: int, data: bytes, name: str, results: list[Outcome]) -> None:
        dest = self.out / f"mutant-{index}"
        dest.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
        lines = [f"# seed {self.args.seed}, mutant {index}, from {results[0].seed_file}",
                 f"# mutations: {'; '.join(results[0].mutations)}",
                 f"# regenerate: {self.python} benchmarks/fuzz.py --seed {self.args.seed} --regenerate {index} "
                 f"--out DIR{self._sources_flag()}", ""]
        for o in results:
            if o.problems:
                cmd = " ".join(shlex.quote(a) for a in o.argv).replace(str(self.work / f"m{index}"), str(dest))
                lines += [f"# {', '.join(o.problems)} (exit {o.code}, {o.seconds:.1f} s, {o.rss_kb // 1024} MB)",
                          cmd, "# stderr:", *("#   " + s for s in o.stderr.splitlines()[-30:]), ""]
        (dest / "commands.txt").write_text("\n".join(lines))

    def _sources_flag(self) -> str:
        return f" --sources {self.args.sources}" if self.args.sources != "lab,synth,corpus" else ""

    def run(self) -> None:
        before = {int(e) for e in os.listdir("/proc") if e.isdigit()}
        start = time.monotonic()
        budget = self.args.minutes * 60 if self.args.minutes else None
        count = self.args.count
        next_index = [self.args.start]
        stop_at = self.args.start + count if count else None

        def worker():
            while True:
                with self.lock:
                    i = next_index[0]
                    if stop_at is not None and i >= stop_at:
                        return
                    if budget is not None and time.monotonic() - start > budget:
                        return
                    next_index[0] += 1
                res = self.run_mutant(i)
                with self.lock:
                    self.outcomes += res
                    self.mutants += 1
                    if self.args.verbose or any(o.problems for o in res):
                        bad = [f"{o.argv[4]}: {', '.join(o.problems)}" for o in res if o.problems]
                        print(f"mutant {i} ({Path(res[0].seed_file).name}; {'; '.join(res[0].mutations)}): "
                              f"{'; '.join(bad) or 'ok'}", file=sys.stderr, flush=True)

        threads = [threading.Thread(target=worker) for _ in range(self.args.jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.elapsed = time.monotonic() - start
        # Not counted as failures: on a shared machine other programs may leave such orphans too.
        self.orphans = helper_orphans(before)

    def summary(self) -> dict:
        codes = collections.Counter("timeout" if o.code is None else str(o.code) for o in self.outcomes)
        by_cmd = collections.Counter(o.argv[4] for o in self.outcomes)
        classes: dict[str, list[str]] = collections.defaultdict(list)
        for o in self.outcomes:
            for p in o.problems:
                key = re.sub(r"\d+", "N", p) if p.startswith(("leftover", "rss")) else p
                if o.problems and ("traceback" in p or "internal" in p):
                    last = [s for s in o.stderr.splitlines() if s.strip()]
                    key += ": " + (last[-1][:160] if last else "")
                classes[key].append(f"mutant {o.index} {o.argv[4]}")
        peak = max(self.outcomes, key=lambda o: o.rss_kb) if self.outcomes else None
        slow = max(self.outcomes, key=lambda o: o.seconds) if self.outcomes else None
        return {
            "seed": self.args.seed, "mutants": self.mutants, "commands": len(self.outcomes),
            "seconds": round(self.elapsed, 1), "seed_files": len(self.seeds),
            "exit_codes": dict(sorted(codes.items())), "commands_by_name": dict(sorted(by_cmd.items())),
            "tracebacks": sum("traceback" in o.problems or "internal error" in o.problems for o in self.outcomes),
            "bad_exit_codes": sum(o.code is not None and o.code not in (0, 1, 2) for o in self.outcomes),
            "timeouts": sum(o.code is None for o in self.outcomes),
            "leftover_processes": sum(p.startswith("leftover process") for o in self.outcomes for p in o.problems),
            "leftover_files": sum(p.startswith("leftover file") for o in self.outcomes for p in o.problems),
            "rss_over_budget": sum(any(p.startswith("rss") for p in o.problems) for o in self.outcomes),
            "peak_rss_mb": round(peak.rss_kb / 1024, 1) if peak else 0,
            "peak_rss_at": f"mutant {peak.index} ({Path(peak.seed_file).name}; {'; '.join(peak.mutations)}) {peak.argv[4]}" if peak else "",
            "slowest_s": round(slow.seconds, 1) if slow else 0,
            "slowest_at": f"mutant {slow.index} ({Path(slow.seed_file).name}) {slow.argv[4]}" if slow else "",
            "unattributed_orphans": getattr(self, "orphans", []),
            "failing_mutants": sorted({o.index for o in self.outcomes if o.problems}),
            "classes": {k: v[:10] + ([f"... {len(v) - 10} more"] if len(v) > 10 else []) for k, v in classes.items()},
        }

    def markdown(self, s: dict, argv: list[str]) -> str:
        lines = [f"Command: `{' '.join(argv)}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                 f"{s['seconds']:.0f} s, seed {s['seed']}, {s['seed_files']} seed files.", "",
                 "| measure | value |", "|---|---|",
                 f"| mutants | {s['mutants']} |", f"| commands | {s['commands']} ({', '.join(f'{k} {v}' for k, v in s['commands_by_name'].items())}) |",
                 f"| exit codes | {', '.join(f'{k}: {v}' for k, v in s['exit_codes'].items())} |",
                 f"| tracebacks / internal errors | {s['tracebacks']} |",
                 f"| exit codes other than 0/1/2 | {s['bad_exit_codes']} |",
                 f"| timeouts ({self.args.timeout:.0f} s) | {s['timeouts']} |",
                 f"| leftover processes | {s['leftover_processes']} |",
                 f"| leftover files in TMPDIR | {s['leftover_files']} |",
                 f"| helper processes orphaned during the run, any origin (ps before/after) | "
                 f"{len(s['unattributed_orphans'])}{': ' + ', '.join(s['unattributed_orphans'][:5]) if s['unattributed_orphans'] else ''} |",
                 f"| peak RSS, max | {s['peak_rss_mb']} MB: {s['peak_rss_at']} |",
                 f"| RSS over {self.args.rss_mb} MB | {s['rss_over_budget']} |",
                 f"| slowest command | {s['slowest_s']} s: {s['slowest_at']} |", ""]
        if s["classes"]:
            lines += ["Failure classes:", ""]
            for k, v in s["classes"].items():
                lines.append(f"- {k}: {', '.join(v)}")
        else:
            lines.append("No failures.")
        return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=None, help="time budget (no new mutant after it)")
    ap.add_argument("--count", type=int, default=None, help="number of mutants (with --minutes: whichever first)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="first mutant index")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per command")
    ap.add_argument("--rss-mb", type=int, default=600, help="peak RSS budget per command")
    ap.add_argument("--sources", default="lab,synth,corpus", help="comma list of lab, synth, corpus")
    ap.add_argument("--commands", default=",".join(BASE_COMMANDS), help="commands run on every mutant")
    ap.add_argument("--rotate", action="store_true", help="one of --commands per mutant, in turn")
    ap.add_argument("--no-extra", action="store_true", help="never add ladder/export of the first call")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "fuzz"), help="folder for failing mutants")
    ap.add_argument("--markdown", default=None, help="write the summary here")
    ap.add_argument("--json", default=None, help="write the summary as JSON here")
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs flowviz")
    ap.add_argument("--src", default=None, help="run the flowviz of this checkout (PYTHONPATH, cwd)")
    ap.add_argument("--regenerate", type=int, default=None, metavar="INDEX", help="write mutant INDEX into --out and stop")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    seeds = seed_files(args.sources.split(","))
    if not seeds:
        print("fuzz: no seed captures", file=sys.stderr)
        return 2
    if args.regenerate is not None:
        data, suffix, src, applied = make_mutant(args.seed, args.regenerate, seeds)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        dest = Path(args.out) / f"mutant-{args.regenerate}{suffix}"
        dest.write_bytes(data)
        print(f"{dest} ({len(data)} bytes) from {src}: {'; '.join(applied)}")
        return 0
    if args.minutes is None and args.count is None:
        args.minutes = 5
    fz = Fuzzer(args, seeds)
    try:
        fz.run()
    finally:
        fz.close()
    s = fz.summary()
    md = fz.markdown(s, ["benchmarks/fuzz.py", *(argv if argv is not None else sys.argv[1:])])
    print(md)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(md)
    if args.json:
        Path(args.json).write_text(json.dumps(s, indent=1))
    return 1 if s["failing_mutants"] else 0


if __name__ == "__main__":
    sys.exit(main())

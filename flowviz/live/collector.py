"""A HEP collector: HEP packets received on UDP and TCP at ADDR:PORT, each written to a pcapng as the
UDP datagram a capture at the collector would have seen (Ethernet, IPv4, UDP from the sender to
ADDR:PORT, HEP payload), so that flowviz's HEP decoder (flowviz/ingest/hep.py) reads them as from any
capture. Over TCP the HEP packets are a byte stream cut by HEPv3's total length (bytes 4-5)."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path

from flowviz.errors import FlowvizError
from flowviz.live import pcapng
from flowviz.live.saving import keep

MAX_DATAGRAM = 65_535 - 20 - 8  # what one IPv4 UDP datagram carries
ETHERNET = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"  # locally administered MACs, IPv4


def parse_address(text: str) -> tuple[str, int]:
    """ADDR:PORT (IPv4) as given to --hep-listen."""
    host, _, port = text.rpartition(":")
    try:
        address = ipaddress.IPv4Address(host)
        number = int(port)
    except ValueError:
        raise FlowvizError(f"--hep-listen {text}: give an IPv4 address and a port, e.g. 127.0.0.1:9060") from None
    if not 0 < number < 65536:
        raise FlowvizError(f"--hep-listen {text}: the port must be 1-65535")
    return str(address), number


def datagram(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """Ethernet, IPv4 (header checksum per RFC 791) and UDP (checksum 0: none, RFC 768) around payload."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                       socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    total = sum(struct.unpack("!10H", head))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    head = head[:10] + struct.pack("!H", ~total & 0xFFFF) + head[12:]
    return ETHERNET + head + udp


class Collector:
    """Listening on UDP and TCP at (host, port) until stop(); received packets counted in `packets`."""

    def __init__(self, host: str, port: int):
        self.address = (host, port)
        self.folder = Path(tempfile.mkdtemp(prefix="flowviz-hep-"))
        self.path = self.folder / "hep.pcapng"
        self._file = open(self.path, "wb")
        self._file.write(pcapng.header())
        self._file.flush()
        self._whole = self._file.tell()  # bytes of whole blocks written: what a snapshot may copy
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.packets = self.dropped = 0
        try:
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._udp.bind(self.address)
            self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._tcp.bind(self.address)
            self._tcp.listen(16)
        except OSError as exc:
            self._close_all()
            shutil.rmtree(self.folder, ignore_errors=True)
            raise FlowvizError(f"cannot listen on {host}:{port}: {exc.strerror} "
                               "(is another collector there?)") from None
        for sock in (self._udp, self._tcp):
            sock.settimeout(0.2)  # the threads look at the stop flag this often
        self._threads = [threading.Thread(target=self._receive_udp, daemon=True),
                         threading.Thread(target=self._accept_tcp, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _write(self, sender: tuple[str, int], payload: bytes) -> None:
        if len(payload) > MAX_DATAGRAM:
            self.dropped += 1
            return
        block = pcapng.packet(time.time(), datagram(sender[:2], self.address, payload))
        with self._lock:
            if self._file.closed:
                return
            self._file.write(block)
            self._file.flush()
            self._whole = self._file.tell()
            self.packets += 1

    def _receive_udp(self) -> None:
        while not self._stopping.is_set():
            try:
                data, sender = self._udp.recvfrom(65_535)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self._write(sender, data)

    def _accept_tcp(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, sender = self._tcp.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            conn.settimeout(0.2)
            thread = threading.Thread(target=self._receive_stream, args=(conn, sender), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _receive_stream(self, conn: socket.socket, sender: tuple[str, int]) -> None:
        buffer = b""
        with conn:
            while not self._stopping.is_set():
                try:
                    data = conn.recv(65_536)
                except (TimeoutError, socket.timeout):
                    continue
                except OSError:
                    return
                if not data:
                    return
                buffer += data
                while len(buffer) >= 6:
                    if not buffer.startswith(b"HEP3"):  # not HEPv3 (or out of step): skip to the next "HEP3"
                        start = buffer.find(b"HEP3", 1)
                        self.dropped += 1
                        buffer = buffer[start:] if start > 0 else buffer[-3:]
                        continue
                    length = struct.unpack_from("!H", buffer, 4)[0]
                    if length < 6:
                        buffer = buffer[4:]
                        continue
                    if len(buffer) < length:
                        break
                    self._write(sender, buffer[:length])
                    buffer = buffer[length:]

    def size(self) -> int:
        """Bytes of whole blocks written: changes as packets arrive."""
        with self._lock:
            return self._whole

    def snapshot(self) -> Path | None:
        """The capture so far, whole blocks only, as a file of its own (the collector keeps writing)."""
        with self._lock:
            whole = self._whole
        copy = self.folder / "snapshot.pcapng"
        with open(self.path, "rb") as source, open(copy, "wb") as target:
            target.write(source.read(whole))
        return copy

    @property
    def running(self) -> bool:
        return not self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(2)
        self._close_all()

    def _close_all(self) -> None:
        for name in ("_udp", "_tcp"):
            sock = getattr(self, name, None)
            if sock is not None:
                sock.close()
        with self._lock:
            self._file.close()

    def save(self, output: Path) -> Path:
        self.stop()
        try:
            return keep([self.path], output)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

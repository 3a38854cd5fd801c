"""TLS on SIP ports: which connections open there (the packet kernel marks each ClientHello), the tshark
options that decode their application data as SIP, and whether tshark could decrypt them.

flowviz decrypts nothing itself: tshark does, with the key log given by --tls-keylog (Settings.tls_keylog)
or with the keys a pcapng carries in Decryption Secrets Blocks. A connection counts as decrypted when
tshark gave at least one SIP message from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from flowviz.ingest import kernel
from flowviz.ingest.capture_file import Packets
from flowviz.settings import Settings

SIP_TLS_PORT = 5061  # tshark decodes TLS application data on it as SIP by default


@dataclass
class TlsConnections:
    flows: np.ndarray  # uint64: the conversations that opened with a ClientHello on a SIP port
    server_ports: list[int]  # the port each ClientHello went to
    hello_frames: list[int]  # 1-based frame of each ClientHello
    frame_flow: dict[int, int]  # 1-based frame -> flow, for the SIP candidates of these conversations
    secrets_blocks: int  # Decryption Secrets Blocks in the capture
    on_sip_port: np.ndarray  # bool per connection

    def decode_as(self) -> list[str]:
        """tshark -d arguments: TLS application data on a SIP port other than 5061 is SIP."""
        ports = {p for p, sip in zip(self.server_ports, self.on_sip_port.tolist()) if sip}
        return [f"tls.port=={p},sip" for p in sorted(ports) if p != SIP_TLS_PORT]


def keyed_rows(packets: Packets, settings: Settings) -> np.ndarray:
    """With keys (--tls-keylog, or Decryption Secrets Blocks in the capture): every packet of every TLS
    connection, on any port, for tshark to decrypt (SIP over secure WebSocket runs on 443 or any HTTPS
    port: tshark finds HTTP, the WebSocket and SIP inside by itself). Without keys: none."""
    t = packets.table
    if not (settings.tls_keylog or packets.secrets):
        return np.zeros(0, dtype=np.int64)
    hellos = kernel.prefix_rows(t, kernel.TLS_HELLO_PREFIX, kernel.TLS_HELLO_PREFIX + 1, False)
    if not len(hellos):
        return hellos
    return np.flatnonzero((t["ip_proto"] == 6) & np.isin(t["flow"], np.unique(t["flow"][hellos])))


def connections(packets: Packets, settings: Settings, candidate_rows: np.ndarray) -> TlsConnections:
    """TLS connections whose ClientHello went to (or came from) a SIP port; with keys, every TLS
    connection (those off SIP ports are counted only when they give SIP, see summary())."""
    t = packets.table
    hellos = kernel.prefix_rows(t, kernel.TLS_HELLO_PREFIX, kernel.TLS_HELLO_PREFIX + 1, False)
    ports = set(settings.sip_ports) | {SIP_TLS_PORT}
    keyed = bool(settings.tls_keylog or packets.secrets)
    keep = [r for r in hellos.tolist() if keyed or int(t["dport"][r]) in ports or int(t["sport"][r]) in ports]
    flows, first = np.unique(t["flow"][keep], return_index=True) if keep else (np.zeros(0, np.uint64), [])
    rows = [keep[i] for i in first]
    in_tls = candidate_rows[np.isin(t["flow"][candidate_rows], flows)] if len(flows) else candidate_rows[:0]
    on_sip_port = [int(t["dport"][r]) in ports or int(t["sport"][r]) in ports for r in rows]
    return TlsConnections(flows, [int(t["dport"][r]) for r in rows], [r + 1 for r in rows],
                          dict(zip((in_tls + 1).tolist(), t["flow"][in_tls].tolist())), len(packets.secrets),
                          np.array(on_sip_port, dtype=bool))


def summary(conns: TlsConnections, sip: pl.DataFrame, settings: Settings, shown: str) -> tuple[dict, list[str]]:
    """(info["tls"], warnings): connections decrypted (gave SIP) and not, and what to do about the others."""
    flows_with_sip = set()
    if not sip.is_empty() and conns.frame_flow:
        for frame in sip.filter(pl.col("transport").is_in(["tls", "wss"]))["frame"].to_list():
            if frame in conns.frame_flow:
                flows_with_sip.add(conns.frame_flow[frame])
    # connections off SIP ports (looked into only with keys) count when they gave SIP: HTTPS is no SIP's
    counted = [(f, frame) for f, frame, sip_port in zip(conns.flows.tolist(), conns.hello_frames,
                                                         conns.on_sip_port.tolist()) if sip_port or f in flows_with_sip]
    total = len(counted)
    decrypted = sum(1 for f, _ in counted if f in flows_with_sip)
    missing = total - decrypted
    keys = ("--tls-keylog" if settings.tls_keylog else "") + \
        (" and " if settings.tls_keylog and conns.secrets_blocks else "") + \
        ("the capture's Decryption Secrets Blocks" if conns.secrets_blocks else "")
    frames = [frame for flow, frame in counted if flow not in flows_with_sip]
    info = {"connections": total, "decrypted": decrypted, "not_decrypted": missing,
            "keys": keys or "none", "secrets_blocks": conns.secrets_blocks,
            "not_decrypted_frames": frames}  # the ClientHello of each: evidence for a finding
    warnings = []
    if missing:
        where = f"ClientHello in frame {', '.join(map(str, frames[:5]))}" + (" ..." if len(frames) > 5 else "")
        if keys:
            warnings.append(f"{shown}: {missing} TLS connection(s) on SIP ports were not decrypted with the keys of "
                            f"{keys} ({where}): the key log has no keys for these sessions; give the key log "
                            "written while this capture was made")
        else:
            warnings.append(f"{shown}: {missing} TLS connection(s) carry SIP without keys ({where}): give "
                            "--tls-keylog FILE (an NSS key log, SSLKEYLOGFILE) to decrypt them")
    return info, warnings

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

    def decode_as(self) -> list[str]:
        """tshark -d arguments: TLS application data on a SIP port other than 5061 is SIP."""
        return [f"tls.port=={p},sip" for p in sorted(set(self.server_ports)) if p != SIP_TLS_PORT]


def connections(packets: Packets, settings: Settings, candidate_rows: np.ndarray) -> TlsConnections:
    """TLS connections whose ClientHello went to (or came from) a SIP port."""
    t = packets.table
    hellos = kernel.prefix_rows(t, kernel.TLS_HELLO_PREFIX, kernel.TLS_HELLO_PREFIX + 1, False)
    ports = set(settings.sip_ports) | {SIP_TLS_PORT}
    keep = [r for r in hellos.tolist() if int(t["dport"][r]) in ports or int(t["sport"][r]) in ports]
    flows, first = np.unique(t["flow"][keep], return_index=True) if keep else (np.zeros(0, np.uint64), [])
    rows = [keep[i] for i in first]
    in_tls = candidate_rows[np.isin(t["flow"][candidate_rows], flows)] if len(flows) else candidate_rows[:0]
    return TlsConnections(flows, [int(t["dport"][r]) for r in rows], [r + 1 for r in rows],
                          dict(zip((in_tls + 1).tolist(), t["flow"][in_tls].tolist())), len(packets.secrets))


def summary(conns: TlsConnections, sip: pl.DataFrame, settings: Settings, shown: str) -> tuple[dict, list[str]]:
    """(info["tls"], warnings): connections decrypted (gave SIP) and not, and what to do about the others."""
    flows_with_sip = set()
    if not sip.is_empty() and conns.frame_flow:
        for frame in sip.filter(pl.col("transport") == "tls")["frame"].to_list():
            if frame in conns.frame_flow:
                flows_with_sip.add(conns.frame_flow[frame])
    total = len(conns.flows)
    decrypted = sum(1 for f in conns.flows.tolist() if f in flows_with_sip)
    missing = total - decrypted
    keys = ("--tls-keylog" if settings.tls_keylog else "") + \
        (" and " if settings.tls_keylog and conns.secrets_blocks else "") + \
        ("the capture's Decryption Secrets Blocks" if conns.secrets_blocks else "")
    info = {"connections": total, "decrypted": decrypted, "not_decrypted": missing,
            "keys": keys or "none", "secrets_blocks": conns.secrets_blocks}
    warnings = []
    if missing:
        frames = [f for f, flow in zip(conns.hello_frames, conns.flows.tolist()) if flow not in flows_with_sip]
        where = f"ClientHello in frame {', '.join(map(str, frames[:5]))}" + (" ..." if len(frames) > 5 else "")
        if keys:
            warnings.append(f"{shown}: {missing} TLS connection(s) on SIP ports were not decrypted with the keys of "
                            f"{keys} ({where}): the key log has no keys for these sessions; give the key log "
                            "written while this capture was made")
        else:
            warnings.append(f"{shown}: {missing} TLS connection(s) carry SIP without keys ({where}): give "
                            "--tls-keylog FILE (an NSS key log, SSLKEYLOGFILE) to decrypt them")
    return info, warnings

"""Addresses: 128-bit packet addresses (IPv4 as ::ffff:a.b.c.d) turned into text."""

from __future__ import annotations

import ipaddress

import numpy as np

IPV4_MAPPED = 0xFFFF00000000


def address_text(hi: int, lo: int) -> str:
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    if hi == 0 and lo == 0:
        return ""
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def address_strings(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Map addresses to (index into a table, table of text addresses).

    IPv4 addresses (hi == 0) are made unique as one uint64 column, which is fast; only
    the IPv6 rows pay for the two-column unique.
    """
    inverse = np.zeros(len(hi), dtype=np.int64)
    table: list[str] = []
    v6 = hi != 0
    v4_rows = np.flatnonzero(~v6)
    if len(v4_rows):
        uniq, inv = np.unique(lo[v4_rows], return_inverse=True)
        inverse[v4_rows] = inv
        table += [address_text(0, v) for v in uniq.tolist()]
    v6_rows = np.flatnonzero(v6)
    if len(v6_rows):
        key = np.stack([hi[v6_rows], lo[v6_rows]], axis=1)
        uniq, inv = np.unique(key, axis=0, return_inverse=True)
        inverse[v6_rows] = inv.reshape(-1) + len(table)
        table += [address_text(h, l) for h, l in uniq.tolist()]
    return inverse, table

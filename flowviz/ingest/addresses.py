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

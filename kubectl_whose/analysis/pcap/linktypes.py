"""The one table of link types: what each is called, and where a plain frame's IP header starts.

Numbers and names are tcpdump's (https://www.tcpdump.org/linktypes.html, `LINKTYPE_*`). A link
type with `ip_at` is *plain*: its frames carry IPv4/IPv6 at a fixed offset, and both engines'
plain-frame decoders (`decode.plain_frame`, `native/decode.h`) take them without the general
path; tests hold the C table to `PLAIN`. Every link type listed is read by the general decoder
(`decode.decode_frame`); any other gets a warning naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD


@dataclass(frozen=True)
class LinkType:
    number: int
    name: str
    ip_at: Optional[int] = None  # offset of the IP header in a plain frame; None: general path only
    ethertype_at: int = -1  # offset of the 16-bit ethertype (protocol) field; -1: none, raw IP
    ip_version: int = 0  # 4 or 6 when the link type fixes it; 0: the ethertype, else the first nibble, says


LINKTYPES: Dict[int, LinkType] = {lt.number: lt for lt in (
    LinkType(0, "NULL"),  # BSD loopback: a 4-byte AF_ in the capturing host's byte order
    LinkType(1, "EN10MB", ip_at=14, ethertype_at=12),
    LinkType(12, "RAW", ip_at=0),  # DLT_RAW as OpenBSD numbers it
    LinkType(14, "RAW", ip_at=0),  # DLT_RAW as BSD/OS numbers it
    LinkType(101, "RAW", ip_at=0),
    LinkType(108, "LOOP"),  # OpenBSD loopback: the AF_ in network byte order
    LinkType(113, "LINUX_SLL", ip_at=16, ethertype_at=14),  # tcpdump -i any before libpcap 1.10
    LinkType(228, "IPV4", ip_at=0, ip_version=4),
    LinkType(229, "IPV6", ip_at=0, ip_version=6),
    LinkType(276, "LINUX_SLL2", ip_at=20, ethertype_at=0),  # tcpdump -i any since libpcap 1.10
)}

# number -> (ip_at, ethertype_at, ip_version) of the plain link types, as both decoders read them
PLAIN: Dict[int, Tuple[int, int, int]] = {
    n: (lt.ip_at, lt.ethertype_at, lt.ip_version) for n, lt in LINKTYPES.items() if lt.ip_at is not None}


def linktype_name(number: int) -> str:
    lt = LINKTYPES.get(number)
    return lt.name if lt else f"LINKTYPE_{number}"

"""The one table of link types: what each is called, whether we decode it, where a plain frame's IP starts.

Numbers and names are tcpdump's (https://www.tcpdump.org/linktypes.html, `LINKTYPE_*`). A link
type with `ip_at` is *plain*: its frames carry IPv4/IPv6 at a fixed offset, and both engines'
plain-frame decoders (`decode.plain_frame`, `native/decode.h`) take them without the general
path; tests hold the C table to `PLAIN`. Every link type with `decoded` is read by the general
decoder (`general.decode_frame`, through `link.BY_LINKTYPE`, which tests hold to this table). The
others are listed for their names only: their frames are counted and named in a warning, and a
capture made of nothing else ends `analyze` with exit code UNSUPPORTED_LINK.
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
    decoded: bool = True  # False: named in warnings, not read (tshark may read it)


LINKTYPES: Dict[int, LinkType] = {lt.number: lt for lt in (
    LinkType(0, "NULL"),  # BSD loopback: a 4-byte AF_ in the capturing host's byte order
    LinkType(1, "EN10MB", ip_at=14, ethertype_at=12),
    LinkType(9, "PPP"),  # PPP, with or without HDLC-like framing
    LinkType(12, "RAW", ip_at=0),  # DLT_RAW as OpenBSD numbers it
    LinkType(14, "RAW", ip_at=0),  # DLT_RAW as BSD/OS numbers it
    LinkType(50, "PPP_HDLC"),  # PPP in HDLC-like framing, or Cisco HDLC
    LinkType(101, "RAW", ip_at=0),
    LinkType(104, "C_HDLC"),  # Cisco HDLC
    LinkType(105, "IEEE802_11"),  # 802.11 frames without radio headers
    LinkType(108, "LOOP"),  # OpenBSD loopback: the AF_ in network byte order
    LinkType(113, "LINUX_SLL", ip_at=16, ethertype_at=14),  # tcpdump -i any before libpcap 1.10
    LinkType(127, "IEEE802_11_RADIOTAP"),  # Wi-Fi monitor mode
    LinkType(149, "USER2"),  # as Apple's libpcap used it: PKTAP
    LinkType(192, "PPI"),  # per-packet information header, then (usually) 802.11
    LinkType(228, "IPV4", ip_at=0, ip_version=4),
    LinkType(229, "IPV6", ip_at=0, ip_version=6),
    LinkType(239, "NFLOG"),  # tcpdump -i nflog:N: what iptables' NFLOG target logs
    LinkType(258, "PKTAP"),  # macOS tcpdump -i pktap: process and interface per packet
    LinkType(276, "LINUX_SLL2", ip_at=20, ethertype_at=0),  # tcpdump -i any since libpcap 1.10
    # named, not decoded
    LinkType(6, "IEEE802_5", decoded=False),
    LinkType(7, "ARCNET_BSD", decoded=False),
    LinkType(8, "SLIP", decoded=False),
    LinkType(10, "FDDI", decoded=False),
    LinkType(107, "FRELAY", decoded=False),
    LinkType(119, "PRISM_HEADER", decoded=False),
    LinkType(123, "SUNATM", decoded=False),
    LinkType(129, "ARCNET_LINUX", decoded=False),
    LinkType(163, "IEEE802_11_AVS", decoded=False),
    LinkType(187, "BLUETOOTH_HCI_H4", decoded=False),
    LinkType(195, "IEEE802_15_4_WITHFCS", decoded=False),
    LinkType(201, "BLUETOOTH_HCI_H4_WITH_PHDR", decoded=False),
    LinkType(215, "IEEE802_15_4_NOFCS", decoded=False),
    LinkType(220, "USB_LINUX_MMAPPED", decoded=False),
    LinkType(231, "DBUS", decoded=False),
    LinkType(249, "NETLINK", decoded=False),
    LinkType(271, "VSOCK", decoded=False),
)}

# number -> (ip_at, ethertype_at, ip_version) of the plain link types, as both decoders read them
PLAIN: Dict[int, Tuple[int, int, int]] = {
    n: (lt.ip_at, lt.ethertype_at, lt.ip_version) for n, lt in LINKTYPES.items() if lt.ip_at is not None}


NETMON_BASE = 0x10000  # netmon.linktype_of: a NetMon network type no pcap link type stands for


def linktype_name(number: int) -> str:
    lt = LINKTYPES.get(number)
    if lt:
        return lt.name
    return f"NETMON_NETWORK_{number - NETMON_BASE}" if number >= NETMON_BASE else f"LINKTYPE_{number}"

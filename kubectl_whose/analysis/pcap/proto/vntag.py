"""Cisco VN-Tag (ethertype 0x8926): 4 bytes of virtual-interface tag, then the next ethertype
(tshark's packet-vntag.c)."""
from __future__ import annotations

import dpkt

ETH_TYPE_VNTAG = 0x8926


class VNTag(dpkt.Packet):
    __hdr__ = (
        ('_tag', 'I', 0),  # direction, pointer, destination and source virtual interfaces
        ('type', 'H', 0x0800),
    )

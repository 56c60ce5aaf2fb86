"""VXLAN (RFC 7348), UDP 4789 (and 8472, Linux's and flannel's default): flags, a 24-bit network
identifier, then an Ethernet frame (tshark's packet-vxlan.c)."""
from __future__ import annotations

import dpkt



class VXLAN(dpkt.Packet):
    __hdr__ = (
        ('flags', 'B', 0x08),
        ('_reserved', '3s', b'\x00' * 3),
        ('_vni_reserved', 'I', 0),
    )
    __bit_fields__ = {
        '_vni_reserved': (
            ('vni', 24),
            ('_reserved2', 8),
        )
    }

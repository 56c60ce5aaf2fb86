"""VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe), UDP 4790: flags, a next-protocol byte (1 IPv4, 2 IPv6,
3 Ethernet, 4 NSH, 5 MPLS) and the VNI (tshark's packet-vxlan.c)."""
from __future__ import annotations

import dpkt


class VXLANGPE(dpkt.Packet):
    __hdr__ = (
        ('flags', 'B', 0x0C),
        ('_reserved', 'H', 0),
        ('next_proto', 'B', 1),
        ('_vni_reserved', 'I', 0),
    )
    __bit_fields__ = {
        '_vni_reserved': (
            ('vni', 24),
            ('_reserved2', 8),
        )
    }

"""Geneve (RFC 8926), UDP 6081: version and option length, flags, a protocol type (an ethertype;
0x6558 for an Ethernet frame), a 24-bit network identifier, then the options (tshark's
packet-geneve.c)."""
from __future__ import annotations

import dpkt



class Geneve(dpkt.Packet):
    __hdr__ = (
        ('_ver_optlen', 'B', 0),
        ('flags', 'B', 0),
        ('type', 'H', 0x6558),
        ('_vni_reserved', 'I', 0),
    )
    __bit_fields__ = {
        '_ver_optlen': (
            ('ver', 2),
            ('optlen', 6),  # in 4-byte words
        ),
        '_vni_reserved': (
            ('vni', 24),
            ('_reserved', 8),
        )
    }

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        self.data = self.data[self.optlen * 4:]

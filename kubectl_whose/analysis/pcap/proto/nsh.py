"""Network Service Header (RFC 8300, ethertype 0x894F, or inside VXLAN-GPE): version, flags, TTL and
the header's length in 4-byte words, the metadata type, the next protocol (1 IPv4, 2 IPv6, 3
Ethernet, 4 NSH, 5 MPLS), the service path; context headers fill the rest of the length (tshark's
packet-nsh.c)."""
from __future__ import annotations

import dpkt

ETH_TYPE_NSH = 0x894F
NEXT_IPV4, NEXT_IPV6, NEXT_ETHERNET, NEXT_NSH, NEXT_MPLS = 1, 2, 3, 4, 5


class NSH(dpkt.Packet):
    __hdr__ = (
        ('_ver_flags_ttl_len', 'H', 0),
        ('md_type', 'B', 1),
        ('next_proto', 'B', NEXT_IPV4),
        ('_spi_si', 'I', 0),
    )
    __bit_fields__ = {
        '_ver_flags_ttl_len': (
            ('ver', 2),
            ('o', 1),
            ('u', 1),
            ('ttl', 6),
            ('len', 6),  # in 4-byte words, the whole header
        )
    }

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        size = self.len * 4
        if size < self.__hdr_len__:
            raise dpkt.UnpackError('NSH length %d' % size)
        self.data = buf[size:]

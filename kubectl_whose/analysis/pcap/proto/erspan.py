"""ERSPAN, Cisco's encapsulated remote SPAN, inside GRE (tshark's packet-erspan.c).

* Type I: GRE protocol 0x88BE without the sequence-number bit: no ERSPAN header, the mirrored
  Ethernet frame follows the GRE header at once;
* Type II: 0x88BE with a sequence number: an 8-byte header (version 1) before the frame;
* Type III: GRE protocol 0x22EB: a 12-byte header (version 2), plus an 8-byte platform-specific
  subheader when its O bit is set.
"""
from __future__ import annotations

import dpkt

GRE_ERSPAN_II, GRE_ERSPAN_III = 0x88BE, 0x22EB


class ERSPAN2(dpkt.Packet):
    __hdr__ = (
        ('_ver_vlan', 'H', 0x1000),
        ('_cos_en_t_session', 'H', 0),
        ('_reserved_index', 'I', 0),
    )
    __bit_fields__ = {
        '_ver_vlan': (
            ('ver', 4),
            ('vlan', 12),
        )
    }


class ERSPAN3(dpkt.Packet):
    __hdr__ = (
        ('_ver_vlan', 'H', 0x2000),
        ('_cos_bso_t_session', 'H', 0),
        ('timestamp', 'I', 0),
        ('sgt', 'H', 0),
        ('_p_ft_hw_d_gra_o', 'H', 0),
    )
    __bit_fields__ = {
        '_ver_vlan': (
            ('ver', 4),
            ('vlan', 12),
        ),
        '_p_ft_hw_d_gra_o': (
            ('p', 1),
            ('ft', 5),
            ('hw', 6),
            ('d', 1),
            ('gra', 2),
            ('o', 1),
        )
    }

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        if self.o:  # the platform-specific subheader
            self.data = self.data[8:]

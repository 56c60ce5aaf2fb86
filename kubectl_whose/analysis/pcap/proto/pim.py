"""PIM (RFC 7761, IP protocol 103): a Register message (type 1) carries a whole multicast IP packet
after its 4-byte flags word, and tshark dissects that packet (packet-pim.c)."""
from __future__ import annotations

import dpkt

IP_PROTO_PIM = 103
PIM_REGISTER = 1


class PIM(dpkt.Packet):
    __hdr__ = (
        ('_v_type', 'B', 0x20),
        ('_reserved', 'B', 0),
        ('sum', 'H', 0),
    )
    __bit_fields__ = {
        '_v_type': (
            ('v', 4),
            ('type', 4),
        )
    }

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        if self.type == PIM_REGISTER:
            self.data = self.data[4:]  # border and null-register bits

"""GTPv1-U (3GPP TS 29.281), UDP 2152: mobile users' IP packets between the core network's nodes.

An 8-byte header; the sequence number, N-PDU number and next-extension type follow as one 4-byte
block when any of the E, S or PN flags is set, then a chain of extension headers (each a length in
4-byte units, its content, the next type). Only a T-PDU (message type 0xFF) carries a user packet,
IPv4 or IPv6 by its first nibble (tshark's packet-gtp.c, "gtp.tpdu" on by default)."""
from __future__ import annotations

import dpkt

T_PDU = 0xFF


class GTPv1(dpkt.Packet):
    __hdr__ = (
        ('flags', 'B', 0x30),
        ('type', 'B', T_PDU),
        ('len', 'H', 0),
        ('teid', 'I', 0),
    )

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        if self.flags >> 5 != 1:
            raise dpkt.UnpackError('GTP version %d' % (self.flags >> 5))
        data = self.data[:self.len]
        if self.flags & 0x07:
            if len(data) < 4:
                raise dpkt.NeedData('GTP optional fields')
            nxt = data[3]
            data = data[4:]
            while self.flags & 0x04 and nxt:
                if not data or data[0] == 0 or len(data) < data[0] * 4:
                    raise dpkt.UnpackError('GTP extension header')
                size = data[0] * 4
                nxt = data[size - 1]
                data = data[size:]
        self.data = data

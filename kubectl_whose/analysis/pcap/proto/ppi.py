"""PPI, the Per-Packet Information header (LINKTYPE_PPI 192): radio metadata before an 802.11 (or
other) frame. Little-endian; `len` covers the header and its fields, `dlt` names what follows
(tshark's packet-ppi.c)."""
from __future__ import annotations

import dpkt


class PPI(dpkt.Packet):
    __byte_order__ = '<'
    __hdr__ = (
        ('version', 'B', 0),
        ('flags', 'B', 0),
        ('len', 'H', 8),
        ('dlt', 'I', 105),
    )

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        if self.len < self.__hdr_len__:
            raise dpkt.UnpackError('PPI header length %d' % self.len)
        self.data = buf[self.len:]

"""PKTAP (LINKTYPE_PKTAP 258, and DLT_USER2 149 where Apple's libpcap used it): macOS's `tcpdump -i
pktap` header, in the capturing host's (little-endian) byte order: its own length, the next header's
type, the link type of what follows, the interface name and process details (tshark's packet-pktap.c)."""
from __future__ import annotations

import dpkt


class PKTAP(dpkt.Packet):
    __byte_order__ = '<'
    __hdr__ = (
        ('len', 'I', 108),
        ('type_next', 'I', 1),
        ('dlt', 'I', 1),
        ('ifname', '24s', b''),
    )

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        if self.len < self.__hdr_len__:
            raise dpkt.UnpackError('PKTAP header length %d' % self.len)
        self.data = buf[self.len:]

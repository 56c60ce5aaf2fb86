"""Cisco FabricPath (ethertype 0x8903 in the outer header's type position): outer destination and
source switch addresses, the FabricPath tag (ethertype, forwarding tag, TTL), then the whole
customer Ethernet frame.

tshark's packet-cisco-fp.c hands the inner frame to the Ethernet dissector *with* a frame check
sequence, so the last 4 bytes of every FabricPath frame are cut off the inner frame: its IP
datagram ends early, a UDP header then has a bogus length and no stream, a TCP header cut to 16
bytes is a "short segment". `inner` does the same.
"""
from __future__ import annotations

import dpkt

ETH_TYPE_FABRICPATH = 0x8903
FCS_LEN = 4


class FabricPath(dpkt.Packet):
    __hdr__ = (
        ('dst', '6s', b''),
        ('src', '6s', b''),
        ('type', 'H', ETH_TYPE_FABRICPATH),
        ('_ftag_ttl', 'H', 0),
    )
    __bit_fields__ = {
        '_ftag_ttl': (
            ('ftag', 10),
            ('ttl', 6),
        )
    }

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        self.data = self.data[:-FCS_LEN] if len(self.data) > FCS_LEN else b''

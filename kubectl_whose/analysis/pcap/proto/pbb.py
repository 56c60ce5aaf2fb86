"""Provider Backbone Bridging, IEEE 802.1ah (ethertype 0x88E7): the I-TAG (priority, flags and a
24-bit service id) then the customer's Ethernet addresses; the customer ethertype follows
(tshark's packet-ieee8021ah.c)."""
from __future__ import annotations

import dpkt

ETH_TYPE_PBB = 0x88E7


class PBB(dpkt.Packet):
    __hdr__ = (
        ('_pcp_isid', 'I', 0),
        ('c_dst', '6s', b''),
        ('c_src', '6s', b''),
        ('type', 'H', 0x0800),
    )
    __bit_fields__ = {
        '_pcp_isid': (
            ('pcp', 3),
            ('dei', 1),
            ('uca', 1),
            ('res', 3),
            ('isid', 24),
        )
    }

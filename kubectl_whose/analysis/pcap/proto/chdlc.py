"""Cisco HDLC (LINKTYPE_C_HDLC 104, and LINKTYPE_PPP_HDLC 50 when it starts 0x0f/0x8f): address,
control and an ethertype (tshark's packet-chdlc.c)."""
from __future__ import annotations

import dpkt

ADDR_UNICAST, ADDR_MULTICAST = 0x0F, 0x8F


class CHDLC(dpkt.Packet):
    __hdr__ = (
        ('addr', 'B', ADDR_UNICAST),
        ('ctl', 'B', 0),
        ('type', 'H', 0x0800),
    )

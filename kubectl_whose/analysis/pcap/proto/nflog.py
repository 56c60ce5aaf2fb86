"""NFLOG (LINKTYPE_NFLOG 239): what `tcpdump -i nflog:N` writes for iptables' NFLOG target.

A 4-byte header (address family, version, resource id) and TLVs whose length and type are in the
capturing host's byte order (https://www.tcpdump.org/linktypes/LINKTYPE_NFLOG.html); the packet
itself is TLV type 9, NFULA_PAYLOAD, an IPv4/IPv6 packet. tshark's packet-nflog.c guesses the byte
order the same way: the first TLV's length must fit the frame.
"""
from __future__ import annotations

import struct
from typing import Optional

import dpkt

NFULA_PAYLOAD = 9
AF_INET, AF_INET6 = 2, 10


class NFLOG(dpkt.Packet):
    __hdr__ = (
        ('family', 'B', AF_INET),
        ('version', 'B', 0),
        ('res_id', 'H', 0),  # network byte order, unlike the TLVs
    )

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        self.payload: Optional[bytes] = None
        tlvs = self.data
        order = "<" if _fits(tlvs, "<") else ">"
        pos = 0
        while len(tlvs) - pos >= 4:
            tlen, ttype = struct.unpack_from(order + "HH", tlvs, pos)
            if tlen < 4 or pos + tlen > len(tlvs):
                break
            if ttype & 0x7FFF == NFULA_PAYLOAD:
                self.payload = tlvs[pos + 4:pos + tlen]
                break
            pos += (tlen + 3) & ~3


def _fits(tlvs: bytes, order: str) -> bool:
    return len(tlvs) >= 4 and 4 <= struct.unpack_from(order + "H", tlvs, 0)[0] <= len(tlvs)

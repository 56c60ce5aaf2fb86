"""AYIYA, "Anything In Anything" (draft-massar-v6ops-ayiya), UDP 5072: IPv6 tunnelled to a tunnel
broker. Four bytes of lengths and methods, an epoch time, the identity (2**idlen bytes) and the
signature (siglen 4-byte words), then the packet named by `next_header` (tshark's packet-ayiya.c,
which forwards only opcode 1)."""
from __future__ import annotations

import dpkt

OP_FORWARD = 1


class AYIYA(dpkt.Packet):
    __hdr__ = (
        ('_idlen_idtype', 'B', 0),
        ('_siglen_hshmeth', 'B', 0),
        ('_autmeth_opcode', 'B', 0),
        ('next_header', 'B', 41),
        ('epoch', 'I', 0),
    )
    __bit_fields__ = {
        '_idlen_idtype': (('idlen', 4), ('idtype', 4)),
        '_siglen_hshmeth': (('siglen', 4), ('hshmeth', 4)),
        '_autmeth_opcode': (('autmeth', 4), ('opcode', 4)),
    }

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        skip = (1 << self.idlen) + self.siglen * 4
        if len(self.data) < skip:
            raise dpkt.NeedData('AYIYA identity and signature')
        self.data = self.data[skip:]

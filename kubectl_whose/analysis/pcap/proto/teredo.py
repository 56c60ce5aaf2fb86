"""Teredo (RFC 4380), UDP 3544: IPv6 over UDP through NATs. An optional authentication indicator
(type 0x0001, client-id and auth-value lengths, nonce, confirmation) and an optional origin
indication (type 0x0000, 8 bytes) precede the IPv6 packet (tshark's packet-teredo.c)."""
from __future__ import annotations

import struct

import dpkt



class Teredo(dpkt.Packet):
    __hdr__ = ()

    def unpack(self, buf):
        data = bytes(buf)
        if data[:2] == b"\x00\x01":  # authentication: 4 bytes, the two fields, nonce 8, confirmation 1
            if len(data) < 4:
                raise dpkt.NeedData('Teredo authentication')
            idlen, aulen = data[2], data[3]
            data = data[4 + idlen + aulen + 9:]
        if data[:2] == b"\x00\x00":  # origin indication
            if len(data) < 8:
                raise dpkt.NeedData('Teredo origin indication')
            self.origin_port, = struct.unpack_from("!H", data, 2)
            data = data[8:]
        self.data = data

"""MACsec, IEEE 802.1AE (ethertype 0x88E5): the SecTAG (TCI and association number, short length,
packet number, the secure channel identifier when the SC bit is set), the secure data, a 16-byte ICV.
Only unprotected-confidentiality frames (E and C clear) carry a readable ethertype and payload; the
short length, when set, is the secure data's length (tshark's packet-macsec.c)."""
from __future__ import annotations

import dpkt

ETH_TYPE_MACSEC = 0x88E5
ICV_LEN = 16


class MACsec(dpkt.Packet):
    __hdr__ = (
        ('tci_an', 'B', 0),
        ('sl', 'B', 0),
        ('pn', 'I', 0),
    )

    @property
    def sc(self) -> bool:
        return bool(self.tci_an & 0x20)

    @property
    def encrypted(self) -> bool:  # E (encryption) or C (changed text) set
        return bool(self.tci_an & 0x0C)

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        data = self.data[8:] if self.sc else self.data  # the SCI
        data = data[:-ICV_LEN] if len(data) > ICV_LEN else b''
        if self.sl & 0x3F:
            data = data[:self.sl & 0x3F]
        self.data = data

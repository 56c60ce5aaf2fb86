"""Where the last whole record of a growing pcap or pcapng stream ends.

A file cut mid-packet (a full disk, a quota) is one that tools read with an error at the end; cut at a record
edge it reads cleanly. `RecordEdge` is fed the bytes that reached the file, in order, and keeps only the bytes of
the record still incomplete (at most one record: 16 + 262144 bytes for tcpdump's largest snaplen).

pcap: a 24-byte file header, then records of a 16-byte header whose third word is the captured length. pcapng:
blocks whose second word is the block's total length, in the byte order of the section's header block.
"""
from __future__ import annotations

import struct
from typing import Optional, Tuple

PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
PACKET_BLOCKS = {2, 3, 6}  # obsolete packet, simple packet, enhanced packet
PCAPNG_BYTE_ORDER = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}


class RecordEdge:
    def __init__(self) -> None:
        self.edge = 0  # bytes up to the end of the last whole record (the file header counts as one)
        self.records = 0  # whole packets (pcap records; pcapng packet blocks)
        self.kind: Optional[str] = None  # "pcap" | "pcapng" once the first bytes tell
        self._order = "<"
        self._pending = bytearray()

    def feed(self, data: bytes) -> None:
        self._pending += data
        pos = 0
        while True:
            size, counts = self._next_size(pos)
            if size is None or len(self._pending) - pos < size:
                break
            pos += size
            self.edge += size
            self.records += counts
        if pos:
            del self._pending[:pos]

    def _next_size(self, pos: int) -> Tuple[Optional[int], int]:
        """(bytes of the record starting at `pos` in the pending bytes, or None while its header is incomplete;
        1 if it is a packet record)."""
        head = bytes(self._pending[pos:pos + 12])
        if self.kind is None:
            if len(head) < 4:
                return None, 0
            if head[:4] in PCAP_MAGICS:
                self.kind, self._order = "pcap", PCAP_MAGICS[head[:4]]
            else:
                self.kind = "pcapng" if head[:4] == PCAPNG_SHB else "unknown"  # unknown: the edge stays at 0
        if self.kind == "pcap" and self.edge == 0:
            return 24, 0  # the file header
        if len(head) < 12 or self.kind == "unknown":
            return None, 0
        if self.kind == "pcap":
            return 16 + struct.unpack_from(self._order + "I", head, 8)[0], 1
        if head[:4] == PCAPNG_SHB:  # each section says its byte order
            self._order = PCAPNG_BYTE_ORDER.get(head[8:12], self._order)
        size = struct.unpack_from(self._order + "I", head, 4)[0]
        packet = struct.unpack_from(self._order + "I", head, 0)[0] in PACKET_BLOCKS
        return (size, int(packet)) if size >= 12 else (None, 0)  # a corrupt length: stop at the last edge

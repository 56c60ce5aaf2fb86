"""IP fragment reassembly, only as far as tshark's stream figures need it.

tshark reassembles IPv4/IPv6 fragments by default (`ip.defragment`, `ipv6.defragment`) and hands
the transport header to TCP/UDP in the frame that completes the datagram, with the datagram's full
length; an incomplete datagram reaches no stream at all. Only the transport header is kept here
(the first fragment's captured bytes), never the payload, and the table of datagrams in progress is
bounded, so memory stays flat.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

MAX_PENDING = 4096  # datagrams in progress; the oldest is forgotten beyond this


class _Datagram:
    __slots__ = ("ranges", "total", "head")

    def __init__(self):
        self.ranges: List[Tuple[int, int]] = []
        self.total: Optional[int] = None  # payload length, known once the last fragment arrived
        self.head: Optional[bytes] = None  # captured bytes of the first fragment's payload


class Reassembly:
    def __init__(self, limit: int = MAX_PENDING):
        self.limit = limit
        self.pending: Dict[tuple, _Datagram] = {}

    def add(self, key: tuple, offset: int, length: int, more: bool, head: Optional[bytes]):
        """Record one fragment; return (first fragment's payload bytes, datagram length) once complete."""
        dg = self.pending.get(key)
        if dg is None:
            if len(self.pending) >= self.limit:
                self.pending.pop(next(iter(self.pending)))
            dg = self.pending[key] = _Datagram()
        dg.ranges.append((offset, offset + length))
        if offset == 0:
            dg.head = head
        if not more:
            dg.total = offset + length
        if dg.total is None or dg.head is None:
            return None
        covered = 0
        for start, end in sorted(dg.ranges):
            if start > covered:
                return None
            covered = max(covered, end)
        if covered < dg.total:
            return None
        del self.pending[key]
        return dg.head, dg.total


class FrameEvents(list):
    """The events of one frame, plus the reassembly table the IP layers consult."""

    __slots__ = ("frags",)

    def __init__(self, frags: Optional[Reassembly] = None):
        super().__init__()
        self.frags = frags

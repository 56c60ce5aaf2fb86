"""The native stream engine (`_engine.c`) behind the `engine.StreamEngine` face.

The C type already has the interface's methods; this class binds them to itself (no extra call per
packet) and adapts the two that take a reader window, plus the 64-bit clamp of timestamps the C
table keeps in `int64_t`.
"""
from __future__ import annotations

from typing import Tuple

from kubectl_whose.analysis.pcap.reader import PcapngWindow, PcapWindow

# the engine keeps nanoseconds in 64 bits: a pcapng timestamp beyond year 2262 is clamped
MIN_TS, MAX_TS = -(1 << 63), (1 << 63) - 1
_BOUND = ("tcp_packet", "udp_packet", "tcp_quote", "udp_quote", "frame", "counts", "order", "row", "json_rows",
          "is_udp", "join_candidates", "top", "detail_endpoints", "take_detail", "memory")


class NativeEngine:
    name = "native"

    def __init__(self, engine_type, want_tcp: bool = True, want_udp: bool = True, detail_tcp: int = -1,
                 detail_udp: int = -1):
        self.c = engine_type(want_tcp, want_udp, detail_tcp, detail_udp)
        for method in _BOUND:
            setattr(self, method, getattr(self.c, method))

    def timestamp(self, ts: int) -> int:
        return max(MIN_TS, min(MAX_TS, ts))

    def feed_pcap(self, w: PcapWindow, general) -> Tuple:
        return self.c.feed_pcap(w.buf, w.pos, w.big_endian, w.ns, w.rec_len, w.linktype, w.frames, general)

    def feed_pcapng(self, w: PcapngWindow, general) -> Tuple:
        return self.c.feed_pcapng(w.buf, w.pos, w.big_endian, _interfaces(w.interfaces), w.frames, general)


def _interfaces(interfaces) -> tuple:
    """The section's interfaces for C; one whose time units do not fit 64 bits is left to Python."""
    out = []
    for i in interfaces:
        if all(MIN_TS <= v <= MAX_TS for v in (i.units_num, i.units_den, i.offset_ns)):
            out.append((i.linktype, i.units_num, i.units_den, i.offset_ns))
        else:
            out.append((-1, 1, 1, 0))
    return tuple(out)

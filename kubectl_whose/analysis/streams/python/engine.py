"""The reference stream engine in pure Python: `StreamTable` behind the `engine.StreamEngine` face.

It runs anywhere (a krew archive for a platform without the native build, an install without a
compiler) and is what `_engine.c` transcribes; tests/analysis/streams/test_native_engine.py holds the two equal,
method by method. The record loops read straight out of the reader's buffer (`PcapWindow`,
`PcapngWindow`) with no per-frame bytes object, and hand each record to the one plain-frame
decoder (`decode.plain_frame`); a frame it declines goes to `general`, the analyzer's general path.
"""
from __future__ import annotations

import heapq
import struct
from typing import List, Optional, Tuple

from kubectl_whose.analysis.pcap.reader import MAX_RECORD, PcapngWindow, PcapWindow
from kubectl_whose.analysis.pcap.decode import format_endpoint, plain_frame
from kubectl_whose.analysis.pcap.linktypes import PLAIN
from kubectl_whose.analysis.streams.python.rows import client_dir, row_values, stream_json
from kubectl_whose.analysis.streams.python.table import StreamTable, TcpStream, UdpStream

_REC = {False: struct.Struct("<IIII").unpack_from, True: struct.Struct(">IIII").unpack_from}
_BLOCK = {False: struct.Struct("<II").unpack_from, True: struct.Struct(">II").unpack_from}
_EPB = {False: struct.Struct("<IIIII").unpack_from, True: struct.Struct(">IIIII").unpack_from}


class PythonEngine:
    name = "python"

    def __init__(self, want_tcp: bool = True, want_udp: bool = True, detail_tcp: int = -1, detail_udp: int = -1):
        self.want_tcp, self.want_udp = want_tcp, want_udp
        self.table = table = StreamTable(detail_tcp, detail_udp)
        self.tcp_packet, self.udp_packet = table.tcp_packet, table.udp_packet
        self.tcp_quote, self.udp_quote = table.tcp_quote, table.udp_quote
        self._detail = (detail_tcp, detail_udp)
        self._order: List = []

    # -- frames ----------------------------------------------------------------------------------
    def _sinks(self):
        return (self.tcp_packet if self.want_tcp else None), (self.udp_packet if self.want_udp else None)

    def frame(self, frame_no: int, ts: int, linktype: int, orig_len: int, data: bytes) -> bool:
        lt = PLAIN.get(linktype)
        return lt is not None and plain_frame(data, 0, len(data), *lt, frame_no, ts, orig_len, *self._sinks())

    def timestamp(self, ts: int) -> int:
        return ts  # Python integers hold any pcapng timestamp

    def feed_pcap(self, w: PcapWindow, general) -> Tuple:
        buf, pos, linktype, frames, rec_len = w.buf, w.pos, w.linktype, w.frames, w.rec_len
        unpack = _REC[w.big_endian]
        mult = 1 if w.ns else 1000
        end = len(buf)
        packets = nbytes = 0
        first = last = None
        bad = -1
        tcp, udp = self._sinks()
        plain = PLAIN.get(linktype)
        ip_at, et_at, version = plain or (0, 0, 0)
        while end - pos >= rec_len:
            sec, frac, caplen, orig_len = unpack(buf, pos)
            if caplen > MAX_RECORD:
                bad = caplen
                break
            start = pos + rec_len
            stop = start + caplen
            if stop > end:
                break
            frames += 1
            pos = stop
            ts = sec * 1_000_000_000 + frac * mult
            if not packets:
                first = ts
            last = ts
            packets += 1
            nbytes += orig_len
            if not (plain and plain_frame(buf, start, stop, ip_at, et_at, version, frames, ts, orig_len, tcp, udp)):
                general(frames, ts, linktype, orig_len, bytes(buf[start:stop]))
        return pos, frames, packets, nbytes, first, last, bad

    def feed_pcapng(self, w: PcapngWindow, general) -> Tuple:
        buf, pos, frames, ifaces = w.buf, w.pos, w.frames, w.interfaces
        block, epb = _BLOCK[w.big_endian], _EPB[w.big_endian]
        end = len(buf)
        packets = nbytes = 0
        first = last = None
        stopped = 0
        tcp, udp = self._sinks()
        while end - pos >= 12:
            btype, blen = block(buf, pos)
            if btype != 6 or blen < 32 or blen % 4 or blen > MAX_RECORD:
                stopped = 1
                break
            if end - pos < blen:
                break
            iface_id, ts_hi, ts_lo, caplen, orig_len = epb(buf, pos + 8)
            if iface_id >= len(ifaces) or 20 + caplen > blen - 12:
                stopped = 1  # the reader reports what is wrong with it
                break
            iface = ifaces[iface_id]
            ts = iface.to_ns((ts_hi << 32) | ts_lo)
            start = pos + 28
            frames += 1
            pos += blen
            if not packets:
                first = ts
            last = ts
            packets += 1
            nbytes += orig_len
            plain = PLAIN.get(iface.linktype)
            if not (plain and plain_frame(buf, start, start + caplen, *plain, frames, ts, orig_len, tcp, udp)):
                general(frames, ts, iface.linktype, orig_len, bytes(buf[start:start + caplen]))
        return pos, frames, packets, nbytes, first, last, stopped

    # -- results ---------------------------------------------------------------------------------
    def counts(self) -> Tuple[int, int]:
        return len(self.table.tcp_streams), len(self.table.udp_streams)

    def order(self, tcp: bool, udp: bool) -> int:
        t = self.table
        ordered = ([s for s in t.tcp_streams if s.first_dir >= 0] if tcp else []) + \
                  ([s for s in t.udp_streams if s.first_dir >= 0] if udp else [])
        # busiest first, then index; TCP before UDP on a tie
        ordered.sort(key=lambda s: (-(s.pkts0 + s.pkts1), s.index, isinstance(s, UdpStream)))
        self._order = ordered
        return len(ordered)

    def row(self, i: int, file_first: int) -> tuple:
        if not 0 <= i < len(self._order):
            raise IndexError("row out of range")
        return row_values(self._order[i], file_first)

    def json_rows(self, lo: int, hi: int, file_first: int, sep: str) -> str:
        return sep.join(stream_json(s, file_first) for s in self._order[max(lo, 0):hi])

    def is_udp(self, i: int) -> bool:
        if not 0 <= i < len(self._order):
            raise IndexError("row out of range")
        return isinstance(self._order[i], UdpStream)

    def join_candidates(self) -> List[int]:
        """Rows a NAT-split join can use: a SYN nobody answered in its own 4-tuple, or an answer
        (SYN-ACK / RST+ACK) without a SYN (`analysis.pod.connections`)."""
        return [i for i, s in enumerate(self._order) if isinstance(s, TcpStream) and
                (s.client_isn is not None) != (s.synack_ack is not None or s.rst_ack is not None)]

    def top(self, n: int) -> List[tuple]:
        t = self.table
        if n <= 0:
            return []
        live = [s for s in t.tcp_streams + t.udp_streams if s.first_dir >= 0]
        return [_brief(s) for s in heapq.nlargest(n, live, key=lambda s: s.pkts0 + s.pkts1)]

    def detail_endpoints(self, proto: str) -> Optional[Tuple[str, str]]:
        streams = self.table.udp_streams if proto == "udp" else self.table.tcp_streams
        want = self._detail[proto == "udp"]
        if not 0 <= want < len(streams):
            return None
        a, b, pa, pb = streams[want].key
        return format_endpoint(a, pa), format_endpoint(b, pb)

    def take_detail(self) -> list:
        raw, self.table.detail = self.table.detail, []
        return raw

    def memory(self) -> int:
        return 0  # not measured: Python objects


def _brief(s) -> tuple:
    a, b, pa, pb = s.key
    ends = (format_endpoint(a, pa), format_endpoint(b, pb))
    client = client_dir(s)
    return ("udp" if isinstance(s, UdpStream) else "tcp", s.index, ends[client], ends[1 - client],
            s.pkts0 + s.pkts1, s.bytes0 + s.bytes1)

"""Microsoft Network Monitor 1.x/2.x capture files (.cap), read as tshark's wiretap reads them (netmon.c).

A 128-byte header ("RTSS" for 1.x, "GMBU" for 2.x): version, network type, the capture's start as a
SYSTEMTIME (local time of the capturing machine, no zone: like wiretap, it is read with this
machine's `mktime`), and the offset and size of the *frame table*, the offsets of every record, at
the end of the file. So a NetMon file cannot be read as it streams in: `CaptureReader` keeps it whole
and hands out its frames once the table has arrived (files are at most 4 GiB: 32-bit offsets).

Records: a time offset from the start (1.x: ms, 2.x: µs), the wire length, the captured length, the
frame; from 2.1 on a trailer with the frame's network type (and from 2.3 a UTC FILETIME, which
replaces the offset). Network types: 0/1 Ethernet, 7-9 raw IP, 0xE000 | a pcap link type (a pcap
file converted by NetMon), other values frames of link types not read here; 0xFFFC-0xFFFE are
metadata, not frames (wiretap skips them).
"""
from __future__ import annotations

import struct
import time
from typing import Iterator, List, Optional, Tuple

from kubectl_whose.analysis.pcap.linktypes import NETMON_BASE

MAGIC_1, MAGIC_2 = b"RTSS", b"GMBU"
HEADER_SIZE = 128
_HDR = struct.Struct("<BBH8HII")  # minor, major, network, SYSTEMTIME (8 x u16), frame table offset, length
_REC1 = struct.Struct("<IHH")  # ms since start, orig length, captured length
_REC2 = struct.Struct("<QII")  # µs since start, orig length, captured length
_TRAILER = {1: 2, 2: 6}  # 2.1 and 2.2; 2.3 and later: 15 (network, process index, FILETIME, zone index)
_SKIPPED = (0xFFFC, 0xFFFD, 0xFFFE)  # payload header, network info, DNS cache: not frames
FILETIME_UNIX = 116_444_736_000_000_000  # 1970-01-01 in 100 ns units since 1601-01-01


def is_netmon(head: bytes) -> bool:
    return head[:4] in (MAGIC_1, MAGIC_2)


def linktype_of(network: int) -> int:
    """A NetMon network type as a pcap link type (linktypes.py names them)."""
    if network in (0, 1):
        return 1
    if network in (7, 8, 9):
        return 101
    if network & 0xF000 == 0xE000 and not 0xE080 <= network <= 0xE08A:
        return network & 0x0FFF
    return NETMON_BASE + network  # a link type of its own, named NETMON_NETWORK_<n>


class NetmonFile:
    """The header of a NetMon file; `records(buf)` once the buffer holds the frame table."""

    def __init__(self, head: bytes):
        (self.minor, self.major, network, year, month, _dow, day, hour, minute, second, msec, self.table_at,
         self.table_len) = _HDR.unpack_from(head, 4)
        if self.major not in (1, 2):
            raise ValueError(f"NetMon major version {self.major}")
        self.network = network
        try:
            start = time.mktime((year, month, day, hour, minute, second, 0, 0, -1))
        except (OverflowError, ValueError):
            start = -1  # what wiretap's mktime gives for a date it cannot represent
        self.start_ns = int(start) * 10**9 + msec * 10**6

    @property
    def end(self) -> int:
        """Where the frame table ends: the bytes needed before any frame can be handed out."""
        return self.table_at + self.table_len

    def records(self, buf, first_frame: int = 0) -> Iterator[Tuple[int, int, int, int, int, bytes]]:
        """(frame_number, ts_ns, linktype, caplen, orig_len, frame) of every frame, in table order."""
        offsets = struct.unpack_from(f"<{self.table_len // 4}I", buf, self.table_at)
        frames = first_frame
        for pos in offsets:
            rec = self._record(buf, pos)
            if rec is None:
                continue
            frames += 1
            yield (frames,) + rec

    def _record(self, buf, pos: int) -> Optional[Tuple[int, int, int, int, bytes]]:
        if self.major == 1:
            delta_ms, orig_len, caplen = _REC1.unpack_from(buf, pos)
            ts = self.start_ns + delta_ms * 10**6
            data = pos + _REC1.size
        else:
            delta_us, orig_len, caplen = _REC2.unpack_from(buf, pos)
            delta = (delta_us * 10) & ((1 << 64) - 1)  # wiretap: x10 as unsigned, then read as signed
            if delta >= 1 << 63:
                delta -= 1 << 64
            ts = self.start_ns + delta * 100
            data = pos + _REC2.size
        if data + caplen > len(buf):
            raise ValueError(f"record at {pos} runs past the end of the file")
        frame = bytes(buf[data:data + caplen])
        network = self.network
        if self.major == 2 and self.minor >= 1:
            trailer = data + caplen
            size = _TRAILER.get(self.minor, 15)
            if trailer + size > len(buf):
                raise ValueError(f"record trailer at {trailer} runs past the end of the file")
            network = struct.unpack_from("<H", buf, trailer)[0]
            if network in _SKIPPED:
                return None
            if self.minor >= 3:
                filetime = struct.unpack_from("<Q", buf, trailer + 6)[0]
                ts = (filetime - FILETIME_UNIX) * 100
        return ts, linktype_of(network), caplen, orig_len, frame


__all__: List[str] = ["HEADER_SIZE", "NetmonFile", "is_netmon", "linktype_of"]

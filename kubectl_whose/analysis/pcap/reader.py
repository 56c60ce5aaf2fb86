"""Incremental reader of classic pcap, pcapng and NetMon, fed arbitrary chunks, never seeking.

`capture` feeds it bytes straight from the exec WebSocket and `analyze` feeds it a file or a
pipe, so the reader keeps only the unparsed tail of the input (constant memory for any file
size) and hands out complete records. A record cut off at the end of the input is dropped and
reported, as tshark does ("cut short in the middle of a packet"); corruption after some frames
ends the read with a warning and keeps what was read; garbage from the first byte is a
`WhoseError(BAD_INPUT)`. A NetMon file is the exception to constant memory: its frame table comes
last, so it is kept whole and its frames come out once the table is in (`analysis.pcap.netmon`).

A record is the tuple `(frame_number, ts_ns, linktype, caplen, orig_len, frame_bytes)`.
"""
from __future__ import annotations

import os
import struct
import sys
from typing import BinaryIO, Iterable, Iterator, List, NamedTuple, Optional, Tuple, Union

from kubectl_whose.analysis.pcap import netmon
from kubectl_whose.analysis.pcap.linktypes import linktype_name
from kubectl_whose.errors import ExitCode, WhoseError

Record = Tuple[int, int, int, int, int, bytes]

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_MODIFIED = 0xA1B2CD34  # Kuznetsov's patched libpcap: 8 more bytes per record header
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D

# A record claiming more than this is corruption, not a packet (Wireshark's own limit is 256 MiB).
MAX_RECORD = 256 * 1024 * 1024
READ_CHUNK = 1 << 20

class Interface:
    """One pcapng interface description: its link type and how its timestamps turn into nanoseconds."""

    __slots__ = ("linktype", "units_num", "units_den", "offset_ns")

    def __init__(self, linktype: int, resol: int, offset_s: int):
        self.linktype = linktype
        if resol & 0x80:  # negative power of two
            self.units_num, self.units_den = 10 ** 9, 1 << (resol & 0x7F)
        else:  # negative power of ten
            exp = 9 - resol
            self.units_num, self.units_den = (10 ** exp, 1) if exp >= 0 else (1, 10 ** -exp)
        self.offset_ns = offset_s * 10 ** 9

    def to_ns(self, units: int) -> int:
        return units * self.units_num // self.units_den + self.offset_ns


class PcapWindow(NamedTuple):
    """The unread part of a classic pcap buffer, for a stream engine to consume in one pass."""

    buf: bytearray
    pos: int
    big_endian: bool
    ns: bool  # nanosecond timestamps (magic 0xa1b23c4d)
    rec_len: int  # 16, or 24 for Kuznetsov's patched libpcap
    linktype: int
    frames: int  # frames read before `pos`


class PcapngWindow(NamedTuple):
    """The unread part of a pcapng buffer, with the interfaces of the current section."""

    buf: bytearray
    pos: int
    big_endian: bool
    interfaces: Tuple[Interface, ...]
    frames: int


class CaptureReader:
    """Parse pcap/pcapng from chunks: `feed(data)` then iterate `records()`; `close()` at the end."""

    def __init__(self, name: str = "input"):
        self.name = name
        self.frames = 0
        self.truncated = False
        self.warnings: List[str] = []
        self.linktypes: List[int] = []
        self.format: Optional[str] = None  # "pcap" | "pcapng" | "netmon"
        self.total_bytes = 0
        self._buf = bytearray()
        self._pos = 0
        self._ended = False  # corruption seen: ignore the rest
        # pcap state
        self._rec_hdr: Optional[struct.Struct] = None
        self._big_endian = False
        self._rec_len = 16
        self._ns = False
        self._pcap_linktype = 0
        # pcapng state
        self._endian = "<"
        self._ifaces: List[Interface] = []
        self._netmon: Optional[netmon.NetmonFile] = None
        self._netmon_read = False

    # -- input -------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self._ended or not data:
            return
        self.total_bytes += len(data)
        if self._pos > (1 << 16) and self._pos * 2 > len(self._buf):
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    def window(self) -> Optional[Union[PcapWindow, PcapngWindow]]:
        """The buffered bytes not read yet, or None before a complete file header (or after corruption).
        A consumer reads whole records from it and reports how far it got with `consumed`."""
        if self._ended or (self.format is None and not self._read_file_header()) or self.format == "netmon":
            return None
        if self.format == "pcap":
            return PcapWindow(self._buf, self._pos, self._big_endian, self._ns, self._rec_len, self._pcap_linktype,
                              self.frames)
        return PcapngWindow(self._buf, self._pos, self._endian == ">", tuple(self._ifaces), self.frames)

    def consumed(self, pos: int, frames: int) -> None:
        """A consumer of `window()` read up to `pos`, `frames` frames in all."""
        self.frames = frames
        if not self._ended:
            self._pos = pos

    def records(self) -> Iterator[Record]:
        """Yield every complete record buffered so far."""
        if self._ended:
            return
        if self.format is None and not self._read_file_header():
            return
        if self.format == "pcap":
            yield from self._pcap_records()
        elif self.format == "netmon":
            yield from self._netmon_records()
        else:
            yield from self._pcapng_records()

    @property
    def whole_bytes(self) -> int:
        """Bytes fed up to the end of the last whole record read (0 before a complete file header)."""
        return self.total_bytes - (len(self._buf) - self._pos) if self.format is not None else 0

    def close(self) -> None:
        """End of input: report a missing header or a cut-off last record."""
        if self._ended:
            return
        if self.format is None:
            have = len(self._buf) - self._pos
            if self.total_bytes == 0:
                raise WhoseError(f"{self.name} is empty (0 bytes): not a pcap or pcapng capture",
                                 ExitCode.BAD_INPUT)
            raise WhoseError(f"{self.name} is too short to be a capture ({have} bytes, no complete file header)",
                             ExitCode.BAD_INPUT)
        if self.format == "netmon" and not self._netmon_read:
            self.corrupt(f"the NetMon file ends at byte {len(self._buf)}, before its frame table "
                         f"(bytes {self._netmon.table_at}-{self._netmon.end})")
            return
        left = len(self._buf) - self._pos
        if self.format == "netmon":
            left = 0  # the frame table said where every frame is; the rest is NetMon's own metadata
        if left:
            self.truncated = True
            self._warn(f"capture ended mid-packet after frame {self.frames} ({left} bytes of an incomplete "
                       f"record dropped)")
        self._buf = bytearray()
        self._pos = 0

    def _warn(self, text: str) -> None:
        self.warnings.append(text)

    def corrupt(self, why: str) -> None:
        """The input is broken at the read position: a BAD_INPUT error before any frame, else a warning
        that keeps the frames read so far and ignores the rest."""
        if self.frames == 0:
            raise WhoseError(f"{self.name} is not a readable capture: {why}", ExitCode.BAD_INPUT)
        self.truncated = True
        self._warn(f"capture is corrupt after frame {self.frames} ({why}); kept the {self.frames} frames before it")
        self._ended = True
        self._buf = bytearray()
        self._pos = 0

    # -- file header -------------------------------------------------------------------------
    def _read_file_header(self) -> bool:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 4:
            return False
        magic_le = struct.unpack_from("<I", buf, pos)[0]
        magic_be = struct.unpack_from(">I", buf, pos)[0]
        if netmon.is_netmon(bytes(buf[pos:pos + 4])):
            if len(buf) - pos < netmon.HEADER_SIZE:
                return False
            try:
                self._netmon = netmon.NetmonFile(bytes(buf[pos:pos + netmon.HEADER_SIZE]))
            except ValueError as e:
                raise WhoseError(f"{self.name} is not a readable NetMon file ({e})", ExitCode.BAD_INPUT) from None
            self.format = "netmon"
            return True
        if magic_le == PCAPNG_SHB:
            # the file header is the whole first section header block: a cut one is no capture yet
            if len(buf) - pos < 12:
                return False
            bom = buf[pos + 8:pos + 12]
            endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else None
            if endian is None:
                raise WhoseError(f"{self.name} is not a readable pcapng file (byte-order magic 0x{bom.hex()})",
                                 ExitCode.BAD_INPUT)
            blen = struct.unpack_from(endian + "I", buf, pos + 4)[0]
            if blen < 28 or blen % 4 or blen > MAX_RECORD:
                raise WhoseError(f"{self.name} is not a readable pcapng file (section header of length {blen})",
                                 ExitCode.BAD_INPUT)
            if len(buf) - pos < blen:
                return False
            self.format = "pcapng"
            return True
        for endian, magic in (("<", magic_le), (">", magic_be)):
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS, PCAP_MAGIC_MODIFIED):
                if len(buf) - pos < 24:
                    return False
                linktype = struct.unpack_from(endian + "I", buf, pos + 20)[0] & 0xFFFF
                self.format = "pcap"
                self._ns = magic == PCAP_MAGIC_NS
                self._pcap_linktype = linktype
                self.linktypes.append(linktype)
                self._rec_len = 24 if magic == PCAP_MAGIC_MODIFIED else 16
                self._rec_hdr = struct.Struct(endian + "IIII")
                self._big_endian = endian == ">"
                self._pos = pos + 24
                return True
        raise WhoseError(f"{self.name} is not a pcap or pcapng file (magic 0x{magic_be:08x}); "
                         f"write captures with tcpdump -w or dumpcap", ExitCode.BAD_INPUT)

    # -- classic pcap ------------------------------------------------------------------------
    def _pcap_records(self) -> Iterator[Record]:
        buf = self._buf
        end = len(buf)
        pos = self._pos
        unpack_hdr = self._rec_hdr.unpack_from
        rec_len = self._rec_len
        linktype = self._pcap_linktype
        frac = 1 if self._ns else 1000
        frames = self.frames
        try:
            while end - pos >= rec_len:
                sec, frac_part, caplen, orig_len = unpack_hdr(buf, pos)
                if caplen > MAX_RECORD:
                    self.frames = frames
                    self._pos = pos
                    self.corrupt(f"record length {caplen} is impossible")
                    return
                start = pos + rec_len
                stop = start + caplen
                if stop > end:
                    break
                frames += 1
                pos = stop
                self.frames = frames
                self._pos = pos
                yield frames, sec * 1_000_000_000 + frac_part * frac, linktype, caplen, orig_len, bytes(buf[start:stop])
        finally:
            self.frames = frames
            if not self._ended:
                self._pos = pos

    # -- NetMon ------------------------------------------------------------------------------
    def _netmon_records(self) -> Iterator[Record]:
        nm = self._netmon
        if self._netmon_read or len(self._buf) < nm.end:
            return
        self._netmon_read = True
        try:
            for rec in nm.records(self._buf):
                self.frames = rec[0]
                if rec[2] not in self.linktypes:
                    self.linktypes.append(rec[2])
                yield rec
        except (ValueError, struct.error) as e:
            self.corrupt(str(e))
        self._pos = len(self._buf)

    # -- pcapng ------------------------------------------------------------------------------
    def _pcapng_records(self) -> Iterator[Record]:
        while True:
            more, rec = self.pcapng_step()
            if not more:
                return
            if rec is not None:
                yield rec

    def pcapng_step(self) -> Tuple[bool, Optional[Record]]:
        """Read one pcapng block: (False, None) when no complete block is buffered or the input ended
        (corruption), else (True, its packet record, or None for any other block)."""
        buf = self._buf
        end = len(buf)
        pos = self._pos
        if end - pos < 12:
            return False, None
        btype = struct.unpack_from(self._endian + "I", buf, pos)[0]
        if btype == PCAPNG_SHB:
            bom = struct.unpack_from("<I", buf, pos + 8)[0]
            if bom == PCAPNG_BOM:
                self._endian = "<"
            elif bom == 0x4D3C2B1A:
                self._endian = ">"
            else:
                self.corrupt(f"section header with unknown byte-order magic 0x{bom:08x}")
                return False, None
            self._ifaces = []  # interface ids restart in every section
        blen = struct.unpack_from(self._endian + "I", buf, pos + 4)[0]
        if blen < 12 or blen % 4 or blen > MAX_RECORD:
            self.corrupt(f"pcapng block of impossible length {blen}")
            return False, None
        if end - pos < blen:
            return False, None
        body = pos + 8
        self._pos = pos + blen
        rec = self._pcapng_block(btype, buf, body, pos + blen - 4)
        if self._ended:
            return False, None
        return True, rec

    def _pcapng_block(self, btype: int, buf: bytearray, body: int, stop: int) -> Optional[Record]:
        e = self._endian
        if btype == 6:  # Enhanced Packet Block
            if stop - body < 20:
                self.corrupt("enhanced packet block too short")
                return None
            iface_id, ts_hi, ts_lo, caplen, orig_len = struct.unpack_from(e + "IIIII", buf, body)
            data = body + 20
            return self._pcapng_packet(iface_id, (ts_hi << 32) | ts_lo, caplen, orig_len, buf, data, stop)
        if btype == 3:  # Simple Packet Block: interface 0, no timestamp
            if stop - body < 4:
                self.corrupt("simple packet block too short")
                return None
            orig_len = struct.unpack_from(e + "I", buf, body)[0]
            caplen = min(orig_len, stop - body - 4)
            return self._pcapng_packet(0, None, caplen, orig_len, buf, body + 4, stop)
        if btype == 2:  # obsolete Packet Block
            if stop - body < 20:
                self.corrupt("packet block too short")
                return None
            iface_id, _drops, ts_hi, ts_lo, caplen, orig_len = struct.unpack_from(e + "HHIIII", buf, body)
            return self._pcapng_packet(iface_id, (ts_hi << 32) | ts_lo, caplen, orig_len, buf, body + 20, stop)
        if btype == 1:  # Interface Description Block
            if stop - body < 8:
                self.corrupt("interface description block too short")
                return None
            linktype = struct.unpack_from(e + "H", buf, body)[0]
            resol, offset = self._idb_options(buf, body + 8, stop)
            self._ifaces.append(Interface(linktype, resol, offset))
            if linktype not in self.linktypes:
                self.linktypes.append(linktype)
        return None  # SHB, statistics, name resolution, unknown blocks: nothing to yield

    def _idb_options(self, buf: bytearray, pos: int, stop: int) -> Tuple[int, int]:
        resol, offset = 6, 0
        e = self._endian
        while stop - pos >= 4:
            code, olen = struct.unpack_from(e + "HH", buf, pos)
            if code == 0:
                break
            val = pos + 4
            if val + olen > stop:
                break
            if code == 9 and olen >= 1:
                resol = buf[val]
            elif code == 14 and olen >= 8:
                offset = struct.unpack_from(e + "q", buf, val)[0]
            pos = val + ((olen + 3) & ~3)
        return resol, offset

    def _pcapng_packet(self, iface_id: int, units: Optional[int], caplen: int, orig_len: int, buf: bytearray,
                       data: int, stop: int) -> Optional[Record]:
        if iface_id >= len(self._ifaces):
            self.corrupt(f"packet refers to interface {iface_id}, but only {len(self._ifaces)} are described")
            return None
        if data + caplen > stop:
            self.corrupt(f"packet length {caplen} exceeds its block")
            return None
        iface = self._ifaces[iface_id]
        self.frames += 1
        ts_ns = iface.to_ns(units) if units is not None else 0
        return self.frames, ts_ns, iface.linktype, caplen, orig_len, bytes(buf[data:data + caplen])


Source = Union[str, "os.PathLike[str]", BinaryIO]


def open_source(source) -> Tuple[BinaryIO, str, bool]:
    """(file object, display name, whether we opened it). `-` is stdin; never seeks."""
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return source, name if isinstance(name, str) else "input", False
    path = os.fspath(source)
    if path == "-":
        return sys.stdin.buffer, "stdin", False
    try:
        return open(path, "rb"), path, True
    except FileNotFoundError:
        raise WhoseError(f"{path}: no such file", ExitCode.NOT_FOUND) from None
    except IsADirectoryError:
        raise WhoseError(f"{path} is a directory, not a capture file", ExitCode.BAD_INPUT) from None
    except PermissionError:
        raise WhoseError(f"{path}: permission denied", ExitCode.BAD_INPUT) from None


def read_chunks(fobj: BinaryIO, size: int = READ_CHUNK) -> Iterator[bytes]:
    read = getattr(fobj, "read1", None) or fobj.read
    while True:
        chunk = read(size)
        if not chunk:
            return
        yield chunk


def whole_prefix(chunks: Iterable[bytes]) -> Tuple[int, int]:
    """(bytes, packets) of the longest prefix of a capture's bytes that holds only whole records: where a file cut
    mid-packet (a full disk) can be truncated so that it reads cleanly."""
    reader = CaptureReader()
    for chunk in chunks:
        reader.feed(chunk)
        for _ in reader.records():
            pass
    return reader.whole_bytes, reader.frames


def read_records(source) -> Tuple[List[Record], CaptureReader]:
    """Whole capture as a list (tests and small files only; analysis streams instead)."""
    fobj, name, owned = open_source(source)
    reader = CaptureReader(name)
    out: List[Record] = []
    try:
        for chunk in read_chunks(fobj):
            reader.feed(chunk)
            out.extend(reader.records())
        reader.close()
    finally:
        if owned:
            fobj.close()
    return out, reader


__all__ = ["CaptureReader", "Interface", "PcapWindow", "PcapngWindow", "Record", "linktype_name", "open_source",
           "read_chunks", "read_records", "whole_prefix"]

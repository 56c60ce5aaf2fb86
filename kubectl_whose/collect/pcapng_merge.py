"""One pcapng for a capture of several pods: an interface block per pod and interface, named
`NAMESPACE/POD:IFACE`, and every packet exactly as its tcpdump wrote it (timestamp resolution, captured and
original lengths), so any frame can be traced back to its pod (`frame.interface_name` in Wireshark).

Written here, not with dpkt's pcapng Writer: dpkt 1.9.8 writes every interface block before the first packet
(ours appear as each pod's tcpdump starts), and its EnhancedPacketBlock sets the original length to the
captured one, which would misstate every packet cut by --snaplen. The blocks are few and fixed (pcapng spec,
draft-ietf-opsawg-pcapng: SHB, IDB with if_name and if_tsresol, EPB), little-endian.
"""
from __future__ import annotations

import ipaddress
import struct
import threading
from typing import Optional, Sequence

_SHB = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
OPT_IF_NAME, OPT_IF_DESCRIPTION, OPT_IF_IPV4ADDR, OPT_IF_IPV6ADDR, OPT_IF_TSRESOL, OPT_END = 2, 3, 4, 5, 9, 0


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def interface_block(linktype: int, snaplen: int, name: str, nanoseconds: bool, ips: Sequence[str] = (),
                    node: str = "") -> bytes:
    """if_name `NAMESPACE/POD:IFACE`, if_description `on node NODE`, the pod's addresses as if_IPv4addr and
    if_IPv6addr (so `analyze` can tell what left and what arrived at the pod), and the timestamp resolution."""
    opts = _option(OPT_IF_NAME, name.encode())
    if node:
        opts += _option(OPT_IF_DESCRIPTION, f"on node {node}".encode())
    for ip in ips:
        addr = ipaddress.ip_address(ip)
        opts += _option(OPT_IF_IPV4ADDR, addr.packed + b"\xff\xff\xff\xff") if addr.version == 4 else \
            _option(OPT_IF_IPV6ADDR, addr.packed + bytes([128]))
    opts += _option(OPT_IF_TSRESOL, bytes([9 if nanoseconds else 6])) + struct.pack("<HH", OPT_END, 0)
    length = 20 + len(opts)
    return struct.pack("<IIHHI", 1, length, linktype, 0, snaplen) + opts + struct.pack("<I", length)


def packet_block(iface: int, ts_units: int, caplen: int, orig_len: int, data: bytes) -> bytes:
    length = 32 + len(data) + (-len(data) % 4)
    return struct.pack("<IIIIIII", 6, length, iface, ts_units >> 32, ts_units & 0xFFFFFFFF, caplen, orig_len) + \
        data + b"\x00" * (-len(data) % 4) + struct.pack("<I", length)


class MergedPcapng:
    """The file; `interface(name)` gives one pod's writer, fed the bytes of its tcpdump's classic pcap stream."""

    def __init__(self, path: str):
        from kubectl_whose.collect.capture_file import CaptureFile

        self.path = path
        self.lock = threading.Lock()
        self.next_id = 0
        self.closed_error = None  # the file's failure, kept once it is closed
        self.file: Optional[CaptureFile] = CaptureFile(path)  # cut at the last whole block if the disk fills
        self.file.write(_SHB)

    @property
    def error(self):
        return self.file.error if self.file is not None else self.closed_error


    def interface(self, name: str, ips: Sequence[str] = (), node: str = "") -> "PodStream":
        return PodStream(self, name, ips, node)

    def close(self) -> None:
        with self.lock:
            if self.file is not None:
                self.file.close()
                self.closed_error = self.file.error
                self.file = None


class PodStream:
    """Splits one pod's pcap stream into records and writes them as packet blocks of its interface."""

    def __init__(self, merged: MergedPcapng, name: str, ips: Sequence[str] = (), node: str = ""):
        self.merged, self.name, self.ips, self.node = merged, name, tuple(ips), node
        self.buf = bytearray()
        self.iface: Optional[int] = None
        self.unpack = None
        self.nanoseconds = False

    def write(self, chunk: bytes) -> None:
        self.buf += chunk
        out = []
        if self.iface is None:
            if len(self.buf) < 24:
                return
            magic = self.buf[:4]
            endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
            self.nanoseconds = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
            snaplen, linktype = struct.unpack_from(endian + "II", self.buf, 16)
            self.unpack = struct.Struct(endian + "IIII").unpack_from
            with self.merged.lock:  # the n-th interface block in the file is interface n: number and write at once
                self.iface = self.merged.next_id
                self.merged.next_id += 1
                if self.merged.file is not None:
                    self.merged.file.write(interface_block(linktype & 0xFFFF, snaplen, self.name, self.nanoseconds,
                                                           self.ips, self.node))
            del self.buf[:24]
        pos, scale = 0, 10 ** 9 if self.nanoseconds else 10 ** 6
        while len(self.buf) - pos >= 16:
            sec, frac, caplen, orig_len = self.unpack(self.buf, pos)
            if len(self.buf) - pos - 16 < caplen:
                break
            out.append(packet_block(self.iface, sec * scale + frac, caplen, orig_len,
                                    bytes(self.buf[pos + 16:pos + 16 + caplen])))
            pos += 16 + caplen
        del self.buf[:pos]
        if out:
            with self.merged.lock:
                if self.merged.file is not None:
                    self.merged.file.write(b"".join(out))

    @property
    def error(self):
        """The merged file's failure (disk full): every pod's capture stops on it."""
        return self.merged.error

    def close(self) -> None:
        """Nothing to flush (the file is written unbuffered); the merged file closes once, for every pod."""

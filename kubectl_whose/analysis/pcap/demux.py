"""A merged capture of several pods, split back into one capture per pod: the offline half of `capture` of
several pods (`collect.pcapng_merge` writes an interface per pod named `NAMESPACE/POD:IFACE[@NODE]`).

Streaming: each pod gets a pcapng of its own, made of the file's section header, that pod's interface blocks
and its packet blocks (interface ids renumbered), handed on block by block, so the per-pod analyzers see
exactly the frames of their pod, in file order, and memory stays flat.
"""
from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

POD_INTERFACE = re.compile(r"^([a-z0-9][-a-z0-9.]*)/([^:/\s]+):(\S+?)(?:@(\S+))?$")
OPT_IF_NAME, OPT_IF_DESCRIPTION, OPT_IF_IPV4ADDR, OPT_IF_IPV6ADDR = 2, 3, 4, 5


def pod_of(interface_name: Optional[str]) -> Optional[Tuple[str, str, str, Optional[str]]]:
    """(namespace, pod, interface, node) of a `NAMESPACE/POD:IFACE[@NODE]` interface name, else None."""
    m = POD_INTERFACE.match(interface_name or "")
    return (m.group(1), m.group(2), m.group(3), m.group(4)) if m else None


def _options(body: bytes, endian: str) -> Dict[int, List[bytes]]:
    out: Dict[int, List[bytes]] = {}
    pos = 8  # linktype, reserved, snaplen
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(endian + "HH", body, pos)
        if code == 0:
            break
        out.setdefault(code, []).append(body[pos + 4:pos + 4 + length])
        pos += 4 + length + (-length % 4)
    return out


@dataclass
class PodInterfaces:
    """What the merged file says of one pod: its interfaces, addresses and node."""

    namespace: str
    pod: str
    node: str = ""
    ips: List[str] = field(default_factory=list)
    interfaces: List[str] = field(default_factory=list)


class PodDemux:
    """Feed the merged file's bytes; `feed` yields (pod label "ns/pod", bytes of that pod's own pcapng)."""

    def __init__(self):
        self.buf = bytearray()
        self.endian = "<"
        self.shb = b""
        self.interfaces: List[Tuple[Optional[str], int]] = []  # file interface id -> (pod label, its own id)
        self.started: Dict[str, int] = {}  # pod label -> interfaces it has so far
        self.pods: Dict[str, PodInterfaces] = {}

    def feed(self, data: bytes) -> Iterator[Tuple[str, bytes]]:
        self.buf += data
        pos = 0
        while len(self.buf) - pos >= 12:
            btype = struct.unpack_from(self.endian + "I", self.buf, pos)[0]
            if btype == 0x0A0D0D0A:
                self.endian = "<" if self.buf[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            blen = struct.unpack_from(self.endian + "I", self.buf, pos + 4)[0]
            if blen < 12 or len(self.buf) - pos < blen:
                break
            block = bytes(self.buf[pos:pos + blen])
            pos += blen
            yield from self._block(btype, block)
        del self.buf[:pos]

    def _block(self, btype: int, block: bytes) -> Iterator[Tuple[str, bytes]]:
        e = self.endian
        if btype == 0x0A0D0D0A:
            self.shb, self.interfaces, self.started = block, [], {}
            return
        if btype == 1:
            opts = _options(block[8:-4], e)
            name = opts.get(OPT_IF_NAME, [b""])[0].decode("utf-8", "replace").rstrip("\x00")
            named = pod_of(name)
            if named is None:
                self.interfaces.append((None, -1))
                return
            label = f"{named[0]}/{named[1]}"
            info = self.pods.setdefault(label, PodInterfaces(named[0], named[1]))
            info.interfaces.append(named[2])
            desc = opts.get(OPT_IF_DESCRIPTION, [b""])[0].decode("utf-8", "replace")
            if desc.startswith("on node "):
                info.node = desc[len("on node "):].rstrip("\x00")
            for raw in opts.get(OPT_IF_IPV4ADDR, []):
                info.ips.append(str(ipaddress.IPv4Address(raw[:4])))
            for raw in opts.get(OPT_IF_IPV6ADDR, []):
                info.ips.append(str(ipaddress.IPv6Address(raw[:16])))
            first = label not in self.started
            own = self.started.get(label, 0)
            self.started[label] = own + 1
            self.interfaces.append((label, own))
            yield label, (self.shb if first else b"") + block
            return
        if btype == 6 and len(block) >= 12:
            iface = struct.unpack_from(e + "I", block, 8)[0]
            if iface < len(self.interfaces) and self.interfaces[iface][0] is not None:
                label, own = self.interfaces[iface]
                yield label, block[:8] + struct.pack(e + "I", own) + block[12:]


def pods_in(path: str, limit: int = 1 << 20) -> List[str]:
    """The pod labels a pcapng's interface blocks name (read from the first `limit` bytes; [] for other files)."""
    try:
        with open(path, "rb") as f:
            head = f.read(limit)
    except OSError:
        return []
    if head[:4] != b"\x0a\x0d\x0d\x0a":
        return []
    demux = PodDemux()
    for _ in demux.feed(head):
        pass
    return sorted(demux.pods)

"""Replayed encapsulations: the frames of a real capture wrapped in 802.1Q, QinQ, IP-in-IP, GRE, Geneve,
MPLS in a VLAN, PPPoE in QinQ, 802.1ah or VN-Tag, sent through a veth with an AF_PACKET socket, and
captured by real tcpdump on the far end.

This kernel has no 8021q, mpls_router, ipip, ip_gre, geneve or ppp modules (`ip link add ... type
vlan|ipip|gre|geneve` fails, there is no /proc/sys/net/mpls and no /dev/ppp, so neither MPLS routes
nor pppoe-server can run), so those encapsulations cannot be made by the kernel here. Instead the
frames of the real short-HTTP capture are wrapped and sent through a veth with an AF_PACKET socket,
and real tcpdump captures them on the far end. The conversations are real, the wrapping is ours;
tshark decodes whatever is on the wire, so it stays the judge.
"""
from __future__ import annotations

import socket
import struct
from pathlib import Path

from tests.helpers.capture_programs import FRAME_SENDER
from tests.helpers.capture_tools import CLIENT4, UNDERLAY1, UNDERLAY2, Capture, Tcpdump, run_client
from tests.helpers.netns import NetLab


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _outer_ipv4(proto: int, payload: bytes, from_client: bool) -> bytes:
    src, dst = (UNDERLAY1, UNDERLAY2) if from_client else (UNDERLAY2, UNDERLAY1)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
    return header[:10] + struct.pack("!H", _ip_checksum(header)) + header[12:] + payload


def _wrap(kind: str, frame: bytes) -> bytes:
    macs, ethertype, inner = frame[:12], frame[12:14], frame[14:]
    if kind == "vlan":
        return macs + b"\x81\x00" + struct.pack("!H", 100) + frame[12:]
    if kind == "qinq":
        return macs + b"\x88\xa8" + struct.pack("!H", 200) + b"\x81\x00" + struct.pack("!H", 100) + frame[12:]
    if kind == "vntag":
        return macs + b"\x89\x26" + struct.pack("!I", 0x80010002) + frame[12:]
    if kind == "pbb":  # 802.1ah I-TAG with I-SID 1000, then the customer's addresses and ethertype
        return macs + b"\x88\xe7" + struct.pack("!I", 1000) + frame
    if ethertype == b"\x08\x00" and kind == "mpls_vlan":  # VLAN 100, then labels 16 and 17 (bottom)
        return macs + b"\x81\x00" + struct.pack("!HHII", 100, 0x8847, (16 << 12) | 64, (17 << 12) | 0x100 | 64) \
            + inner
    if ethertype == b"\x08\x00" and kind == "pppoe_qinq":  # tags 200/100, session 7, PPP protocol 0x0021
        pppoe = struct.pack("!BBHHH", 0x11, 0, 7, len(inner) + 2, 0x0021) + inner
        return macs + b"\x88\xa8" + struct.pack("!HHHH", 200, 0x8100, 100, 0x8864) + pppoe
    if kind in ("mpls_vlan", "pppoe_qinq"):
        return frame
    if ethertype != b"\x08\x00":  # ARP stays as it was: only IPv4 goes into the tunnel
        return frame
    from_client = inner[12:16] == socket.inet_aton(CLIENT4)
    if kind == "ipip":
        return macs + b"\x08\x00" + _outer_ipv4(4, inner, from_client)
    if kind == "gre":
        return macs + b"\x08\x00" + _outer_ipv4(47, b"\x00\x00\x08\x00" + inner, from_client)
    # geneve: UDP to 6081, 8-byte header (no options), protocol 0x6558 (Ethernet), VNI 42
    geneve = b"\x00\x00\x65\x58" + (42).to_bytes(3, "big") + b"\x00" + frame
    sport = 50001 if from_client else 50002
    udp = struct.pack("!HHHH", sport, 6081, 8 + len(geneve), 0) + geneve
    return macs + b"\x08\x00" + _outer_ipv4(17, udp, from_client)


def replayed(source: Path, out: Path, kind: str) -> Capture:
    """The frames of the classic pcap `source`, wrapped as `kind`, replayed and captured into `out`."""
    frames = [frame for _, frame in _classic_pcap_frames(source.read_bytes())]
    wire = out.with_suffix(".frames")
    wire.write_bytes(b"".join(struct.pack("<I", len(f)) + f for f in (_wrap(kind, f) for f in frames)))
    with NetLab("B") as lab:
        a, b = lab.ns("ra"), lab.ns("rb")
        lab.link(a, "eth0", None, b, "eth0", None, mtu=65000)  # no addresses: b answers nothing
        td = Tcpdump(b, out)
        run_client(a, FRAME_SENDER, str(wire), "eth0")
        td.stop()
    wire.unlink()
    return Capture(f"replay_{kind}", out, notes=f"frames of {source.name} wrapped ({kind}) and replayed")


def _classic_pcap_frames(data: bytes):
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    while pos + 16 <= len(data):
        caplen = struct.unpack_from(endian + "I", data, pos + 8)[0]
        yield pos, data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen

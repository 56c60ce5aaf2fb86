"""Tiny literal capture builders for the analysis unit tests (struct only, every byte visible).

Frames: `eth()`, `ipv4()`, `ipv6()`, `tcp()`, `udp()`, `vxlan()` ... compose bottom-up:
    eth(ipv4("10.0.0.1", "10.0.0.2", tcp(40000, 80, seq=1, flags=SYN)))
Files: `pcap(records, ...)` and the pcapng block helpers `shb()`, `idb()`, `epb()`, `spb()`, `pb()`.
A record is (ts_ns, frame) or (ts_ns, frame, orig_len).
"""
from __future__ import annotations

import socket
import struct
from typing import Iterable, Optional, Sequence

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MAC_A, MAC_B = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"


def addr(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


def tcp(sport: int, dport: int, seq: int = 0, ack: int = 0, flags: int = ACK, win: int = 512,
        payload: bytes = b"", options: bytes = b"") -> bytes:
    options += b"\x00" * (-len(options) % 4)
    hlen = 20 + len(options)
    return struct.pack("!HHIIHHHH", sport, dport, seq, ack, ((hlen // 4) << 12) | flags, win, 0, 0) + options + payload


def wscale(shift: int) -> bytes:
    return b"\x01\x03\x03" + bytes([shift])


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(src: str, dst: str, payload: bytes, proto: int = 6, frag: int = 0x4000, options: bytes = b"",
         total: Optional[int] = None) -> bytes:
    ihl = 5 + len(options) // 4
    length = total if total is not None else ihl * 4 + len(payload)
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 1, frag, 64, proto, 0, addr(src), addr(dst)) \
        + options + payload


def ipv6(src: str, dst: str, payload: bytes, nxt: int = 6, ext: bytes = b"") -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(ext) + len(payload), nxt, 64, addr(src), addr(dst)) \
        + ext + payload


def eth(payload: bytes, ethertype: Optional[int] = None, vlans: Sequence[int] = ()) -> bytes:
    if ethertype is None:
        ethertype = 0x86DD if payload[:1] and payload[0] >> 4 == 6 else 0x0800
    tags = b""
    for i, vid in enumerate(vlans):
        tags += struct.pack("!HH", 0x88A8 if i == 0 and len(vlans) > 1 else 0x8100, vid)
    return MAC_B + MAC_A + tags + struct.pack("!H", ethertype) + payload


def sll(payload: bytes, proto: int = 0x0800) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, MAC_A + b"\x00\x00", proto) + payload


def sll2(payload: bytes, proto: int = 0x0800) -> bytes:
    return struct.pack("!HHIHBB8s", proto, 0, 3, 1, 0, 6, MAC_A + b"\x00\x00") + payload


def vxlan(vni: int, inner_frame: bytes) -> bytes:
    return struct.pack("!B3xI", 0x08, vni << 8) + inner_frame


def geneve(vni: int, inner_frame: bytes, ptype: int = 0x6558) -> bytes:
    return struct.pack("!BBHI", 0, 0, ptype, vni << 8) + inner_frame


def gre(payload: bytes, ptype: int = 0x0800, key: Optional[int] = None) -> bytes:
    if key is None:
        return struct.pack("!HH", 0, ptype) + payload
    return struct.pack("!HHI", 0x2000, ptype, key) + payload


def icmp_unreachable(quoted: bytes) -> bytes:
    return struct.pack("!BBHI", 3, 3, 0, 0) + quoted


# --- files ----------------------------------------------------------------------------------------

def _rec(r):
    return (r[0], r[1], r[2] if len(r) > 2 else len(r[1]))


def pcap(records: Iterable, linktype: int = 1, nano: bool = False, endian: str = "<",
         modified: bool = False) -> bytes:
    magic = 0xA1B2CD34 if modified else (0xA1B23C4D if nano else 0xA1B2C3D4)
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for rec in records:
        ts, frame, orig = _rec(rec)
        frac = ts % 10**9 if nano else (ts % 10**9) // 1000
        out.append(struct.pack(endian + "IIII", ts // 10**9, frac, len(frame), orig))
        if modified:
            out.append(struct.pack(endian + "IHBx", 2, 0x0800, 0))
        out.append(frame)
    return b"".join(out)


def _block(btype: int, body: bytes, endian: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def _opt(code: int, value: bytes, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def shb(endian: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1), endian)


def idb(linktype: int, tsresol: Optional[int] = None, tsoffset: Optional[int] = None, endian: str = "<") -> bytes:
    opts = b""
    if tsresol is not None:
        opts += _opt(9, bytes([tsresol]), endian)
    if tsoffset is not None:
        opts += _opt(14, struct.pack(endian + "q", tsoffset), endian)
    if opts:
        opts += struct.pack(endian + "HH", 0, 0)
    return _block(1, struct.pack(endian + "HHI", linktype, 0, 262144) + opts, endian)


def epb(iface: int, units: int, frame: bytes, orig_len: Optional[int] = None, endian: str = "<") -> bytes:
    orig = len(frame) if orig_len is None else orig_len
    return _block(6, struct.pack(endian + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(frame), orig)
                  + frame, endian)


def spb(frame: bytes, endian: str = "<") -> bytes:
    return _block(3, struct.pack(endian + "I", len(frame)) + frame, endian)


def pb(iface: int, units: int, frame: bytes, endian: str = "<") -> bytes:
    return _block(2, struct.pack(endian + "HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF, len(frame),
                                 len(frame)) + frame, endian)


def unknown_block(endian: str = "<") -> bytes:
    return _block(0x0BADC0DE, b"ignore me", endian)


# --- a whole conversation -------------------------------------------------------------------------

def http_conversation(client: str = "10.0.0.1", server: str = "10.0.0.2", cport: int = 40000, sport: int = 80,
                      isn_c: int = 1000, isn_s: int = 5000, t0: int = 1_700_000_000 * 10**9, step: int = 1000,
                      link=eth, ip=ipv4, scale: int = 7) -> list:
    """SYN, SYN-ACK, ACK, request, ACK, response, FIN/ACK both ways, last ACK: 9 (ts, frame) records."""
    c, s = isn_c, isn_s
    segs = [
        (client, server, cport, sport, c, 0, SYN, wscale(scale), b""),
        (server, client, sport, cport, s, c + 1, SYN | ACK, wscale(scale), b""),
        (client, server, cport, sport, c + 1, s + 1, ACK, b"", b""),
        (client, server, cport, sport, c + 1, s + 1, PSH | ACK, b"", b"GET / HTTP/1.0\r\n\r\n"),
        (server, client, sport, cport, s + 1, c + 19, ACK, b"", b""),
        (server, client, sport, cport, s + 1, c + 19, PSH | ACK, b"", b"x" * 100),
        (server, client, sport, cport, s + 101, c + 19, FIN | ACK, b"", b""),
        (client, server, cport, sport, c + 19, s + 102, FIN | ACK, b"", b""),
        (server, client, sport, cport, s + 102, c + 20, ACK, b"", b""),
    ]
    out = []
    for i, (a, b, pa, pb_, seq, ack, flags, opts, payload) in enumerate(segs):
        out.append((t0 + i * step, link(ip(a, b, tcp(pa, pb_, seq, ack, flags, 502, payload, opts)))))
    return out

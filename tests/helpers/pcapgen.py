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


# --- link layers and encapsulations the general path reads (each as its RFC / tcpdump page lays it out) ---

def mpls(payload: bytes, labels: Sequence[int] = (16,)) -> bytes:
    """An MPLS label stack (bottom-of-stack on the last), for ethertype 0x8847."""
    return b"".join(struct.pack("!I", (label << 12) | (1 << 8 if i == len(labels) - 1 else 0) | 64)
                    for i, label in enumerate(labels)) + payload


def pppoe(ip: bytes, session: int = 7, length: Optional[int] = None) -> bytes:
    """A PPPoE session frame's payload (ethertype 0x8864): the PPPoE header and PPP protocol 0x0021/0x0057."""
    proto = 0x0057 if ip[0] >> 4 == 6 else 0x0021
    body = struct.pack("!H", proto) + ip
    return struct.pack("!BBHH", 0x11, 0, session, len(body) if length is None else length) + body


def ppp_hdlc(ip: bytes) -> bytes:
    """PPP in HDLC-like framing (RFC 1662): 0xff 0x03, then the protocol."""
    return b"\xff\x03" + struct.pack("!H", 0x0057 if ip[0] >> 4 == 6 else 0x0021) + ip


def pbb(inner_frame_payload: bytes, isid: int = 1000, ethertype: int = 0x0800) -> bytes:
    """802.1ah: I-TAG (priority 0, I-SID), customer addresses, customer ethertype, payload (ethertype 0x88E7)."""
    return struct.pack("!I", isid) + MAC_A + MAC_B + struct.pack("!H", ethertype) + inner_frame_payload


def vntag(payload: bytes, ethertype: int = 0x0800) -> bytes:
    """Cisco VN-Tag (ethertype 0x8926): the 4-byte tag, then the next ethertype."""
    return struct.pack("!IH", 0x80010002, ethertype) + payload


def fabricpath(inner_frame: bytes) -> bytes:
    """Cisco FabricPath: outer switch addresses, 0x8903, forwarding tag and TTL, the customer frame, an FCS."""
    return MAC_B + MAC_A + struct.pack("!HH", 0x8903, 0x0401) + inner_frame + b"\xde\xad\xbe\xef"


def nflog(ip: bytes, prefix: bytes = b"whose") -> bytes:
    """LINKTYPE_NFLOG: family, version, resource id, then TLVs in little-endian (an x86 capture):
    NFULA_PACKET_HDR (1), NFULA_PREFIX (10), NFULA_PAYLOAD (9)."""
    def tlv(kind: int, value: bytes) -> bytes:
        return struct.pack("<HH", 4 + len(value), kind) + value + b"\x00" * (-len(value) % 4)
    v6 = ip[0] >> 4 == 6
    return struct.pack("!BBH", 10 if v6 else 2, 0, 5) + tlv(1, struct.pack("!HBx", 0x86DD if v6 else 0x0800, 3)) \
        + tlv(10, prefix + b"\x00") + tlv(9, ip)


def wlan_data(ip: bytes, qos: bool = False) -> bytes:
    """An 802.11 data frame from the AP (FromDS) with LLC/SNAP and the ethertype, no FCS."""
    fc = struct.pack("<H", (0x88 if qos else 0x08) | (0x02 << 8))  # type data, subtype, FromDS
    hdr = fc + b"\x00\x00" + MAC_A + MAC_B + MAC_B + b"\x10\x00" + (b"\x00\x00" if qos else b"")
    return hdr + b"\xaa\xaa\x03\x00\x00\x00" + struct.pack("!H", 0x86DD if ip[0] >> 4 == 6 else 0x0800) + ip


def radiotap(frame: bytes, fcs: bool = False) -> bytes:
    """A radiotap header with the Flags field (0x10 = the frame ends with an FCS) and a rate."""
    body = frame + (b"\x00\x00\x00\x00" if fcs else b"")
    return struct.pack("<BBHIBB", 0, 0, 10, 0x00000006, 0x10 if fcs else 0x00, 0x6C) + body


def ppi(frame: bytes, dlt: int = 105) -> bytes:
    return struct.pack("<BBHI", 0, 0, 8, dlt) + frame


def chdlc(ip: bytes) -> bytes:
    return struct.pack("!BBH", 0x0F, 0x00, 0x86DD if ip[0] >> 4 == 6 else 0x0800) + ip


def gtp_u(ip: bytes, teid: int = 0x1234, seq: Optional[int] = None) -> bytes:
    """GTPv1-U T-PDU (UDP 2152), with the optional sequence number when given."""
    if seq is None:
        return struct.pack("!BBHI", 0x30, 0xFF, len(ip), teid) + ip
    body = struct.pack("!HBB", seq, 0, 0) + ip
    return struct.pack("!BBHI", 0x32, 0xFF, len(body), teid) + body


def teredo(ip6: bytes, origin: bool = True) -> bytes:
    """Teredo (UDP 3544): an origin indication (type 0, obfuscated port and address), then IPv6."""
    return (struct.pack("!HH4s", 0, 0xFFFF ^ 40000, b"\x3f\x00\x00\x01") if origin else b"") + ip6


def ayiya(ip: bytes) -> bytes:
    """AYIYA (UDP 5072): 16-byte identity (idlen 4), a 20-byte SHA-1 signature (siglen 5), opcode 1."""
    nxt = 41 if ip[0] >> 4 == 6 else 4
    return struct.pack("!BBBBI", 0x41, 0x52, 0x11, nxt, 1_700_000_000) + b"i" * 16 + b"s" * 20 + ip


def erspan(frame: bytes, version: int = 2) -> bytes:
    """The GRE payload of ERSPAN type II (version 1 header) or type III (version 2 header)."""
    if version == 2:
        return struct.pack("!HHI", 0x1000 | 7, 0x0001, 0) + frame
    return struct.pack("!HHIHH", 0x2000 | 7, 0x0001, 0, 0, 0) + frame


def gre_seq(payload: bytes, ptype: int, seq: int = 1) -> bytes:
    """GRE with the sequence-number bit (ERSPAN type II needs it)."""
    return struct.pack("!HHI", 0x1000, ptype, seq) + payload


def gre_pptp(ppp_frame: bytes, call_id: int = 7, seq: int = 1) -> bytes:
    """PPTP's enhanced GRE (version 1, protocol 0x880B): key (length, call id), sequence number."""
    return struct.pack("!HHHHI", 0x3001, 0x880B, len(ppp_frame), call_id, seq) + ppp_frame


def macsec(payload: bytes, ethertype: int = 0x0800) -> bytes:
    """An integrity-only MACsec frame's payload (ethertype 0x88E5): SecTAG with an SCI, then the
    ethertype and the data in clear, then a 16-byte ICV."""
    return struct.pack("!BBI", 0x20, 0, 1) + b"\x02\x00\x00\x00\x00\x01\x00\x01" + struct.pack("!H", ethertype) \
        + payload + b"\x1c" * 16


def nsh(ip: bytes) -> bytes:
    """An MD type 1 Network Service Header (6 words: base, service path, four context words)."""
    nxt = 2 if ip[0] >> 4 == 6 else 1
    return struct.pack("!HBBI", (63 << 6) | 6, 1, nxt, (42 << 8) | 255) + b"\x00" * 16 + ip


def vxlan_gpe(payload: bytes, next_proto: int = 3, vni: int = 9) -> bytes:
    return struct.pack("!BHBI", 0x0C, 0, next_proto, vni << 8) + payload


def pim_register(ip: bytes) -> bytes:
    return struct.pack("!BBHI", 0x21, 0, 0, 0) + ip


def pktap(frame: bytes, dlt: int = 1) -> bytes:
    """macOS PKTAP header (108 bytes, little-endian): length, next type, link type, interface name ..."""
    return struct.pack("<III24s", 108, 1, dlt, b"en0") + b"\x00" * (108 - 36) + frame


def ipv6_jumbo(src: str, dst: str, payload: bytes, nxt: int = 6) -> bytes:
    """An IPv6 jumbogram: payload length 0 and a hop-by-hop Jumbo Payload option (RFC 2675)."""
    hbh = struct.pack("!BBBBI", nxt, 0, 0xC2, 4, 8 + len(payload))
    return struct.pack("!IHBB16s16s", 0x60000000, 0, 0, 64, addr(src), addr(dst)) + hbh + payload


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


def netmon2(records: Iterable, minor: int = 3, network: int = 1) -> bytes:
    """A Network Monitor 2.x file: header, records (2.1+: with the per-frame trailer, 2.3: its UTC
    FILETIME), the frame table at the end. The header's start time is the first frame's, in UTC."""
    import time as _time

    recs = [_rec(r) for r in records]
    t0 = recs[0][0] if recs else 0
    tm = _time.gmtime(t0 // 10**9)
    body, offsets = b"", []
    for ts, frame, orig in recs:
        offsets.append(128 + len(body))
        body += struct.pack("<QII", (ts - t0) // 1000, orig, len(frame)) + frame
        if minor >= 1:
            trailer = struct.pack("<H", network)
            if minor >= 2:
                trailer += struct.pack("<I", 0)
            if minor >= 3:
                trailer += struct.pack("<QB", ts // 100 + 116_444_736_000_000_000, 0)
            body += trailer
    table = struct.pack(f"<{len(offsets)}I", *offsets)
    header = b"GMBU" + struct.pack("<BBH8HII", minor, 2, 1, tm.tm_year, tm.tm_mon, 0, tm.tm_mday, tm.tm_hour,
                                   tm.tm_min, tm.tm_sec, (t0 // 10**6) % 1000, 128 + len(body), len(table))
    return header + b"\x00" * (128 - len(header)) + body + table


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

"""Frame bytes → the transport events the stream table needs, in two paths that agree.

`plain_frame` handles the common case (Ethernet/SLL/SLL2/RAW → IPv4/IPv6 → TCP/UDP, no tunnel,
no fragment, no extension header, lengths that fit the frame's length on the wire) with
`struct.unpack_from` on the raw bytes and hands it to the stream table at once, or says the frame
needs `general.decode_frame`, the general path (every other link type and encapsulation, fragments,
ICMP errors, tunnels), which returns a list of events. Both build the same tuples, so the stream
table cannot tell which path ran.

Events (addresses are packed bytes, 4 or 16 long):
  (EV_TCP, src, dst, sport, dport, seq, ack, flags, window, seglen, wscale, encap)
      seglen comes from the IP length (snaplen-cut frames keep tshark's tcp.len);
      wscale is the SYN's window-scale shift, -1 when absent (only meaningful on SYNs).
  (EV_UDP, src, dst, sport, dport, payload_len, encap)
      payload_len is tshark's udp.length - 8 (a length below 8 gives no event: no udp.stream).
  (EV_TCP_QUOTE, src, dst, sport, dport, seq, ack, flags, window, encap)
  (EV_UDP_QUOTE, src, dst, sport, dport, payload_len, encap)
      a TCP/UDP header quoted in an ICMP error: tshark puts the ICMP frame into that header's
      stream (`tcp.stream` / `udp.stream`), with the quoted flags, window and udp.length; measured
      with 4.0.17, a TCP quote needs 16 bytes of header (through the window), a UDP one 8 bytes and
      a length of at least 8. A TCP header the frame cuts short (16 bytes or more, but less than
      its header length: tshark's "short segment") is an EV_TCP_QUOTE too: in the stream, no
      tcp.len, no analysis.
"""
from __future__ import annotations

import socket
import struct

from kubectl_whose.analysis.pcap.linktypes import PLAIN

EV_TCP, EV_UDP, EV_TCP_QUOTE, EV_UDP_QUOTE = 0, 1, 2, 3

# The UDP ports the general path decodes a tunnel on (tshark 4.0's defaults, plus 8472, Linux's and
# flannel's VXLAN port, which tshark needs `-d udp.port==8472,vxlan` for). The plain decoders decline
# them; native/decode.h has the same list, tests hold it to this one.
VXLAN_PORTS = (4789, 8472)
GENEVE_PORT, GTP_U_PORT, TEREDO_PORT, AYIYA_PORT, GRE_UDP_PORT = 6081, 2152, 3544, 5072, 4754  # 4754: RFC 8086
VXLAN_GPE_PORT = 4790
TUNNEL_PORTS = frozenset(VXLAN_PORTS + (GENEVE_PORT, GTP_U_PORT, TEREDO_PORT, AYIYA_PORT, GRE_UDP_PORT,
                                        VXLAN_GPE_PORT))

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD

_TCP = struct.Struct("!HHIIHH").unpack_from  # sport dport seq ack off/flags window
_UDP = struct.Struct("!HHH").unpack_from
_IP4 = struct.Struct("!BxHxxHxB").unpack_from  # ver/ihl, total length, flags/frag, proto
_IP4_ID = struct.Struct("!BxHHHxB").unpack_from  # ... with the identification field
_IP6 = struct.Struct("!4xHB").unpack_from  # payload length, next header
_IP4_PLAIN = struct.Struct("!BxHxxHxB2x4s4s").unpack_from  # ver/ihl, total, flags/frag, proto, src, dst
_IP6_PLAIN = struct.Struct("!4xHBx16s16s").unpack_from  # payload length, next header, src, dst
# the same two headers with the first 20 bytes after them, read as TCP (UDP: sport, dport, length in `seq`)
_IP4_L4 = struct.Struct("!2xHxxHxB2x4s4sHHIIHH").unpack_from
_IP6_L4 = struct.Struct("!4xHBx16s16sHHIIHH").unpack_from


def plain_frame(buf, start: int, stop: int, ip_at: int, et_at: int, version: int, frame_no: int, ts: int,
                orig_len: int, tcp_packet, udp_packet) -> bool:
    """Decode a plain TCP/UDP frame in buf[start:stop] straight into a stream table; False: it is not plain,
    take the general path.

    (ip_at, et_at, version) is the link type's `linktypes.PLAIN` entry. A plain frame carries IPv4/IPv6 at
    that offset, is not a fragment, and has one TCP/UDP header and no tunnel; `native/decode.h` makes the
    same choice. `tcp_packet`/`udp_packet` are the table's (`StreamEngine`), or None when that protocol is
    not wanted (the frame still counts as handled). `buf` may be the reader's whole buffer: nothing is
    copied but the addresses, and no event tuple is built (this runs once per packet)."""
    off = start + ip_at
    if stop - off < 20:
        return False
    if et_at >= 0:
        ethertype = (buf[start + et_at] << 8) | buf[start + et_at + 1]
        version = 4 if ethertype == ETH_IPV4 else 6 if ethertype == ETH_IPV6 else -1
    elif not version:
        version = buf[off] >> 4
    if version == 4:
        if buf[off] == 0x45 and stop - off >= 40:
            # no IP options, the usual case: the IP header and the first 20 bytes after it in one unpack
            total, frag, proto, src, dst, sport, dport, seq, ack, offflags, win = _IP4_L4(buf, off)
            ihl = 20
        else:
            vihl, total, frag, proto, src, dst = _IP4_PLAIN(buf, off)
            ihl = (vihl & 15) * 4
            if vihl >> 4 != 4 or ihl < 20 or stop - off < ihl:
                return False
            sport = None
        if frag & 0x3FFF or total < ihl or total > orig_len - ip_at:
            return False
        l4 = off + ihl
        l4len = total - ihl
    elif version == 6:
        if stop - off < 40 or buf[off] >> 4 != 6:
            return False
        if stop - off >= 60:
            l4len, proto, src, dst, sport, dport, seq, ack, offflags, win = _IP6_L4(buf, off)
        else:
            l4len, proto, src, dst = _IP6_PLAIN(buf, off)
            sport = None
        if l4len == 0 or l4len > orig_len - ip_at - 40:
            return False
        l4 = off + 40
    else:
        return False
    if proto == 6:
        if sport is None:
            if stop < l4 + 16:
                return False
            sport, dport, seq, ack, offflags, win = _TCP(buf, l4)
        hlen = (offflags >> 12) * 4
        if hlen < 20 or l4len < hlen:
            return False
        if tcp_packet is not None:
            flags = offflags & 0x0FFF
            tcp_packet(frame_no, ts, orig_len, src, dst, sport, dport, seq, ack, flags, win, l4len - hlen,
                       wscale_option(buf, l4 + 20, min(l4 + hlen, stop)) if flags & 2 else -1, None)
        return True
    if proto == 17:
        if sport is None:
            if stop < l4 + 8:
                return False
            sport, dport, ulen = _UDP(buf, l4)
        else:
            ulen = seq >> 16  # read as TCP's sequence number: UDP's length is its first 16 bits
        if ulen < 8 or l4len < 8 or sport in TUNNEL_PORTS or dport in TUNNEL_PORTS:
            return False  # tshark gives a length below 8 no stream; a tunnel is the general path's
        if udp_packet is not None:
            udp_packet(frame_no, ts, orig_len, src, dst, sport, dport, ulen - 8, None)
        return True
    return False


def decode_fast(linktype: int, frame: bytes, orig_len: int = -1):
    """What `plain_frame` hands the table for a whole frame, as one event tuple (None: not plain); the
    frame was as long on the wire as captured unless `orig_len` says."""
    lt = PLAIN.get(linktype)
    got = []
    tcp = lambda _f, _t, _l, *fields: got.append((EV_TCP,) + fields)  # noqa: E731
    udp = lambda _f, _t, _l, *fields: got.append((EV_UDP,) + fields)  # noqa: E731
    wire = len(frame) if orig_len < 0 else orig_len
    if lt is None or not plain_frame(frame, 0, len(frame), *lt, 0, 0, wire, tcp, udp):
        return None
    return got[0]


def wscale_option(frame, pos: int, stop: int) -> int:
    """The window-scale shift in TCP options frame[pos:stop], -1 if absent (stop within the frame)."""
    while pos < stop:
        kind = frame[pos]
        if kind == 0:
            break
        if kind == 1:
            pos += 1
            continue
        if pos + 1 >= stop:
            break
        olen = frame[pos + 1]
        if olen < 2:
            break
        if kind == 3 and olen == 3 and pos + 2 < stop:
            return frame[pos + 2]
        pos += olen
    return -1


_HOSTS: dict = {}  # packed address -> "ip:" / "[ip]:" prefix; captures have few distinct hosts


def format_endpoint(addr: bytes, port: int) -> str:
    prefix = _HOSTS.get(addr)
    if prefix is None:
        if len(_HOSTS) > 65536:
            _HOSTS.clear()
        text = socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)
        prefix = _HOSTS[addr] = f"[{text}]:" if len(addr) == 16 else f"{text}:"
    return f"{prefix}{port}"

"""Frame bytes → the transport events the stream table needs, in two paths that agree.

`plain_frame` handles the common case (Ethernet/SLL/SLL2/RAW → IPv4/IPv6 → TCP/UDP, no tunnel,
no fragment, no extension header) with `struct.unpack_from` on the raw bytes and hands it to the
stream table at once, or says the frame needs `decode_frame`, the general path (VLAN tags, NULL/LOOP,
IPv6 extension headers, fragments, ICMP errors, VXLAN/Geneve/IP-in-IP/GRE), which returns a list
of events. Both build the same tuples, so the stream table cannot tell which path ran.

Events (addresses are packed bytes, 4 or 16 long):
  (EV_TCP, src, dst, sport, dport, seq, ack, flags, window, seglen, wscale, encap)
      seglen comes from the IP length (snaplen-cut frames keep tshark's tcp.len);
      wscale is the SYN's window-scale shift, -1 when absent (only meaningful on SYNs).
  (EV_UDP, src, dst, sport, dport, payload_len, encap)
  (EV_TCP_QUOTE, src, dst, sport, dport, seq, flags) / (EV_UDP_QUOTE, src, dst, sport, dport)
      a TCP/UDP header quoted in an ICMP error: tshark gives it a stream index (a new pair, or a
      quoted SYN that reuses a pair) but does not count the frame in any stream (research §1.5).
"""
from __future__ import annotations

import socket
import struct
from typing import List, Optional, Tuple

from kubectl_whose.analysis.pcap.fragments import FrameEvents, Reassembly
from kubectl_whose.analysis.pcap.linktypes import PLAIN

EV_TCP, EV_UDP, EV_TCP_QUOTE, EV_UDP_QUOTE = 0, 1, 2, 3

VXLAN_PORTS = (4789, 8472)  # 8472 is the Linux/flannel/Cilium default; tshark 4.0 ignores it
GENEVE_PORT = 6081
TUNNEL_PORTS = frozenset(VXLAN_PORTS + (GENEVE_PORT,))

ETH_IPV4, ETH_IPV6, ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD, ETH_TEB = 0x0800, 0x86DD, 0x8100, 0x88A8, 0x9100, 0x6558
_VLAN_TYPES = (ETH_VLAN, ETH_QINQ, ETH_QINQ_OLD)
_IPV6_EXT = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, dest opts, mobility, HIP, shim6
_ICMP4_ERRORS = (3, 4, 5, 11, 12)
_ICMP6_ERRORS = (1, 2, 3, 4)
MAX_TUNNEL_DEPTH = 4

_H = struct.Struct("!H").unpack_from
_HH = struct.Struct("!HH").unpack_from
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
_LE_I = struct.Struct("<I").unpack_from
_BE_I = struct.Struct("!I").unpack_from


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
        if frag & 0x3FFF or total < ihl:
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
        if l4len == 0:
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
        if sport in TUNNEL_PORTS or dport in TUNNEL_PORTS:
            return False
        if udp_packet is not None:
            udp_packet(frame_no, ts, orig_len, src, dst, sport, dport, (ulen if 8 <= ulen <= l4len else l4len) - 8,
                       None)
        return True
    return False


def decode_fast(linktype: int, frame: bytes):
    """What `plain_frame` hands the table for a whole frame, as one event tuple (None: not plain)."""
    lt = PLAIN.get(linktype)
    got = []
    tcp = lambda _f, _t, _l, *fields: got.append((EV_TCP,) + fields)  # noqa: E731
    udp = lambda _f, _t, _l, *fields: got.append((EV_UDP,) + fields)  # noqa: E731
    if lt is None or not plain_frame(frame, 0, len(frame), *lt, 0, 0, 0, tcp, udp):
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


# --- the general path --------------------------------------------------------------------------

class Malformed(Exception):
    """A header that cannot be decoded; the frame still counts, it joins no stream."""


def decode_frame(linktype: int, frame: bytes, frags: Optional[Reassembly] = None) -> List[tuple]:
    """Every transport event in a frame (outer tunnel UDP first, then the inner packet).

    With `frags`, IP fragments are reassembled as tshark does (the transport header counts in the
    frame completing the datagram); without it, only a first fragment's header is decoded."""
    events = FrameEvents(frags)
    off, ethertype = _link(linktype, frame)
    if off >= 0:
        _l3(ethertype, frame, off, None, events, 0)
    return events


def _link(linktype: int, frame: bytes) -> Tuple[int, int]:
    """(offset of the L3 header, ethertype) or (-1, 0) for frames that carry no IP."""
    n = len(frame)
    plain = PLAIN.get(linktype)
    if plain is not None:
        ip_at, et_at, version = plain
        if et_at >= 0:
            return _vlan_skip(frame, ip_at, _H(frame, et_at)[0]) if n >= ip_at else (-1, 0)
        if not version:
            version = frame[0] >> 4 if n else 0
        return (0, ETH_IPV4) if version == 4 else (0, ETH_IPV6) if version == 6 else (-1, 0)
    if linktype in (0, 108):
        if n < 4:
            return -1, 0
        if linktype == 108:
            family = _BE_I(frame, 0)[0]
        else:  # DLT_NULL stores the AF in the capturing host's byte order
            family = _LE_I(frame, 0)[0]
            if family > 0xFFFF:
                family = _BE_I(frame, 0)[0]
        if family == 2:
            return 4, ETH_IPV4
        if family in (10, 24, 28, 30):
            return 4, ETH_IPV6
        return -1, 0
    return -1, 0


def _ether_payload(frame: bytes, off: int) -> Tuple[int, int]:
    if len(frame) < off + 14:
        return -1, 0
    return _vlan_skip(frame, off + 14, _H(frame, off + 12)[0])


def _vlan_skip(frame: bytes, off: int, ethertype: int) -> Tuple[int, int]:
    while ethertype in _VLAN_TYPES:
        if len(frame) < off + 4:
            return -1, 0
        ethertype = _H(frame, off + 2)[0]
        off += 4
    return off, ethertype


def _ip_str(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


def _join(encap: Optional[str], label: str) -> str:
    return label if encap is None else f"{encap} / {label}"


def _l3(ethertype: int, frame: bytes, off: int, encap: Optional[str], events: List[tuple], depth: int) -> None:
    if ethertype == ETH_IPV4:
        _ipv4(frame, off, encap, events, depth)
    elif ethertype == ETH_IPV6:
        _ipv6(frame, off, encap, events, depth)


def _ipv4(frame: bytes, off: int, encap, events, depth) -> None:
    if len(frame) < off + 20 or frame[off] >> 4 != 4:
        return
    vihl, total, ident, frag, proto = _IP4_ID(frame, off)
    ihl = (vihl & 15) * 4
    if ihl < 20 or total < ihl or len(frame) < off + ihl:
        return
    src, dst = frame[off + 12:off + 16], frame[off + 16:off + 20]
    if frag & 0x3FFF:
        offset = (frag & 0x1FFF) * 8
        if events.frags is None:
            if offset:  # a later fragment: no transport header in it
                return
        else:
            head = frame[off + ihl:off + total] if offset == 0 else None
            done = events.frags.add((src, dst, proto, ident), offset, total - ihl, bool(frag & 0x2000), head)
            if done is not None:
                _l4(proto, done[0], 0, done[1], src, dst, encap, events, depth)
            return
    _l4(proto, frame, off + ihl, total - ihl, src, dst, encap, events, depth)


def _ipv6(frame: bytes, off: int, encap, events, depth) -> None:
    if len(frame) < off + 40 or frame[off] >> 4 != 6:
        return
    plen, nxt = _IP6(frame, off)
    src, dst = frame[off + 8:off + 24], frame[off + 24:off + 40]
    pos = off + 40
    left = plen
    while True:
        if nxt in _IPV6_EXT or nxt == 51:
            if len(frame) < pos + 2:
                return
            hlen = (frame[pos + 1] + 2) * 4 if nxt == 51 else (frame[pos + 1] + 1) * 8
            nxt = frame[pos]
        elif nxt == 44:  # fragment header
            if len(frame) < pos + 8:
                return
            field, ident = struct.unpack_from("!HI", frame, pos + 2)
            offset = field & 0xFFF8
            nxt = frame[pos]
            if events.frags is not None and (offset or field & 1):
                length = left - 8
                head = frame[pos + 8:pos + 8 + length] if offset == 0 else None
                done = events.frags.add((src, dst, nxt, ident), offset, length, bool(field & 1), head)
                if done is not None:
                    _l4(nxt, done[0], 0, done[1], src, dst, encap, events, depth)
                return
            if offset:
                return  # not the first fragment
            hlen = 8
        else:
            break
        pos += hlen
        left -= hlen
        if left < 0:
            return
    _l4(nxt, frame, pos, left, src, dst, encap, events, depth)


def _l4(proto: int, frame: bytes, l4: int, l4len: int, src: bytes, dst: bytes, encap, events, depth) -> None:
    n = len(frame)
    if proto == 6:
        if n < l4 + 16:
            return
        sport, dport, seq, ack, offflags, win = _TCP(frame, l4)
        hlen = (offflags >> 12) * 4
        if hlen < 20 or l4len < hlen:
            return
        flags = offflags & 0x0FFF
        wscale = wscale_option(frame, l4 + 20, min(l4 + hlen, n)) if flags & 2 else -1
        events.append((EV_TCP, src, dst, sport, dport, seq, ack, flags, win, l4len - hlen, wscale, encap))
    elif proto == 17:
        if n < l4 + 8:
            return
        sport, dport, ulen = _UDP(frame, l4)
        events.append((EV_UDP, src, dst, sport, dport, (ulen if 8 <= ulen <= l4len else l4len) - 8, encap))
        if depth < MAX_TUNNEL_DEPTH:
            _udp_tunnel(frame, l4 + 8, sport, dport, src, dst, encap, events, depth)
    elif proto in (4, 41):
        if depth < MAX_TUNNEL_DEPTH:
            label = _join(encap, f"ipip {_ip_str(src)}→{_ip_str(dst)}")
            (_ipv4 if proto == 4 else _ipv6)(frame, l4, label, events, depth + 1)
    elif proto == 47:
        if depth < MAX_TUNNEL_DEPTH:
            _gre(frame, l4, src, dst, encap, events, depth)
    elif proto == 1:
        if n >= l4 + 8 and frame[l4] in _ICMP4_ERRORS:
            _quoted(frame, l4 + 8, events)
    elif proto == 58:
        if n >= l4 + 8 and frame[l4] in _ICMP6_ERRORS:
            _quoted(frame, l4 + 8, events)


def _udp_tunnel(frame: bytes, pos: int, sport: int, dport: int, src: bytes, dst: bytes, encap, events, depth) -> None:
    # tshark tries the lower port first; a tunnel port on either side selects the decoder
    ports = sorted((sport, dport))
    port = next((p for p in ports if p in TUNNEL_PORTS), None)
    if port is None or len(frame) < pos + 8:
        return
    if port == GENEVE_PORT:
        optlen = (frame[pos] & 0x3F) * 4
        ptype = _H(frame, pos + 2)[0]
        vni = int.from_bytes(frame[pos + 4:pos + 7], "big")
        inner = pos + 8 + optlen
        label = _join(encap, f"geneve {_ip_str(src)}→{_ip_str(dst)} vni {vni}")
        if ptype == ETH_TEB:
            inner, ptype = _ether_payload(frame, inner)
            if inner < 0:
                return
        _l3(ptype, frame, inner, label, events, depth + 1)
        return
    vni = int.from_bytes(frame[pos + 4:pos + 7], "big")
    label = _join(encap, f"vxlan {_ip_str(src)}→{_ip_str(dst)} vni {vni}")
    inner, ptype = _ether_payload(frame, pos + 8)
    if inner >= 0:
        _l3(ptype, frame, inner, label, events, depth + 1)


def _gre(frame: bytes, pos: int, src: bytes, dst: bytes, encap, events, depth) -> None:
    if len(frame) < pos + 4:
        return
    fl, ptype = _HH(frame, pos)
    if fl & 7:  # version 1 is PPTP's enhanced GRE: no IP inside
        return
    pos += 4 + (4 if fl & 0x8000 else 0) + (4 if fl & 0x2000 else 0) + (4 if fl & 0x1000 else 0)
    label = _join(encap, f"gre {_ip_str(src)}→{_ip_str(dst)}")
    if ptype == ETH_TEB:
        pos, ptype = _ether_payload(frame, pos)
        if pos < 0:
            return
    _l3(ptype, frame, pos, label, events, depth + 1)


def _quoted(frame: bytes, off: int, events: List[tuple]) -> None:
    """The packet an ICMP error quotes: only its stream identity matters (research §1.5)."""
    n = len(frame)
    if n < off + 20:
        return
    version = frame[off] >> 4
    if version == 4:
        ihl = (frame[off] & 15) * 4
        proto = frame[off + 9]
        if ihl < 20 or _H(frame, off + 6)[0] & 0x1FFF:
            return
        src, dst, l4 = frame[off + 12:off + 16], frame[off + 16:off + 20], off + ihl
    elif version == 6:
        if n < off + 40:
            return
        proto = frame[off + 6]
        src, dst, l4 = frame[off + 8:off + 24], frame[off + 24:off + 40], off + 40
    else:
        return
    # tshark looks the conversation up after reading the TCP flags (bytes 12-13)
    if proto == 6 and n >= l4 + 14:
        sport, dport, seq = struct.unpack_from("!HHI", frame, l4)
        flags = _H(frame, l4 + 12)[0] & 0x0FFF
        events.append((EV_TCP_QUOTE, src, dst, sport, dport, seq, flags))
    elif proto == 17 and n >= l4 + 8:
        sport, dport = _HH(frame, l4)
        events.append((EV_UDP_QUOTE, src, dst, sport, dport))


_HOSTS: dict = {}  # packed address -> "ip:" / "[ip]:" prefix; captures have few distinct hosts


def format_endpoint(addr: bytes, port: int) -> str:
    prefix = _HOSTS.get(addr)
    if prefix is None:
        if len(_HOSTS) > 65536:
            _HOSTS.clear()
        text = _ip_str(addr)
        prefix = _HOSTS[addr] = f"[{text}]:" if len(addr) == 16 else f"{text}:"
    return f"{prefix}{port}"

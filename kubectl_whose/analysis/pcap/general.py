"""The general decoder: every transport event in a frame the plain decoders decline.

`analysis.pcap.link` finds the IP packet under whatever link layers the frame has; from there this
module follows tshark 4.0's rules: IPv6 extension headers, IP fragments reassembled as tshark
reassembles them (`fragments`), headers quoted in ICMP errors, and the tunnels tshark decodes by
default: IP-in-IP, GRE (with ERSPAN I-III, PPTP's enhanced GRE and Aruba's 802.11 in GRE),
GRE over UDP 4754, VXLAN 4789 (and 8472, which tshark needs `-d` for), Geneve 6081, GTP-U 2152,
Teredo 3544 and AYIYA 5072. Each tunnel labels the streams inside it ("vxlan 10.0.0.1→10.0.0.2 vni 7").

Lengths are tshark's: a transport's length is the IP datagram's, cut to the frame's *reported*
length (what the wire had, not what the snaplen kept); a total length of 0 is TCP segmentation
offload, the rest of the frame. Events are documented in `analysis.pcap.decode`.
"""
from __future__ import annotations

import socket
import struct
from typing import List, Optional

from dpkt import gre as dpkt_gre

from kubectl_whose.analysis.pcap import link
from kubectl_whose.analysis.pcap.decode import (AYIYA_PORT, EV_TCP, EV_TCP_QUOTE, EV_UDP, EV_UDP_QUOTE, GENEVE_PORT,
                                                 GRE_UDP_PORT, GTP_U_PORT, TEREDO_PORT, TUNNEL_PORTS, VXLAN_GPE_PORT,
                                                 VXLAN_PORTS, wscale_option)
from kubectl_whose.analysis.pcap.fragments import FrameEvents, Reassembly
from kubectl_whose.analysis.pcap.proto.ayiya import AYIYA, OP_FORWARD
from kubectl_whose.analysis.pcap.proto.erspan import ERSPAN2, ERSPAN3, GRE_ERSPAN_II, GRE_ERSPAN_III
from kubectl_whose.analysis.pcap.proto.geneve import Geneve
from kubectl_whose.analysis.pcap.proto.gtp import T_PDU, GTPv1
from kubectl_whose.analysis.pcap.proto.pim import IP_PROTO_PIM, PIM, PIM_REGISTER
from kubectl_whose.analysis.pcap.proto.teredo import Teredo
from kubectl_whose.analysis.pcap.proto.vxlan import VXLAN
from kubectl_whose.analysis.pcap.proto.vxlan_gpe import VXLANGPE

ETH_IPV4, ETH_IPV6 = link.ETH_IPV4, link.ETH_IPV6
GRE_ARUBA = range(0x8200, 0x8360, 0x10)  # Aruba access points: 802.11 frames in GRE (tshark's packet-gre.c)
GRE_WCCP = 0x883E  # Cisco WCCP redirection: IPv4, after a 4-byte redirect header unless IPv4 comes at once
_IPV6_EXT = (0, 43, 60, 135, 139, 140)  # hop-by-hop, routing, dest opts, mobility, HIP, shim6
_ICMP4_ERRORS = (3, 4, 5, 11, 12)
_ICMP6_ERRORS = (1, 2, 3, 4)
MAX_TUNNEL_DEPTH = 4
TCP_QUOTE_MIN = 16  # bytes of a TCP header tshark needs to find the stream (through the window)

_H = struct.Struct("!H").unpack_from
_TCP = struct.Struct("!HHIIHH").unpack_from  # sport dport seq ack off/flags window
_UDP = struct.Struct("!HHH").unpack_from
_IP4_ID = struct.Struct("!BxHHHxB").unpack_from  # ver/ihl, total length, identification, flags/frag, proto
_IP6 = struct.Struct("!4xHB").unpack_from  # payload length, next header
_VXLAN = struct.Struct("!B3xI").unpack_from  # flags, VNI << 8 (proto.vxlan.VXLAN's layout)


def decode_frame(linktype: int, frame: bytes, frags: Optional[Reassembly] = None,
                 orig_len: Optional[int] = None) -> List[tuple]:
    """Every transport event in a frame (outer tunnel UDP first, then the inner packet).

    With `frags`, IP fragments are reassembled as tshark does (the transport header counts in the
    frame completing the datagram); without it, only a first fragment's header is decoded.
    `orig_len` (the frame's length on the wire) lets a snaplen-cut frame keep tshark's lengths."""
    events = FrameEvents(frags)
    found = link.network(linktype, frame)
    if found is not None:
        ethertype, packet = found
        cut = max(orig_len - len(frame), 0) if orig_len is not None else 0
        try:
            _l3(ethertype, packet, 0, len(packet) + cut, None, events, 0)
        except link.DECODE_ERRORS:  # a header that lies about its length: the frame still counts
            pass
    return events


def _ip_str(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


_ENDS: dict = {}  # (src, dst) -> "src→dst": a tunnel's label is needed per frame, its text rarely changes


def _ends(src: bytes, dst: bytes) -> str:
    text = _ENDS.get((src, dst))
    if text is None:
        if len(_ENDS) > 65536:
            _ENDS.clear()
        text = _ENDS[(src, dst)] = f"{_ip_str(src)}→{_ip_str(dst)}"
    return text


def _join(encap: Optional[str], label: str) -> str:
    return label if encap is None else f"{encap} / {label}"


def _l3(ethertype: int, frame: bytes, off: int, end: int, encap, events, depth: int) -> None:
    """`end`: where the frame's reported bytes end (beyond len(frame) when the snaplen cut it)."""
    if ethertype == ETH_IPV4:
        _ipv4(frame, off, end, encap, events, depth)
    elif ethertype == ETH_IPV6:
        _ipv6(frame, off, end, encap, events, depth)


def _l2(found, encap, events, depth: int, cut: int = 0) -> None:
    """The IP packet a tunnel's link layer gave; `cut`: bytes of it missing from the capture."""
    if found is not None:
        ethertype, packet = found
        _l3(ethertype, packet, 0, len(packet) + cut, encap, events, depth)


def _ipv4(frame: bytes, off: int, end: int, encap, events, depth) -> None:
    if len(frame) < off + 20 or frame[off] >> 4 != 4:
        return
    vihl, total, ident, frag, proto = _IP4_ID(frame, off)
    ihl = (vihl & 15) * 4
    reported = end - off
    if total == 0:  # TCP segmentation offload: tshark takes the rest of the frame
        total = reported
    if ihl < 20 or total < ihl or len(frame) < off + ihl:
        return
    length = min(total, reported) - ihl
    src, dst = frame[off + 12:off + 16], frame[off + 16:off + 20]
    if frag & 0x3FFF:
        offset = (frag & 0x1FFF) * 8
        if events.frags is None:
            if offset:  # a later fragment: no transport header in it
                return
        elif len(frame) < off + total:
            # tshark reassembles only fragments captured whole; a cut first fragment gets its
            # transport header read, as a fragment (a TCP header joins its stream without tcp.len)
            if not offset:
                _l4(proto, frame, off + ihl, length, src, dst, encap, events, depth, fragment=True)
            return
        else:
            head = frame[off + ihl:off + ihl + length] if offset == 0 else None
            done = events.frags.add((src, dst, proto, ident), offset, total - ihl, bool(frag & 0x2000), head)
            if done is not None:
                _l4(proto, done[0], 0, done[1], src, dst, encap, events, depth)
            return
    _l4(proto, frame, off + ihl, length, src, dst, encap, events, depth)


def _ipv6(frame: bytes, off: int, end: int, encap, events, depth) -> None:
    if len(frame) < off + 40 or frame[off] >> 4 != 6:
        return
    plen, nxt = _IP6(frame, off)
    src, dst = frame[off + 8:off + 24], frame[off + 24:off + 40]
    pos = off + 40
    if plen == 0 and nxt == 0:  # a jumbogram (RFC 2675): the length is a hop-by-hop option's
        plen = _jumbo_length(frame, pos)
    left = min(plen, end - pos)
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
                if len(frame) < pos + 8 + length:  # cut: tshark neither reassembles nor reads it (unlike IPv4)
                    return
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


def _jumbo_length(frame: bytes, pos: int) -> int:
    """The Jumbo Payload option (type 0xC2, 4 bytes) of the hop-by-hop header at pos, else 0."""
    if len(frame) < pos + 2:
        return 0
    stop = min(pos + (frame[pos + 1] + 1) * 8, len(frame))
    opt = pos + 2
    while opt + 1 < stop:
        kind = frame[opt]
        if kind == 0:  # Pad1
            opt += 1
            continue
        if kind == 0xC2 and frame[opt + 1] == 4 and opt + 6 <= stop:
            jumbo = struct.unpack_from("!I", frame, opt + 2)[0]
            return jumbo if jumbo > 0xFFFF else 0  # below 65536 it is no jumbogram (tshark ignores it)
        opt += 2 + frame[opt + 1]
    return 0


def _l4(proto: int, frame: bytes, l4: int, l4len: int, src: bytes, dst: bytes, encap, events, depth,
        fragment: bool = False) -> None:
    n = len(frame)
    if proto == 6:
        if n < l4 + TCP_QUOTE_MIN or l4len < TCP_QUOTE_MIN:
            return
        sport, dport, seq, ack, offflags, win = _TCP(frame, l4)
        hlen = (offflags >> 12) * 4
        flags = offflags & 0x0FFF
        if hlen < 20:
            return
        if l4len < hlen or fragment:  # tshark's "short segment", or a fragment: no tcp.len, no analysis
            events.append((EV_TCP_QUOTE, src, dst, sport, dport, seq, ack, flags, win, encap))
            return
        wscale = wscale_option(frame, l4 + 20, min(l4 + hlen, n)) if flags & 2 else -1
        events.append((EV_TCP, src, dst, sport, dport, seq, ack, flags, win, l4len - hlen, wscale, encap))
    elif proto == 17:
        if n < l4 + 8 or l4len < 8:
            return
        sport, dport, ulen = _UDP(frame, l4)
        if ulen == 0 and len(src) == 16:  # a UDP jumbogram (RFC 2675): the length is IPv6's
            ulen = l4len
        if ulen < 8:  # tshark: "bad length", no stream
            return
        events.append((EV_UDP, src, dst, sport, dport, ulen - 8, encap))
        if depth < MAX_TUNNEL_DEPTH:
            # a reassembled datagram keeps only its first fragment's bytes: the rest is `cut`
            _udp_tunnel(frame[l4 + 8:l4 + l4len], max(l4 + l4len - n, 0), sport, dport, src, dst, encap, events,
                        depth)
    elif proto in (4, 41):
        if depth < MAX_TUNNEL_DEPTH:
            label = _join(encap, f"ipip {_ends(src, dst)}")
            (_ipv4 if proto == 4 else _ipv6)(frame, l4, l4 + l4len, label, events, depth + 1)
    elif proto == 47:
        if depth < MAX_TUNNEL_DEPTH:
            _gre(frame[l4:l4 + l4len], max(l4 + l4len - n, 0), src, dst, encap, events, depth)
    elif proto == IP_PROTO_PIM:
        if depth < MAX_TUNNEL_DEPTH and n >= l4 + 8:
            _pim(frame[l4:l4 + l4len], src, dst, encap, events, depth)
    elif proto == 1:
        if n >= l4 + 8 and frame[l4] in _ICMP4_ERRORS:
            _quoted(frame, l4 + 8, encap, events)
    elif proto == 58:
        if n >= l4 + 8 and frame[l4] in _ICMP6_ERRORS:
            _quoted(frame, l4 + 8, encap, events)


def _udp_tunnel(payload: bytes, cut: int, sport: int, dport: int, src: bytes, dst: bytes, encap, events,
                depth) -> None:
    # tshark tries the lower port first; a tunnel port on either side selects the decoder
    port = next((p for p in sorted((sport, dport)) if p in TUNNEL_PORTS), None)
    if port is None:
        return
    ends = _ends(src, dst)
    depth += 1
    try:
        if port in VXLAN_PORTS:
            # the overlay of most clusters, every frame of a node's capture: its 8 bytes are read with
            # the struct of proto.vxlan.VXLAN's header, not through a dpkt object (a third of the time)
            _flags, vni = _VXLAN(payload)
            _l2(link.ethernet(payload[VXLAN.__hdr_len__:]), _join(encap, f"vxlan {ends} vni {vni >> 8}"), events,
                depth, cut)
        elif port == GENEVE_PORT:
            header = Geneve(payload)
            _l2(link.by_ethertype(header.type, header.data), _join(encap, f"geneve {ends} vni {header.vni}"),
                events, depth, cut)
        elif port == GTP_U_PORT:
            header = GTPv1(payload)
            if header.type == T_PDU:
                _l2(link.by_ethertype(_version_ethertype(header.data), header.data),
                    _join(encap, f"gtp {ends} teid {header.teid}"), events, depth, cut)
        elif port == TEREDO_PORT:
            inner = Teredo(payload).data
            if inner[:1] and inner[0] >> 4 == 6:
                _l3(ETH_IPV6, inner, 0, len(inner) + cut, _join(encap, f"teredo {ends}"), events, depth)
        elif port == AYIYA_PORT:
            header = AYIYA(payload)
            if header.opcode == OP_FORWARD and header.next_header in (4, 41):
                _l3(ETH_IPV4 if header.next_header == 4 else ETH_IPV6, header.data, 0, len(header.data) + cut,
                    _join(encap, f"ayiya {ends}"), events, depth)
        elif port == GRE_UDP_PORT:
            _gre(payload, cut, src, dst, encap, events, depth - 1)
        elif port == VXLAN_GPE_PORT:
            header = VXLANGPE(payload)
            _l2(link.by_next_protocol(header.next_proto, header.data),
                _join(encap, f"vxlan-gpe {ends} vni {header.vni}"), events, depth, cut)
    except link.DECODE_ERRORS:
        return  # a tunnel header cut short: the carrier's UDP event stands


def _version_ethertype(packet: bytes) -> int:
    version = packet[0] >> 4 if packet else 0
    return ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else -1


def _gre(packet: bytes, cut: int, src: bytes, dst: bytes, encap, events, depth) -> None:
    """GRE by dpkt (version 0, and PPTP's version 1 with its key and acknowledgment fields), then
    what its protocol type names. dpkt decodes the payload too; its header length tells where the
    payload's own bytes begin."""
    try:
        header = dpkt_gre.GRE(packet)
        if header.v > 1:
            return
        size = header.__hdr_len__ + struct.calcsize("!" + "".join(header.opt_fields_fmts()[1]))
        size += sum(len(sre) for sre in header.sre)
        payload = packet[size:]
        ptype = header.p
        ends = _ends(src, dst)
        if ptype == GRE_ERSPAN_II:
            if header.flags & dpkt_gre.GRE_SP:  # type II has a sequence number and a header; type I neither
                payload = ERSPAN2(payload).data
            found, label = link.ethernet(payload), f"erspan {ends}"
        elif ptype == GRE_ERSPAN_III:
            found, label = link.ethernet(ERSPAN3(payload).data), f"erspan {ends}"
        elif ptype in GRE_ARUBA:
            found, label = link.wlan(payload), f"gre {ends}"
        elif ptype == GRE_WCCP:
            found, label = (ETH_IPV4, payload if payload[:1] and payload[0] >> 4 == 4 else payload[4:]), f"gre {ends}"
        else:
            found, label = link.by_ethertype(ptype, payload), f"gre {ends}"
    except link.DECODE_ERRORS:
        return
    _l2(found, _join(encap, label), events, depth + 1, cut)


def _pim(packet: bytes, src: bytes, dst: bytes, encap, events, depth) -> None:
    """A PIM Register message's multicast packet."""
    try:
        header = PIM(packet)
    except link.DECODE_ERRORS:
        return
    if header.type == PIM_REGISTER and header.data:
        inner = header.data
        _l3(ETH_IPV4 if inner[0] >> 4 == 4 else ETH_IPV6 if inner[0] >> 4 == 6 else -1, inner, 0, len(inner),
            _join(encap, f"pim register {_ends(src, dst)}"), events, depth + 1)


def _quoted(frame: bytes, off: int, encap, events: List[tuple]) -> None:
    """The packet an ICMP error quotes: its stream identity and header fields (research §1.5)."""
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
    if proto == 6 and n >= l4 + TCP_QUOTE_MIN:
        sport, dport, seq, ack, offflags, win = _TCP(frame, l4)
        events.append((EV_TCP_QUOTE, src, dst, sport, dport, seq, ack, offflags & 0x0FFF, win, encap))
    elif proto == 17 and n >= l4 + 8:
        sport, dport, ulen = _UDP(frame, l4)
        if ulen >= 8:
            events.append((EV_UDP_QUOTE, src, dst, sport, dport, ulen - 8, encap))


__all__ = ["decode_frame"]

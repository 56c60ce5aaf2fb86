"""The fast path: classic pcap records → Ethernet/SLL/SLL2/RAW → IPv4/IPv6 → TCP/UDP, one tight loop.

This is `CaptureReader._pcap_records` + `decode.decode_fast` fused, reading header fields straight
out of the reader's buffer with one `struct.unpack_from` per layer group and no per-frame bytes
object. Any frame it does not recognise at once (VLAN, IP options, fragments, IPv6 extension
headers, ICMP, tunnel ports, short captures) is copied out and handed to the general path, and both
paths end in the same `StreamTable.tcp_packet` / `udp_packet`, so their figures cannot diverge
(tests/test_streams_unit.py feeds the same traffic through both).
"""
from __future__ import annotations

import struct

from kubectl_whose.analysis.capture_file import MAX_RECORD
from kubectl_whose.analysis.decode import TUNNEL_PORTS, wscale_option

# IPv4 header without options + the first 20 bytes of TCP (UDP reads sport, dport, length from it)
_IP4_L4 = struct.Struct("!2xHxxHxB2x4s4sHHIIHH").unpack_from
# IPv6 fixed header + 20 bytes of TCP
_IP6_L4 = struct.Struct("!4xHBx16s16sHHIIHH").unpack_from

# linktype -> (offset of the IP header, offset of the ethertype or -1 for raw IP)
FAST_LINKTYPES = {1: (14, 12), 113: (16, 14), 276: (20, 0), 101: (0, -1), 12: (0, -1), 14: (0, -1),
                  228: (0, -1), 229: (0, -1)}


def feed_classic_pcap(analyzer) -> None:
    """Consume every complete record in the analyzer's reader buffer (classic pcap only)."""
    reader = analyzer.reader
    l3, et_off = FAST_LINKTYPES[reader._pcap_linktype]
    linktype = reader._pcap_linktype
    buf = reader._buf
    end = len(buf)
    pos = reader._pos
    unpack_hdr = reader._rec_hdr.unpack_from
    rec_len = reader._rec_len
    mult = 1 if reader._ns else 1000
    frames = reader.frames
    packets = analyzer.packets
    nbytes = analyzer.bytes
    table = analyzer.table
    tcp_packet = table.tcp_packet
    udp_packet = table.udp_packet
    want_tcp, want_udp = analyzer._want_tcp, analyzer._want_udp
    general = analyzer._general
    tunnel_ports = TUNNEL_PORTS
    ts = None
    try:
        while end - pos >= rec_len:
            sec, frac, caplen, orig_len = unpack_hdr(buf, pos)
            if caplen > MAX_RECORD:
                reader.frames, reader._pos = frames, pos
                reader._corrupt(f"record length {caplen} is impossible")
                return
            start = pos + rec_len
            stop = start + caplen
            if stop > end:
                break
            frames += 1
            pos = stop
            ts = sec * 1_000_000_000 + frac * mult
            packets += 1
            nbytes += orig_len
            if packets == 1:
                analyzer.first_ts = ts
            ip = start + l3
            if et_off >= 0 and caplen >= l3:
                ethertype = (buf[start + et_off] << 8) | buf[start + et_off + 1]
            else:
                ethertype = 0x0800 if caplen > l3 and buf[ip] >> 4 == 4 else 0x86DD
            if ethertype == 0x0800 and stop - ip >= 40 and buf[ip] == 0x45:
                total, frag, proto, src, dst, sport, dport, seq, ack, offflags, win = _IP4_L4(buf, ip)
                if not frag & 0x3FFF and total >= 20:
                    l4len = total - 20
                    if proto == 6:
                        hlen = (offflags >> 12) * 4
                        if 20 <= hlen <= l4len:
                            if want_tcp:
                                flags = offflags & 0x0FFF
                                tcp_packet(frames, ts, orig_len, src, dst, sport, dport, seq, ack, flags, win,
                                           l4len - hlen,
                                           wscale_option(buf, ip + 40, min(ip + 20 + hlen, stop)) if flags & 2
                                           else -1, None)
                            continue
                    elif proto == 17 and sport not in tunnel_ports and dport not in tunnel_ports:
                        if want_udp:
                            ulen = seq >> 16
                            udp_packet(frames, ts, orig_len, src, dst, sport, dport,
                                       (ulen if 8 <= ulen <= l4len else l4len) - 8, None)
                        continue
            elif ethertype == 0x86DD and stop - ip >= 60 and buf[ip] >> 4 == 6:
                plen, nxt, src, dst, sport, dport, seq, ack, offflags, win = _IP6_L4(buf, ip)
                if nxt == 6 and plen:
                    hlen = (offflags >> 12) * 4
                    if 20 <= hlen <= plen:
                        if want_tcp:
                            flags = offflags & 0x0FFF
                            tcp_packet(frames, ts, orig_len, src, dst, sport, dport, seq, ack, flags, win,
                                       plen - hlen,
                                       wscale_option(buf, ip + 60, min(ip + 40 + hlen, stop)) if flags & 2
                                       else -1, None)
                        continue
                elif nxt == 17 and plen and sport not in tunnel_ports and dport not in tunnel_ports:
                    if want_udp:
                        ulen = seq >> 16
                        udp_packet(frames, ts, orig_len, src, dst, sport, dport,
                                   (ulen if 8 <= ulen <= plen else plen) - 8, None)
                    continue
            general(frames, ts, linktype, orig_len, bytes(buf[start:stop]))
    finally:
        reader.frames = frames
        if not reader._ended:
            reader._pos = pos
        analyzer.packets = packets
        analyzer.bytes = nbytes
        if ts is not None:
            analyzer.last_ts = ts

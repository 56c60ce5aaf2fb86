"""The stream table: tcp.stream / udp.stream indices exactly as tshark 4.0.17 allocates them.

Rules (research §1, checked against the installed tshark by the oracle tests):
* a stream is keyed on the unordered inner (address, port) pair, nothing else (no VLAN, no
  interface, no tunnel id, no time-out); indices are dense and given in first-frame order, one
  counter for TCP and one for UDP;
* 4.0.x port reuse: a new TCP stream starts only for a pure SYN (SYN=1, ACK=0) whose direction
  already has a base sequence number different from the SYN's raw seq (flagged `reused_ports`); a
  pure SYN with the base seq stays and moves that direction's expected sequence back to the end of
  its in-order data (measured);
  a SYN-ACK with a different seq is flagged `reused_ports` but stays in the stream; FIN, RST and
  idle time never split a stream (4.5-dev splits after FIN/RST; 4.0 does not);
* a TCP/UDP header quoted in an ICMP error belongs to that header's stream, as tshark's `tcp.stream` /
  `udp.stream` say: it takes an index when its pair is new (or, for a pure SYN, reuses one), and the
  ICMP frame counts in the stream's packets, bytes and flags (its payload is tshark's: none for TCP,
  the quoted `udp.length` for UDP); it moves no sequence analysis and no Zeek state (Zeek files the
  ICMP message under an ICMP connection), and it makes no one the client.
Direction: flow 0 is the sender with the larger (address, port), tshark's `flow1`.
"""
from __future__ import annotations

import sys
from typing import Dict, List

from kubectl_whose.analysis.streams.python.conn_state import ZeekNone, ZeekTcp, ZeekUdp
from kubectl_whose.analysis.streams.python.tcp_analysis import (A_ANY_RETRANSMISSION, A_DUPLICATE_ACK, A_LOST_PACKET,
                                                 A_OUT_OF_ORDER, A_REUSED_PORTS, A_ZERO_WINDOW, M32, TH_ACK,
                                                 TH_FIN, TH_RST, TH_SYN, Flow, analyze)

_SYN_ACK = TH_SYN | TH_ACK


class TcpStream:
    __slots__ = ("index", "key", "flows", "first_frame", "first_ts", "base_ts", "last_ts", "first_dir", "syn_dir",
                 "pkts0", "pkts1", "bytes0", "bytes1", "pay0", "pay1", "syn", "fin", "rst", "retrans",
                 "zero_window", "dup_acks", "ooo", "lost", "mru_syn", "first_rtt", "zeek",
                 "encap", "client_isn", "server_isn", "synack_ack", "rst_ack", "rtt_shown")

    def __init__(self, index: int, key: tuple, ts: int):
        self.index = index
        self.key = key  # (addr of flow 0, addr of flow 1, port of flow 0, port of flow 1)
        self.flows = (Flow(), Flow())
        self.first_frame = 0
        self.first_ts = 0
        self.base_ts = ts  # tshark's ts_first: the frame that created the conversation
        self.last_ts = 0
        self.first_dir = -1
        self.syn_dir = -1
        self.pkts0 = self.pkts1 = self.bytes0 = self.bytes1 = self.pay0 = self.pay1 = 0
        self.syn = self.fin = self.rst = 0
        self.retrans = self.zero_window = self.dup_acks = self.ooo = self.lost = 0
        self.mru_syn = 0
        self.first_rtt = 0
        self.zeek = ZEEK_NONE  # a ZeekTcp once a packet of its own arrives (a quoted header is none)
        self.encap = None
        self.client_isn = self.server_isn = self.synack_ack = self.rst_ack = None
        self.rtt_shown = False  # tshark shows tcp.analysis.initial_rtt on a frame of this stream


class UdpStream:
    __slots__ = ("index", "key", "first_frame", "first_ts", "base_ts", "last_ts", "first_dir", "pkts0", "pkts1",
                 "bytes0", "bytes1", "pay0", "pay1", "zeek", "encap")

    def __init__(self, index: int, key: tuple, ts: int):
        self.index = index
        self.key = key
        self.first_frame = 0
        self.first_ts = 0
        self.base_ts = ts
        self.last_ts = 0
        self.first_dir = -1
        self.pkts0 = self.pkts1 = self.bytes0 = self.bytes1 = self.pay0 = self.pay1 = 0
        self.zeek = ZEEK_NONE
        self.encap = None


ZEEK_NONE = ZeekNone()


def _freeze(st: TcpStream) -> None:
    """Drop the sequence-analysis state of a stream that a reused 4-tuple replaced, keeping its
    final Zeek verdict: busy clients reuse ports, and such streams would otherwise hold ~1 KB each."""
    z = st.zeek
    st.zeek = FrozenZeek(z.conn_state(), sys.intern(z.history()))
    st.flows = None


class FrozenZeek:
    __slots__ = ("state", "hist")

    def __init__(self, state: str, hist: str):
        self.state, self.hist = state, hist

    def conn_state(self) -> str:
        return self.state

    def history(self) -> str:
        return self.hist


def _flow_key(src: bytes, dst: bytes, sport: int, dport: int):
    """(direction, key): direction 0 when the sender is tshark's flow1 (larger address, then port)."""
    if src > dst or (src == dst and sport > dport):
        return 0, (src, dst, sport, dport)
    return 1, (dst, src, dport, sport)


class StreamTable:
    """Every stream of a capture; per-packet detail only for the one selected stream."""

    def __init__(self, detail_tcp: int = -1, detail_udp: int = -1):
        self.tcp: Dict[tuple, TcpStream] = {}
        self.udp: Dict[tuple, UdpStream] = {}
        self.tcp_streams: List[TcpStream] = []
        self.udp_streams: List[UdpStream] = []
        # the raw per-packet tuples of the --stream N stream (`summary.detail_rows` makes the rows)
        self.detail: List[tuple] = []
        self._detail_tcp = detail_tcp
        self._detail_udp = detail_udp

    # -- TCP -----------------------------------------------------------------------------------
    def tcp_packet(self, frame: int, ts: int, orig_len: int, src: bytes, dst: bytes, sport: int, dport: int,
                   seq: int, ack: int, flags: int, win: int, seglen: int, wscale: int, encap) -> None:
        if src > dst or (src == dst and sport > dport):
            d = 0
            key = (src, dst, sport, dport)
        else:
            d = 1
            key = (dst, src, dport, sport)
        st = self.tcp.get(key)
        ta = 0
        if st is None:
            st = self._new_tcp(key, ts)
        elif flags & TH_SYN:
            fwd = st.flows[d]
            if fwd.base_set and seq != fwd.base_seq:
                if flags & TH_ACK:
                    ta = A_REUSED_PORTS  # 4.0 flags a SYN-ACK with another seq but keeps the stream
                else:
                    _freeze(st)  # no packet can reach the old stream any more
                    st = self._new_tcp(st.key, ts)  # share the key: one tuple per 4-tuple
                    ta = A_REUSED_PORTS
            elif not flags & TH_ACK and fwd.maxseqtobeacked:
                # a pure SYN repeating the first one takes the expected sequence back to the end of
                # the in-order data (after a lost segment the two differ). Measured against 4.0.17:
                # 150 random exchanges with such SYNs, 14 of them differing without this line, none with it
                fwd.nextseq = fwd.maxseqtobeacked
        flows = st.flows
        fwd = flows[d]
        rev = flows[1 - d]
        track = not st.rtt_shown
        ta = analyze(fwd, rev, seq, ack, seglen, flags, win, ts, st.first_rtt, ta, track)

        if st.first_dir < 0:
            st.first_dir = d
            st.first_frame = frame
            st.first_ts = ts
            st.encap = encap
        zeek = st.zeek
        if zeek is ZEEK_NONE:
            zeek = st.zeek = ZeekTcp(d, flags, sport, dport, dst)
        st.last_ts = ts
        if d == 0:
            st.pkts0 += 1
            st.bytes0 += orig_len
            st.pay0 += seglen
        else:
            st.pkts1 += 1
            st.bytes1 += orig_len
            st.pay1 += seglen
        if flags & (TH_SYN | TH_FIN | TH_RST):
            if flags & TH_SYN:
                st.syn += 1
                if flags & TH_ACK:
                    if st.server_isn is None:
                        st.server_isn = seq
                        st.synack_ack = ack
                    if ta & A_REUSED_PORTS:
                        fwd.base_seq = seq  # measured (4.0.17): the odd SYN-ACK becomes relative seq 0
                else:
                    st.mru_syn = ts
                    if st.syn_dir < 0:
                        st.syn_dir = d
                        st.client_isn = seq
                scale = fwd.win_scale
                if wscale >= 0:
                    scale = fwd.win_scale = min(wscale, 14)
                if scale == -1:
                    fwd.win_scale = rev.win_scale = -2
                elif flags & TH_ACK and rev.win_scale == -2:
                    fwd.win_scale = -2
            if flags & TH_FIN:
                st.fin += 1
            if flags & TH_RST:
                st.rst += 1
                # a refused redirect answers in a stream of its own: this ack is its proof (issue 6)
                if flags & TH_ACK and st.rst_ack is None:
                    st.rst_ack = ack
        if flags & _SYN_ACK == TH_ACK and st.mru_syn and not st.first_rtt:
            st.first_rtt = ts - st.mru_syn
        if track and ta and st.first_rtt:
            # tshark computes the RTT at the handshake's ACK but shows it only on frames that carry
            # its analysis subtree (a flag, an exact ACK of an unacked segment, data in flight)
            st.rtt_shown = True
            flows[0].segs = flows[1].segs = None
        if ta:
            if ta & A_ANY_RETRANSMISSION:
                st.retrans += 1
            if ta & A_ZERO_WINDOW:
                st.zero_window += 1
            if ta & A_DUPLICATE_ACK:
                st.dup_acks += 1
            if ta & A_OUT_OF_ORDER:
                st.ooo += 1
            if ta & A_LOST_PACKET:
                st.lost += 1
        zeek.packet(d, flags, seq, ack, seglen, win)
        if st.index == self._detail_tcp:
            self._tcp_detail(st, d, frame, ts, orig_len, seq, ack, flags, win, seglen, ta)

    def _new_tcp(self, key: tuple, ts: int) -> TcpStream:
        st = TcpStream(len(self.tcp_streams), key, ts)
        self.tcp_streams.append(st)
        self.tcp[key] = st
        return st

    def _tcp_detail(self, st, d, frame, ts, orig_len, seq, ack, flags, win, seglen, ta) -> None:
        fwd, rev = st.flows[d], st.flows[1 - d]
        window = win << fwd.win_scale if not flags & TH_SYN and fwd.win_scale >= 0 else win
        self.detail.append((frame, ts - st.base_ts, orig_len, d, seglen, flags, (seq - fwd.base_seq) & M32,
                            (ack - rev.base_seq) & M32 if flags & TH_ACK else ack, window, ta))

    def tcp_quote(self, frame: int, ts: int, orig_len: int, src: bytes, dst: bytes, sport: int, dport: int,
                  seq: int, ack: int, flags: int, win: int, encap) -> None:
        """A TCP header quoted in an ICMP error: it takes an index as a packet would (a new pair, or
        a pure SYN reusing one, measured with 4.0.17) and the ICMP frame counts in that stream, with
        the quoted header's flags and no payload; no sequence analysis, no Zeek state, no client."""
        d, key = _flow_key(src, dst, sport, dport)
        st = self.tcp.get(key)
        ta = 0
        if st is None:
            st = self._new_tcp(key, ts)
        elif flags & _SYN_ACK == TH_SYN and st.flows is not None:
            fwd = st.flows[d]
            if fwd.base_set and seq != fwd.base_seq:
                if st.first_dir >= 0:
                    _freeze(st)
                st = self._new_tcp(st.key, ts)
                ta = A_REUSED_PORTS
        # tshark's handshake-RTT bookkeeping is not skipped for quoted headers (measured)
        if flags & _SYN_ACK == TH_SYN:
            st.mru_syn = ts
        elif flags & _SYN_ACK == TH_ACK and st.mru_syn and not st.first_rtt:
            st.first_rtt = ts - st.mru_syn
        _count_quote(st, d, frame, ts, orig_len, 0, encap)
        if flags & TH_SYN:
            st.syn += 1
        if flags & TH_FIN:
            st.fin += 1
        if flags & TH_RST:
            st.rst += 1
        if st.index == self._detail_tcp:
            # tshark shows a quoted header's raw seq, ack and window, and no tcp.len
            self.detail.append((frame, ts - st.base_ts, orig_len, d, 0, flags, seq, ack, win, ta))

    # -- UDP -----------------------------------------------------------------------------------
    def udp_packet(self, frame: int, ts: int, orig_len: int, src: bytes, dst: bytes, sport: int, dport: int,
                   paylen: int, encap) -> None:
        if src > dst or (src == dst and sport > dport):
            d = 0
            key = (src, dst, sport, dport)
        else:
            d = 1
            key = (dst, src, dport, sport)
        st = self.udp.get(key)
        if st is None:
            st = self._new_udp(key, ts)
        if st.first_dir < 0:
            st.first_dir = d
            st.first_frame = frame
            st.first_ts = ts
            st.encap = encap
        zeek = st.zeek
        if zeek is ZEEK_NONE:
            zeek = st.zeek = ZeekUdp(d, sport, dport, dst)
        st.last_ts = ts
        if d == 0:
            st.pkts0 += 1
            st.bytes0 += orig_len
            st.pay0 += paylen
        else:
            st.pkts1 += 1
            st.bytes1 += orig_len
            st.pay1 += paylen
        zeek.packet(d)
        if st.index == self._detail_udp:
            self.detail.append((frame, ts - st.base_ts, orig_len, d, paylen))

    def _new_udp(self, key: tuple, ts: int) -> UdpStream:
        st = UdpStream(len(self.udp_streams), key, ts)
        self.udp_streams.append(st)
        self.udp[key] = st
        return st

    def udp_quote(self, frame: int, ts: int, orig_len: int, src: bytes, dst: bytes, sport: int, dport: int,
                  paylen: int, encap) -> None:
        """A UDP header quoted in an ICMP error: the ICMP frame counts in that header's stream, with
        the quoted length's payload (tshark's udp.length); no Zeek state."""
        d, key = _flow_key(src, dst, sport, dport)
        st = self.udp.get(key)
        if st is None:
            st = self._new_udp(key, ts)
        _count_quote(st, d, frame, ts, orig_len, paylen, encap)
        if st.index == self._detail_udp:
            self.detail.append((frame, ts - st.base_ts, orig_len, d, paylen))


def _count_quote(st, d: int, frame: int, ts: int, orig_len: int, paylen: int, encap) -> None:
    if st.first_dir < 0:
        st.first_dir = d
        st.first_frame = frame
        st.first_ts = ts
        st.encap = encap
    st.last_ts = ts
    if d == 0:
        st.pkts0 += 1
        st.bytes0 += orig_len
        st.pay0 += paylen
    else:
        st.pkts1 += 1
        st.bytes1 += orig_len
        st.pay1 += paylen

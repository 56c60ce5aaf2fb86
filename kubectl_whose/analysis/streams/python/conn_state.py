"""Zeek's `conn_state` and `history` for one stream, transcribed from Zeek's TCP analyzer.

Sources (zeek/zeek at a13de64f, the commit ../shared/external/zeek's baselines come from):
`packet_analysis/protocol/tcp/TCPSessionAdapter.cc` (Process, init_endpoint, update_history,
update_window, update_last_seq, UpdateStateMachine and its Update*State), `TCP_Endpoint.cc`
(CheckHistory with its SYN-ACK-first flip to "^h", SetState, Size, DidRxmit, ZeroWindow),
`packet_analysis/protocol/{tcp,udp}/*.cc` (WantConnection: the flip when a connection starts at a
likely server port), `Conn.cc` (FlipRoles writes `^`), `session/Session.cc` (CheckHistory,
ScaledHistoryEntry) and `scripts/base/protocols/conn/main.zeek` (`function conn_state`).

Emulated, for one trace read with default settings (`zeek -C -r FILE`): the endpoint state machine
with each endpoint's previous state, sequence tracking (start, last and ack seq with wraps) as far as
`history`, `T` and the sizes behind REJ need it, the letters S H A D F R I Q T W and `^`, both flips
(at creation, from `likely_server_ports`, and on "H"), and `conn_state` for TCP and UDP.
Not emulated (README, "Zeek states"): Zeek's time-outs and its own splitting of a 4-tuple (rows are
tshark's streams), `C` (we behave like `zeek -C`), `G` (content gaps need Zeek's reassembler), `x`
(analysis limits), flips decided by application analyzers, ICMP connections, and the tunnels Zeek
decodes that tshark does not.

Endpoints are kept per physical direction (the stream's 0/1), as Zeek's TCP_Endpoint objects stay
attached to one host when roles flip; `orig` says which direction is the originator now.
"""
from __future__ import annotations

import re

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
M32 = 0xFFFFFFFF
M64 = (1 << 64) - 1
TOO_LARGE_SEQ_DELTA = 1048576

# TCP_Endpoint's HIST_* masks; the responder's are shifted 16 bits left (TCP_Endpoint::CheckHistory)
HIST_SYN, HIST_FIN, HIST_RST, HIST_FIN_RST, HIST_DATA, HIST_ACK, HIST_MULTI = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40

# likely_server_ports of a default `zeek -r`: the server ports every analyzer under
# scripts/base registers (Analyzer::register_for_ports, PacketAnalyzer::register_for_ports), one
# set per transport as Zeek keys them
ZEEK_TCP_SERVER_PORTS = frozenset({
    21, 22, 25, 53, 79, 80, 81, 88, 135, 139, 143, 389, 443, 445, 465, 502, 514, 563, 585, 587, 614, 631, 636,
    989, 990, 992, 993, 995, 1080, 1434, 1883, 2811, 3128, 3268, 3306, 3389, 5222, 5223, 5269, 5432, 6379, 6666,
    6667, 6668, 6669, 8000, 8080, 8888, 20000})
ZEEK_UDP_SERVER_PORTS = frozenset({
    53, 67, 88, 123, 137, 161, 162, 389, 443, 514, 1812, 2123, 2152, 3389, 3544, 4011, 4754, 4789, 5060, 5072,
    5353, 5355, 6081, 20000})

_BROADCAST = b"\xff\xff\xff\xff"


def _delta(a: int, b: int) -> int:
    """Zeek's seq_delta: (a - b) as a signed 32-bit number."""
    d = (a - b) & M32
    return d - (1 << 32) if d & 0x80000000 else d


def _scaled_hit(count: int) -> bool:
    """Session::ScaledHistoryEntry with base 10: the letter at the 1st, 10th, 100th ... event."""
    while count % 10 == 0:
        count //= 10
    return count == 1


def tcp_flips_at_start(flags: int, sport: int, dport: int) -> bool:
    """TCPAnalyzer::WantConnection: a connection that starts without a pure SYN, from a likely server port."""
    if flags & (_SYN | _ACK) == _SYN or sport not in ZEEK_TCP_SERVER_PORTS:
        return False
    if dport in ZEEK_TCP_SERVER_PORTS:  # both plausible: flip only a non-SYN-ACK towards the lower port
        return not (flags & _SYN and flags & _ACK) and dport > sport
    return True


def udp_flips_at_start(sport: int, dport: int) -> bool:
    """UDPAnalyzer::WantConnection."""
    return sport in ZEEK_UDP_SERVER_PORTS and dport not in ZEEK_UDP_SERVER_PORTS


class Endpoint:
    """TCP_Endpoint's fields that decide states and letters."""

    __slots__ = ("state", "prev", "start", "last", "wraps", "ack", "ack_wraps", "hist_syn", "hist_fin",
                 "hist_rst", "rxmt", "win0", "fins")

    def __init__(self):
        self.state = self.prev = INACTIVE
        self.start = self.last = self.ack = 0
        self.wraps = self.ack_wraps = 0
        self.hist_syn = self.hist_fin = self.hist_rst = 0
        self.rxmt = self.win0 = self.fins = 0

    def set_state(self, state: int) -> None:
        if state != self.state:
            self.prev, self.state = self.state, state

    def init_seqs(self, start: int, last: int) -> None:
        self.start = self.ack = start & M32
        self.last = last & M32

    def update_last(self, seq: int) -> None:
        if seq < self.last:
            self.wraps += 1
        self.last = seq

    def rel_seq(self, seq: int) -> int:
        """get_relative_seq against this endpoint's last seq, as an unsigned 64-bit number."""
        delta, wraps = _delta(seq, self.last), self.wraps
        if delta < 0 and wraps and seq > self.last:
            wraps -= 1
        elif delta > 0 and seq < self.last:
            wraps += 1
        if wraps == 0:
            return _delta(seq, self.start) & M64
        return ((wraps << 32) + seq - self.start) & M64

    def size(self, peer: "Endpoint") -> int:
        """TCP_Endpoint::Size: bytes in sequence space, without the SYN and FIN octets."""
        if self.prev == SYN_SENT and self.state == RESET and peer.state == INACTIVE and not self._no_data_acked():
            return 0
        last, ack = (self.wraps << 32) + self.last, (self.ack_wraps << 32) + self.ack
        size = (last if last > ack else ack) - self.start
        size &= M64
        if size:
            size -= 1
        if self.fins and size:
            size -= 1
        return size

    def _no_data_acked(self) -> bool:
        ack = (self.ack_wraps << 32) + self.ack
        return ack in (self.start, self.start + 1)


class ZeekTcp:
    """One TCP connection as Zeek's TCPSessionAdapter sees it; `packet(d, ...)` with d the stream's direction."""

    __slots__ = ("ends", "orig", "hist", "seen")

    def __init__(self, d: int, flags: int, sport: int, dport: int, dst: bytes):
        self.ends = (Endpoint(), Endpoint())
        self.orig = d
        self.hist = ""
        self.seen = 0
        if tcp_flips_at_start(flags, sport, dport) and dst != _BROADCAST:
            self._flip()

    def _flip(self) -> None:  # Connection::FlipRoles
        self.orig = 1 - self.orig
        self.hist += "^"

    def _check(self, d: int, mask: int, code: str) -> bool:
        """TCP_Endpoint::CheckHistory: write `code` the first time; True when it was seen before."""
        if code in "AD" and self.hist == "H":
            # began with a SYN-ACK, now productive traffic: flip, and pretend the missing SYN was seen
            self._flip()
            self.hist = "^h"
        if d != self.orig:
            mask <<= 16
            code = code.lower()
        if self.seen & mask:
            return True
        self.seen |= mask
        self.hist += code
        return False

    def _add(self, d: int, code: str) -> None:
        self.hist += code if d == self.orig else code.lower()

    def packet(self, d: int, flags: int, seq: int, ack: int, seglen: int, window: int) -> None:
        e, p = self.ends[d], self.ends[1 - d]
        if flags & (_SYN | _FIN | _RST) or e.state < PARTIAL:
            self._process(d, e, p, flags, seq, ack, seglen, window)
            return
        # the common case, data or ACK after the handshake: of Process() only the letters D/A/W/T and
        # the seq bookkeeping can change (no Update*State changes a state without SYN, FIN or RST)
        if seglen:
            self._check(d, HIST_DATA, "D")
        elif flags & _ACK:
            self._check(d, HIST_ACK, "A")
        if window == 0 and p.state != CLOSED and e.state != RESET:
            self._win0(d, e)
        if flags & _ACK:
            self._ack(p, ack, flags)
        self._last(d, e, (seq + seglen) & M32, flags, seglen)

    def _process(self, d, e: Endpoint, p: Endpoint, flags, seq, ack, seglen, window) -> None:
        is_orig = d == self.orig  # as the packet arrived: a flip on the way does not change it (Process)
        syn, fin, rst = flags & _SYN, flags & _FIN, flags & _RST
        seg = seglen + (1 if syn else 0) + (1 if fin else 0)
        if rst:
            seg -= seglen
        last = (seq + seg) & M32
        # init_endpoint
        if e.state == INACTIVE:
            if syn:
                e.init_seqs(seq, last)
            else:
                e.init_seqs(seq - 1, seq)  # as if a SYN was seen; the first packet is not a duplicate
        elif e.state in (SYN_SENT, SYN_ACK_SENT):
            if syn and seq != e.start:
                e.init_seqs(seq, last)
        elif e.state in (ESTABLISHED, PARTIAL):
            if syn:
                e.init_seqs(seq, last)
        elif e.state == RESET and syn and e.prev == INACTIVE:
            e.init_seqs(seq, last)
        rel = e.rel_seq(seq)
        self._history(d, e, flags, rel, seglen)
        if window == 0 and not rst and p.state != CLOSED and e.state != RESET:
            self._win0(d, e)
        if fin:
            e.fins += 1
        if flags & _ACK:
            self._ack(p, ack, flags)
        self._last(d, e, last, flags, seglen)
        self._state(is_orig, e, p, flags, seglen)

    def _history(self, d, e: Endpoint, flags, rel, seglen) -> None:  # update_history
        syn, fin, rst = flags & _SYN, flags & _FIN, flags & _RST
        bits = (1 if syn else 0) + (1 if fin else 0) + (1 if rst else 0)
        if bits > 1:
            if fin and rst:
                self._check(d, HIST_FIN_RST, "I")
            else:
                self._check(d, HIST_MULTI, "Q")
        elif bits == 1:
            if syn:
                code = "H" if flags & _ACK else "S"
                if self._check(d, HIST_SYN, code) and rel != e.hist_syn:
                    self._add(d, code)
                e.hist_syn = rel
            elif fin:
                end = (rel + seglen) & M64
                if self._check(d, HIST_FIN, "F") and end != e.hist_fin:
                    self._add(d, "F")
                e.hist_fin = end
            else:
                if self._check(d, HIST_RST, "R") and rel != e.hist_rst:
                    self._add(d, "R")
                e.hist_rst = rel
        elif seglen:
            self._check(d, HIST_DATA, "D")
        elif flags & _ACK:
            self._check(d, HIST_ACK, "A")

    def _win0(self, d: int, e: Endpoint) -> None:  # TCP_Endpoint::ZeroWindow
        e.win0 += 1
        if _scaled_hit(e.win0):
            self._add(d, "W")

    @staticmethod
    def _ack(p: Endpoint, ack: int, flags: int) -> None:
        """An ACK's effect on the peer's sequence state: init_peer while the peer is silent, else
        update_ack_seq unless get_relative_seq reports an underflow (or the ACK rides on a RST)."""
        if p.state == INACTIVE:
            p.init_seqs(ack - 1, ack - 1)
            return
        delta, wraps = _delta(ack, p.ack), p.ack_wraps
        if delta < 0 and wraps and ack > p.ack:
            wraps -= 1
        elif delta > 0 and ack < p.ack:
            wraps += 1
        if wraps == 0 and _delta(ack, p.start) < 0 or flags & _RST:
            return
        if ack == 0 and delta > TOO_LARGE_SEQ_DELTA:
            return  # a broken ack, more likely than a connection landing on 0
        if delta > 0:
            if ack < p.ack:
                p.ack_wraps += 1
            p.ack = ack

    def _last(self, d: int, e: Endpoint, last: int, flags: int, seglen: int) -> None:
        """update_last_seq: payload not beyond what was seen is a retransmission (T)."""
        delta = _delta(last, e.last)
        if flags & (_SYN | _RST) and (delta > TOO_LARGE_SEQ_DELTA or delta < -TOO_LARGE_SEQ_DELTA):
            pass
        elif flags & _FIN and e.last == (e.start + 1) & M32:
            e.update_last(last)
        elif e.state == RESET:
            pass
        elif delta > 0:
            e.update_last(last)
        elif seglen > 0:
            e.rxmt += 1
            if _scaled_hit(e.rxmt):
                self._add(d, "T")

    def _state(self, is_orig: bool, e: Endpoint, p: Endpoint, flags: int, seglen: int) -> None:
        """UpdateStateMachine and its Update*State functions, for the states they set."""
        syn, fin, rst, ack = flags & _SYN, flags & _FIN, flags & _RST, flags & _ACK
        state = e.state
        if state == INACTIVE:
            if syn:
                if is_orig:
                    e.set_state(SYN_ACK_SENT if ack else SYN_SENT)
                else:
                    if not ack and p.state == SYN_ACK_SENT:
                        # a SYN/SYN-ACK reversal: flip and establish (UpdateInactiveState)
                        self._flip()
                        p.set_state(ESTABLISHED)
                    if p.state == SYN_SENT:
                        p.set_state(ESTABLISHED)
                    e.set_state(ESTABLISHED)
            if fin:
                e.set_state(CLOSED)
            if rst:
                e.set_state(RESET)
            if e.state == INACTIVE:
                if not is_orig and seglen == 0 and self.ends[self.orig].state == SYN_SENT:
                    pass  # an ACK of the SYN before any SYN-ACK: not a partial connection
                elif ack and p.state == ESTABLISHED:
                    e.set_state(ESTABLISHED)  # the SYN was missed, the SYN-ACK was not
                else:
                    e.set_state(PARTIAL)
        elif state in (SYN_SENT, SYN_ACK_SENT):
            if fin:
                e.set_state(CLOSED)
            if rst:
                e.set_state(RESET)
        elif state in (ESTABLISHED, PARTIAL):
            if syn and state == PARTIAL and p.state == INACTIVE and not ack:
                e.set_state(SYN_SENT)
            if fin and not rst:
                e.set_state(CLOSED)
                if p.state == RESET and p.prev == CLOSED:
                    p.set_state(CLOSED)  # the peer's FIN then RST was a normal close after all
            if rst:
                e.set_state(RESET)
        elif state == CLOSED:
            if rst and p.state != CLOSED:
                e.set_state(RESET)

    def history(self) -> str:
        return self.hist

    def conn_state(self) -> str:
        """`function conn_state` of base/protocols/conn/main.zeek."""
        o, r = self.ends[self.orig], self.ends[1 - self.orig]
        os_, rs = o.state, r.state
        o_inactive = os_ in (INACTIVE, PARTIAL)
        r_inactive = rs in (INACTIVE, PARTIAL)
        if rs == RESET:
            if os_ in (SYN_SENT, SYN_ACK_SENT) or (os_ == RESET and o.size(r) == 0 and r.size(o) == 0):
                return "REJ"
            return "RSTRH" if o_inactive else "RSTR"
        if os_ == RESET:
            if r_inactive:
                return "RSTOS0" if _RSTOS0.fullmatch(self.hist) else "OTH"
            return "RSTO"
        if rs == CLOSED and os_ == CLOSED:
            return "SF"
        if os_ == CLOSED:
            return "SH" if r_inactive else "S2"
        if rs == CLOSED:
            return "SHR" if o_inactive else "S3"
        if os_ == SYN_SENT and rs == INACTIVE:
            return "S0"
        if os_ == ESTABLISHED and rs == ESTABLISHED:
            return "S1"
        return "OTH"


_RSTOS0 = re.compile(r"\^?S[^HAFGIQ]*R.*")  # Zeek's /\^?S[^HAFGIQ]*R.*/ == c$history


class ZeekUdp:
    """UDP: D/d once each, `^` when the first packet came from a likely server port."""

    __slots__ = ("orig", "hist")

    def __init__(self, d: int, sport: int, dport: int, dst: bytes):
        self.orig = d
        self.hist = ""
        if udp_flips_at_start(sport, dport) and dst != _BROADCAST:
            self.orig = 1 - d
            self.hist = "^"

    def packet(self, d: int) -> None:
        letter = "D" if d == self.orig else "d"
        if letter not in self.hist:
            self.hist += letter

    def history(self) -> str:
        return self.hist

    def conn_state(self) -> str:
        o, r = "D" in self.hist, "d" in self.hist
        if o:
            return "SF" if r else "S0"
        return "SHR" if r else "OTH"


class ZeekNone:
    """The Zeek view of a stream that had no packet of its own (only headers quoted in ICMP errors)."""

    __slots__ = ()

    @staticmethod
    def history() -> str:
        return ""

    @staticmethod
    def conn_state() -> str:
        return "OTH"

"""Zeek-style `conn_state` and `history` for one stream, from Zeek's definitions (research §3).

Emulated: the endpoint state machine, `history` letters S/H/A/D/F/R/I/Q with once-per-direction and
repeat-on-new-seq rules, T and W with Zeek's logarithmic repetition, the SYN-ACK-first role flip
(`^h`), and `function conn_state`. Not emulated (documented differences): `C` (bad checksums; we
behave like `zeek -C`), `G` (content gaps need Zeek's reassembler), Zeek's time-outs and its own
splitting of a 4-tuple (streams here are tshark's streams).
"""
from __future__ import annotations

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
M32 = 0xFFFFFFFF

# Zeek's likely_server_ports are the ports of its loaded analyzers; these are the common ones.
LIKELY_SERVER_PORTS = frozenset({21, 22, 23, 25, 53, 80, 88, 110, 111, 119, 123, 135, 137, 139, 143, 161, 389,
                                 443, 445, 465, 502, 514, 587, 636, 993, 995, 1080, 1194, 1812, 2049, 3128,
                                 3306, 3389, 4789, 5060, 5222, 5432, 6081, 6379, 6443, 6667, 8080, 8443,
                                 9042, 9200, 11211, 27017})


def orig_is_receiver(flags: int, sport: int, dport: int) -> bool:
    """Zeek's TCPAnalyzer::WantConnection flip for a connection's first packet."""
    if flags & (_SYN | _ACK) == _SYN:
        return False
    if sport not in LIKELY_SERVER_PORTS:
        return False
    if dport in LIKELY_SERVER_PORTS:
        return not (flags & _SYN and flags & _ACK) and sport < dport
    return True


_LETTER_BIT = {letter: 1 << i for i, letter in enumerate("SHADFRIQshadfriq")}


def _scaled_hit(count: int) -> bool:
    """Zeek's logarithmic letters (T, W): written at the 1st, 10th, 100th ... event."""
    while count % 10 == 0:
        count //= 10
    return count == 1


class ZeekTcp:
    """Endpoint states and history of one connection; role 0 = originator, 1 = responder.

    Kept small (one per stream, streams can number in the 100 000s): letters seen are a bitmask,
    the per-role markers one list indexed [what * 2 + role].
    """

    __slots__ = ("state", "hist", "seen", "marks", "t0", "t1", "w0", "w1")

    # marks layout: last SYN seq, last FIN end, last RST seq, highest seq end, payload size
    _SYN, _FINM, _RSTM, _HIGH, _SIZE = 0, 2, 4, 6, 8

    def __init__(self):
        self.state = [INACTIVE, INACTIVE]
        self.hist = ""
        self.seen = 0
        self.marks = [None, None, None, None, None, None, None, None, 0, 0]
        self.t0 = self.t1 = self.w0 = self.w1 = 0

    def flip(self) -> None:
        self.state.reverse()
        m = self.marks
        for i in range(0, 10, 2):
            m[i], m[i + 1] = m[i + 1], m[i]
        self.hist = "^h"
        self.seen = _LETTER_BIT["h"]
        self.t0 = self.t1 = self.w0 = self.w1 = 0

    def packet(self, role: int, flags: int, seq: int, seglen: int, window: int) -> int:
        """Feed one packet; returns the role after a possible flip (0/1)."""
        if self.hist == "H" and not flags & (_SYN | _FIN | _RST) and (seglen or flags & _ACK):
            self.flip()
            role = 1 - role
        st = self.state
        if not flags & (_SYN | _FIN | _RST) and st[role] >= PARTIAL and window:
            # the common case: data or ACK past the handshake. Without SYN/FIN/RST no state in
            # PARTIAL..RESET changes (see _state), and a non-zero window writes no W
            letter = ("D" if seglen else "A") if role == 0 else ("d" if seglen else "a")
            if (seglen or flags & _ACK) and not self.seen & _LETTER_BIT[letter]:
                self.seen |= _LETTER_BIT[letter]
                self.hist += letter
            if seglen:
                m = self.marks
                m[8 + role] += seglen
                high = m[6 + role]
                end = (seq + seglen) & M32
                if high is not None and 0 < (end - high) & M32 < 0x80000000:
                    m[6 + role] = end  # new data: the usual case, inlined
                else:
                    self._data(role, seq, seglen, 0)
            return role
        self._history(role, flags, seq, seglen, window)
        self._state(role, flags, seglen)
        return role

    def _data(self, role: int, seq: int, seglen: int, extra: int) -> None:
        m = self.marks
        end = (seq + seglen + extra) & M32
        high = m[6 + role]
        if high is None or 0 < (end - high) & M32 < 0x80000000:
            m[6 + role] = end
        elif seglen:
            if role == 0:
                self.t0 += 1
                hit = _scaled_hit(self.t0)
            else:
                self.t1 += 1
                hit = _scaled_hit(self.t1)
            if hit:
                self.hist += "T" if role == 0 else "t"

    def _once(self, role: int, letter: str) -> None:
        key = letter if role == 0 else letter.lower()
        bit = _LETTER_BIT[key]
        if not self.seen & bit:
            self.seen |= bit
            self.hist += key

    def _history(self, role: int, flags: int, seq: int, seglen: int, window: int) -> None:
        syn, fin, rst = flags & _SYN, flags & _FIN, flags & _RST
        bits = (1 if syn else 0) + (1 if fin else 0) + (1 if rst else 0)
        if bits == 1:  # S/H, F or R: again whenever the sequence number differs from the last one
            if syn:
                letter, slot, value = ("H" if flags & _ACK else "S"), 0, seq
            elif fin:
                letter, slot, value = "F", 2, (seq + seglen) & M32
            else:
                letter, slot, value = "R", 4, seq
            if role:
                letter = letter.lower()
            bit = _LETTER_BIT[letter]
            m = self.marks
            if not self.seen & bit:
                self.seen |= bit
                self.hist += letter
            elif m[slot + role] != value:
                self.hist += letter
            m[slot + role] = value
        elif bits > 1:
            self._once(role, "I" if fin and rst else "Q")
        elif seglen:
            self._once(role, "D")
        elif flags & _ACK:
            self._once(role, "A")
        if seglen and not syn:
            self.marks[8 + role] += seglen
        self._data(role, seq, seglen, (1 if syn else 0) + (1 if fin else 0))
        if window == 0 and not rst and self.state[1 - role] != CLOSED and self.state[role] != RESET:
            if role == 0:
                self.w0 += 1
                hit = _scaled_hit(self.w0)
            else:
                self.w1 += 1
                hit = _scaled_hit(self.w1)
            if hit:
                self.hist += "W" if role == 0 else "w"

    def _state(self, role: int, flags: int, seglen: int) -> None:
        st = self.state
        e, p = st[role], st[1 - role]
        syn, fin, rst, ack = flags & _SYN, flags & _FIN, flags & _RST, flags & _ACK
        if e == INACTIVE:
            if syn:
                if role == 0:
                    e = SYN_ACK_SENT if ack else SYN_SENT
                elif ack:
                    if p == SYN_SENT:
                        st[0] = ESTABLISHED
                    e = ESTABLISHED
                elif p == SYN_ACK_SENT:
                    st[0] = ESTABLISHED
                    e = ESTABLISHED
                else:
                    e = SYN_SENT
                if fin:
                    e = CLOSED
                if rst:
                    e = RESET
            elif fin:
                e = RESET if rst else CLOSED
            elif rst:
                e = RESET
            elif role == 1 and ack and not seglen and p == SYN_SENT:
                pass  # an ACK answering a SYN, no SYN-ACK: the responder stays inactive
            elif ack and p == ESTABLISHED:
                e = ESTABLISHED
            else:
                e = PARTIAL
        elif e in (SYN_SENT, SYN_ACK_SENT):
            if fin:
                e = CLOSED
            elif rst:
                e = RESET
            elif ack and p == ESTABLISHED:
                e = ESTABLISHED
        elif e in (ESTABLISHED, PARTIAL):
            if syn and not ack and e == PARTIAL and p == INACTIVE:
                e = SYN_SENT
            elif fin and not rst:
                e = CLOSED
            elif rst:
                e = RESET
        elif e == CLOSED:
            if rst and p != CLOSED:
                e = RESET
        st[role] = e

    def history(self) -> str:
        return self.hist

    def conn_state(self) -> str:
        os_, rs = self.state
        o_inactive = os_ in (INACTIVE, PARTIAL)
        r_inactive = rs in (INACTIVE, PARTIAL)
        if rs == RESET:
            if os_ in (SYN_SENT, SYN_ACK_SENT) or (os_ == RESET and self.marks[8] == 0 and self.marks[9] == 0):
                return "REJ"
            return "RSTRH" if o_inactive else "RSTR"
        if os_ == RESET:
            if r_inactive:
                return "RSTOS0" if _rstos0(self.history()) else "OTH"
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


def _rstos0(history: str) -> bool:
    """Zeek's /\\^?S[^HAFGIQ]*R.*/ matched against the whole history."""
    import re

    return re.fullmatch(r"\^?S[^HAFGIQ]*R.*", history) is not None


class ZeekUdp:
    """UDP: an endpoint is active once it sent a packet; history is D/d, once each."""

    __slots__ = ("hist",)

    def __init__(self):
        self.hist = ""

    def packet(self, role: int) -> None:
        letter = "D" if role == 0 else "d"
        if letter not in self.hist:
            self.hist += letter

    def history(self) -> str:
        return self.hist

    def conn_state(self) -> str:
        o, r = "D" in self.hist, "d" in self.hist
        if o:
            return "SF" if r else "S0"
        return "SHR" if r else "OTH"

"""tshark 4.0's TCP sequence analysis (`tcp_analyze_sequence_number()` in packet-tcp.c), per packet.

Only first-pass state matters in tshark, so one pass here gives the same flags. Sequence numbers
are raw (absolute) 32-bit values, compared with wrap-around as tshark's GT_SEQ/LT_SEQ do
(`0 < (a - b) & M32 <= 2**31` is GT_SEQ(a, b), `(gint32)(b - a) < 0`: a difference of exactly
2**31 counts as greater, and LE_SEQ(a, b) is `not 0 < (a - b) & M32 < 2**31`; written inline: this
runs for every packet); a
`nextseq`/`lastack`/`maxseqtobeacked` of 0 means "not seen yet", exactly as in tshark. The
window is the raw header value (tshark scales it only after the analysis ran).
tshark's unacked-segment lists feed none of the flags, only whether a frame carries the analysis
subtree (and with it the handshake RTT); they are kept per stream only until that RTT is shown.

Two details were settled by measurement, not by the source text we could read (random exchanges
against the installed tshark, tests/analysis/streams/test_crafted_oracle.py): after an "ACKed unseen segment" the
peer's maxseqtobeacked jumps to its nextseq when nextseq is the larger, and the dupacknum of -1
that marks "already reported" counts as >= 2 in the fast-retransmission test (an unsigned field).
"""
from __future__ import annotations

A_RETRANSMISSION = 0x1
A_LOST_PACKET = 0x2
A_ACK_LOST_PACKET = 0x4
A_KEEP_ALIVE = 0x8
A_DUPLICATE_ACK = 0x10
A_ZERO_WINDOW = 0x20
A_ZERO_WINDOW_PROBE = 0x40
A_ZERO_WINDOW_PROBE_ACK = 0x80
A_KEEP_ALIVE_ACK = 0x100
A_OUT_OF_ORDER = 0x200
A_FAST_RETRANSMISSION = 0x400
A_WINDOW_UPDATE = 0x800
A_WINDOW_FULL = 0x1000
A_REUSED_PORTS = 0x2000
A_SPURIOUS_RETRANSMISSION = 0x4000
A_ANY_RETRANSMISSION = A_RETRANSMISSION | A_FAST_RETRANSMISSION | A_SPURIOUS_RETRANSMISSION
# not a tshark flag: the frame carries tshark's analysis subtree without one (it exactly ACKs an
# unacked segment, or it carries data in flight). Only whether the handshake RTT is shown needs it.
A_SUBTREE = 0x100000
MAX_UNACKED = 10_000  # tshark's TCP_MAX_UNACKED_SEGMENTS

# expert field names as in tcp.analysis.<name>, in tshark's display order
ANALYSIS_NAMES = (
    (A_REUSED_PORTS, "reused_ports"),
    (A_LOST_PACKET, "lost_segment"),
    (A_ACK_LOST_PACKET, "ack_lost_segment"),
    (A_RETRANSMISSION, "retransmission"),
    (A_FAST_RETRANSMISSION, "fast_retransmission"),
    (A_SPURIOUS_RETRANSMISSION, "spurious_retransmission"),
    (A_OUT_OF_ORDER, "out_of_order"),
    (A_WINDOW_UPDATE, "window_update"),
    (A_WINDOW_FULL, "window_full"),
    (A_KEEP_ALIVE, "keep_alive"),
    (A_KEEP_ALIVE_ACK, "keep_alive_ack"),
    (A_DUPLICATE_ACK, "duplicate_ack"),
    (A_ZERO_WINDOW_PROBE, "zero_window_probe"),
    (A_ZERO_WINDOW, "zero_window"),
    (A_ZERO_WINDOW_PROBE_ACK, "zero_window_probe_ack"),
)

TH_FIN, TH_SYN, TH_RST, TH_PSH, TH_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
M32 = 0xFFFFFFFF
FAST_RETRANS_NS = 20_000_000
DEFAULT_OOO_NS = 3_000_000


def analysis_names(flags: int) -> list:
    """tcp.analysis.<name> fields present on a packet; tshark adds `retransmission` to fast and spurious."""
    if flags & (A_FAST_RETRANSMISSION | A_SPURIOUS_RETRANSMISSION):
        flags |= A_RETRANSMISSION
    return [name for bit, name in ANALYSIS_NAMES if flags & bit]


class Flow:
    """One direction of a TCP stream (tshark's tcp_flow_t + its seq-analysis info)."""

    __slots__ = ("base_seq", "base_set", "win_scale", "window", "nextseq", "nextseqtime", "lastack",
                 "lastacktime", "maxseqtobeacked", "dupacknum", "lastsegmentflags", "valid_bif", "segs")

    def __init__(self):
        self.base_seq = 0
        self.base_set = False
        self.win_scale = -1  # -1 unknown, -2 no scaling, else the shift
        self.window = M32
        self.nextseq = 0
        self.nextseqtime = 0
        self.lastack = 0
        self.lastacktime = 0
        self.maxseqtobeacked = 0
        self.dupacknum = 0
        self.lastsegmentflags = 0
        self.valid_bif = True  # tshark's bytes-in-flight is valid (no lost segment since the last ACK)
        self.segs = None  # unacked [seq, nextseq] pairs, newest last; kept only while `track`


def analyze(fwd: Flow, rev: Flow, seq: int, ack: int, seglen: int, flags: int, window: int, ts: int,
            first_rtt: int, ta: int = 0, track: bool = False) -> int:
    """Update both flows for one segment; return its TCP_A_* flags (`ta`: flags already set).

    `track`: also keep tshark's unacked-segment lists and add A_SUBTREE when this frame carries
    tshark's analysis subtree with no flag; the stream table asks for it until the handshake RTT
    has been shown (`rtt_shown`), the only figure that depends on it."""
    if not fwd.base_set:
        fwd.base_seq = seq if flags & TH_SYN else (seq - 1) & M32
        fwd.base_set = True
    if not rev.base_set and flags & TH_ACK:
        rev.base_seq = (ack - 1) & M32
        rev.base_set = True
    if flags & TH_ACK:
        rev.valid_bif = True

    nextseq = fwd.nextseq
    lastack = fwd.lastack
    if seglen == 1 and seq == nextseq and rev.window == 0:
        ta |= A_ZERO_WINDOW_PROBE  # tshark: goto finished_fwd
    else:
        if not flags & (TH_SYN | TH_FIN | TH_RST):
            if window == 0:
                ta |= A_ZERO_WINDOW
            if seglen <= 1 and seq == (nextseq - 1) & M32:
                ta |= A_KEEP_ALIVE
            if seglen == 0:
                if seq == nextseq and ack == lastack:
                    fwin = fwd.window
                    if window:
                        if window != fwin:
                            ta |= A_WINDOW_UPDATE
                        elif rev.lastsegmentflags & A_KEEP_ALIVE:
                            ta |= A_KEEP_ALIVE_ACK
                        else:
                            fwd.dupacknum = 1 if fwd.dupacknum == -1 else fwd.dupacknum + 1
                            ta |= A_DUPLICATE_ACK
                    elif fwin == 0 and rev.lastsegmentflags & A_ZERO_WINDOW_PROBE:
                        ta |= A_ZERO_WINDOW_PROBE_ACK
            elif rev.win_scale != -1:
                shift = 0 if rev.win_scale == -2 else rev.win_scale
                if (seq + seglen) & M32 == (rev.lastack + (rev.window << shift)) & M32:
                    ta |= A_WINDOW_FULL
        if nextseq and not flags & TH_RST and 0 < (seq - nextseq) & M32 <= 0x80000000:
            ta |= A_LOST_PACKET
            fwd.valid_bif = False

    # finished_fwd:
    if ack != lastack:
        fwd.dupacknum = 0
    rmax = rev.maxseqtobeacked
    if rmax and flags & TH_ACK and 0 < (ack - rmax) & M32 <= 0x80000000:
        if rev.nextseq > rev.maxseqtobeacked:  # plain unsigned compare; measured against 4.0.17
            rev.maxseqtobeacked = rev.nextseq
            ta |= A_ACK_LOST_PACKET
        else:
            if rev.dupacknum == 0:
                ta |= A_ACK_LOST_PACKET
            rev.dupacknum = -1

    synfin = 1 if flags & (TH_SYN | TH_FIN) else 0
    if seglen > 0 or synfin:
        seq_not_advanced = bool(nextseq) and 0 < (nextseq - seq) & M32 <= 0x80000000
        if not ta & A_KEEP_ALIVE:
            if seglen > 1 and (nextseq - 1) & M32 == seq:
                seq_not_advanced = False
            rlastack = rev.lastack
            if seglen > 0 and rlastack and not 0 < (seq + seglen - rlastack) & M32 < 0x80000000:
                ta |= A_SPURIOUS_RETRANSMISSION
            elif (seq_not_advanced and (rev.dupacknum >= 2 or rev.dupacknum == -1) and rlastack == seq  # unsigned
                  and 0 <= ts - rev.lastacktime < FAST_RETRANS_NS):
                ta |= A_FAST_RETRANSMISSION
            elif (seq_not_advanced and 0 <= ts - fwd.nextseqtime < (first_rtt or DEFAULT_OOO_NS)
                  and nextseq != (seq + seglen + synfin) & M32):
                ta |= A_OUT_OF_ORDER
            elif seq_not_advanced:
                ta |= A_RETRANSMISSION

    if not ta & A_ZERO_WINDOW_PROBE:  # probes do not advance nextseq
        nxt = (seq + seglen + synfin) & M32
        if not nextseq or 0 < (nxt - nextseq) & M32 <= 0x80000000:
            fwd.nextseq = nxt
            fwd.nextseqtime = ts
        fmax = fwd.maxseqtobeacked
        if not fmax or seq == fmax:
            fwd.maxseqtobeacked = fwd.nextseq
    fwd.window = window
    fwd.lastack = ack
    fwd.lastacktime = ts
    fwd.lastsegmentflags = ta
    if track:
        ta |= _unacked(fwd, rev, seq, ack, seglen, synfin)
    return ta


def _unacked(fwd: Flow, rev: Flow, seq: int, ack: int, seglen: int, synfin: int) -> int:
    """tshark's unacked-segment lists: this segment joins fwd's, this ACK clears rev's. A_SUBTREE
    when the ACK exactly acknowledges a segment or the frame carries data in flight."""
    sub = 0
    if seglen or synfin:
        segs = fwd.segs
        if segs is None:
            segs = fwd.segs = []
        if len(segs) < MAX_UNACKED:
            segs.append([seq, (seq + seglen + synfin) & M32])
    rsegs = rev.segs
    if rsegs:
        keep = []
        for s in rsegs:
            if ack == s[1]:
                sub = A_SUBTREE  # acked exactly: tshark notes the frame it acks, then drops it
            elif (s[0] - ack) & M32 >= 0x80000000 and not 0 < (ack - s[1]) & M32 < 0x80000000:
                s[0] = ack  # acked in part (tshark's GT_SEQ(ack, seq) && LE_SEQ(ack, nextseq))
                keep.append(s)
            elif (ack - s[1]) & M32 >= 0x80000000:
                keep.append(s)  # not acked yet (GT_SEQ(nextseq, ack))
        rev.segs = keep
    if seglen and fwd.segs and fwd.valid_bif:
        sub = A_SUBTREE
    return sub

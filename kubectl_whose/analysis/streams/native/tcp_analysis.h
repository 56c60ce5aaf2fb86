/* tshark 4.0's TCP sequence analysis (tcp_analysis.py), statement by statement.
 * Part of the native engine: included once, in order, by ../_engine.c (one translation unit). */

/* ------------------------------------------------------------------------------------------ */
/* tshark's sequence analysis (tcp_analysis.py analyze)                                      */

/* tshark's unacked-segment lists (tcp_analysis.py _unacked): this segment joins fwd's, this ACK
 * clears rev's; A_SUBTREE when the ACK exactly acknowledges a segment or the frame carries data in
 * flight. A failed allocation is reported through hist_oom. */
static int unacked(Unacked *fl, Unacked *rl, const Flow *fwd, uint32_t seq, uint32_t ack, int64_t seglen,
                   int synfin)
{
    int sub = 0;
    if ((seglen || synfin) && fl->n < MAX_UNACKED) {
        if (fl->n == fl->cap) {
            uint32_t ncap = fl->cap ? fl->cap * 2 : 4;
            uint32_t *pairs = (uint32_t *)PyMem_Realloc(fl->pairs, sizeof(uint32_t) * 2 * ncap);
            if (!pairs) {
                hist_oom = 1;
                return 0;
            }
            fl->pairs = pairs;
            fl->cap = ncap;
        }
        fl->pairs[2 * fl->n] = seq;
        fl->pairs[2 * fl->n + 1] = seq + (uint32_t)seglen + (uint32_t)synfin;
        fl->n++;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < rl->n; i++) {
        uint32_t s0 = rl->pairs[2 * i], s1 = rl->pairs[2 * i + 1];
        if (ack == s1) {
            sub = A_SUBTREE; /* acked exactly: tshark notes the frame it acks, then drops it */
            continue;
        }
        if ((uint32_t)(s0 - ack) >= 0x80000000u && !GT_SEQ(ack, s1))
            s0 = ack; /* acked in part */
        else if ((uint32_t)(ack - s1) < 0x80000000u)
            continue; /* acked whole (or older): dropped */
        rl->pairs[2 * kept] = s0;
        rl->pairs[2 * kept + 1] = s1;
        kept++;
    }
    rl->n = kept;
    if (seglen && fl->n && fwd->valid_bif)
        sub = A_SUBTREE;
    return sub;
}

static void drop_unacked(Unacked **u)
{
    if (*u) {
        PyMem_Free((*u)[0].pairs);
        PyMem_Free((*u)[1].pairs);
        PyMem_Free(*u);
        *u = NULL;
    }
}

static int tcp_analyze(Flow *fwd, Flow *rev, uint32_t seq, uint32_t ack, int64_t seglen, int flags, uint32_t window,
                       int64_t ts, int64_t first_rtt, int ta, Unacked *fl, Unacked *rl)
{
    if (!fwd->base_set) {
        fwd->base_seq = (flags & TH_SYN) ? seq : seq - 1u;
        fwd->base_set = 1;
    }
    if (!rev->base_set && (flags & TH_ACK)) {
        rev->base_seq = ack - 1u;
        rev->base_set = 1;
    }
    if (flags & TH_ACK)
        rev->valid_bif = 1;
    uint32_t nextseq = fwd->nextseq, lastack = fwd->lastack;
    if (seglen == 1 && seq == nextseq && rev->window == 0) {
        ta |= A_ZERO_WINDOW_PROBE;
    } else {
        if (!(flags & (TH_SYN | TH_FIN | TH_RST))) {
            if (window == 0)
                ta |= A_ZERO_WINDOW;
            if (seglen <= 1 && seq == (uint32_t)(nextseq - 1u))
                ta |= A_KEEP_ALIVE;
            if (seglen == 0) {
                if (seq == nextseq && ack == lastack) {
                    uint32_t fwin = fwd->window;
                    if (window) {
                        if (window != fwin)
                            ta |= A_WINDOW_UPDATE;
                        else if (rev->lastsegmentflags & A_KEEP_ALIVE)
                            ta |= A_KEEP_ALIVE_ACK;
                        else {
                            fwd->dupacknum = fwd->dupacknum == -1 ? 1 : fwd->dupacknum + 1;
                            ta |= A_DUPLICATE_ACK;
                        }
                    } else if (fwin == 0 && (rev->lastsegmentflags & A_ZERO_WINDOW_PROBE)) {
                        ta |= A_ZERO_WINDOW_PROBE_ACK;
                    }
                }
            } else if (rev->win_scale != -1) {
                int shift = rev->win_scale == -2 ? 0 : rev->win_scale;
                uint32_t edge = (uint32_t)((uint64_t)rev->lastack + ((uint64_t)rev->window << shift));
                if ((uint32_t)(seq + (uint32_t)seglen) == edge)
                    ta |= A_WINDOW_FULL;
            }
        }
        if (nextseq && !(flags & TH_RST) && TS_GT(seq, nextseq)) {
            ta |= A_LOST_PACKET;
            fwd->valid_bif = 0;
        }
    }
    /* finished_fwd: */
    if (ack != lastack)
        fwd->dupacknum = 0;
    uint32_t rmax = rev->maxseqtobeacked;
    if (rmax && (flags & TH_ACK) && TS_GT(ack, rmax)) {
        if (rev->nextseq > rev->maxseqtobeacked) {
            rev->maxseqtobeacked = rev->nextseq;
            ta |= A_ACK_LOST_PACKET;
        } else {
            if (rev->dupacknum == 0)
                ta |= A_ACK_LOST_PACKET;
            rev->dupacknum = -1;
        }
    }
    int synfin = (flags & (TH_SYN | TH_FIN)) ? 1 : 0;
    if (seglen > 0 || synfin) {
        int seq_not_advanced = nextseq && TS_GT(nextseq, seq);
        if (!(ta & A_KEEP_ALIVE)) {
            if (seglen > 1 && (uint32_t)(nextseq - 1u) == seq)
                seq_not_advanced = 0;
            uint32_t rlastack = rev->lastack;
            int64_t since_ack = ts - rev->lastacktime, since_next = ts - fwd->nextseqtime;
            if (seglen > 0 && rlastack && !GT_SEQ((uint32_t)(seq + (uint32_t)seglen), rlastack))
                ta |= A_SPURIOUS_RETRANSMISSION;
            else if (seq_not_advanced && (rev->dupacknum >= 2 || rev->dupacknum == -1) && rlastack == seq &&
                     since_ack >= 0 && since_ack < FAST_RETRANS_NS)
                ta |= A_FAST_RETRANSMISSION;
            else if (seq_not_advanced && since_next >= 0 && since_next < (first_rtt ? first_rtt : DEFAULT_OOO_NS) &&
                     nextseq != (uint32_t)(seq + (uint32_t)seglen + (uint32_t)synfin))
                ta |= A_OUT_OF_ORDER;
            else if (seq_not_advanced)
                ta |= A_RETRANSMISSION;
        }
    }
    if (!(ta & A_ZERO_WINDOW_PROBE)) {
        uint32_t nxt = (uint32_t)(seq + (uint32_t)seglen + (uint32_t)synfin);
        if (!nextseq || TS_GT(nxt, nextseq)) {
            fwd->nextseq = nxt;
            fwd->nextseqtime = ts;
        }
        uint32_t fmax = fwd->maxseqtobeacked;
        if (!fmax || seq == fmax)
            fwd->maxseqtobeacked = fwd->nextseq;
    }
    fwd->window = window;
    fwd->lastack = ack;
    fwd->lastacktime = ts;
    fwd->lastsegmentflags = (uint32_t)ta;
    if (fl)
        ta |= unacked(fl, rl, fwd, seq, ack, seglen, synfin);
    return ta;
}

/* Zeek's conn_state and history (conn_state.py), statement by statement.
 * Part of the native engine: included once, in order, by ../_engine.c (one translation unit). */

/* ------------------------------------------------------------------------------------------ */
/* history text                                                                               */

static int hist_oom; /* an allocation failed in a void Zeek step: tcp_packet raises MemoryError */

static void hist_append(Zeek *z, const char *s, uint32_t n)
{
    char *buf = z->hcap ? z->heap : z->inl;
    uint32_t cap = z->hcap ? z->hcap : HIST_INLINE;
    if (z->hlen + n > cap) {
        uint32_t ncap = cap * 2;
        while (ncap < z->hlen + n)
            ncap *= 2;
        char *nb = (char *)PyMem_Malloc((size_t)ncap + 1);
        if (!nb) {
            hist_oom = 1;
            return;
        }
        memcpy(nb, buf, z->hlen);
        if (z->hcap)
            PyMem_Free(z->heap);
        z->heap = nb;
        z->hcap = ncap;
        buf = nb;
    }
    memcpy(buf + z->hlen, s, n);
    z->hlen += n;
    buf[z->hlen] = 0;
}

static const char *hist_text(const Zeek *z) { return z->hcap ? z->heap : z->inl; }

/* the history is exactly "H": a SYN-ACK was all the originator sent (CheckHistory's flip) */
static int hist_is_h(const Zeek *z) { return z->hlen == 1 && hist_text(z)[0] == 'H'; }

/* a fresh Zeek view of a stream with no packet of its own yet (orig -1) */
static void zeek_reset(Zeek *z)
{
    if (z->hcap)
        PyMem_Free(z->heap);
    memset(z, 0, sizeof(*z));
    z->orig = -1;
}

static int scaled_hit(uint32_t count)
{
    while (count % 10 == 0)
        count /= 10;
    return count == 1;
}

/* ------------------------------------------------------------------------------------------ */
/* likely_server_ports (conn_state.py ZEEK_TCP_SERVER_PORTS / ZEEK_UDP_SERVER_PORTS)           */

static const uint16_t TCP_SERVER_PORTS[] = {21, 22, 25, 53, 79, 80, 81, 88, 135, 139, 143, 389, 443, 445, 465, 502,
    514, 563, 585, 587, 614, 631, 636, 989, 990, 992, 993, 995, 1080, 1434, 1883, 2811, 3128, 3268, 3306, 3389,
    5222, 5223, 5269, 5432, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000};
static const uint16_t UDP_SERVER_PORTS[] = {53, 67, 88, 123, 137, 161, 162, 389, 443, 514, 1812, 2123, 2152, 3389,
    3544, 4011, 4754, 4789, 5060, 5072, 5353, 5355, 6081, 20000};
static uint8_t server_port_bits[2][65536 / 8]; /* [0] TCP, [1] UDP; filled at module init */

static void init_server_ports(void)
{
    for (size_t i = 0; i < sizeof(TCP_SERVER_PORTS) / sizeof(TCP_SERVER_PORTS[0]); i++)
        server_port_bits[0][TCP_SERVER_PORTS[i] >> 3] |= (uint8_t)(1 << (TCP_SERVER_PORTS[i] & 7));
    for (size_t i = 0; i < sizeof(UDP_SERVER_PORTS) / sizeof(UDP_SERVER_PORTS[0]); i++)
        server_port_bits[1][UDP_SERVER_PORTS[i] >> 3] |= (uint8_t)(1 << (UDP_SERVER_PORTS[i] & 7));
}

static int likely_server(int udp, int port) { return (server_port_bits[udp][port >> 3] >> (port & 7)) & 1; }

static int tcp_flips_at_start(int flags, int sport, int dport)
{
    if ((flags & (TH_SYN | TH_ACK)) == TH_SYN || !likely_server(0, sport))
        return 0;
    if (likely_server(0, dport))
        return !((flags & TH_SYN) && (flags & TH_ACK)) && dport > sport;
    return 1;
}

static int udp_flips_at_start(int sport, int dport) { return likely_server(1, sport) && !likely_server(1, dport); }

static int is_broadcast(const uint8_t *addr, int alen)
{
    return alen == 4 && addr[0] == 0xFF && addr[1] == 0xFF && addr[2] == 0xFF && addr[3] == 0xFF;
}

/* ------------------------------------------------------------------------------------------ */
/* Zeek's TCP analyzer (conn_state.py ZeekTcp)                                                */

#define HIST_SYN 0x1
#define HIST_FIN 0x2
#define HIST_RST 0x4
#define HIST_FIN_RST 0x8
#define HIST_DATA 0x10
#define HIST_ACK 0x20
#define HIST_MULTI 0x40
#define TOO_LARGE_SEQ_DELTA 1048576

static inline int32_t seq_delta(uint32_t a, uint32_t b) { return (int32_t)(a - b); }

static void end_set_state(ZeekEnd *e, int state)
{
    if (state != e->state) {
        e->prev = e->state;
        e->state = (uint8_t)state;
    }
}

static void end_init_seqs(ZeekEnd *e, uint32_t start, uint32_t last)
{
    e->start = e->ack = start;
    e->last = last;
}

static void end_update_last(ZeekEnd *e, uint32_t seq)
{
    if (seq < e->last)
        e->wraps++;
    e->last = seq;
}

static uint64_t end_rel_seq(const ZeekEnd *e, uint32_t seq)
{
    int32_t delta = seq_delta(seq, e->last);
    uint32_t wraps = e->wraps;
    if (delta < 0 && wraps && seq > e->last)
        wraps--;
    else if (delta > 0 && seq < e->last)
        wraps++;
    if (wraps == 0)
        return (uint64_t)(int64_t)seq_delta(seq, e->start);
    return ((uint64_t)wraps << 32) + seq - e->start;
}

static uint64_t end_size(const ZeekEnd *e, const ZeekEnd *peer)
{
    uint64_t ack = ((uint64_t)e->ack_wraps << 32) + e->ack;
    if (e->prev == SYN_SENT && e->state == RESET && peer->state == INACTIVE &&
        !(ack == e->start || ack == (uint64_t)e->start + 1))
        return 0;
    uint64_t last = ((uint64_t)e->wraps << 32) + e->last;
    uint64_t size = (last > ack ? last : ack) - e->start;
    if (size)
        size--;
    if (e->fins && size)
        size--;
    return size;
}

static void zeek_tcp_start(Zeek *z, int d, int flags, int sport, int dport, const uint8_t *dst, int alen)
{
    zeek_reset(z);
    z->orig = (int8_t)d;
    if (tcp_flips_at_start(flags, sport, dport) && !is_broadcast(dst, alen)) {
        z->orig = (int8_t)(1 - d);
        hist_append(z, "^", 1);
    }
}

static void zeek_flip(Zeek *z)
{
    z->orig = (int8_t)(1 - z->orig);
    hist_append(z, "^", 1);
}

static void zeek_add(Zeek *z, int d, char code)
{
    char c = d == z->orig ? code : (char)(code - 'A' + 'a');
    hist_append(z, &c, 1);
}

/* TCP_Endpoint::CheckHistory: 1 when the letter was seen before */
static int zeek_check(Zeek *z, int d, uint32_t mask, char code)
{
    if ((code == 'A' || code == 'D') && hist_is_h(z)) {
        zeek_flip(z);
        z->hlen = 0;
        hist_append(z, "^h", 2);
    }
    if (d != z->orig) {
        mask <<= 16;
        code = (char)(code - 'A' + 'a');
    }
    if (z->seen & mask)
        return 1;
    z->seen |= mask;
    hist_append(z, &code, 1);
    return 0;
}

static void zeek_history(Zeek *z, int d, ZeekEnd *e, int flags, uint64_t rel, int64_t seglen)
{
    int syn = flags & TH_SYN, fin = flags & TH_FIN, rst = flags & TH_RST;
    int bits = (syn ? 1 : 0) + (fin ? 1 : 0) + (rst ? 1 : 0);
    if (bits > 1) {
        if (fin && rst)
            zeek_check(z, d, HIST_FIN_RST, 'I');
        else
            zeek_check(z, d, HIST_MULTI, 'Q');
    } else if (bits == 1) {
        if (syn) {
            char code = (flags & TH_ACK) ? 'H' : 'S';
            if (zeek_check(z, d, HIST_SYN, code) && rel != e->hist_syn)
                zeek_add(z, d, code);
            e->hist_syn = rel;
        } else if (fin) {
            uint64_t end = rel + (uint64_t)seglen;
            if (zeek_check(z, d, HIST_FIN, 'F') && end != e->hist_fin)
                zeek_add(z, d, 'F');
            e->hist_fin = end;
        } else {
            if (zeek_check(z, d, HIST_RST, 'R') && rel != e->hist_rst)
                zeek_add(z, d, 'R');
            e->hist_rst = rel;
        }
    } else if (seglen) {
        zeek_check(z, d, HIST_DATA, 'D');
    } else if (flags & TH_ACK) {
        zeek_check(z, d, HIST_ACK, 'A');
    }
}

static void zeek_win0(Zeek *z, int d, ZeekEnd *e)
{
    e->win0++;
    if (scaled_hit(e->win0))
        zeek_add(z, d, 'W');
}

static void zeek_ack(ZeekEnd *p, uint32_t ack, int flags)
{
    if (p->state == INACTIVE) {
        end_init_seqs(p, ack - 1, ack - 1); /* init_peer */
        return;
    }
    int32_t delta = seq_delta(ack, p->ack);
    uint32_t wraps = p->ack_wraps;
    if (delta < 0 && wraps && ack > p->ack)
        wraps--;
    else if (delta > 0 && ack < p->ack)
        wraps++;
    if ((wraps == 0 && seq_delta(ack, p->start) < 0) || (flags & TH_RST))
        return;
    if (ack == 0 && delta > TOO_LARGE_SEQ_DELTA)
        return;
    if (delta > 0) {
        if (ack < p->ack)
            p->ack_wraps++;
        p->ack = ack;
    }
}

static void zeek_last(Zeek *z, int d, ZeekEnd *e, uint32_t last, int flags, int64_t seglen)
{
    int32_t delta = seq_delta(last, e->last);
    if ((flags & (TH_SYN | TH_RST)) && (delta > TOO_LARGE_SEQ_DELTA || delta < -TOO_LARGE_SEQ_DELTA)) {
        /* untrusted */
    } else if ((flags & TH_FIN) && e->last == e->start + 1) {
        end_update_last(e, last);
    } else if (e->state == RESET) {
        /* no later seq is trusted */
    } else if (delta > 0) {
        end_update_last(e, last);
    } else if (seglen > 0) {
        e->rxmt++;
        if (scaled_hit(e->rxmt))
            zeek_add(z, d, 'T');
    }
}

static void zeek_state(Zeek *z, int is_orig, ZeekEnd *e, ZeekEnd *p, int flags, int64_t seglen)
{
    int syn = flags & TH_SYN, fin = flags & TH_FIN, rst = flags & TH_RST, ack = flags & TH_ACK;
    int state = e->state;
    if (state == INACTIVE) {
        if (syn) {
            if (is_orig) {
                end_set_state(e, ack ? SYN_ACK_SENT : SYN_SENT);
            } else {
                if (!ack && p->state == SYN_ACK_SENT) {
                    zeek_flip(z); /* a SYN/SYN-ACK reversal */
                    end_set_state(p, ESTABLISHED);
                }
                if (p->state == SYN_SENT)
                    end_set_state(p, ESTABLISHED);
                end_set_state(e, ESTABLISHED);
            }
        }
        if (fin)
            end_set_state(e, CLOSED);
        if (rst)
            end_set_state(e, RESET);
        if (e->state == INACTIVE) {
            if (!is_orig && seglen == 0 && z->e[z->orig].state == SYN_SENT) {
                /* an ACK of the SYN before any SYN-ACK: not a partial connection */
            } else if (ack && p->state == ESTABLISHED) {
                end_set_state(e, ESTABLISHED);
            } else {
                end_set_state(e, PARTIAL);
            }
        }
    } else if (state == SYN_SENT || state == SYN_ACK_SENT) {
        if (fin)
            end_set_state(e, CLOSED);
        if (rst)
            end_set_state(e, RESET);
    } else if (state == ESTABLISHED || state == PARTIAL) {
        if (syn && state == PARTIAL && p->state == INACTIVE && !ack)
            end_set_state(e, SYN_SENT);
        if (fin && !rst) {
            end_set_state(e, CLOSED);
            if (p->state == RESET && p->prev == CLOSED)
                end_set_state(p, CLOSED); /* the peer's FIN then RST was a normal close after all */
        }
        if (rst)
            end_set_state(e, RESET);
    } else if (state == CLOSED) {
        if (rst && p->state != CLOSED)
            end_set_state(e, RESET);
    }
}

static void zeek_process(Zeek *z, int d, int flags, uint32_t seq, uint32_t ack, int64_t seglen, uint32_t window)
{
    ZeekEnd *e = &z->e[d], *p = &z->e[1 - d];
    int is_orig = d == z->orig; /* as the packet arrived: a flip on the way does not change it */
    int syn = flags & TH_SYN, fin = flags & TH_FIN, rst = flags & TH_RST;
    int64_t seg = seglen + (syn ? 1 : 0) + (fin ? 1 : 0);
    if (rst)
        seg -= seglen;
    uint32_t last = seq + (uint32_t)seg;
    if (e->state == INACTIVE) {
        if (syn)
            end_init_seqs(e, seq, last);
        else
            end_init_seqs(e, seq - 1, seq);
    } else if (e->state == SYN_SENT || e->state == SYN_ACK_SENT) {
        if (syn && seq != e->start)
            end_init_seqs(e, seq, last);
    } else if (e->state == ESTABLISHED || e->state == PARTIAL) {
        if (syn)
            end_init_seqs(e, seq, last);
    } else if (e->state == RESET && syn && e->prev == INACTIVE) {
        end_init_seqs(e, seq, last);
    }
    uint64_t rel = end_rel_seq(e, seq);
    zeek_history(z, d, e, flags, rel, seglen);
    if (window == 0 && !rst && p->state != CLOSED && e->state != RESET)
        zeek_win0(z, d, e);
    if (fin)
        e->fins++;
    if (flags & TH_ACK)
        zeek_ack(p, ack, flags);
    zeek_last(z, d, e, last, flags, seglen);
    zeek_state(z, is_orig, e, p, flags, seglen);
}

static void zeek_packet(Zeek *z, int d, int flags, uint32_t seq, uint32_t ack, int64_t seglen, uint32_t window)
{
    ZeekEnd *e = &z->e[d], *p = &z->e[1 - d];
    if ((flags & (TH_SYN | TH_FIN | TH_RST)) || e->state < PARTIAL) {
        zeek_process(z, d, flags, seq, ack, seglen, window);
        return;
    }
    /* data or ACK after the handshake: only letters D/A/W/T and the seq bookkeeping can change */
    if (seglen)
        zeek_check(z, d, HIST_DATA, 'D');
    else if (flags & TH_ACK)
        zeek_check(z, d, HIST_ACK, 'A');
    if (window == 0 && p->state != CLOSED && e->state != RESET)
        zeek_win0(z, d, e);
    if (flags & TH_ACK)
        zeek_ack(p, ack, flags);
    zeek_last(z, d, e, seq + (uint32_t)seglen, flags, seglen);
}

/* Zeek's regex ^?S[^HAFGIQ]*R.* matched against the whole history */
static int rstos0(const char *h)
{
    if (*h == '^')
        h++;
    if (*h != 'S')
        return 0;
    for (h++; *h; h++) {
        if (*h == 'R')
            return 1;
        if (strchr("HAFGIQ", *h))
            return 0;
    }
    return 0;
}

static const char *zeek_conn_state(const Zeek *z)
{
    if (z->orig < 0)
        return "OTH";
    const ZeekEnd *o = &z->e[z->orig], *r = &z->e[1 - z->orig];
    int os_ = o->state, rs = r->state;
    int o_inactive = os_ == INACTIVE || os_ == PARTIAL;
    int r_inactive = rs == INACTIVE || rs == PARTIAL;
    if (rs == RESET) {
        if (os_ == SYN_SENT || os_ == SYN_ACK_SENT || (os_ == RESET && end_size(o, r) == 0 && end_size(r, o) == 0))
            return "REJ";
        return o_inactive ? "RSTRH" : "RSTR";
    }
    if (os_ == RESET) {
        if (r_inactive)
            return rstos0(hist_text(z)) ? "RSTOS0" : "OTH";
        return "RSTO";
    }
    if (rs == CLOSED && os_ == CLOSED)
        return "SF";
    if (os_ == CLOSED)
        return r_inactive ? "SH" : "S2";
    if (rs == CLOSED)
        return o_inactive ? "SHR" : "S3";
    if (os_ == SYN_SENT && rs == INACTIVE)
        return "S0";
    if (os_ == ESTABLISHED && rs == ESTABLISHED)
        return "S1";
    return "OTH";
}

/* ------------------------------------------------------------------------------------------ */
/* UDP: D/d once each, `^` for a connection that starts at a likely server port (ZeekUdp)     */

static void zeek_udp_start(Zeek *z, int d, int sport, int dport, const uint8_t *dst, int alen)
{
    zeek_reset(z);
    z->orig = (int8_t)d;
    if (udp_flips_at_start(sport, dport) && !is_broadcast(dst, alen)) {
        z->orig = (int8_t)(1 - d);
        hist_append(z, "^", 1);
    }
}

static void zeek_udp_packet(Zeek *z, int d)
{
    uint32_t bit = d == z->orig ? 1 : 2;
    if (!(z->seen & bit)) {
        z->seen |= bit;
        hist_append(z, bit == 1 ? "D" : "d", 1);
    }
}

static const char *zeek_udp_conn_state(const Zeek *z)
{
    int o = (z->seen & 1) != 0, r = (z->seen & 2) != 0;
    if (o)
        return r ? "SF" : "S0";
    return r ? "SHR" : "OTH";
}

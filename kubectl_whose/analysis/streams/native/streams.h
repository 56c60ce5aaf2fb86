/* The stream tables and tshark's stream numbering (streams.py), statement by statement.
 * Part of the native engine: included once, in order, by ../_engine.c (one translation unit). */

/* ------------------------------------------------------------------------------------------ */
/* the stream tables                                                                          */

static uint32_t key_hash(const uint8_t *a, const uint8_t *b, int alen, int pa, int pb)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)alen;
    for (int i = 0; i < alen; i++)
        h = (h ^ a[i]) * 1099511628211ULL;
    for (int i = 0; i < alen; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    h = (h ^ (uint64_t)pa) * 1099511628211ULL;
    h = (h ^ (uint64_t)pb) * 1099511628211ULL;
    return (uint32_t)(h ^ (h >> 32));
}

static int key_equal(const Stream *s, const uint8_t *a, const uint8_t *b, int alen, int pa, int pb)
{
    return s->alen == alen && s->pa == pa && s->pb == pb && !memcmp(s->a, a, alen) && !memcmp(s->b, b, alen);
}

static int table_grow_slots(Table *t)
{
    uint64_t ncap = t->mask ? (t->mask + 1) * 2 : 1024;
    int32_t *slots = (int32_t *)PyMem_Calloc(ncap, sizeof(int32_t));
    uint32_t *hashes = (uint32_t *)PyMem_Calloc(ncap, sizeof(uint32_t));
    if (!slots || !hashes) {
        PyMem_Free(slots);
        PyMem_Free(hashes);
        PyErr_NoMemory();
        return -1;
    }
    if (t->mask) {
        for (uint64_t i = 0; i <= t->mask; i++) {
            if (!t->slots[i])
                continue;
            uint64_t j = t->hashes[i] & (ncap - 1);
            while (slots[j])
                j = (j + 1) & (ncap - 1);
            slots[j] = t->slots[i];
            hashes[j] = t->hashes[i];
        }
    }
    PyMem_Free(t->slots);
    PyMem_Free(t->hashes);
    t->slots = slots;
    t->hashes = hashes;
    t->mask = ncap - 1;
    return 0;
}

/* the slot holding this key, or the empty slot where it belongs */
static uint64_t table_find(Table *t, uint32_t h, const uint8_t *a, const uint8_t *b, int alen, int pa, int pb)
{
    uint64_t j = h & t->mask;
    while (t->slots[j]) {
        if (t->hashes[j] == h && key_equal(&t->items[t->slots[j] - 1], a, b, alen, pa, pb))
            return j;
        j = (j + 1) & t->mask;
    }
    return j;
}

static void stream_free(Stream *s)
{
    drop_unacked(&s->unacked);
    if (s->z.hcap)
        PyMem_Free(s->z.heap);
    Py_XDECREF(s->encap);
}

/* A new stream for this key, placed in `slot` (which holds the key's previous stream or nothing). */
static Stream *table_new(Table *t, uint64_t slot, uint32_t h, const uint8_t *a, const uint8_t *b, int alen, int pa,
                         int pb, int64_t ts, int is_udp)
{
    if (t->n == t->cap) {
        int64_t ncap = t->cap ? t->cap * 2 : 1024;
        Stream *items = (Stream *)PyMem_Realloc(t->items, (size_t)ncap * sizeof(Stream));
        if (!items) {
            PyErr_NoMemory();
            return NULL;
        }
        t->items = items;
        t->cap = ncap;
    }
    if (t->n >= 0x7FFFFFF0) {
        PyErr_SetString(PyExc_OverflowError, "too many streams");
        return NULL;
    }
    Stream *s = &t->items[t->n];
    memset(s, 0, sizeof(*s));
    memcpy(s->a, a, alen);
    memcpy(s->b, b, alen);
    s->alen = (uint8_t)alen;
    s->pa = (uint16_t)pa;
    s->pb = (uint16_t)pb;
    s->is_udp = (uint8_t)is_udp;
    s->index = (int32_t)t->n;
    s->base_ts = ts;
    s->first_dir = s->syn_dir = -1;
    s->z.orig = -1; /* no Zeek view until a packet of its own (a quoted header is none) */
    s->client_isn = s->server_isn = s->synack_ack = s->rst_ack = -1;
    s->flows[0].window = s->flows[1].window = M32;
    s->flows[0].win_scale = s->flows[1].win_scale = -1;
    s->flows[0].valid_bif = s->flows[1].valid_bif = 1;
    int fresh = !t->slots[slot];
    t->slots[slot] = (int32_t)(t->n + 1);
    t->hashes[slot] = h;
    t->n++;
    if (fresh && (uint64_t)t->n * 2 > t->mask + 1) {
        if (table_grow_slots(t) < 0)
            return NULL;
    }
    return &t->items[t->n - 1];
}

/* tshark's direction: flow 0 is the sender with the larger (address, port) */
static int flow_dir(const uint8_t *src, const uint8_t *dst, int alen, int sport, int dport)
{
    int c = memcmp(src, dst, alen);
    return (c > 0 || (c == 0 && sport > dport)) ? 0 : 1;
}

/* One packet's key in one table: where its stream is, or where a new one goes. */
typedef struct {
    Table *t;
    const uint8_t *a, *b; /* flow 0's address, flow 1's */
    int alen, pa, pb, is_udp;
    int d; /* the packet's direction */
    uint64_t slot;
    uint32_t h;
} Probe;

static Stream *probe(Probe *p, Table *t, const uint8_t *src, const uint8_t *dst, int alen, int sport, int dport,
                     int is_udp)
{
    p->t = t;
    p->alen = alen;
    p->is_udp = is_udp;
    p->d = flow_dir(src, dst, alen, sport, dport);
    if (p->d == 0) {
        p->a = src, p->b = dst, p->pa = sport, p->pb = dport;
    } else {
        p->a = dst, p->b = src, p->pa = dport, p->pb = sport;
    }
    p->h = key_hash(p->a, p->b, alen, p->pa, p->pb);
    p->slot = table_find(t, p->h, p->a, p->b, alen, p->pa, p->pb);
    return t->slots[p->slot] ? &t->items[t->slots[p->slot] - 1] : NULL;
}

/* a new stream for the probed key (the key's next stream when it had one) */
static Stream *probe_new(Probe *p, int64_t ts)
{
    return table_new(p->t, p->slot, p->h, p->a, p->b, p->alen, p->pa, p->pb, ts, p->is_udp);
}

/* the key's stream, made when the key is new; *fresh says which */
static Stream *find_or_new(Probe *p, Table *t, const uint8_t *src, const uint8_t *dst, int alen, int sport,
                           int dport, int is_udp, int64_t ts, int *fresh)
{
    Stream *st = probe(p, t, src, dst, alen, sport, dport, is_udp);
    *fresh = st == NULL;
    return st ? st : probe_new(p, ts);
}

static int add_detail(Engine *e, PyObject *tuple)
{
    if (!tuple)
        return -1;
    int r = PyList_Append(e->detail, tuple);
    Py_DECREF(tuple);
    return r;
}

static int tcp_packet(Engine *e, int64_t frame, int64_t ts, int64_t orig_len, const uint8_t *src, const uint8_t *dst,
                      int alen, int sport, int dport, uint32_t seq, uint32_t ack, int flags, uint32_t win,
                      int64_t seglen, int wscale, PyObject *encap)
{
    Probe p;
    int fresh;
    Stream *st = find_or_new(&p, &e->tcp, src, dst, alen, sport, dport, 0, ts, &fresh);
    if (!st)
        return -1;
    int d = p.d, ta = 0;
    if (!fresh && (flags & TH_SYN)) {
        Flow *f = &st->flows[d];
        if (f->base_set && seq != f->base_seq) {
            ta = A_REUSED_PORTS; /* 4.0 flags a SYN-ACK with another seq but keeps the stream */
            if (!(flags & TH_ACK) && !(st = probe_new(&p, ts)))
                return -1;
        } else if (!(flags & TH_ACK) && f->maxseqtobeacked) {
            f->nextseq = f->maxseqtobeacked; /* a repeated pure SYN: back to the in-order end (measured) */
        }
    }
    Flow *fwd = &st->flows[d], *rev = &st->flows[1 - d];
    int track = !st->rtt_shown;
    if (track && !st->unacked) {
        st->unacked = (Unacked *)PyMem_Calloc(2, sizeof(Unacked));
        if (!st->unacked) {
            PyErr_NoMemory();
            return -1;
        }
    }
    ta = tcp_analyze(fwd, rev, seq, ack, seglen, flags, win, ts, st->first_rtt, ta,
                     track ? &st->unacked[d] : NULL, track ? &st->unacked[1 - d] : NULL);

    if (st->first_dir < 0) {
        st->first_dir = (int8_t)d;
        st->first_frame = frame;
        st->first_ts = ts;
        Py_XINCREF(encap);
        st->encap = encap;
    }
    if (st->z.orig < 0)
        zeek_tcp_start(&st->z, d, flags, sport, dport, dst, alen);
    st->last_ts = ts;
    st->pkts[d] += 1;
    st->bytes[d] += orig_len;
    st->pay[d] += seglen;
    if (flags & (TH_SYN | TH_FIN | TH_RST)) {
        if (flags & TH_SYN) {
            st->syn++;
            if (flags & TH_ACK) {
                if (st->server_isn < 0) {
                    st->server_isn = seq;
                    st->synack_ack = ack;
                }
                if (ta & A_REUSED_PORTS)
                    fwd->base_seq = seq; /* measured (4.0.17): the odd SYN-ACK becomes relative seq 0 */
            } else {
                st->mru_syn = ts;
                if (st->syn_dir < 0) {
                    st->syn_dir = (int8_t)d;
                    st->client_isn = seq;
                }
            }
            int scale = fwd->win_scale;
            if (wscale >= 0)
                scale = fwd->win_scale = (int8_t)(wscale < 14 ? wscale : 14);
            if (scale == -1)
                fwd->win_scale = rev->win_scale = -2;
            else if ((flags & TH_ACK) && rev->win_scale == -2)
                fwd->win_scale = -2;
        }
        if (flags & TH_FIN)
            st->fin++;
        if (flags & TH_RST) {
            st->rst++;
            if ((flags & TH_ACK) && st->rst_ack < 0)
                st->rst_ack = ack;
        }
    }
    if ((flags & (TH_SYN | TH_ACK)) == TH_ACK && st->mru_syn && !st->first_rtt)
        st->first_rtt = ts - st->mru_syn;
    if (track && ta && st->first_rtt) {
        /* tshark shows the RTT only on frames that carry its analysis subtree */
        st->rtt_shown = 1;
        drop_unacked(&st->unacked);
    }
    if (ta) {
        if (ta & A_ANY_RETRANSMISSION)
            st->retrans++;
        if (ta & A_ZERO_WINDOW)
            st->zero_window++;
        if (ta & A_DUPLICATE_ACK)
            st->dup_acks++;
        if (ta & A_OUT_OF_ORDER)
            st->ooo++;
        if (ta & A_LOST_PACKET)
            st->lost++;
    }
    zeek_packet(&st->z, d, flags, seq, ack, seglen, win);
    if (hist_oom) {
        hist_oom = 0;
        PyErr_NoMemory();
        return -1;
    }
    if (st->index == e->detail_tcp) {
        uint64_t wide = (!(flags & TH_SYN) && fwd->win_scale >= 0) ? (uint64_t)win << fwd->win_scale : win;
        uint32_t rseq = seq - fwd->base_seq;
        int64_t rack = (flags & TH_ACK) ? (int64_t)(uint32_t)(ack - rev->base_seq) : (int64_t)ack;
        if (add_detail(e, Py_BuildValue("(LLLiLiILKi)", (long long)frame, (long long)(ts - st->base_ts),
                                        (long long)orig_len, d, (long long)seglen, flags, rseq, (long long)rack,
                                        (unsigned long long)wide, ta)) < 0)
            return -1;
    }
    return 0;
}

/* the ICMP frame of a quoted header counts in that header's stream (table.py _count_quote) */
static void count_quote(Stream *st, int d, int64_t frame, int64_t ts, int64_t orig_len, int64_t paylen,
                        PyObject *encap)
{
    if (st->first_dir < 0) {
        st->first_dir = (int8_t)d;
        st->first_frame = frame;
        st->first_ts = ts;
        Py_XINCREF(encap);
        st->encap = encap;
    }
    st->last_ts = ts;
    st->pkts[d] += 1;
    st->bytes[d] += orig_len;
    st->pay[d] += paylen;
}

static int tcp_quote(Engine *e, int64_t frame, int64_t ts, int64_t orig_len, const uint8_t *src, const uint8_t *dst,
                     int alen, int sport, int dport, uint32_t seq, uint32_t ack, int flags, uint32_t win,
                     PyObject *encap)
{
    Probe p;
    int fresh;
    Stream *st = find_or_new(&p, &e->tcp, src, dst, alen, sport, dport, 0, ts, &fresh);
    if (!st)
        return -1;
    int ta = 0;
    if (!fresh && (flags & (TH_SYN | TH_ACK)) == TH_SYN) {
        Flow *f = &st->flows[p.d];
        if (f->base_set && seq != f->base_seq) {
            if (!(st = probe_new(&p, ts)))
                return -1;
            ta = A_REUSED_PORTS;
        }
    }
    /* tshark's handshake-RTT bookkeeping is not skipped for quoted headers (measured) */
    if ((flags & (TH_SYN | TH_ACK)) == TH_SYN)
        st->mru_syn = ts;
    else if ((flags & (TH_SYN | TH_ACK)) == TH_ACK && st->mru_syn && !st->first_rtt)
        st->first_rtt = ts - st->mru_syn;
    count_quote(st, p.d, frame, ts, orig_len, 0, encap);
    if (flags & TH_SYN)
        st->syn++;
    if (flags & TH_FIN)
        st->fin++;
    if (flags & TH_RST)
        st->rst++;
    if (st->index == e->detail_tcp) {
        /* tshark shows a quoted header's raw seq, ack and window, and no tcp.len */
        if (add_detail(e, Py_BuildValue("(LLLiLiILKi)", (long long)frame, (long long)(ts - st->base_ts),
                                        (long long)orig_len, p.d, 0LL, flags, seq, (long long)ack,
                                        (unsigned long long)win, ta)) < 0)
            return -1;
    }
    return 0;
}

static int udp_packet(Engine *e, int64_t frame, int64_t ts, int64_t orig_len, const uint8_t *src, const uint8_t *dst,
                      int alen, int sport, int dport, int64_t paylen, PyObject *encap)
{
    Probe p;
    int fresh;
    Stream *st = find_or_new(&p, &e->udp, src, dst, alen, sport, dport, 1, ts, &fresh);
    if (!st)
        return -1;
    int d = p.d;
    if (st->first_dir < 0) {
        st->first_dir = (int8_t)d;
        st->first_frame = frame;
        st->first_ts = ts;
        Py_XINCREF(encap);
        st->encap = encap;
    }
    if (st->z.orig < 0)
        zeek_udp_start(&st->z, d, sport, dport, dst, alen);
    st->last_ts = ts;
    st->pkts[d] += 1;
    st->bytes[d] += orig_len;
    st->pay[d] += paylen;
    zeek_udp_packet(&st->z, d);
    if (hist_oom) {
        hist_oom = 0;
        PyErr_NoMemory();
        return -1;
    }
    if (st->index == e->detail_udp) {
        if (add_detail(e, Py_BuildValue("(LLLiL)", (long long)frame, (long long)(ts - st->base_ts),
                                        (long long)orig_len, d, (long long)paylen)) < 0)
            return -1;
    }
    return 0;
}

static int udp_quote(Engine *e, int64_t frame, int64_t ts, int64_t orig_len, const uint8_t *src, const uint8_t *dst,
                     int alen, int sport, int dport, int64_t paylen, PyObject *encap)
{
    Probe p;
    int fresh;
    Stream *st = find_or_new(&p, &e->udp, src, dst, alen, sport, dport, 1, ts, &fresh);
    if (!st)
        return -1;
    count_quote(st, p.d, frame, ts, orig_len, paylen, encap);
    if (st->index == e->detail_udp) {
        if (add_detail(e, Py_BuildValue("(LLLiL)", (long long)frame, (long long)(ts - st->base_ts),
                                        (long long)orig_len, p.d, (long long)paylen)) < 0)
            return -1;
    }
    return 0;
}

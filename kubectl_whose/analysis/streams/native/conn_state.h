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

static void zeek_reset(Zeek *z)
{
    if (z->hcap)
        PyMem_Free(z->heap);
    memset(z, 0, sizeof(*z));
}

static int letter_bit(char c)
{
    static const char *order = "SHADFRIQshadfriq";
    const char *p = strchr(order, c);
    return p ? 1 << (p - order) : 0;
}

static int scaled_hit(uint32_t count)
{
    while (count % 10 == 0)
        count /= 10;
    return count == 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Zeek (conn_state.py ZeekTcp)                                                               */

static void zeek_flip(Zeek *z)
{
    uint8_t s = z->state[0];
    z->state[0] = z->state[1];
    z->state[1] = s;
    uint8_t ms = 0;
    for (int i = 0; i < 8; i += 2) {
        uint32_t m = z->mark[i];
        z->mark[i] = z->mark[i + 1];
        z->mark[i + 1] = m;
        if (z->markset & (1 << i))
            ms |= 1 << (i + 1);
        if (z->markset & (1 << (i + 1)))
            ms |= 1 << i;
    }
    z->markset = ms;
    int64_t sz = z->size[0];
    z->size[0] = z->size[1];
    z->size[1] = sz;
    z->hlen = 0;
    hist_append(z, "^h", 2);
    z->seen = (uint16_t)letter_bit('h');
    z->t[0] = z->t[1] = z->w[0] = z->w[1] = 0;
}

static void zeek_once(Zeek *z, int role, char letter)
{
    char key = role == 0 ? letter : (char)(letter - 'A' + 'a');
    int bit = letter_bit(key);
    if (!(z->seen & bit)) {
        z->seen |= bit;
        hist_append(z, &key, 1);
    }
}

static void zeek_data(Zeek *z, int role, uint32_t seq, int64_t seglen, int extra)
{
    uint32_t end = (uint32_t)(seq + (uint32_t)seglen + (uint32_t)extra);
    int slot = MK_HIGH + role;
    if (!(z->markset & (1 << slot)) || GT_SEQ(end, z->mark[slot])) {
        z->mark[slot] = end;
        z->markset |= 1 << slot;
    } else if (seglen) {
        z->t[role]++;
        if (scaled_hit(z->t[role]))
            hist_append(z, role == 0 ? "T" : "t", 1);
    }
}

static void zeek_history(Zeek *z, int role, int flags, uint32_t seq, int64_t seglen, uint32_t window)
{
    int syn = flags & TH_SYN, fin = flags & TH_FIN, rst = flags & TH_RST;
    int bits = (syn ? 1 : 0) + (fin ? 1 : 0) + (rst ? 1 : 0);
    if (bits == 1) {
        char letter;
        int slot;
        uint32_t value;
        if (syn) {
            letter = (flags & TH_ACK) ? 'H' : 'S';
            slot = MK_SYN;
            value = seq;
        } else if (fin) {
            letter = 'F';
            slot = MK_FIN;
            value = (uint32_t)(seq + (uint32_t)seglen);
        } else {
            letter = 'R';
            slot = MK_RST;
            value = seq;
        }
        if (role)
            letter = (char)(letter - 'A' + 'a');
        int bit = letter_bit(letter);
        int m = slot + role;
        if (!(z->seen & bit)) {
            z->seen |= bit;
            hist_append(z, &letter, 1);
        } else if (!(z->markset & (1 << m)) || z->mark[m] != value) {
            hist_append(z, &letter, 1);
        }
        z->mark[m] = value;
        z->markset |= 1 << m;
    } else if (bits > 1) {
        zeek_once(z, role, (fin && rst) ? 'I' : 'Q');
    } else if (seglen) {
        zeek_once(z, role, 'D');
    } else if (flags & TH_ACK) {
        zeek_once(z, role, 'A');
    }
    if (seglen && !syn)
        z->size[role] += seglen;
    zeek_data(z, role, seq, seglen, (syn ? 1 : 0) + (fin ? 1 : 0));
    if (window == 0 && !rst && z->state[1 - role] != CLOSED && z->state[role] != RESET) {
        z->w[role]++;
        if (scaled_hit(z->w[role]))
            hist_append(z, role == 0 ? "W" : "w", 1);
    }
}

static void zeek_state(Zeek *z, int role, int flags, int64_t seglen)
{
    uint8_t *st = z->state;
    int e = st[role], p = st[1 - role];
    int syn = flags & TH_SYN, fin = flags & TH_FIN, rst = flags & TH_RST, ack = flags & TH_ACK;
    if (e == INACTIVE) {
        if (syn) {
            if (role == 0) {
                e = ack ? SYN_ACK_SENT : SYN_SENT;
            } else if (ack) {
                if (p == SYN_SENT)
                    st[0] = ESTABLISHED;
                e = ESTABLISHED;
            } else if (p == SYN_ACK_SENT) {
                st[0] = ESTABLISHED;
                e = ESTABLISHED;
            } else {
                e = SYN_SENT;
            }
            if (fin)
                e = CLOSED;
            if (rst)
                e = RESET;
        } else if (fin) {
            e = rst ? RESET : CLOSED;
        } else if (rst) {
            e = RESET;
        } else if (role == 1 && ack && !seglen && p == SYN_SENT) {
            /* an ACK answering a SYN, no SYN-ACK: the responder stays inactive */
        } else if (ack && p == ESTABLISHED) {
            e = ESTABLISHED;
        } else {
            e = PARTIAL;
        }
    } else if (e == SYN_SENT || e == SYN_ACK_SENT) {
        if (fin)
            e = CLOSED;
        else if (rst)
            e = RESET;
        else if (ack && p == ESTABLISHED)
            e = ESTABLISHED;
    } else if (e == ESTABLISHED || e == PARTIAL) {
        if (syn && !ack && e == PARTIAL && p == INACTIVE)
            e = SYN_SENT;
        else if (fin && !rst)
            e = CLOSED;
        else if (rst)
            e = RESET;
    } else if (e == CLOSED) {
        if (rst && p != CLOSED)
            e = RESET;
    }
    st[role] = (uint8_t)e;
}

/* returns the role after a possible flip */
static int zeek_packet(Zeek *z, int role, int flags, uint32_t seq, int64_t seglen, uint32_t window)
{
    if (z->hlen == 1 && hist_text(z)[0] == 'H' && !(flags & (TH_SYN | TH_FIN | TH_RST)) &&
        (seglen || (flags & TH_ACK))) {
        zeek_flip(z);
        role = 1 - role;
    }
    if (!(flags & (TH_SYN | TH_FIN | TH_RST)) && z->state[role] >= PARTIAL && window) {
        char letter = role == 0 ? (seglen ? 'D' : 'A') : (seglen ? 'd' : 'a');
        int bit = letter_bit(letter);
        if ((seglen || (flags & TH_ACK)) && !(z->seen & bit)) {
            z->seen |= bit;
            hist_append(z, &letter, 1);
        }
        if (seglen) {
            z->size[role] += seglen;
            zeek_data(z, role, seq, seglen, 0);
        }
        return role;
    }
    zeek_history(z, role, flags, seq, seglen, window);
    zeek_state(z, role, flags, seglen);
    return role;
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
    int os_ = z->state[0], rs = z->state[1];
    int o_inactive = os_ == INACTIVE || os_ == PARTIAL;
    int r_inactive = rs == INACTIVE || rs == PARTIAL;
    if (rs == RESET) {
        if (os_ == SYN_SENT || os_ == SYN_ACK_SENT || (os_ == RESET && z->size[0] == 0 && z->size[1] == 0))
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

/* UDP: D/d once each (conn_state.py ZeekUdp), kept in the same letters bitmask */
static void zeek_udp_packet(Zeek *z, int role)
{
    char letter = role == 0 ? 'D' : 'd';
    int bit = letter_bit(letter);
    if (!(z->seen & bit)) {
        z->seen |= bit;
        hist_append(z, &letter, 1);
    }
}

static const char *zeek_udp_conn_state(const Zeek *z)
{
    int o = (z->seen & letter_bit('D')) != 0, r = (z->seen & letter_bit('d')) != 0;
    if (o)
        return r ? "SF" : "S0";
    return r ? "SHR" : "OTH";
}

/* Zeek's likely_server_ports (conn_state.py LIKELY_SERVER_PORTS) */
static const uint16_t SERVER_PORTS[] = {21, 22, 23, 25, 53, 80, 88, 110, 111, 119, 123, 135, 137, 139, 143, 161,
    389, 443, 445, 465, 502, 514, 587, 636, 993, 995, 1080, 1194, 1812, 2049, 3128, 3306, 3389, 4789, 5060, 5222,
    5432, 6081, 6379, 6443, 6667, 8080, 8443, 9042, 9200, 11211, 27017};
static uint8_t server_port_bits[65536 / 8];

static int likely_server(int port) { return (server_port_bits[port >> 3] >> (port & 7)) & 1; }

static int orig_is_receiver(int flags, int sport, int dport)
{
    if ((flags & (TH_SYN | TH_ACK)) == TH_SYN)
        return 0;
    if (!likely_server(sport))
        return 0;
    if (likely_server(dport))
        return !((flags & TH_SYN) && (flags & TH_ACK)) && sport < dport;
    return 1;
}

/* A stream as a row: endpoints, seconds as Python rounds them, the JSON text (rows.py).
 * Part of the native engine: included once, in order, by ../_engine.c (one translation unit). */

static void endpoint(char *out, const uint8_t *addr, int alen, int port)
{
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(alen == 4 ? AF_INET : AF_INET6, addr, ip, sizeof(ip));
    if (alen == 4)
        snprintf(out, 64, "%s:%d", ip, port);
    else
        snprintf(out, 64, "[%s]:%d", ip, port);
}

static int client_dir(const Stream *s) { return s->syn_dir >= 0 ? s->syn_dir : s->first_dir; }

/* round(ns / 1e9, 9) exactly as Python computes it: below 2**22 s the float nearest the decimal
 * ns * 1e-9 (half an ulp of the quotient is < 0.5e-9 there); above, Python's own round(). */
static PyObject *seconds9(int64_t ns)
{
    if (ns > -4000000000000000LL && ns < 4000000000000000LL) {
        char text[40];
        uint64_t a = ns < 0 ? (uint64_t)(-ns) : (uint64_t)ns;
        snprintf(text, sizeof text, "%s%llu.%09llu", ns < 0 ? "-" : "", (unsigned long long)(a / 1000000000ULL),
                 (unsigned long long)(a % 1000000000ULL));
        double v = PyOS_string_to_double(text, NULL, NULL);
        if (v == -1.0 && PyErr_Occurred())
            return NULL;
        return PyFloat_FromDouble(v);
    }
    PyObject *q = PyFloat_FromDouble((double)ns / 1e9);
    if (!q)
        return NULL;
    PyObject *builtins = PyEval_GetBuiltins(); /* borrowed */
    PyObject *round = builtins ? PyDict_GetItemString(builtins, "round") : NULL;
    PyObject *r = round ? PyObject_CallFunction(round, "Oi", q, 9) : NULL;
    Py_DECREF(q);
    return r;
}

static PyObject *new_ref(PyObject *o)
{
    Py_INCREF(o);
    return o;
}

static PyObject *opt_int(int64_t v) { return v < 0 ? new_ref(Py_None) : PyLong_FromLongLong(v); }

/* growable text */
typedef struct {
    char *p;
    size_t n, cap;
} Text;

static int text_reserve(Text *t, size_t more)
{
    if (t->n + more + 1 <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->n + more + 1)
        cap *= 2;
    char *p = (char *)PyMem_Realloc(t->p, cap);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    t->p = p;
    t->cap = cap;
    return 0;
}

static int text_add(Text *t, const char *s, size_t n)
{
    if (text_reserve(t, n) < 0)
        return -1;
    memcpy(t->p + t->n, s, n);
    t->n += n;
    return 0;
}

static int text_fmt(Text *t, const char *fmt, ...)
{
    if (text_reserve(t, 256) < 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    if (k < 0)
        return -1;
    if ((size_t)k >= t->cap - t->n) {
        if (text_reserve(t, (size_t)k + 1) < 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
    }
    t->n += (size_t)k;
    return 0;
}

/* repr() of a float, as json writes it */
static int text_double(Text *t, double v)
{
    char *s = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!s)
        return -1;
    int r = text_add(t, s, strlen(s));
    PyMem_Free(s);
    return r;
}

/* repr(ns / 1e9), which for |ns| < 4e15 (2**22 s) is also repr(round(ns / 1e9, 9)): the float
 * nearest the decimal ns * 1e-9, whose shortest repr is that decimal itself (two decimals 1e-9 apart
 * cannot round to one float there). Written straight from the integer, in repr's layout: fixed
 * notation from 1e-4 up, "1.5e-05" below. Outside that range: Python's own conversion. */
static int text_seconds(Text *t, int64_t ns, int rounded)
{
    if (ns <= -4000000000000000LL || ns >= 4000000000000000LL) {
        if (!rounded)
            return text_double(t, (double)ns / 1e9);
        PyObject *f = seconds9(ns);
        int r = f ? text_double(t, PyFloat_AsDouble(f)) : -1;
        Py_XDECREF(f);
        return r;
    }
    char out[48], digits[16];
    char *p = out;
    uint64_t a = ns < 0 ? (uint64_t)(-ns) : (uint64_t)ns;
    uint64_t ip = a / 1000000000ULL, fp = a % 1000000000ULL;
    if (ns < 0)
        *p++ = '-';
    if (ip > 0 || fp >= 100000 || fp == 0) {
        p += snprintf(p, 24, "%llu.", (unsigned long long)ip);
        if (fp == 0) {
            *p++ = '0';
        } else {
            snprintf(digits, sizeof digits, "%09llu", (unsigned long long)fp);
            int k = 9;
            while (digits[k - 1] == '0')
                k--;
            memcpy(p, digits, (size_t)k);
            p += k;
        }
    } else {
        int k = snprintf(digits, sizeof digits, "%llu", (unsigned long long)fp); /* fp * 1e-9, k digits */
        int m = k;
        while (m > 1 && digits[m - 1] == '0')
            m--;
        *p++ = digits[0];
        if (m > 1) {
            *p++ = '.';
            memcpy(p, digits + 1, (size_t)(m - 1));
            p += m - 1;
        }
        p += snprintf(p, 8, "e-%02d", 10 - k);
    }
    return text_add(t, out, (size_t)(p - out));
}

static int text_opt(Text *t, int64_t v)
{
    return v < 0 ? text_add(t, "null", 4) : text_fmt(t, "%lld", (long long)v);
}

/* the JSON text of an encapsulation label, json.dumps(label, ensure_ascii=False), cached per label */
static int text_encap(Engine *self, Text *t, PyObject *encap)
{
    if (!encap)
        return text_add(t, "null", 4);
    PyObject *cached = PyDict_GetItemWithError(self->json_cache, encap); /* borrowed */
    if (!cached) {
        if (PyErr_Occurred())
            return -1;
        PyObject *json = PyImport_ImportModule("json");
        PyObject *dumps = json ? PyObject_GetAttrString(json, "dumps") : NULL;
        Py_XDECREF(json);
        PyObject *kw = dumps ? Py_BuildValue("{s:O}", "ensure_ascii", Py_False) : NULL;
        PyObject *targs = kw ? PyTuple_Pack(1, encap) : NULL;
        PyObject *text = targs ? PyObject_Call(dumps, targs, kw) : NULL;
        Py_XDECREF(dumps);
        Py_XDECREF(kw);
        Py_XDECREF(targs);
        if (!text)
            return -1;
        cached = PyUnicode_AsUTF8String(text);
        Py_DECREF(text);
        if (!cached || PyDict_SetItem(self->json_cache, encap, cached) < 0) {
            Py_XDECREF(cached);
            return -1;
        }
        Py_DECREF(cached); /* the dict holds it */
    }
    char *b;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(cached, &b, &n) < 0)
        return -1;
    return text_add(t, b, (size_t)n);
}

static int json_row(Engine *self, Text *t, const Stream *s, int64_t file_first)
{
    char ends[2][64];
    endpoint(ends[0], s->a, s->alen, s->pa);
    endpoint(ends[1], s->b, s->alen, s->pb);
    int c = client_dir(s), sd = 1 - c;
    int udp = s->is_udp;
    if (text_fmt(t,
                 "{\"proto\": \"%s\", \"index\": %d, \"client\": \"%s\", \"server\": \"%s\", \"packets\": %lld, "
                 "\"bytes\": %lld, \"payload_bytes\": %lld, \"client_packets\": %lld, \"server_packets\": %lld, "
                 "\"client_bytes\": %lld, \"server_bytes\": %lld, \"client_payload_bytes\": %lld, "
                 "\"server_payload_bytes\": %lld, \"first_frame\": %lld, \"start\": ",
                 udp ? "udp" : "tcp", (int)s->index, ends[c], ends[sd], (long long)(s->pkts[0] + s->pkts[1]),
                 (long long)(s->bytes[0] + s->bytes[1]), (long long)(s->pay[0] + s->pay[1]), (long long)s->pkts[c],
                 (long long)s->pkts[sd], (long long)s->bytes[c], (long long)s->bytes[sd], (long long)s->pay[c],
                 (long long)s->pay[sd], (long long)s->first_frame) < 0)
        return -1;
    if (text_seconds(t, s->first_ts - file_first, 1) < 0 || text_add(t, ", \"duration\": ", 14) < 0 ||
        text_seconds(t, s->last_ts - s->first_ts, 1) < 0)
        return -1;
    if (text_fmt(t,
                 ", \"flags\": {\"SYN\": %u, \"FIN\": %u, \"RST\": %u}, \"retransmissions\": %u, \"zero_window\": %u, "
                 "\"dup_acks\": %u, \"out_of_order\": %u, \"lost_segments\": %u, \"handshake_rtt\": ",
                 s->syn, s->fin, s->rst, s->retrans, s->zero_window, s->dup_acks, s->ooo, s->lost) < 0)
        return -1;
    if (!udp && s->first_rtt && s->rtt_shown) {
        if (text_seconds(t, s->first_rtt, 0) < 0)
            return -1;
    } else if (text_add(t, "null", 4) < 0) {
        return -1;
    }
    /* states and histories are [A-Za-z0-9^]: no escaping needed */
    if (text_fmt(t, ", \"state\": \"%s\", \"history\": \"", udp ? zeek_udp_conn_state(&s->z)
                                                                  : zeek_conn_state(&s->z)) < 0 ||
        text_add(t, hist_text(&s->z), s->z.hlen) < 0 || text_add(t, "\", \"encapsulation\": ", 20) < 0 ||
        text_encap(self, t, s->encap) < 0 || text_add(t, ", \"client_isn\": ", 16) < 0 ||
        text_opt(t, s->client_isn) < 0 || text_add(t, ", \"server_isn\": ", 16) < 0 ||
        text_opt(t, s->server_isn) < 0 || text_add(t, ", \"synack_ack\": ", 16) < 0 ||
        text_opt(t, s->synack_ack) < 0 || text_add(t, ", \"rst_ack\": ", 13) < 0 || text_opt(t, s->rst_ack) < 0 ||
        text_add(t, ", \"first_abs_ts\": ", 18) < 0 || text_double(t, (double)s->first_ts / 1e9) < 0 ||
        text_add(t, "}", 1) < 0)
        return -1;
    return 0;
}

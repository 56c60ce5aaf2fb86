/* Classic pcap records and pcapng enhanced packet blocks read straight from the reader's buffer.
 * Part of the native engine: included once, in order, by ../_engine.c (one translation unit). */

/* frame(frame_no, ts, linktype, orig_len, data) -> True when handled here, False for the general path */
static PyObject *Engine_frame(Engine *self, PyObject *args)
{
    long long frame, ts, orig_len;
    int linktype;
    PyObject *data;
    char *buf;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "LLiLS", &frame, &ts, &linktype, &orig_len, &data))
        return NULL;
    if (PyBytes_AsStringAndSize(data, &buf, &n) < 0)
        return NULL;
    int r = plain_frame(self, frame, ts, linktype, orig_len, (const uint8_t *)buf, n);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r == 0);
}

/* feed_pcap(buf, pos, big_endian, ns, rec_len, linktype, frames, general)
 *   -> (pos, frames, packets, bytes, first_ts|None, last_ts|None, bad_caplen)
 * Every complete classic-pcap record in buf[pos:]; frames this file does not decode go to
 * general(frame_no, ts, linktype, orig_len, data). bad_caplen >= 0: that record's length is
 * impossible and the read stops before it (capture_file.py reports the corruption). */
static PyObject *Engine_feed_pcap(Engine *self, PyObject *args)
{
    PyObject *bufobj, *general;
    long long pos, frames;
    int big, ns, rec_len, linktype;
    if (!PyArg_ParseTuple(args, "OLppiiLO", &bufobj, &pos, &big, &ns, &rec_len, &linktype, &frames, &general))
        return NULL;
    if (!PyByteArray_Check(bufobj)) {
        PyErr_SetString(PyExc_TypeError, "buf must be a bytearray");
        return NULL;
    }
    int64_t packets = 0, nbytes = 0, first_ts = 0, last_ts = 0, bad = -1;
    int64_t mult = ns ? 1 : 1000;
    while (1) {
        /* re-read each time: the general callback may run Python code (it never resizes buf) */
        const uint8_t *buf = (const uint8_t *)PyByteArray_AsString(bufobj);
        int64_t end = PyByteArray_Size(bufobj);
        if (end - pos < rec_len)
            break;
        const uint8_t *hp = buf + pos;
        uint32_t sec, frac, caplen, olen;
        if (big) {
            sec = be32(hp), frac = be32(hp + 4), caplen = be32(hp + 8), olen = be32(hp + 12);
        } else {
            memcpy(&sec, hp, 4), memcpy(&frac, hp + 4, 4), memcpy(&caplen, hp + 8, 4), memcpy(&olen, hp + 12, 4);
        }
        if (caplen > MAX_RECORD) {
            bad = caplen;
            break;
        }
        int64_t start = pos + rec_len, stop = start + caplen;
        if (stop > end)
            break;
        frames++;
        pos = stop;
        int64_t ts = (int64_t)sec * 1000000000LL + (int64_t)frac * mult;
        if (packets == 0)
            first_ts = ts;
        last_ts = ts;
        packets++;
        nbytes += olen;
        int r = plain_frame(self, frames, ts, linktype, olen, buf + start, caplen);
        if (r < 0)
            return NULL;
        if (r == 1) {
            PyObject *data = PyBytes_FromStringAndSize((const char *)buf + start, caplen);
            if (!data)
                return NULL;
            PyObject *res = PyObject_CallFunction(general, "LLiLO", (long long)frames, (long long)ts, linktype,
                                                  (long long)olen, data);
            Py_DECREF(data);
            if (!res)
                return NULL;
            Py_DECREF(res);
        }
    }
    if (packets == 0)
        return Py_BuildValue("(LLLLOOL)", (long long)pos, (long long)frames, 0LL, 0LL, Py_None, Py_None,
                             (long long)bad);
    return Py_BuildValue("(LLLLLLL)", (long long)pos, (long long)frames, (long long)packets, (long long)nbytes,
                         (long long)first_ts, (long long)last_ts, (long long)bad);
}

/* feed_pcapng(buf, pos, big_endian, interfaces, frames, general)
 *   -> (pos, frames, packets, bytes, first_ts|None, last_ts|None, stopped)
 * Consecutive Enhanced Packet Blocks of buf[pos:]; `interfaces` is ((linktype, units_num, units_den,
 * offset_ns), ...) as capture_file.py read them from the section's IDBs. Stops (stopped=1) at any
 * other block, or at an EPB it cannot take as it is (bad lengths, unknown interface, a timestamp
 * beyond 64 bits), for capture_file.py to handle or report; stopped=0: no complete block left. */
static PyObject *Engine_feed_pcapng(Engine *self, PyObject *args)
{
    PyObject *bufobj, *ifaces, *general;
    long long pos, frames;
    int big;
    if (!PyArg_ParseTuple(args, "OLpOLO", &bufobj, &pos, &big, &ifaces, &frames, &general))
        return NULL;
    if (!PyByteArray_Check(bufobj) || !PyTuple_Check(ifaces)) {
        PyErr_SetString(PyExc_TypeError, "buf must be a bytearray and interfaces a tuple");
        return NULL;
    }
    Py_ssize_t nif = PyTuple_Size(ifaces);
    struct { int linktype; long long num, den, offset; } *ifs = NULL;
    if (nif > 0) {
        ifs = PyMem_Calloc((size_t)nif, sizeof(*ifs));
        if (!ifs)
            return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < nif; i++) {
        if (!PyArg_ParseTuple(PyTuple_GetItem(ifaces, i), "iLLL", &ifs[i].linktype, &ifs[i].num, &ifs[i].den,
                              &ifs[i].offset)) {
            PyMem_Free(ifs);
            return NULL;
        }
        if (ifs[i].den <= 0 || ifs[i].num <= 0)
            ifs[i].linktype = -1; /* leave odd resolutions to Python */
    }
    int64_t packets = 0, nbytes = 0, first_ts = 0, last_ts = 0;
    int stopped = 0;
    while (1) {
        const uint8_t *buf = (const uint8_t *)PyByteArray_AsString(bufobj);
        int64_t end = PyByteArray_Size(bufobj);
        if (end - pos < 12)
            break;
        const uint8_t *b = buf + pos;
        uint32_t btype, blen;
        if (big) {
            btype = be32(b), blen = be32(b + 4);
        } else {
            memcpy(&btype, b, 4), memcpy(&blen, b + 4, 4);
        }
        if (btype != 6 || blen < 32 || blen % 4 || blen > MAX_RECORD) {
            stopped = 1;
            break;
        }
        if (end - pos < blen)
            break;
        const uint8_t *body = b + 8;
        uint32_t f[5];
        for (int k = 0; k < 5; k++) {
            if (big)
                f[k] = be32(body + 4 * k);
            else
                memcpy(&f[k], body + 4 * k, 4);
        }
        uint32_t iface = f[0], caplen = f[3], olen = f[4];
        if (iface >= (uint32_t)nif || ifs[iface].linktype < 0 || 20 + (uint64_t)caplen > (uint64_t)blen - 12) {
            stopped = 1;
            break;
        }
        unsigned __int128 units = ((unsigned __int128)f[1] << 32) | f[2];
        __int128 ts128 = (__int128)(units * (unsigned __int128)ifs[iface].num / (unsigned __int128)ifs[iface].den) +
                         ifs[iface].offset;
        if (ts128 > INT64_MAX || ts128 < INT64_MIN) {
            stopped = 1;
            break;
        }
        int64_t ts = (int64_t)ts128;
        frames++;
        pos += blen;
        if (packets == 0)
            first_ts = ts;
        last_ts = ts;
        packets++;
        nbytes += olen;
        const uint8_t *data = body + 20;
        int r = plain_frame(self, frames, ts, ifs[iface].linktype, olen, data, caplen);
        if (r < 0) {
            PyMem_Free(ifs);
            return NULL;
        }
        if (r == 1) {
            PyObject *bytes = PyBytes_FromStringAndSize((const char *)data, caplen);
            PyObject *res = bytes ? PyObject_CallFunction(general, "LLiLO", (long long)frames, (long long)ts,
                                                          ifs[iface].linktype, (long long)olen, bytes)
                                  : NULL;
            Py_XDECREF(bytes);
            if (!res) {
                PyMem_Free(ifs);
                return NULL;
            }
            Py_DECREF(res);
        }
    }
    PyMem_Free(ifs);
    if (packets == 0)
        return Py_BuildValue("(LLLLOOi)", (long long)pos, (long long)frames, 0LL, 0LL, Py_None, Py_None, stopped);
    return Py_BuildValue("(LLLLLLi)", (long long)pos, (long long)frames, (long long)packets, (long long)nbytes,
                         (long long)first_ts, (long long)last_ts, stopped);
}

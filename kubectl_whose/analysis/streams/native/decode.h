/* Plain frames: decode.py's plain_frame, statement by statement.
 * Part of the native engine: included once, in order, by ../_engine.c (one translation unit). */

/* ------------------------------------------------------------------------------------------ */
/* plain frames: Ethernet/SLL/SLL2/RAW -> IPv4/IPv6 -> TCP/UDP with one transport header, no  */
/* tunnel, lengths within the frame's. 0: handled, 1: the general path's.                     */

static inline uint32_t be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static inline uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int wscale_option(const uint8_t *f, int64_t pos, int64_t stop)
{
    while (pos < stop) {
        int kind = f[pos];
        if (kind == 0)
            break;
        if (kind == 1) {
            pos++;
            continue;
        }
        if (pos + 1 >= stop)
            break;
        int olen = f[pos + 1];
        if (olen < 2)
            break;
        if (kind == 3 && olen == 3 && pos + 2 < stop)
            return f[pos + 2];
        pos += olen;
    }
    return -1;
}

/* decode.TUNNEL_PORTS: VXLAN (4789, 8472), Geneve, GTP-U, Teredo, AYIYA, GRE in UDP, VXLAN-GPE
 * (tests/analysis/pcap/test_link.py holds the two lists equal, port by port) */
static int is_tunnel_port(uint32_t p)
{
    switch (p) {
    case 4789: case 8472: case 6081: case 2152: case 3544: case 5072: case 4754: case 4790:
        return 1;
    default:
        return 0;
    }
}

/* The plain link types: linktypes.PLAIN in Python, which tests hold this table to (Engine.linktypes()).
 * ip_at: offset of the IP header; ethertype_at: of the 16-bit protocol field, -1 for raw IP;
 * version: 4 or 6 when the link type fixes it, 0 when the ethertype or the first nibble says. */
static const struct { int number, ip_at, ethertype_at, version; } PLAIN_LINKTYPES[] = {
    {1, 14, 12, 0},  /* EN10MB */
    {12, 0, -1, 0},  /* RAW (OpenBSD) */
    {14, 0, -1, 0},  /* RAW (BSD/OS) */
    {101, 0, -1, 0}, /* RAW */
    {113, 16, 14, 0}, /* LINUX_SLL */
    {228, 0, -1, 4}, /* IPV4 */
    {229, 0, -1, 6}, /* IPV6 */
    {276, 20, 0, 0}, /* LINUX_SLL2 */
};
#define N_PLAIN_LINKTYPES ((int)(sizeof(PLAIN_LINKTYPES) / sizeof(PLAIN_LINKTYPES[0])))

/* -1 error, 0 handled, 1 not a plain frame */
static int plain_frame(Engine *e, int64_t frame_no, int64_t ts, int linktype, int64_t orig_len, const uint8_t *f,
                       int64_t n)
{
    int k = 0;
    while (k < N_PLAIN_LINKTYPES && PLAIN_LINKTYPES[k].number != linktype)
        k++;
    if (k == N_PLAIN_LINKTYPES)
        return 1;
    int64_t off = PLAIN_LINKTYPES[k].ip_at;
    int et_at = PLAIN_LINKTYPES[k].ethertype_at;
    int version = PLAIN_LINKTYPES[k].version;
    if (n < off + 1)
        return 1;
    if (et_at >= 0) {
        uint32_t et = be16(f + et_at);
        version = et == 0x0800 ? 4 : et == 0x86DD ? 6 : -1;
    } else if (!version) {
        version = f[off] >> 4;
    }
    int64_t l4, l4len;
    int proto, alen;
    const uint8_t *src, *dst;
    if (version == 4) {
        if (n < off + 20 || f[off] >> 4 != 4)
            return 1;
        int64_t ihl = (f[off] & 15) * 4;
        int64_t total = be16(f + off + 2);
        if (ihl < 20 || total < ihl || n < off + ihl || (be16(f + off + 6) & 0x3FFF) || total > orig_len - off)
            return 1;
        proto = f[off + 9];
        src = f + off + 12;
        dst = f + off + 16;
        alen = 4;
        l4 = off + ihl;
        l4len = total - ihl;
    } else if (version == 6) {
        if (n < off + 40 || f[off] >> 4 != 6)
            return 1;
        l4len = be16(f + off + 4);
        proto = f[off + 6];
        if (l4len == 0 || l4len > orig_len - off - 40)
            return 1;
        src = f + off + 8;
        dst = f + off + 24;
        alen = 16;
        l4 = off + 40;
    } else {
        return 1;
    }
    if (proto == 6) {
        if (n < l4 + 16)
            return 1;
        uint32_t offflags = be16(f + l4 + 12);
        int64_t hlen = (offflags >> 12) * 4;
        if (hlen < 20 || l4len < hlen)
            return 1;
        if (!e->want_tcp)
            return 0;
        int flags = offflags & 0x0FFF;
        int64_t stop = l4 + hlen < n ? l4 + hlen : n;
        int wscale = (flags & TH_SYN) ? wscale_option(f, l4 + 20, stop) : -1;
        return tcp_packet(e, frame_no, ts, orig_len, src, dst, alen, be16(f + l4), be16(f + l4 + 2),
                          be32(f + l4 + 4), be32(f + l4 + 8), flags, be16(f + l4 + 14), l4len - hlen, wscale, NULL);
    }
    if (proto == 17) {
        if (n < l4 + 8 || l4len < 8)
            return 1;
        uint32_t sport = be16(f + l4), dport = be16(f + l4 + 2), ulen = be16(f + l4 + 4);
        if (ulen < 8 || is_tunnel_port(sport) || is_tunnel_port(dport))
            return 1;
        if (!e->want_udp)
            return 0;
        int64_t paylen = (int64_t)ulen - 8;
        return udp_packet(e, frame_no, ts, orig_len, src, dst, alen, sport, dport, paylen, NULL);
    }
    return 1;
}

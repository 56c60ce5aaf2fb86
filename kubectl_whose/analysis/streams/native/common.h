/* Constants and the state the engine keeps per stream and per table.
 * Part of the native engine: included once, in order, by ../_engine.c (one translation unit). */

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define M32 0xFFFFFFFFu
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

#define A_RETRANSMISSION 0x1
#define A_LOST_PACKET 0x2
#define A_ACK_LOST_PACKET 0x4
#define A_KEEP_ALIVE 0x8
#define A_DUPLICATE_ACK 0x10
#define A_ZERO_WINDOW 0x20
#define A_ZERO_WINDOW_PROBE 0x40
#define A_ZERO_WINDOW_PROBE_ACK 0x80
#define A_KEEP_ALIVE_ACK 0x100
#define A_OUT_OF_ORDER 0x200
#define A_FAST_RETRANSMISSION 0x400
#define A_WINDOW_UPDATE 0x800
#define A_WINDOW_FULL 0x1000
#define A_REUSED_PORTS 0x2000
#define A_SPURIOUS_RETRANSMISSION 0x4000
#define A_ANY_RETRANSMISSION (A_RETRANSMISSION | A_FAST_RETRANSMISSION | A_SPURIOUS_RETRANSMISSION)

#define FAST_RETRANS_NS 20000000LL
#define DEFAULT_OOO_NS 3000000LL
#define MAX_RECORD (256u * 1024u * 1024u)

/* 0 < (a - b) mod 2**32 < 2**31: Zeek's seq_delta(a, b) > 0, and (negated) tshark's LE_SEQ(a, b) */
#define GT_SEQ(a, b) ((uint32_t)((uint32_t)(a) - (uint32_t)(b)) - 1u < 0x7FFFFFFFu)
/* tshark's GT_SEQ(a, b), (gint32)(b - a) < 0: also true for a difference of exactly 2**31 */
#define TS_GT(a, b) ((uint32_t)((uint32_t)(b) - (uint32_t)(a)) >= 0x80000000u)

/* Zeek endpoint states (conn_state.py) */
enum { INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET };

/* ------------------------------------------------------------------------------------------ */
/* per-stream state                                                                           */

/* not a tshark flag: the frame carries tshark's analysis subtree without one (tcp_analysis.py) */
#define A_SUBTREE 0x100000
#define MAX_UNACKED 10000 /* tshark's TCP_MAX_UNACKED_SEGMENTS */

typedef struct {
    uint32_t base_seq, window, nextseq, lastack, maxseqtobeacked, lastsegmentflags;
    int64_t nextseqtime, lastacktime;
    int32_t dupacknum;
    int8_t base_set, win_scale; /* win_scale: -1 unknown, -2 no scaling, else the shift */
    uint8_t valid_bif;          /* tshark's bytes-in-flight is valid */
} Flow;

/* tshark's unacked segments of one direction: (seq, nextseq) pairs */
typedef struct {
    uint32_t n, cap;
    uint32_t *pairs;
} Unacked;

#define HIST_INLINE 15
/* one of Zeek's TCP_Endpoint objects, as far as states and letters need it (conn_state.py Endpoint) */
typedef struct {
    uint64_t hist_syn, hist_fin, hist_rst; /* relative seq of the last SYN, FIN end, RST */
    uint32_t start, last, wraps, ack, ack_wraps;
    uint32_t rxmt, win0, fins; /* retransmissions, zero windows, FINs sent */
    uint8_t state, prev;
} ZeekEnd;

typedef struct {
    ZeekEnd e[2];      /* per stream direction */
    int8_t orig;       /* the originator's direction, -1 before a packet of the stream's own */
    uint32_t seen;     /* Zeek's hist_seen: HIST_* masks, the responder's << 16; UDP: 1 = D, 2 = d */
    uint32_t hlen, hcap; /* hcap 0: the history lives in `inl` */
    char *heap;
    char inl[HIST_INLINE + 1];
} Zeek;

typedef struct {
    uint8_t a[16], b[16]; /* flow 0's address (the larger), flow 1's */
    uint16_t pa, pb;
    uint8_t alen, is_udp;
    int8_t first_dir, syn_dir;
    int32_t index;
    int64_t first_frame, first_ts, base_ts, last_ts;
    int64_t pkts[2], bytes[2], pay[2];
    uint32_t syn, fin, rst, retrans, zero_window, dup_acks, ooo, lost;
    int64_t mru_syn, first_rtt;
    uint8_t rtt_shown; /* tshark shows tcp.analysis.initial_rtt on a frame of this stream */
    Unacked *unacked;  /* [2], allocated while the handshake RTT is not shown yet, NULL after */
    int64_t client_isn, server_isn, synack_ack, rst_ack; /* -1: none */
    PyObject *encap; /* a str label or NULL */
    Zeek z;
    Flow flows[2];
} Stream;

typedef struct {
    Stream *items;
    int64_t n, cap;
    /* open addressing: slot -> stream position + 1 (0 empty); the key's current stream */
    int32_t *slots;
    uint32_t *hashes;
    uint64_t mask;
} Table;

typedef struct {
    PyObject_HEAD
    Table tcp, udp;
    int want_tcp, want_udp;
    int64_t detail_tcp, detail_udp;
    PyObject *detail; /* list of raw tuples for --stream N */
    PyObject *json_cache; /* encap label -> its JSON text (bytes) */
    int64_t *order;  /* positions after finish(): >= 0 TCP, < 0 UDP (-(pos + 1)) */
    int64_t norder;
} Engine;

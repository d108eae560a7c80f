/*
 * loadgen: an epoll WebSocket load generator for the eventwire benchmark.
 *
 * Python clients cannot receive hundreds of thousands of frames a second, so
 * the load is generated and counted here, on one core, with one epoll loop.
 *
 * usage: loadgen MODE PORTS CONNS CONNECT_TIMEOUT_S [PUBLISHERS]
 *   MODE is "eventwire" (subscribe with a SUBSCRIBE command, publish with
 *   POST /v1/publish: {"events": [...]} for a batch, the event itself for one)
 *   or "baseline" (subscribers are confirmed by a "registered" frame, events
 *   are sent as text frames on /publish).
 *   PORTS is one port, or several separated by commas (gateway nodes sharing
 *   a broker): subscriber i connects to port i mod their number, and so
 *   does publisher i.
 *   PUBLISHERS (default 1) publisher connections take the batches in turn,
 *   as the many publishers of a real deployment would.
 *
 * usage: loadgen storm eventwire|baseline PORT CONNS CONCURRENCY TIMEOUT_S
 *   A reconnect storm: CONNS clients connect at once, at most CONCURRENCY
 *   of them between connect() and their acknowledgement at a time (the
 *   kernel drops a SYN once the listen backlog is full, and a dropped SYN
 *   costs a second), and it prints
 *     STORM {json}
 *   timed from the first connect() to the last acknowledgement. A client is
 *   acknowledged once, after the handshake, the gateway's CONNECTED has
 *   arrived, its SUBSCRIBE was sent and SUBSCRIBED came back (the
 *   baseline: its "registered" frame). The clients stay open, idle, until
 *   "quit" on stdin.
 *
 * It opens CONNS subscribers and the publishers, then prints
 *   READY {json}
 * and reads commands on stdin, one per line, answering each with one line
 * of JSON on stdout:
 *   burst EVENTS BATCH WINDOW TIMEOUT_S   publish EVENTS as fast as they are
 *        delivered: batches of BATCH, at most WINDOW events not yet received
 *        by every subscriber (closed loop, so server buffers stay bounded).
 *        Each batch is one HTTP request (eventwire, pipelined on kept-alive
 *        connections) or one write() of BATCH frames (baseline).
 *   rate EVENTS PER_SECOND TIMEOUT_S      publish one event every 1/PER_SECOND s
 *   quit
 *
 * Every event carries the publisher's CLOCK_MONOTONIC time ("bt", ns), so
 * each receipt yields one publish-to-receive latency sample. The eventwire
 * publisher also times every request to its response (the "ack" figures):
 * what a publish costs the publisher, broker round trip included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)
#define MAX_EVENTS 1024
#define MAX_PENDING 256           /* connections opening at once */
#define MAX_FRAME (16u << 20)     /* larger frames are a protocol error */
#define MAX_SAMPLES (8u << 20)    /* latency samples kept per phase */
#define EVENT_SIZE 200            /* bytes of a delivered event */
#define IDLE_TIMEOUT_NS (5LL * 1000000000LL) /* no receipt for this long ends a phase */
#define MAX_CODE 5000
#define MAX_PORTS 16
#define MAX_ACKS (1u << 20)       /* acknowledgement samples kept per phase */
#define ACK_RING 4096             /* requests in flight on one publisher, at most */
#define MAX_PUBS 16

#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" /* RFC 6455's example pair */
#define TOPIC "bench:1"
#define SUBSCRIBE_CMD \
    "{\"topic\":\"system\",\"event\":\"SUBSCRIBE\",\"data\":{\"entity_id\":\"r1\"," \
    "\"payload\":{\"topics\":[\"" TOPIC "\"]}}}"

enum state { CONNECTING, HANDSHAKE, WAIT_ACK, OPEN, CLOSED };
enum mode { EVENTWIRE, BASELINE };

typedef struct {
    int fd;
    uint8_t state;
    uint8_t publisher;
    uint8_t want_out;
    uint8_t in_fragment;
    uint8_t subscribe_sent;   /* a storm client sends SUBSCRIBE once CONNECTED has come */
    uint8_t *in;              /* bytes carried over to the next read */
    size_t in_len, in_cap;
    uint8_t *out;             /* bytes the kernel did not take yet */
    size_t out_len, out_cap;
    uint8_t *frag;            /* a fragmented message being reassembled */
    size_t frag_len, frag_cap;
    uint64_t received;        /* events received in the current phase */
    int64_t *sent;            /* a publisher's requests awaiting their responses: send times */
    uint64_t sent_head, sent_tail;
    int64_t opened_ns;        /* when connect() was called */
} conn_t;

static enum mode g_mode;
static int g_ports[MAX_PORTS], g_nports, g_epfd;
static conn_t *g_conns;       /* index = connection number; the publishers are last */
static int g_nconns, g_nsubs, g_npubs;
static int g_opening, g_next_to_open;
static int g_subs_open, g_subs_failed;
static uint64_t g_received, g_other_frames;
static int64_t g_first_ns, g_last_ns;
static int64_t *g_samples;
static size_t g_nsamples;
static uint64_t g_close_codes[MAX_CODE], g_closed_in_phase;
static uint64_t g_event_index, g_seq;
static uint64_t g_http_sent, g_http_ok, g_http_errors;
static char g_http_error[160];
static char g_pad[EVENT_SIZE];
static uint8_t g_read_buf[READ_CHUNK];
static char g_stdin[4096];
static size_t g_stdin_len;
static int g_stdin_eof;
static uint32_t g_rng = 2463534242u;
static int64_t *g_acks;
static size_t g_nacks;
static int g_storm;           /* storm mode: SUBSCRIBE waits for CONNECTED, acks are timed */
static int64_t *g_acked_at;   /* storm: when each acknowledged client was acknowledged */
static int64_t *g_took;       /* storm: each acknowledged client's connect() to acknowledgement */
static size_t g_nacked;
static int g_max_pending = MAX_PENDING; /* clients between connect() and their ack, at most */

/* Connection i's port: subscribers and publishers each spread over the ports. */
static int port_of(int i) {
    return i >= g_nsubs ? g_ports[(i - g_nsubs) % g_nports] : g_ports[i % g_nports];
}

static int publishers_open(void) {
    int open = 0;
    for (int i = g_nsubs; i < g_nconns; i++) open += g_conns[i].state == OPEN;
    return open;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void grow(uint8_t **buf, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t cap2 = *cap ? *cap : 512;
    while (cap2 < need) cap2 *= 2;
    uint8_t *p = realloc(*buf, cap2);
    if (!p) die("realloc");
    *buf = p;
    *cap = cap2;
}

static void append(uint8_t **buf, size_t *len, size_t *cap, const void *data, size_t n) {
    grow(buf, cap, *len + n);
    memcpy(*buf + *len, data, n);
    *len += n;
}

/* ---- sockets ------------------------------------------------------------ */

static void set_events(conn_t *c, int want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0)};
    ev.data.u32 = (uint32_t)(c - g_conns);
    if (epoll_ctl(g_epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl mod");
    c->want_out = (uint8_t)want_out;
}

static void conn_close(conn_t *c, int code) {
    if (c->state == CLOSED) return;
    int was_open = c->state == OPEN;
    if (!c->publisher) {
        if (was_open) {
            g_subs_open--;
            g_closed_in_phase++;
        } else {
            g_subs_failed++;
        }
        if (!was_open) g_opening--;
    }
    if (code >= 0 && code < MAX_CODE) g_close_codes[code]++;
    c->state = CLOSED;
    epoll_ctl(g_epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    free(c->in); free(c->out); free(c->frag);
    c->in = c->out = c->frag = NULL;
    c->in_len = c->in_cap = c->out_len = c->out_cap = c->frag_len = c->frag_cap = 0;
}

static void flush_out(conn_t *c) {
    size_t off = 0;
    while (off < c->out_len) {
        ssize_t n = write(c->fd, c->out + off, c->out_len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            conn_close(c, 1006);
            return;
        }
        off += (size_t)n;
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
    if ((c->out_len > 0) != c->want_out) set_events(c, c->out_len > 0);
}

static void conn_send(conn_t *c, const void *data, size_t n) {
    if (c->state == CLOSED) return;
    append(&c->out, &c->out_len, &c->out_cap, data, n);
    if (!c->want_out) flush_out(c);
}

/* One masked client frame, as RFC 6455 requires of clients. */
static size_t frame_masked(uint8_t *dst, int opcode, const uint8_t *payload, size_t n) {
    size_t h = 0;
    dst[h++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        dst[h++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        dst[h++] = 0x80 | 126;
        dst[h++] = (uint8_t)(n >> 8);
        dst[h++] = (uint8_t)n;
    } else {
        dst[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) dst[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 17; g_rng ^= g_rng << 5;
    uint8_t mask[4] = {(uint8_t)g_rng, (uint8_t)(g_rng >> 8), (uint8_t)(g_rng >> 16),
                       (uint8_t)(g_rng >> 24)};
    memcpy(dst + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++) dst[h + i] = payload[i] ^ mask[i & 3];
    return h + n;
}

static void send_frame(conn_t *c, int opcode, const void *payload, size_t n) {
    uint8_t stack[256];
    uint8_t *buf = n + 14 <= sizeof stack ? stack : malloc(n + 14);
    if (!buf) die("malloc");
    conn_send(c, buf, frame_masked(buf, opcode, payload, n));
    if (buf != stack) free(buf);
}

static void open_one(int i) {
    conn_t *c = &g_conns[i];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(i))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = fd;
    c->state = CONNECTING;
    c->opened_ns = now_ns();
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT};
    ev.data.u32 = (uint32_t)i;
    c->want_out = 1;
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl add");
    if (!c->publisher) g_opening++;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        conn_close(c, 0);
}

static void on_connected(conn_t *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        conn_close(c, 0);
        return;
    }
    set_events(c, 0);
    if (c->publisher && g_mode == EVENTWIRE) {
        c->state = OPEN; /* plain HTTP/1.1 keep-alive */
        return;
    }
    char req[512];
    const char *path = c->publisher ? "/publish" : "/ws";
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, port_of((int)(c - g_conns)));
    c->state = HANDSHAKE;
    conn_send(c, req, (size_t)n);
}

/* ---- inbound frames ----------------------------------------------------- */

static void on_event(conn_t *c, const uint8_t *p, size_t n, int64_t now) {
    const uint8_t *bt = memmem(p, n, "\"bt\":", 5);
    if (!bt) {
        g_other_frames++;
        return;
    }
    c->received++;
    g_received++;
    if (!g_first_ns) g_first_ns = now;
    g_last_ns = now;
    if (g_samples && g_nsamples < MAX_SAMPLES) {
        int64_t sent = 0;
        for (const uint8_t *q = bt + 5; q < p + n && *q >= '0' && *q <= '9'; q++)
            sent = sent * 10 + (*q - '0');
        g_samples[g_nsamples++] = now - sent;
    }
}

static void on_message(conn_t *c, const uint8_t *p, size_t n, int64_t now) {
    if (c->state == OPEN) {
        if (!c->publisher) on_event(c, p, n, now);
        return;
    }
    /* WAIT_ACK: the gateway answers SUBSCRIBED (after CONNECTED); the baseline "registered". */
    const char *ack = g_mode == EVENTWIRE ? "\"SUBSCRIBED\"" : "\"registered\"";
    if (g_mode == EVENTWIRE && !c->subscribe_sent && memmem(p, n, "\"CONNECTED\"", 11)) {
        c->subscribe_sent = 1;
        send_frame(c, 0x1, SUBSCRIBE_CMD, strlen(SUBSCRIBE_CMD));
    } else if (memmem(p, n, ack, strlen(ack))) {
        c->state = OPEN;
        g_subs_open++;
        g_opening--;
        if (g_acked_at) {
            g_acked_at[g_nacked] = now;
            g_took[g_nacked++] = now - c->opened_ns;
        }
    } else if (memmem(p, n, "\"ERROR\"", 7)) {
        fprintf(stderr, "loadgen: subscribe refused: %.*s\n", (int)(n > 300 ? 300 : n), p);
        conn_close(c, 0);
    }
}

static void on_frame(conn_t *c, int fin, int op, const uint8_t *p, size_t n, int64_t now) {
    switch (op) {
    case 0x1:
    case 0x2:
        if (fin) {
            on_message(c, p, n, now);
            return;
        }
        c->in_fragment = 1;
        c->frag_len = 0;
        append(&c->frag, &c->frag_len, &c->frag_cap, p, n);
        return;
    case 0x0:
        if (!c->in_fragment) {
            conn_close(c, 1002);
            return;
        }
        append(&c->frag, &c->frag_len, &c->frag_cap, p, n);
        if (fin) {
            c->in_fragment = 0;
            on_message(c, c->frag, c->frag_len, now);
        }
        return;
    case 0x8: {
        int code = n >= 2 ? (p[0] << 8) | p[1] : 1005;
        uint8_t echo[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        send_frame(c, 0x8, echo, n >= 2 ? 2 : 0);
        if (!c->publisher && c->state == OPEN)
            fprintf(stderr, "loadgen: server closed a subscriber with %d\n", code);
        conn_close(c, code);
        return;
    }
    case 0x9:
        send_frame(c, 0xA, p, n);
        return;
    case 0xA:
        return;
    default:
        conn_close(c, 1002);
    }
}

/* Parse every complete frame in p; return the bytes consumed. */
static size_t parse_frames(conn_t *c, const uint8_t *p, size_t len, int64_t now) {
    size_t off = 0;
    while (len - off >= 2 && c->state != CLOSED) {
        const uint8_t *f = p + off;
        uint64_t n = f[1] & 0x7f;
        size_t h = 2;
        if (f[1] & 0x80) { /* servers never mask */
            conn_close(c, 1002);
            break;
        }
        if (n == 126) {
            if (len - off < 4) break;
            n = ((uint64_t)f[2] << 8) | f[3];
            h = 4;
        } else if (n == 127) {
            if (len - off < 10) break;
            n = 0;
            for (int i = 0; i < 8; i++) n = (n << 8) | f[2 + i];
            h = 10;
        }
        if (n > MAX_FRAME) {
            conn_close(c, 1009);
            break;
        }
        if (len - off < h + n) break;
        on_frame(c, f[0] & 0x80, f[0] & 0x0f, f + h, (size_t)n, now);
        off += h + (size_t)n;
    }
    return off;
}

/* An eventwire publisher's HTTP responses: count and time them, keep the first failure. */
static size_t parse_http(conn_t *c, const uint8_t *p, size_t len) {
    size_t off = 0;
    for (;;) {
        const uint8_t *end = memmem(p + off, len - off, "\r\n\r\n", 4);
        if (!end) break;
        size_t head = (size_t)(end - (p + off)) + 4;
        int status = atoi((const char *)p + off + 9);
        size_t body = 0;
        const uint8_t *cl = memmem(p + off, head, "content-length:", 15);
        if (!cl) cl = memmem(p + off, head, "Content-Length:", 15);
        if (cl) body = (size_t)strtoul((const char *)cl + 15, NULL, 10);
        if (len - off < head + body) break;
        if (c->sent_tail < c->sent_head) { /* responses come in request order */
            int64_t sent = c->sent[c->sent_tail++ % ACK_RING];
            if (g_nacks < MAX_ACKS) g_acks[g_nacks++] = now_ns() - sent;
        }
        if (status == 200) {
            g_http_ok++;
        } else {
            g_http_errors++;
            if (!g_http_error[0])
                snprintf(g_http_error, sizeof g_http_error, "%d %.*s", status,
                         (int)(body > 120 ? 120 : body), (const char *)p + off + head);
        }
        off += head + body;
    }
    return off;
}

static size_t consume(conn_t *c, const uint8_t *p, size_t len, int64_t now) {
    if (c->state == HANDSHAKE) {
        const uint8_t *end = memmem(p, len, "\r\n\r\n", 4);
        if (!end) return 0;
        size_t head = (size_t)(end - p) + 4;
        if (len < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0 || !memmem(p, head, WS_ACCEPT, 28)) {
            fprintf(stderr, "loadgen: handshake refused: %.*s\n", (int)(head > 200 ? 200 : head), p);
            conn_close(c, 0);
            return len;
        }
        if (c->publisher) {
            c->state = OPEN;
        } else {
            c->state = WAIT_ACK;
            if (g_mode == EVENTWIRE && !g_storm) { /* pipelined, ahead of CONNECTED */
                c->subscribe_sent = 1;
                send_frame(c, 0x1, SUBSCRIBE_CMD, strlen(SUBSCRIBE_CMD));
            }
        }
        return head + parse_frames(c, p + head, len - head, now);
    }
    if (c->publisher && g_mode == EVENTWIRE) return parse_http(c, p, len);
    return parse_frames(c, p, len, now);
}

static void on_readable(conn_t *c) {
    ssize_t n = read(c->fd, g_read_buf, READ_CHUNK);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        conn_close(c, 1006);
        return;
    }
    int64_t now = now_ns();
    if (c->in_len == 0) { /* the common case: frames parsed in place */
        size_t used = consume(c, g_read_buf, (size_t)n, now);
        if (c->state != CLOSED && used < (size_t)n)
            append(&c->in, &c->in_len, &c->in_cap, g_read_buf + used, (size_t)n - used);
        return;
    }
    append(&c->in, &c->in_len, &c->in_cap, g_read_buf, (size_t)n);
    size_t used = consume(c, c->in, c->in_len, now);
    if (c->state == CLOSED) return;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
}

static void on_stdin(void) {
    ssize_t n = read(0, g_stdin + g_stdin_len, sizeof g_stdin - 1 - g_stdin_len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        g_stdin_eof = 1;
        epoll_ctl(g_epfd, EPOLL_CTL_DEL, 0, NULL);
        return;
    }
    g_stdin_len += (size_t)n;
}

/* One round of the event loop. */
static void pump(int timeout_ms) {
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(g_epfd, evs, MAX_EVENTS, timeout_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
        uint32_t id = evs[i].data.u32;
        if (id == UINT32_MAX) {
            on_stdin();
            continue;
        }
        conn_t *c = &g_conns[id];
        if (c->state == CLOSED) continue;
        if (c->state == CONNECTING) {
            if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
            continue;
        }
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
        if (c->state != CLOSED && (evs[i].events & EPOLLOUT)) flush_out(c);
    }
}

/* ---- publishing ---------------------------------------------------------- */

/* One event's JSON as delivered; the baseline sends it as is, the gateway adds
 * "timestamp" and "seq" itself (so its input omits them). */
static int event_json(char *dst, size_t cap, int delivered) {
    int64_t sent = now_ns();
    uint64_t i = g_event_index++;
    if (delivered)
        return snprintf(dst, cap,
                        "{\"topic\":\"" TOPIC "\",\"event\":\"UPDATED\",\"data\":{\"entity_id\":\"x\","
                        "\"payload\":{\"bt\":%lld,\"i\":%llu,\"pad\":\"%s\"},"
                        "\"timestamp\":\"2026-01-01T00:00:00.000Z\"},\"seq\":%llu}",
                        (long long)sent, (unsigned long long)i, g_pad,
                        (unsigned long long)++g_seq);
    return snprintf(dst, cap,
                    "{\"topic\":\"" TOPIC "\",\"event\":\"UPDATED\",\"data\":{\"entity_id\":\"x\","
                    "\"payload\":{\"bt\":%lld,\"i\":%llu,\"pad\":\"%s\"}}}",
                    (long long)sent, (unsigned long long)i, g_pad);
}

/* Size the padding so a delivered event is EVENT_SIZE bytes. */
static void init_pad(void) {
    char probe[1024];
    g_pad[0] = 0;
    uint64_t saved_index = g_event_index, saved_seq = g_seq;
    int base = event_json(probe, sizeof probe, 1);
    g_event_index = saved_index;
    g_seq = saved_seq;
    int pad = EVENT_SIZE - base;
    if (pad < 0) pad = 0;
    memset(g_pad, 'p', (size_t)pad);
    g_pad[pad] = 0;
}

/* The next open publisher, in turn. */
static conn_t *next_publisher(void) {
    static int turn;
    for (int k = 0; k < g_npubs; k++) {
        conn_t *c = &g_conns[g_nsubs + turn++ % g_npubs];
        if (c->state == OPEN) return c;
    }
    return NULL;
}

static void publish(int count) {
    conn_t *pub = next_publisher();
    if (!pub) return;
    static uint8_t *buf;
    static size_t cap;
    size_t len = 0;
    char ev[1024];
    if (g_mode == BASELINE) {
        for (int k = 0; k < count; k++) {
            int n = event_json(ev, sizeof ev, 1);
            grow(&buf, &cap, len + (size_t)n + 14);
            len += frame_masked(buf + len, 0x1, (const uint8_t *)ev, (size_t)n);
        }
        conn_send(pub, buf, len);
        return;
    }
    size_t head_room = 256;
    grow(&buf, &cap, head_room + 16);
    len = head_room;
    if (count == 1) { /* one event: the body is the event, as a one-event publisher sends it */
        int n = event_json(ev, sizeof ev, 0);
        append(&buf, &len, &cap, ev, (size_t)n);
    } else {
        append(&buf, &len, &cap, "{\"events\":[", 11);
        for (int k = 0; k < count; k++) {
            int n = event_json(ev, sizeof ev, 0);
            if (k) append(&buf, &len, &cap, ",", 1);
            append(&buf, &len, &cap, ev, (size_t)n);
        }
        append(&buf, &len, &cap, "]}", 2);
    }
    char head[256];
    int h = snprintf(head, sizeof head,
                     "POST /v1/publish HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     port_of((int)(pub - g_conns)), len - head_room);
    memcpy(buf + head_room - (size_t)h, head, (size_t)h);
    if (pub->sent_head - pub->sent_tail < ACK_RING) pub->sent[pub->sent_head++ % ACK_RING] = now_ns();
    conn_send(pub, buf + head_room - h, len - head_room + (size_t)h);
    g_http_sent++;
}

/* ---- phases ------------------------------------------------------------- */

typedef struct {
    int64_t start_ns;
    double start_cpu;
    uint64_t events;
} phase_t;

static void phase_begin(phase_t *ph, uint64_t events, int sample) {
    g_received = g_other_frames = 0;
    g_first_ns = g_last_ns = 0;
    g_closed_in_phase = 0;
    g_http_sent = g_http_ok = g_http_errors = 0;
    g_http_error[0] = 0;
    memset(g_close_codes, 0, sizeof g_close_codes);
    for (int i = 0; i < g_nsubs; i++) g_conns[i].received = 0;
    g_nsamples = 0;
    g_nacks = 0;
    for (int i = g_nsubs; i < g_nconns; i++) g_conns[i].sent_head = g_conns[i].sent_tail = 0;
    if (sample && !g_samples) {
        g_samples = malloc(MAX_SAMPLES * sizeof *g_samples);
        if (!g_samples) die("malloc samples");
    }
    if (!sample) {
        free(g_samples);
        g_samples = NULL;
    }
    ph->events = events;
    ph->start_ns = now_ns();
    ph->start_cpu = cpu_seconds();
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_ms(const int64_t *samples, size_t n, double q) {
    if (!n) return -1;
    size_t k = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)samples[k] / 1e6;
}

/* Print the phase's result as one JSON line. */
static void phase_end(const phase_t *ph, const char *kind, int timed_out, uint64_t published) {
    int64_t end = now_ns();
    double wall = (double)(end - ph->start_ns) / 1e9;
    double cpu = cpu_seconds() - ph->start_cpu;
    double span = g_last_ns > g_first_ns ? (double)(g_last_ns - g_first_ns) / 1e9 : 0;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < g_nsubs; i++) {
        if (g_conns[i].state != OPEN) continue;
        if (g_conns[i].received < lo) lo = g_conns[i].received;
        if (g_conns[i].received > hi) hi = g_conns[i].received;
    }
    if (lo == UINT64_MAX) lo = 0;
    if (g_nsamples) qsort(g_samples, g_nsamples, sizeof *g_samples, cmp_i64);
    if (g_nacks) qsort(g_acks, g_nacks, sizeof *g_acks, cmp_i64);
    printf("{\"phase\":\"%s\",\"events\":%llu,\"published\":%llu,\"subscribers\":%d,"
           "\"received\":%llu,\"expected\":%llu,\"other_frames\":%llu,\"span_s\":%.6f,"
           "\"deliveries_per_s\":%.1f,\"wall_s\":%.6f,\"cpu_s\":%.6f,\"cpu_pct\":%.1f,"
           "\"min_per_conn\":%llu,\"max_per_conn\":%llu,\"closed\":%llu,\"timed_out\":%s,"
           "\"http_requests\":%llu,\"http_ok\":%llu,\"http_errors\":%llu,\"http_error\":\"",
           kind, (unsigned long long)ph->events, (unsigned long long)published, g_subs_open,
           (unsigned long long)g_received, (unsigned long long)(ph->events * (uint64_t)g_subs_open),
           (unsigned long long)g_other_frames, span, span > 0 ? (double)g_received / span : 0,
           wall, cpu, wall > 0 ? 100 * cpu / wall : 0, (unsigned long long)lo,
           (unsigned long long)hi, (unsigned long long)g_closed_in_phase,
           timed_out ? "true" : "false", (unsigned long long)g_http_sent,
           (unsigned long long)g_http_ok, (unsigned long long)g_http_errors);
    for (const char *s = g_http_error; *s; s++)
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 32) putchar(*s);
    printf("\",\"latency_samples\":%zu,\"latency_p50_ms\":%.3f,\"latency_p99_ms\":%.3f,"
           "\"latency_max_ms\":%.3f,\"ack_samples\":%zu,\"ack_p50_ms\":%.3f,"
           "\"ack_p99_ms\":%.3f,\"close_codes\":{",
           g_nsamples, percentile_ms(g_samples, g_nsamples, 0.50),
           percentile_ms(g_samples, g_nsamples, 0.99), percentile_ms(g_samples, g_nsamples, 1.0),
           g_nacks, percentile_ms(g_acks, g_nacks, 0.50), percentile_ms(g_acks, g_nacks, 0.99));
    int first = 1;
    for (int code = 0; code < MAX_CODE; code++) {
        if (!g_close_codes[code]) continue;
        printf("%s\"%d\":%llu", first ? "" : ",", code, (unsigned long long)g_close_codes[code]);
        first = 0;
    }
    printf("}}\n");
}

static int phase_done(const phase_t *ph, uint64_t published, int64_t deadline) {
    int64_t now = now_ns();
    int answered = g_http_ok + g_http_errors >= g_http_sent; /* the gateway's last reply */
    if (published == ph->events && g_received >= ph->events * (uint64_t)g_subs_open && answered)
        return 1;
    if (now > deadline) return 2;
    int64_t last = g_last_ns ? g_last_ns : ph->start_ns;
    if (now - last > IDLE_TIMEOUT_NS) return 2;
    return 0;
}

/* Publish as fast as events are delivered, with at most `window` events in flight. */
static void run_burst(uint64_t events, uint64_t batch, uint64_t window, double timeout_s) {
    phase_t ph;
    phase_begin(&ph, events, 0);
    int64_t deadline = ph.start_ns + (int64_t)(timeout_s * 1e9);
    uint64_t published = 0;
    int done;
    while (!(done = phase_done(&ph, published, deadline))) {
        while (published < events) {
            uint64_t n = events - published < batch ? events - published : batch;
            uint64_t subs = (uint64_t)(g_subs_open > 0 ? g_subs_open : 1);
            if (published + n > window && (published + n - window) * subs > g_received) break;
            publish((int)n);
            published += n;
        }
        pump(10);
    }
    phase_end(&ph, "burst", done == 2, published);
}

/* Publish one event every 1/per_second seconds. */
static void run_rate(uint64_t events, double per_second, double timeout_s) {
    phase_t ph;
    phase_begin(&ph, events, 1);
    int64_t deadline = ph.start_ns + (int64_t)(timeout_s * 1e9);
    int64_t interval = (int64_t)(1e9 / per_second), next = ph.start_ns;
    uint64_t published = 0;
    int done;
    while (!(done = phase_done(&ph, published, deadline))) {
        int64_t now = now_ns();
        if (published < events && now >= next) {
            publish(1);
            published++;
            next += interval;
        }
        int wait = published < events ? (int)((next - now) / 1000000) : 10;
        pump(wait < 0 ? 0 : wait > 10 ? 10 : wait);
    }
    phase_end(&ph, "rate", done == 2, published);
}

/* ---- setup and commands ------------------------------------------------- */

/* Open every subscriber, at most g_max_pending at a time, and the publishers, until deadline. */
static void open_until(int64_t deadline) {
    for (int i = g_nsubs; i < g_nconns; i++) open_one(i); /* the publishers */
    while (now_ns() < deadline) {
        while (g_next_to_open < g_nsubs && g_opening < g_max_pending) open_one(g_next_to_open++);
        int pubs_done = 1;
        for (int i = g_nsubs; i < g_nconns; i++) pubs_done &= g_conns[i].state >= OPEN;
        if (g_subs_open + g_subs_failed >= g_nsubs && pubs_done) break;
        pump(10);
    }
    for (int i = 0; i < g_nsubs; i++)
        if (g_conns[i].state != OPEN && g_conns[i].state != CLOSED) conn_close(&g_conns[i], 0);
    for (int i = g_next_to_open; i < g_nsubs; i++) g_subs_failed++;
}

static void open_all(double timeout_s) {
    int64_t start = now_ns();
    open_until(start + (int64_t)(timeout_s * 1e9));
    printf("READY {\"subscribers\":%d,\"failed\":%d,\"publisher\":%s,\"publishers\":%d,"
           "\"connect_s\":%.3f}\n",
           g_subs_open, g_subs_failed, publishers_open() == g_npubs ? "true" : "false",
           publishers_open(), (double)(now_ns() - start) / 1e9);
}

/* Seconds from start to the acknowledgement of the q-th fraction of clients (acks are in order). */
static double acked_by_s(int64_t start, double q) {
    if (!g_nacked) return -1;
    size_t k = (size_t)(q * (double)(g_nacked - 1) + 0.5);
    return (double)(g_acked_at[k] - start) / 1e9;
}

/* A reconnect storm: every client at once, timed from the first connect() to the last ack. */
static void run_storm(double timeout_s) {
    g_acked_at = malloc((size_t)g_nsubs * sizeof *g_acked_at);
    g_took = malloc((size_t)g_nsubs * sizeof *g_took);
    if (!g_acked_at || !g_took) die("malloc storm");
    memset(g_close_codes, 0, sizeof g_close_codes);
    double cpu = cpu_seconds();
    int64_t start = now_ns();
    open_until(start + (int64_t)(timeout_s * 1e9));
    int64_t end = now_ns();
    double wall = (double)(end - start) / 1e9;
    cpu = cpu_seconds() - cpu;
    double storm = g_nacked ? (double)(g_acked_at[g_nacked - 1] - start) / 1e9 : -1;
    qsort(g_took, g_nacked, sizeof *g_took, cmp_i64);
    printf("STORM {\"clients\":%d,\"acked\":%zu,\"failed\":%d,\"concurrency\":%d,"
           "\"storm_s\":%.6f,\"half_acked_s\":%.6f,\"p99_acked_s\":%.6f,"
           "\"took_p50_ms\":%.3f,\"took_p99_ms\":%.3f,\"took_max_ms\":%.3f,"
           "\"wall_s\":%.6f,\"cpu_s\":%.6f,\"cpu_pct\":%.1f,\"close_codes\":{",
           g_nsubs, g_nacked, g_subs_failed, g_max_pending, storm, acked_by_s(start, 0.5),
           acked_by_s(start, 0.99), percentile_ms(g_took, g_nacked, 0.5),
           percentile_ms(g_took, g_nacked, 0.99), percentile_ms(g_took, g_nacked, 1.0), wall, cpu,
           wall > 0 ? 100 * cpu / wall : 0);
    int first = 1;
    for (int code = 0; code < MAX_CODE; code++) {
        if (!g_close_codes[code]) continue;
        printf("%s\"%d\":%llu", first ? "" : ",", code, (unsigned long long)g_close_codes[code]);
        first = 0;
    }
    printf("}}\n");
}

/* Abortive close: no TIME_WAIT, so later runs find free ephemeral ports. */
static void close_all(void) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < g_nconns; i++) {
        if (g_conns[i].state == CLOSED || g_conns[i].fd < 0) continue;
        setsockopt(g_conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(g_conns[i].fd);
    }
}

/* Run one command line; return 0 on quit. */
static int command(const char *line) {
    unsigned long long a, b, c;
    double t, r;
    if (sscanf(line, "burst %llu %llu %llu %lf", &a, &b, &c, &t) == 4) {
        run_burst(a, b ? b : 1, c ? c : 1, t);
    } else if (sscanf(line, "rate %llu %lf %lf", &a, &r, &t) == 3) {
        run_rate(a, r > 0 ? r : 1, t);
    } else if (strncmp(line, "quit", 4) == 0) {
        return 0;
    } else {
        printf("{\"error\":\"unknown command\"}\n");
    }
    return 1;
}

static int next_line(char *line, size_t cap) {
    char *nl = memchr(g_stdin, '\n', g_stdin_len);
    if (!nl) return 0;
    size_t n = (size_t)(nl - g_stdin);
    size_t m = n < cap - 1 ? n : cap - 1;
    memcpy(line, g_stdin, m);
    line[m] = 0;
    memmove(g_stdin, nl + 1, g_stdin_len - n - 1);
    g_stdin_len -= n + 1;
    return 1;
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen eventwire|baseline PORT[,PORT...] CONNS CONNECT_TIMEOUT_S "
                    "[PUBLISHERS]\n"
                    "       loadgen storm eventwire|baseline PORT CONNS CONCURRENCY TIMEOUT_S\n");
    exit(2);
}

static void parse_ports(char *list) {
    for (char *p = list; g_nports < MAX_PORTS;) {
        g_ports[g_nports++] = atoi(p);
        char *comma = strchr(p, ',');
        if (!comma) break;
        p = comma + 1;
    }
}

int main(int argc, char **argv) {
    double timeout_s;
    if (argc >= 2 && strcmp(argv[1], "storm") == 0) {
        if (argc != 7) usage();
        g_storm = 1;
        g_npubs = 0;
        g_max_pending = atoi(argv[5]);
        timeout_s = atof(argv[6]);
        argv++; /* MODE PORT CONNS from here on, as in the other usage */
    } else {
        if (argc != 5 && argc != 6) usage();
        g_npubs = argc == 6 ? atoi(argv[5]) : 1;
        timeout_s = atof(argv[4]);
        if (g_npubs < 1 || g_npubs > MAX_PUBS) {
            fprintf(stderr, "loadgen: 1 to %d publishers\n", MAX_PUBS);
            return 2;
        }
    }
    if (g_max_pending < 1) usage();
    g_mode = strcmp(argv[1], "baseline") == 0 ? BASELINE : EVENTWIRE;
    parse_ports(argv[2]);
    g_acks = malloc(MAX_ACKS * sizeof *g_acks);
    if (!g_acks) die("malloc acks");
    g_nsubs = atoi(argv[3]);
    g_nconns = g_nsubs + g_npubs;
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_conns = calloc((size_t)g_nconns, sizeof *g_conns);
    if (!g_conns) die("calloc");
    for (int i = 0; i < g_nconns; i++) g_conns[i].fd = -1;
    for (int i = g_nsubs; i < g_nconns; i++) {
        g_conns[i].publisher = 1;
        g_conns[i].sent = malloc(ACK_RING * sizeof *g_conns[i].sent);
        if (!g_conns[i].sent) die("malloc sent");
    }
    init_pad();
    g_epfd = epoll_create1(0);
    if (g_epfd < 0) die("epoll_create1");
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.u32 = UINT32_MAX;
    if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, 0, &ev) < 0) die("epoll_ctl stdin");
    if (g_storm)
        run_storm(timeout_s);
    else
        open_all(timeout_s);
    char line[512];
    for (;;) {
        while (next_line(line, sizeof line))
            if (!command(line)) goto quit;
        if (g_stdin_eof) break;
        pump(100);
    }
quit:
    close_all();
    return 0;
}

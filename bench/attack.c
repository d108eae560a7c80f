/*
 * attack: hostile WebSocket peers for the eventwire benchmark, and the probes
 * that time what an honest client sees meanwhile.
 *
 * usage: attack flood PORT IDLE_S FLOOD_S ping|pong INTERVAL_MS
 *   Two probes, each one request at a time, one every INTERVAL_MS: a
 *   WebSocket client sending the PING command and timing its PONG, and an
 *   HTTP/1.1 client timing GET /healthz on one kept-alive connection. After
 *   a second of warm-up, not counted, for IDLE_S they run alone; then for FLOOD_S one more connection writes
 *   pre-built masked ping (or unsolicited pong) frames as fast as the socket
 *   takes them, from the same epoll loop, on the same core. The flooder
 *   reads what it is sent only to find a close frame; when the server
 *   closes it, it reconnects and floods again until the window ends.
 *   Prints one line of JSON: the probes' percentiles in each window (and
 *   when the slowest request was sent), and what the flooder sent, how
 *   often it was closed, and when each of its connections began flooding
 *   and ended (seconds from the flood window's start).
 *
 * usage: attack pinger PORT SECONDS RCVBUF PAYLOAD
 *   One connection with a small receive buffer (SO_RCVBUF = RCVBUF) writes
 *   pings of PAYLOAD bytes as fast as the socket takes them for SECONDS and
 *   never reads, so every pong the server owes it stays queued on the
 *   server. Then it reads what arrived and prints one line of JSON with the
 *   close code it found (if any) and what it sent.
 *
 * Everything is on 127.0.0.1. Every loop ends by a deadline.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (64 * 1024)         /* bytes of flood frames written per call */
#define IN_CAP (256 * 1024)
#define MAX_SAMPLES 100000
#define MAX_CODE 5000
#define MAX_EVENTS_KEPT 64       /* flooder connections and ends, timed */
#define WARMUP_NS 1000000000LL   /* probes before the idle window, not counted: first requests */
#define PING_CMD "{\"topic\":\"system\",\"event\":\"PING\",\"data\":{\"entity_id\":\"p\",\"payload\":{}}}"
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static int g_port;

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
    fprintf(stderr, "attack: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void set_nonblocking(int fd) {
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
}

/* Close without TIME_WAIT, so reconnecting never runs out of ports. */
static void abort_close(int fd) {
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* A TCP socket to the server, connecting (non-blocking) or connected (blocking). */
static int dial(int blocking, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)
        die("connect");
    return fd;
}

static int upgrade_request(char *dst, size_t cap) {
    return snprintf(dst, cap,
                    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
                    "Sec-WebSocket-Version: 13\r\n\r\n",
                    g_port);
}

/* One masked client frame (RFC 6455 5.3), payload under 126 bytes. */
static size_t frame_masked(uint8_t *dst, int opcode, const void *payload, size_t n) {
    static uint32_t rng = 2463534242u;
    const uint8_t *p = payload;
    rng ^= rng << 13; rng ^= rng >> 17; rng ^= rng << 5;
    uint8_t mask[4] = {(uint8_t)rng, (uint8_t)(rng >> 8), (uint8_t)(rng >> 16), (uint8_t)(rng >> 24)};
    size_t h = 0;
    dst[h++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        dst[h++] = (uint8_t)(0x80 | n);
    } else {
        dst[h++] = 0x80 | 126;
        dst[h++] = (uint8_t)(n >> 8);
        dst[h++] = (uint8_t)n;
    }
    memcpy(dst + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < n; i++) dst[h + i] = p[i] ^ mask[i & 3];
    return h + n;
}

/* A blocking WebSocket handshake; the bytes read past the 101 response go to rest. */
static int open_ws(int rcvbuf, uint8_t *rest, size_t *rest_len) {
    int fd = dial(1, rcvbuf);
    char req[512], head[4096];
    int n = upgrade_request(req, sizeof req);
    if (write(fd, req, (size_t)n) != n) die("write handshake");
    size_t len = 0;
    char *end = NULL;
    while (!end && len < sizeof head - 1) {
        ssize_t got = read(fd, head + len, sizeof head - 1 - len);
        if (got <= 0) die("read handshake");
        len += (size_t)got;
        head[len] = 0;
        end = strstr(head, "\r\n\r\n");
    }
    if (!end || strncmp(head, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "attack: handshake refused: %.200s\n", head);
        exit(2);
    }
    size_t used = (size_t)(end + 4 - head);
    *rest_len = len - used;
    memcpy(rest, head + used, *rest_len);
    return fd;
}

/* ---- server frames -------------------------------------------------------- */

typedef struct {
    int fd;
    uint8_t in[IN_CAP];
    size_t in_len;
} reader_t;

typedef void (*on_frame_fn)(reader_t *r, int opcode, const uint8_t *p, size_t n);

/* Hand every complete (unmasked) server frame in r->in to on_frame; keep the rest. */
static void parse_frames(reader_t *r, on_frame_fn on_frame) {
    size_t off = 0;
    while (r->in_len - off >= 2) {
        const uint8_t *f = r->in + off;
        uint64_t n = f[1] & 0x7f;
        size_t h = 2;
        if (n == 126) {
            if (r->in_len - off < 4) break;
            n = ((uint64_t)f[2] << 8) | f[3];
            h = 4;
        } else if (n == 127) {
            if (r->in_len - off < 10) break;
            n = 0;
            for (int i = 0; i < 8; i++) n = (n << 8) | f[2 + i];
            h = 10;
        }
        if (h + n > IN_CAP) {
            fprintf(stderr, "attack: a frame of %llu bytes\n", (unsigned long long)n);
            exit(2);
        }
        if (r->in_len - off < h + n) break;
        on_frame(r, f[0] & 0x0f, f + h, (size_t)n);
        off += h + (size_t)n;
    }
    memmove(r->in, r->in + off, r->in_len - off);
    r->in_len -= off;
}

/* Read what is there; 0 on EOF or error, 1 otherwise. */
static int read_some(reader_t *r) {
    for (;;) {
        ssize_t n = read(r->fd, r->in + r->in_len, IN_CAP - r->in_len);
        if (n > 0) {
            r->in_len += (size_t)n;
            return 1;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 1;
        return 0;
    }
}

static int close_code(int opcode, const uint8_t *p, size_t n) {
    if (opcode != 0x8) return -1;
    return n >= 2 ? (p[0] << 8) | p[1] : 1005;
}

/* ---- probes --------------------------------------------------------------- */

typedef struct {
    int64_t *samples;
    size_t n;
    int64_t slowest, slowest_sent; /* the slowest request, and when it was sent */
    uint64_t skipped; /* ticks when the previous request was still unanswered */
} series_t;

typedef struct {
    reader_t r;
    int64_t sent_ns; /* 0: nothing outstanding */
    series_t *series; /* the window's */
    series_t *sent_in; /* the window the outstanding request was sent in */
    uint64_t errors;
} probe_t;

static probe_t g_ws, g_http;

static void record(probe_t *p) {
    series_t *s = p->sent_in;
    int64_t took = now_ns() - p->sent_ns;
    if (s->n < MAX_SAMPLES) s->samples[s->n++] = took;
    if (took > s->slowest) {
        s->slowest = took;
        s->slowest_sent = p->sent_ns;
    }
    p->sent_ns = 0;
}

static void ws_probe_frame(reader_t *r, int opcode, const uint8_t *p, size_t n) {
    (void)r;
    if (opcode == 0x1 && memmem(p, n, "\"PONG\"", 6) && g_ws.sent_ns) {
        record(&g_ws);
    } else if (opcode == 0x9) { /* the server's heartbeat: answer it */
        uint8_t pong[140];
        size_t len = frame_masked(pong, 0xA, p, n);
        if (write(g_ws.r.fd, pong, len) != (ssize_t)len) g_ws.errors++;
    } else if (opcode == 0x8) {
        fprintf(stderr, "attack: the server closed the PING probe with %d\n", close_code(8, p, n));
        exit(2);
    } else if (opcode == 0x1 && memmem(p, n, "\"ERROR\"", 7)) {
        g_ws.errors++;
        fprintf(stderr, "attack: PING answered %.*s\n", (int)(n > 300 ? 300 : n), p);
    }
}

static void http_probe_read(void) {
    probe_t *h = &g_http;
    if (!read_some(&h->r)) {
        fprintf(stderr, "attack: the server closed the /healthz probe\n");
        exit(2);
    }
    for (;;) {
        uint8_t *end = memmem(h->r.in, h->r.in_len, "\r\n\r\n", 4);
        if (!end) return;
        size_t head = (size_t)(end - h->r.in) + 4, body = 0;
        const uint8_t *cl = NULL;
        for (size_t i = 0; i + 15 <= head; i++)
            if (strncasecmp((const char *)h->r.in + i, "content-length:", 15) == 0) {
                cl = h->r.in + i;
                break;
            }
        if (cl) body = (size_t)strtoul((const char *)cl + 15, NULL, 10);
        if (h->r.in_len < head + body) return;
        if (strncmp((const char *)h->r.in, "HTTP/1.1 200", 12) != 0) h->errors++;
        if (h->sent_ns) record(h);
        memmove(h->r.in, h->r.in + head + body, h->r.in_len - head - body);
        h->r.in_len -= head + body;
    }
}

static void send_probe(probe_t *p, const void *data, size_t n) {
    if (p->sent_ns) {
        p->series->skipped++;
        return;
    }
    p->sent_ns = now_ns();
    p->sent_in = p->series;
    if (write(p->r.fd, data, n) != (ssize_t)n) die("probe write");
}

static void ws_probe(void) {
    uint8_t frame[256];
    send_probe(&g_ws, frame, frame_masked(frame, 0x1, PING_CMD, strlen(PING_CMD)));
}

static void http_probe(void) {
    char req[256];
    int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", g_port);
    send_probe(&g_http, req, (size_t)n);
}

/* ---- the flooder ---------------------------------------------------------- */

enum { F_OFF, F_CONNECTING, F_HANDSHAKE, F_FLOODING };

typedef struct {
    reader_t r;
    int state;
    uint8_t block[BLOCK]; /* whole frames, written round and round */
    size_t block_len, off, frame_len;
    uint64_t bytes, connections, closed, resets, refused;
    uint64_t codes[MAX_CODE];
    int64_t events[MAX_EVENTS_KEPT]; /* when each connection flooded, then when it ended */
    size_t nevents;
} flooder_t;

static flooder_t g_flood;
static int g_epfd;

enum { ID_WS, ID_HTTP, ID_FLOOD };

static void watch(int fd, uint32_t id, uint32_t events, int op) {
    struct epoll_event ev = {.events = events};
    ev.data.u32 = id;
    if (epoll_ctl(g_epfd, op, fd, &ev) < 0) die("epoll_ctl");
}

static void flood_start(void) {
    flooder_t *f = &g_flood;
    f->r.fd = dial(0, 0);
    f->r.in_len = 0;
    f->off = 0;
    f->state = F_CONNECTING;
    watch(f->r.fd, ID_FLOOD, EPOLLOUT, EPOLL_CTL_ADD);
}

static void flood_stop(void) {
    if (g_flood.state == F_OFF) return;
    epoll_ctl(g_epfd, EPOLL_CTL_DEL, g_flood.r.fd, NULL);
    abort_close(g_flood.r.fd);
    g_flood.state = F_OFF;
}

/* The server ended the flooding connection: count how, and flood again on a new one. */
static void flood_event_at(void) {
    if (g_flood.nevents < MAX_EVENTS_KEPT) g_flood.events[g_flood.nevents++] = now_ns();
}

static void flood_ended(int code) {
    flooder_t *f = &g_flood;
    flood_event_at();
    if (code >= 0 && code < MAX_CODE) {
        f->codes[code]++;
        f->closed++;
    } else {
        f->resets++;
    }
    flood_stop();
    flood_start();
}

static int g_flood_code;

static void flood_frame(reader_t *r, int opcode, const uint8_t *p, size_t n) {
    (void)r;
    if (opcode == 0x8 && g_flood_code < 0) g_flood_code = close_code(opcode, p, n);
}

static void flood_handshake(void) {
    flooder_t *f = &g_flood;
    if (!read_some(&f->r)) {
        flood_ended(-1);
        return;
    }
    uint8_t *end = memmem(f->r.in, f->r.in_len, "\r\n\r\n", 4);
    if (!end) return;
    if (strncmp((const char *)f->r.in, "HTTP/1.1 101", 12) != 0) {
        f->refused++;
        flood_stop();
        flood_start();
        return;
    }
    size_t head = (size_t)(end + 4 - f->r.in);
    memmove(f->r.in, f->r.in + head, f->r.in_len - head);
    f->r.in_len -= head;
    f->state = F_FLOODING;
    f->connections++;
    flood_event_at();
    watch(f->r.fd, ID_FLOOD, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
}

static void flood_event(uint32_t events) {
    flooder_t *f = &g_flood;
    if (f->state == F_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(f->r.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        char req[512];
        int n = upgrade_request(req, sizeof req);
        if (err || write(f->r.fd, req, (size_t)n) != n) {
            flood_ended(-1);
            return;
        }
        f->state = F_HANDSHAKE;
        watch(f->r.fd, ID_FLOOD, EPOLLIN, EPOLL_CTL_MOD);
        return;
    }
    if (f->state == F_HANDSHAKE) {
        flood_handshake();
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        int open = read_some(&f->r);
        g_flood_code = -1;
        parse_frames(&f->r, flood_frame);
        if (g_flood_code >= 0 || !open) {
            flood_ended(g_flood_code);
            return;
        }
    }
    if (events & EPOLLOUT) {
        ssize_t n = write(f->r.fd, f->block + f->off, f->block_len - f->off);
        if (n > 0) {
            f->bytes += (uint64_t)n;
            f->off = (f->off + (size_t)n) % f->block_len;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            flood_ended(-1);
        }
    }
}

static void build_block(uint8_t *block, size_t *block_len, size_t *frame_len, int opcode,
                        size_t payload) {
    uint8_t data[125];
    memset(data, 'x', sizeof data);
    *frame_len = frame_masked(block, opcode, data, payload);
    size_t len = *frame_len;
    while (len + *frame_len <= BLOCK) len += frame_masked(block + len, opcode, data, payload);
    *block_len = len;
}

/* ---- the flood run -------------------------------------------------------- */

static int64_t g_flood_at; /* times are printed relative to the flood window's start */

static void print_series(const char *name, series_t *s, uint64_t lost, const char *sep) {
    int64_t *v = s->samples;
    size_t n = s->n;
    for (size_t i = 1; i < n; i++) /* insertion sort: a few thousand samples */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            int64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
#define PCT(q) (n ? (double)v[(size_t)((q) * (double)(n - 1) + 0.5)] / 1e6 : -1.0)
    printf("\"%s\":{\"samples\":%zu,\"skipped\":%llu,\"lost\":%llu,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"slowest_sent_s\":%.3f,\"each_us\":[",
           name, n, (unsigned long long)s->skipped, (unsigned long long)lost, PCT(0.5), PCT(0.99),
           PCT(1.0), (double)(s->slowest_sent - g_flood_at) / 1e9);
#undef PCT
    for (size_t i = 0; i < n; i++) printf("%s%lld", i ? "," : "", (long long)(v[i] / 1000));
    printf("]}%s", sep);
}

static series_t *new_series(void) {
    series_t *s = calloc(1, sizeof *s);
    if (!s) die("calloc");
    s->samples = malloc(MAX_SAMPLES * sizeof *s->samples);
    if (!s->samples) die("malloc");
    return s;
}

static void open_probes(void) {
    uint8_t rest[4096];
    size_t rest_len;
    g_ws.r.fd = open_ws(0, rest, &rest_len);
    memcpy(g_ws.r.in, rest, rest_len);
    g_ws.r.in_len = rest_len;
    set_nonblocking(g_ws.r.fd);
    g_http.r.fd = dial(1, 0);
    set_nonblocking(g_http.r.fd);
    watch(g_ws.r.fd, ID_WS, EPOLLIN, EPOLL_CTL_ADD);
    watch(g_http.r.fd, ID_HTTP, EPOLLIN, EPOLL_CTL_ADD);
}

static void dispatch(struct epoll_event *ev) {
    if (ev->data.u32 == ID_WS) {
        if (!read_some(&g_ws.r)) {
            fprintf(stderr, "attack: the PING probe's connection ended\n");
            exit(2);
        }
        parse_frames(&g_ws.r, ws_probe_frame);
    } else if (ev->data.u32 == ID_HTTP) {
        http_probe_read();
    } else if (g_flood.state != F_OFF) {
        flood_event(ev->events);
    }
}

static void tick(int64_t now, int64_t *next, int64_t interval, void (*probe)(void)) {
    if (now < *next) return;
    probe();
    while (*next <= now) *next += interval;
}

static int run_flood(double idle_s, double flood_s, int opcode, double interval_ms) {
    build_block(g_flood.block, &g_flood.block_len, &g_flood.frame_len, opcode, 0);
    g_epfd = epoll_create1(0);
    if (g_epfd < 0) die("epoll_create1");
    open_probes();
    series_t *warm = new_series(), *idle[2] = {new_series(), new_series()};
    series_t *flood[2] = {new_series(), new_series()};
    g_ws.series = g_http.series = warm;
    int64_t interval = (int64_t)(interval_ms * 1e6), start = now_ns();
    int64_t idle_at = start + WARMUP_NS, flood_at = idle_at + (int64_t)(idle_s * 1e9);
    int64_t end = flood_at + (int64_t)(flood_s * 1e9);
    g_flood_at = flood_at;
    int64_t next_ws = start, next_http = start + interval / 2, flood_started = 0;
    double cpu = cpu_seconds();
    struct epoll_event evs[8];
    for (int64_t now = start; now < end; now = now_ns()) {
        if (now >= idle_at && g_ws.series == warm) {
            g_ws.series = idle[0];
            g_http.series = idle[1];
        }
        if (now >= flood_at && !flood_started) {
            g_ws.series = flood[0];
            g_http.series = flood[1];
            flood_start();
            flood_started = now;
        }
        tick(now, &next_ws, interval, ws_probe);
        tick(now, &next_http, interval, http_probe);
        int64_t wake = next_ws < next_http ? next_ws : next_http;
        int timeout = (int)((wake - now + 999999) / 1000000);
        int n = epoll_wait(g_epfd, evs, 8, timeout < 0 ? 0 : timeout);
        for (int i = 0; i < n; i++) dispatch(&evs[i]);
    }
    flood_stop();
    double flood_wall = (double)(now_ns() - flood_started) / 1e9;
    double flood_cpu = cpu_seconds() - cpu;
    for (int64_t give_up = now_ns() + 2000000000LL; now_ns() < give_up;) { /* the last answers */
        if (!g_ws.sent_ns && !g_http.sent_ns) break;
        int n = epoll_wait(g_epfd, evs, 8, 10);
        for (int i = 0; i < n; i++) dispatch(&evs[i]);
    }
    flooder_t *f = &g_flood;
    printf("{\"idle\":{");
    print_series("ping", idle[0], 0, ",");
    print_series("healthz", idle[1], 0, "},\"flood\":{");
    print_series("ping", flood[0], g_ws.sent_ns != 0, ",");
    print_series("healthz", flood[1], g_http.sent_ns != 0, "},");
    printf("\"flooder\":{\"frame\":\"%s\",\"frame_bytes\":%zu,\"bytes\":%llu,\"frames\":%llu,"
           "\"connections\":%llu,\"closed\":%llu,\"resets\":%llu,\"refused\":%llu,\"close_codes\":{",
           opcode == 0x9 ? "ping" : "pong", f->frame_len, (unsigned long long)f->bytes,
           (unsigned long long)(f->bytes / f->frame_len), (unsigned long long)f->connections,
           (unsigned long long)f->closed, (unsigned long long)f->resets,
           (unsigned long long)f->refused);
    const char *sep = "";
    for (int code = 0; code < MAX_CODE; code++) {
        if (!f->codes[code]) continue;
        printf("%s\"%d\":%llu", sep, code, (unsigned long long)f->codes[code]);
        sep = ",";
    }
    printf("},\"timeline_s\":[");
    for (size_t i = 0; i < f->nevents; i++)
        printf("%s%.3f", i ? "," : "", (double)(f->events[i] - flood_at) / 1e9);
    printf("],\"seconds\":%.3f},\"cpu_pct\":%.1f,\"probe_errors\":%llu}\n", flood_wall,
           100 * flood_cpu / ((double)(now_ns() - start) / 1e9),
           (unsigned long long)(g_ws.errors + g_http.errors));
    return 0;
}

/* ---- the never-reading pinger --------------------------------------------- */

static int g_pinger_code = -1;
static uint64_t g_pongs;

static void pinger_frame(reader_t *r, int opcode, const uint8_t *p, size_t n) {
    (void)r;
    if (opcode == 0xA) g_pongs++;
    if (opcode == 0x8) g_pinger_code = close_code(opcode, p, n);
}

static int run_pinger(double seconds, int rcvbuf, size_t payload) {
    static reader_t r;
    static uint8_t block[BLOCK];
    size_t block_len, frame_len, off = 0;
    build_block(block, &block_len, &frame_len, 0x9, payload);
    r.fd = open_ws(rcvbuf, r.in, &r.in_len);
    set_nonblocking(r.fd);
    int64_t start = now_ns(), end = start + (int64_t)(seconds * 1e9), ended = 0;
    uint64_t bytes = 0;
    const char *error = "";
    while (!ended && now_ns() < end) {
        struct pollfd pfd = {.fd = r.fd, .events = POLLOUT};
        if (poll(&pfd, 1, 10) <= 0 || !(pfd.revents & POLLOUT)) continue;
        ssize_t n = write(r.fd, block + off, block_len - off);
        if (n > 0) {
            bytes += (uint64_t)n;
            off = (off + (size_t)n) % block_len;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            error = strerror(errno);
            ended = now_ns();
        }
    }
    /* Now read what the server sent, its close frame last if it sent one. */
    int eof = 0;
    uint64_t read_bytes = r.in_len;
    for (int64_t give_up = now_ns() + 1000000000LL; !eof && now_ns() < give_up;) {
        struct pollfd pfd = {.fd = r.fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0) continue;
        size_t before = r.in_len;
        eof = !read_some(&r);
        read_bytes += r.in_len - before;
        parse_frames(&r, pinger_frame);
    }
    parse_frames(&r, pinger_frame);
    abort_close(r.fd);
    printf("{\"seconds\":%.3f,\"frame_bytes\":%zu,\"bytes\":%llu,\"frames\":%llu,"
           "\"write_error\":\"%s\",\"ended_after_s\":%.3f,\"close_code\":%d,\"pongs_read\":%llu,"
           "\"bytes_read\":%llu,\"rcvbuf\":%d,\"payload\":%zu}\n",
           seconds, frame_len, (unsigned long long)bytes, (unsigned long long)(bytes / frame_len),
           error, ended ? (double)(ended - start) / 1e9 : -1.0, g_pinger_code,
           (unsigned long long)g_pongs, (unsigned long long)read_bytes, rcvbuf, payload);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 7 && strcmp(argv[1], "flood") == 0) {
        g_port = atoi(argv[2]);
        int opcode = strcmp(argv[5], "pong") == 0 ? 0xA : 0x9;
        return run_flood(atof(argv[3]), atof(argv[4]), opcode, atof(argv[6]));
    }
    if (argc == 6 && strcmp(argv[1], "pinger") == 0) {
        g_port = atoi(argv[2]);
        size_t payload = (size_t)atoi(argv[5]);
        return run_pinger(atof(argv[3]), atoi(argv[4]), payload > 125 ? 125 : payload);
    }
    fprintf(stderr, "usage: attack flood PORT IDLE_S FLOOD_S ping|pong INTERVAL_MS\n"
                    "       attack pinger PORT SECONDS RCVBUF PAYLOAD\n");
    return 2;
}

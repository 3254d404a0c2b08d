/* SPDX-License-Identifier: MIT */
/*
 * One measured run: the driver starts a server (first CPU) and a client
 * (second CPU), both fresh processes that have never opened a library
 * connection (run_posix.c forks them: liburcu, ZeroMQ and NNG threads do
 * not survive a fork; run_win32.c starts the program again with
 * CreateProcess), and waits for both, killing the pair if either fails or
 * the run hangs.
 *
 * Round trip: the client times each call (send + receive of the echo).
 * One-way:    after an untimed warm-up (8 MiB of messages, at least 4),
 *             the client sends as fast as the transport takes messages and
 *             stops the clock when the server has echoed the end marker, so
 *             the time covers every message having been read.
 * Runs are bounded by time (budget_s), not by a message count, so a 1 MiB
 * row and an 8 B row cost the same wall time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define MIN_ROUND_TRIPS 50           /* even when the budget is spent */
#define MAX_ONEWAY      200000000ull /* messages, a bound only */
#define WARM_BYTES      (8u << 20)   /* one-way warm-up: this much, and */
#define WARM_MIN        4u           /* at least this many messages */
#define START_TIMEOUT_S 10.0         /* server open, client open */
#define RUN_SLACK_S     30.0         /* past the budget: the run hangs, kill it */

const char *const metric_name[M_COUNT] = {
    "p50_us",     "p90_us",      "p99_us",         "p99.9_us",       "max_us",
    "msgs_per_s", "bytes_per_s", "cpu_client_pct", "cpu_server_pct",
};

/* ---- helpers for transports ---- */

void xp_fail(struct xp_page *pg, const char *fmt, ...)
{
    int expect = 0;
    char msg[sizeof pg->fail_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The first failure wins; later ones are its consequences. */
    if (atomic_compare_exchange_strong(&pg->failed, &expect, -1)) {
        memcpy(pg->fail_msg, msg, sizeof msg);
        atomic_store(&pg->failed, 1);
    }
}

int xp_stream_init(struct xp_stream *s, size_t size)
{
    memset(s, 0, sizeof *s);
    s->size = size;
    s->cap = size > XP_STREAM_READ / 2 ? 2 * size : XP_STREAM_READ;
    s->buf = malloc(s->cap);
    return s->buf ? 0 : -ENOMEM;
}

void xp_stream_free(struct xp_stream *s)
{
    free(s->buf);
    s->buf = NULL;
}

int xp_stream_next(struct xp_stream *s, long (*rd)(void *ctx, void *buf, size_t len), void *ctx,
                   const void **buf, size_t *len)
{
    if (s->have - s->off < s->size) {
        memmove(s->buf, s->buf + s->off, s->have - s->off);
        s->have -= s->off;
        s->off = 0;
        while (s->have < s->size) {
            long n = rd(ctx, s->buf + s->have, s->cap - s->have);
            if (n == 0)
                return -EPIPE;
            if (n < 0)
                return (int)n;
            s->have += (size_t)n;
        }
    }
    *buf = s->buf + s->off;
    *len = s->size;
    s->off += s->size;
    return 0;
}

/* ---- the server ---- */

int xp_sink_take(struct xp_sink *k, const void *data, size_t len)
{
    struct xp_run *r = k->run;
    uint64_t seq;
    if (len < sizeof seq) {
        xp_fail(r->pg, "message %llu: %zu bytes", (unsigned long long)k->want, len);
        return -EPROTO;
    }
    memcpy(&seq, data, sizeof seq);
    /* The clock starts with the first message, and again with the first
     * one after the client's warm-up. */
    if (k->t0 == 0 || seq == atomic_load(&r->pg->warm)) {
        k->t0 = xp_now();
        k->cpu0 = xp_cpu();
    }
    if (seq == XP_SEQ_END) {
        r->pg->s_wall = xp_now() - k->t0;
        r->pg->s_cpu = xp_cpu() - k->cpu0;
        r->pg->received = k->want;
        return XP_TAKE_ECHO | XP_TAKE_LAST;
    }
    if (seq != k->want || (k->check_len && len != r->size)) {
        xp_fail(r->pg, "server: message %llu arrived as %llu (%zu bytes, want %zu)",
                (unsigned long long)k->want, (unsigned long long)seq, len, r->size);
        return -EPROTO;
    }
    k->want++;
    if (!r->oneway)
        return XP_TAKE_ECHO;
    /* One-way: the receiver reads every byte, as a real one would. */
    const unsigned char *p = data;
    uint64_t sum = 0, w;
    size_t i = 0;
    for (; i + sizeof w <= len; i += sizeof w) {
        memcpy(&w, p + i, sizeof w);
        sum += w;
    }
    for (; i < len; i++)
        sum += p[i];
    k->sum += sum;
    return 0;
}

static int serve_loop(const struct xport *x, void *end, struct xp_sink *k)
{
    for (;;) {
        const void *buf;
        size_t len;
        int rc = x->recv(end, &buf, &len);
        if (rc < 0)
            return rc;
        int a = xp_sink_take(k, buf, len);
        if (a < 0)
            return a;
        if ((a & XP_TAKE_ECHO) && (rc = x->send(end, buf, len)) < 0)
            return rc;
        if (a & XP_TAKE_LAST)
            return 0;
    }
}

/* Wait until flag is set (or someone failed), yielding; 0 or -ETIMEDOUT. */
static int await(atomic_int *flag, struct xp_page *pg, double timeout_s)
{
    double deadline = xp_now() + timeout_s;
    while (!atomic_load(flag)) {
        if (atomic_load(&pg->failed))
            return -EPIPE;
        if (xp_now() > deadline)
            return -ETIMEDOUT;
        usleep(100);
    }
    return 0;
}

int xp_server_side(const struct xport *x, struct xp_run *r, double budget_s)
{
    (void)budget_s;
    struct xp_page *pg = r->pg;
    struct xp_sink k = {.run = r, .check_len = !(x->flags & XP_NOPAYLOAD)};
    void *end;
    int rc = x->open(r, XP_SERVER, &end);
    if (rc < 0) {
        xp_fail(pg, "server open: %s", strerror(-rc));
        return 1;
    }
    atomic_store(&pg->ready, 1);
    rc = x->serve ? x->serve(end, &k) : serve_loop(x, end, &k);
    if (rc < 0)
        xp_fail(pg, "server: %s", strerror(-rc));
    /* Close only once the client has its last reply: some libraries drop
     * what is still queued when a socket closes. */
    await(&pg->done, pg, START_TIMEOUT_S);
    x->close(end);
    (void)*(volatile uint64_t *)&k.sum;
    return atomic_load(&pg->failed) ? 1 : 0;
}

/* ---- the client ---- */

static int call(const struct xport *x, void *end, const void *buf, size_t len, const void **rbuf,
                size_t *rlen)
{
    if (x->call)
        return x->call(end, buf, len, rbuf, rlen);
    int rc = x->send(end, buf, len);
    return rc < 0 ? rc : x->recv(end, rbuf, rlen);
}

/* One round trip of `seq`; checks the echo. */
static int call_checked(const struct xport *x, struct xp_run *r, void *end, unsigned char *buf,
                        uint64_t seq)
{
    const void *rb;
    size_t rlen;
    uint64_t got;
    memcpy(buf, &seq, sizeof seq);
    int rc = call(x, end, buf, r->size, &rb, &rlen);
    if (rc < 0) {
        xp_fail(r->pg, "client: call %llu: %s", (unsigned long long)seq, strerror(-rc));
        return rc;
    }
    if (rlen < sizeof got)
        got = ~0ull;
    else
        memcpy(&got, rb, sizeof got);
    if (got != seq || (!(x->flags & XP_NOPAYLOAD) && rlen != r->size)) {
        xp_fail(r->pg, "client: reply to %llu was %llu (%zu bytes)", (unsigned long long)seq,
                (unsigned long long)got, rlen);
        return -EPROTO;
    }
    return 0;
}

int xp_client_side(const struct xport *x, struct xp_run *r, double budget_s)
{
    struct xp_page *pg = r->pg;
    void *end;
    uint64_t i = 0;
    int rc = await(&pg->ready, pg, START_TIMEOUT_S);
    if (rc < 0) {
        xp_fail(pg, "client: the server did not start");
        return 1;
    }
    rc = x->open(r, XP_CLIENT, &end);
    if (rc < 0) {
        xp_fail(pg, "client open: %s", strerror(-rc));
        return 1;
    }
    unsigned char *buf = malloc(r->size);
    if (buf == NULL)
        return 1;
    memset(buf, 0xa5, r->size);
    if (r->oneway) {
        /* Warm-up, not timed: the first pass over a ring, a large-message
         * pool's first buffers, a socket's buffers touch pages never used
         * before, which can cost more than the run itself (a page first
         * touched in a virtual machine: tens of microseconds). Up to a
         * quarter of the budget. */
        uint64_t warm = WARM_BYTES / r->size > WARM_MIN ? WARM_BYTES / r->size : WARM_MIN;
        uint64_t stop = xp_now_ns() + (uint64_t)(budget_s * 0.25e9);
        for (; i < warm && (i < WARM_MIN || xp_now_ns() < stop); i++) {
            memcpy(buf, &i, sizeof i);
            if ((rc = x->send(end, buf, r->size)) < 0) {
                xp_fail(pg, "client: send %llu: %s", (unsigned long long)i, strerror(-rc));
                return 1;
            }
        }
        atomic_store(&pg->warm, i); /* before message i is sent */
    }
    double t0 = xp_now(), cpu0 = xp_cpu();
    uint64_t deadline = xp_now_ns() + (uint64_t)(budget_s * 1e9);
    if (!r->oneway) {
        for (; i < XP_MAX_SAMPLES; i++) {
            uint64_t a = xp_now_ns();
            if (i >= MIN_ROUND_TRIPS && a > deadline)
                break;
            if (call_checked(x, r, end, buf, i) < 0)
                return 1;
            pg->samples[i] = (uint32_t)(xp_now_ns() - a);
        }
        pg->n = (uint32_t)i;
    } else {
        /* Look at the clock every message only when messages are slow. */
        uint64_t mask = r->size >= 4096 ? 0 : 255;
        for (; i < MAX_ONEWAY; i++) {
            if ((i & mask) == 0 && xp_now_ns() > deadline)
                break;
            memcpy(buf, &i, sizeof i);
            if ((rc = x->send(end, buf, r->size)) < 0) {
                xp_fail(pg, "client: send %llu: %s", (unsigned long long)i, strerror(-rc));
                return 1;
            }
        }
    }
    if (call_checked(x, r, end, buf, XP_SEQ_END) < 0)
        return 1;
    pg->c_wall = xp_now() - t0;
    pg->c_cpu = xp_cpu() - cpu0;
    pg->sent = i;
    x->close(end);
    free(buf);
    atomic_store(&pg->done, 1);
    return 0;
}

/* ---- the driver ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

unsigned bench_spin_us;

int run_one(const struct xport *x, size_t size, int oneway, double budget_s, struct cpus cpu,
            struct result *out, char *why, size_t why_len)
{
    struct xp_page *pg = bench_page();
    struct xp_run r = {
        .pg = pg, .size = size, .oneway = oneway, .arg = x->arg, .spin_us = bench_spin_us};
    int rc;

    memset(pg, 0, offsetof(struct xp_page, samples));
    memset(out, 0, sizeof *out);
    why[0] = 0;
    for (int i = 0; i < 4; i++)
        r.fd[i] = -1;
    if (x->setup && (rc = x->setup(&r)) < 0) {
        snprintf(why, why_len, "setup: %s", strerror(-rc));
        return -1;
    }
    rc = bench_launch(x, &r, cpu, budget_s, budget_s + RUN_SLACK_S, why, why_len);
    if (x->teardown)
        x->teardown(&r);
    if (atomic_load(&pg->failed)) {
        snprintf(why, why_len, "%s", pg->fail_msg);
        return -1;
    }
    if (rc < 0)
        return -1;
    if (pg->received != pg->sent) { /* lost messages */
        snprintf(why, why_len, "client sent %llu, server received %llu",
                 (unsigned long long)pg->sent, (unsigned long long)pg->received);
        return -1;
    }
    out->messages = pg->sent - atomic_load(&pg->warm); /* timed ones */
    if (!oneway && pg->n > 0) {
        uint32_t n = pg->n, *s = pg->samples;
        qsort(s, n, sizeof *s, cmp_u32);
        out->v[M_P50] = s[n / 2] / 1e3;
        out->v[M_P90] = s[(size_t)(n * 0.90)] / 1e3;
        out->v[M_P99] = s[(size_t)(n * 0.99)] / 1e3;
        out->v[M_P999] = s[(size_t)(n * 0.999)] / 1e3;
        out->v[M_MAX] = s[n - 1] / 1e3;
    }
    if (oneway && pg->c_wall > 0) {
        out->v[M_RATE] = (double)(pg->sent - atomic_load(&pg->warm)) / pg->c_wall;
        out->v[M_BPS] = out->v[M_RATE] * (double)size;
    }
    out->v[M_CCPU] = pg->c_wall > 0 ? 100 * pg->c_cpu / pg->c_wall : 0;
    out->v[M_SCPU] = pg->s_wall > 0 ? 100 * pg->s_cpu / pg->s_wall : 0;
    return 0;
}

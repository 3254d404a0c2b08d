/* SPDX-License-Identifier: MIT */
/*
 * ringipc rows: the server child is the master, the client child the worker.
 *   round trip  ripc_client_request (type 1) -> handler -> ripc_reply
 *   one-way     ripc_client_send (type 2) -> handler reads every byte
 *   loan rows   the same one-way messages written in place:
 *               ripc_client_reserve, write, ripc_client_commit
 *   fill+copy   the loan rows' baseline: each message written into the
 *               sender's own buffer, then ripc_client_send copies it
 * except the "ringipc to worker" rows (one-way only), where the sending
 * child is the master: ripc_server_send -> ripc_client_recv reads every
 * byte, and its loan rows: ripc_server_reserve, write, ripc_server_commit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringipc/ringipc.h"
#include "xport.h"

enum { T_CALL = 1, T_ONEWAY = 2 };

struct variant {
    int wait;
    int transport;
    int tcp;
    int large; /* default 1 MiB ring: larger messages take the memfd path */
};

struct ripc_end {
    struct xp_run *run;
    ripc_server *srv;
    ripc_client *c;
    struct xp_sink *sink;
    int done;
    ripc_msg reply;
    unsigned char *fill; /* fill+copy rows: the sender's own buffer */
};

/* Write the message the loan rows write in place: the sequence number from
 * buf, then every other byte. */
static void produce(void *dst, const void *buf, size_t len)
{
    memcpy(dst, buf, sizeof(uint64_t));
    memset((unsigned char *)dst + sizeof(uint64_t), 0xa5, len - sizeof(uint64_t));
}

/* A ring must hold a message of `size` in half of it: at least 1 MiB, and
 * 4x the message (4 MiB for 1 MiB messages). */
static size_t ring_for(size_t size)
{
    size_t ring = (size_t)1 << 20;
    while (ring < 4 * size)
        ring <<= 1;
    return ring;
}

static ripc_options options(const struct xp_run *r)
{
    const struct variant *v = r->arg;
    return (ripc_options){
        .wait = v->wait,
        .transport = v->tcp ? RIPC_TRANSPORT_AUTO : v->transport,
        .ring_bytes = v->large ? 0 : ring_for(r->size),
        .max_message = (uint64_t)64 << 20,
        .token = "ringipc-bench",
        .spin_us = r->spin_us,
    };
}

static void handler(ripc_peer *p, const ripc_msg *m, void *arg)
{
    struct ripc_end *e = arg;
    int a = xp_sink_take(e->sink, m->data, (size_t)m->len);
    if (a < 0) {
        e->done = 1;
        return;
    }
    if (!(a & XP_TAKE_ECHO) != (m->kind != RIPC_REQUEST)) {
        xp_fail(e->run->pg, "ringipc: message %llu came as kind %d",
                (unsigned long long)e->sink->want, m->kind);
        e->done = 1;
        return;
    }
    if (a & XP_TAKE_ECHO) {
        int rc = ripc_reply(p, m, m->data, m->len);
        if (rc < 0)
            xp_fail(e->run->pg, "ripc_reply: %s", ripc_strerror(rc));
    }
    if (a & XP_TAKE_LAST)
        e->done = 1;
}

static int ripc_open(struct xp_run *r, int side, void **end)
{
    const struct variant *v = r->arg;
    ripc_options o = options(r);
    char why[200] = "", own[160];
    int rc;
    struct ripc_end *e = calloc(1, sizeof *e);
    if (e == NULL)
        return -ENOMEM;
    e->run = r;
    if (side == XP_SERVER) {
        snprintf(own, sizeof own, "unix:/tmp/ringipc-bench-%d.sock", (int)getpid());
        rc = ripc_server_open_ex(&e->srv, v->tcp ? "tcp://127.0.0.1:0" : own, &o, why, sizeof why);
        if (rc == 0) {
            ripc_server_url(e->srv, r->pg->url, sizeof r->pg->url);
            ripc_server_handle(e->srv, T_CALL, handler, e);
            ripc_server_handle(e->srv, T_ONEWAY, handler, e);
        }
    } else {
        rc = ripc_client_open_ex(&e->c, r->pg->url, &o, why, sizeof why);
        if (rc == 0 && (e->fill = malloc(r->size)) == NULL)
            rc = -ENOMEM;
    }
    if (rc < 0) {
        xp_fail(r->pg, "ringipc %s open: %s (%s)", side == XP_SERVER ? "server" : "client",
                ripc_strerror(rc), why);
        free(e);
        return rc;
    }
    *end = e;
    return 0;
}

static int ripc_send(void *end, const void *buf, size_t len)
{
    struct ripc_end *e = end;
    return ripc_client_send(e->c, T_ONEWAY, buf, len, -1);
}

/* The producer writes every byte of the message where it goes (the copying
 * rows' bytes, which their send copies from the client's buffer), then
 * commits it. */
static int ripc_send_loan(void *end, const void *buf, size_t len)
{
    struct ripc_end *e = end;
    void *p;
    int rc = ripc_client_reserve(e->c, len, &p, -1);
    if (rc < 0)
        return rc;
    produce(p, buf, len);
    return ripc_client_commit(e->c, T_ONEWAY, len);
}

/* The same bytes written into the sender's own buffer, then sent by copy:
 * what a loan saves a sender that makes each message. */
static int ripc_send_fill(void *end, const void *buf, size_t len)
{
    struct ripc_end *e = end;
    produce(e->fill, buf, len);
    return ripc_client_send(e->c, T_ONEWAY, e->fill, len, -1);
}

static int ripc_call(void *end, const void *buf, size_t len, const void **rbuf, size_t *rlen)
{
    struct ripc_end *e = end;
    int rc = ripc_client_request(e->c, T_CALL, buf, len, &e->reply, -1);
    if (rc < 0)
        return rc;
    *rbuf = e->reply.data;
    *rlen = (size_t)e->reply.len;
    return 0;
}

static int ripc_serve(void *end, struct xp_sink *k)
{
    struct ripc_end *e = end;
    struct xp_page *pg = e->run->pg;
    e->sink = k;
    while (!e->done && !atomic_load(&pg->failed)) {
        int n = ripc_server_poll(e->srv, 100);
        if (n < 0)
            return n;
    }
    /* Keep dispatching (the reply to the end marker, the goodbye) until the
     * worker has gone. */
    double deadline = xp_now() + 5;
    while (ripc_server_peer_count(e->srv) > 0 && !atomic_load(&pg->done) && xp_now() < deadline)
        ripc_server_poll(e->srv, 10);
    return atomic_load(&pg->failed) ? -EPROTO : 0;
}

static void ripc_close(void *end)
{
    struct ripc_end *e = end;
    ripc_client_close(e->c);
    ripc_server_close(e->srv);
    free(e->fill);
    free(e);
}

#define RIPC_XPORT_F(nm, fl, ...)                                                                  \
    {                                                                                              \
        .name = nm, .flags = XP_RTT | XP_ONEWAY | (fl),                                            \
        .arg = &(const struct variant){__VA_ARGS__}, .open = ripc_open, .send = ripc_send,         \
        .call = ripc_call, .serve = ripc_serve, .close = ripc_close,                               \
    }
#define RIPC_XPORT(nm, ...) RIPC_XPORT_F(nm, 0, __VA_ARGS__)
/* One-way only, with its own send: loans, fill+copy, the memfd path. */
#define RIPC_ONEWAY(nm, send_fn, na_fn, wait_mode, is_large)                                       \
    {                                                                                              \
        .name = nm, .flags = XP_ONEWAY,                                                            \
        .arg = &(const struct variant){wait_mode, RIPC_TRANSPORT_SHM, 0, is_large}, .na = na_fn,   \
        .open = ripc_open, .send = send_fn, .call = ripc_call, .serve = ripc_serve,                \
        .close = ripc_close,                                                                       \
    }

/* On one CPU the library does not spin in spin mode, it yields between
 * looks: still a busy CPU, left out by --same-cpu like the spinning rows. */
const struct xport xp_ripc_spin =
    RIPC_XPORT_F("ringipc spin", XP_SPINS, RIPC_WAIT_SPIN, RIPC_TRANSPORT_SHM, 0, 0);
const struct xport xp_ripc_adaptive =
    RIPC_XPORT("ringipc adaptive", RIPC_WAIT_ADAPTIVE, RIPC_TRANSPORT_SHM, 0, 0);
/* Beside "ringipc adaptive" one-way: the same channel, loans for copies. */
const struct xport xp_ripc_loan =
    RIPC_ONEWAY("ringipc adaptive loan", ripc_send_loan, NULL, RIPC_WAIT_ADAPTIVE, 0);
const struct xport xp_ripc_fill =
    RIPC_ONEWAY("ringipc adaptive fill+copy", ripc_send_fill, NULL, RIPC_WAIT_ADAPTIVE, 0);
const struct xport xp_ripc_block =
    RIPC_XPORT("ringipc block", RIPC_WAIT_BLOCK, RIPC_TRANSPORT_SHM, 0, 0);
const struct xport xp_ripc_socket =
    RIPC_XPORT("ringipc socket mode", RIPC_WAIT_BLOCK, RIPC_TRANSPORT_SOCKET, 0, 0);
const struct xport xp_ripc_tcp = RIPC_XPORT("ringipc over TCP", RIPC_WAIT_BLOCK, 0, 1, 0);

/* The large-message path: a message over what a 1 MiB ring's record holds
 * travels in a memfd (src/large.h); only sizes above that are measured. */
static const char *large_na(const struct xp_run *r, char *why, size_t n)
{
    if (r->size > ((size_t)1 << 19) && r->oneway)
        return NULL;
    snprintf(why, n, "n/a: one-way messages over 512 KiB only");
    return why;
}

const struct xport xp_ripc_large =
    RIPC_ONEWAY("ringipc large (memfd)", ripc_send, large_na, RIPC_WAIT_BLOCK, 1);

const struct xport xp_ripc_large_loan =
    RIPC_ONEWAY("ringipc large loan (memfd)", ripc_send_loan, large_na, RIPC_WAIT_BLOCK, 1);

const struct xport xp_ripc_large_fill =
    RIPC_ONEWAY("ringipc large fill+copy (memfd)", ripc_send_fill, large_na, RIPC_WAIT_BLOCK, 1);

/*
 * The master's stream to a worker: here the bench's sending side is the
 * master (ripc_server_send, one message per call, no dispatch thread) and
 * its receiving side the worker (ripc_client_recv, reading every byte).
 * The receiver starts first, so the master listens at a path set before the
 * fork and the worker connects once it is there. The end marker comes back
 * as a worker's message.
 */
struct m2w_end {
    struct xp_run *run;
    ripc_server *srv;
    ripc_client *c;
    _Atomic uint32_t peer;
    int echoed;
    void *echo;
    size_t echo_len;
    unsigned char *fill; /* fill+copy rows: the sender's own buffer */
};

static int m2w_setup(struct xp_run *r)
{
    static unsigned serial;
    snprintf(r->path[0], sizeof r->path[0], "/tmp/ringipc-bench-%d-m2w%u.sock", (int)getpid(),
             serial++);
    return 0;
}

static void m2w_teardown(struct xp_run *r)
{
    unlink(r->path[0]);
}

static void m2w_joined(ripc_peer *p, void *arg)
{
    struct m2w_end *e = arg;
    atomic_store(&e->peer, ripc_peer_id(p));
}

static void m2w_echo(ripc_peer *p, const ripc_msg *m, void *arg)
{
    struct m2w_end *e = arg;
    (void)p;
    e->echo_len = m->len < e->run->size ? (size_t)m->len : e->run->size;
    memcpy(e->echo, m->data, e->echo_len);
    e->echoed = 1;
}

static int m2w_open(struct xp_run *r, int side, void **end)
{
    ripc_options o = options(r);
    char why[200] = "", url[160];
    struct m2w_end *e = calloc(1, sizeof *e);
    if (e == NULL || (e->echo = malloc(r->size)) == NULL) {
        free(e);
        return -ENOMEM;
    }
    e->run = r;
    *end = e;
    if (side == XP_SERVER)
        return 0; /* the worker connects in serve(), once the master listens */
    if ((e->fill = malloc(r->size)) == NULL)
        return -ENOMEM;
    snprintf(url, sizeof url, "unix:%s", r->path[0]);
    int rc = ripc_server_open_ex(&e->srv, url, &o, why, sizeof why);
    if (rc < 0) {
        xp_fail(r->pg, "ringipc master open: %s (%s)", ripc_strerror(rc), why);
        return rc;
    }
    ripc_server_on_peer(e->srv, m2w_joined, NULL, e);
    ripc_server_handle(e->srv, T_ONEWAY, m2w_echo, e);
    double deadline = xp_now() + 10;
    while (atomic_load(&e->peer) == 0 && !atomic_load(&r->pg->failed) && xp_now() < deadline)
        ripc_server_poll(e->srv, 10);
    return atomic_load(&e->peer) ? 0 : -ETIMEDOUT;
}

static int m2w_send(void *end, const void *buf, size_t len)
{
    struct m2w_end *e = end;
    return ripc_server_send(e->srv, atomic_load(&e->peer), T_ONEWAY, buf, len, -1);
}

/* As ripc_send_loan, from the master. */
static int m2w_send_loan(void *end, const void *buf, size_t len)
{
    struct m2w_end *e = end;
    uint32_t peer = atomic_load(&e->peer);
    void *p;
    int rc = ripc_server_reserve(e->srv, peer, len, &p, -1);
    if (rc < 0)
        return rc;
    produce(p, buf, len);
    return ripc_server_commit(e->srv, peer, T_ONEWAY, len);
}

/* As ripc_send_fill, from the master. */
static int m2w_send_fill(void *end, const void *buf, size_t len)
{
    struct m2w_end *e = end;
    produce(e->fill, buf, len);
    return ripc_server_send(e->srv, atomic_load(&e->peer), T_ONEWAY, e->fill, len, -1);
}

static int m2w_call(void *end, const void *buf, size_t len, const void **rbuf, size_t *rlen)
{
    struct m2w_end *e = end;
    int rc = m2w_send(end, buf, len);
    double deadline = xp_now() + 10;
    while (rc >= 0 && !e->echoed && xp_now() < deadline)
        rc = ripc_server_poll(e->srv, 10);
    if (rc < 0)
        return rc;
    if (!e->echoed)
        return -ETIMEDOUT;
    e->echoed = 0;
    *rbuf = e->echo;
    *rlen = e->echo_len;
    return 0;
}

static int m2w_serve(void *end, struct xp_sink *k)
{
    struct m2w_end *e = end;
    struct xp_page *pg = e->run->pg;
    ripc_options o = options(e->run);
    char why[200] = "", url[160];
    snprintf(url, sizeof url, "unix:%s", e->run->path[0]);
    double deadline = xp_now() + 10;
    int rc;
    while ((rc = ripc_client_open_ex(&e->c, url, &o, why, sizeof why)) < 0) {
        if (xp_now() > deadline || atomic_load(&pg->failed)) {
            xp_fail(pg, "ringipc worker open: %s (%s)", ripc_strerror(rc), why);
            return rc;
        }
        usleep(1000); /* the master is not listening yet */
    }
    for (;;) {
        ripc_msg m;
        if ((rc = ripc_client_recv(e->c, &m, 1000)) == -ETIMEDOUT && !atomic_load(&pg->failed))
            continue;
        if (rc < 0)
            return rc;
        int a = xp_sink_take(k, m.data, (size_t)m.len);
        if (a < 0)
            return a;
        if ((a & XP_TAKE_ECHO) && (rc = ripc_client_send(e->c, T_ONEWAY, m.data, m.len, -1)) < 0)
            return rc;
        if (a & XP_TAKE_LAST)
            return 0;
    }
}

static void m2w_close(void *end)
{
    struct m2w_end *e = end;
    ripc_client_close(e->c);
    ripc_server_close(e->srv);
    free(e->echo);
    free(e->fill);
    free(e);
}

#define RIPC_M2W(nm, send_fn, na_fn, is_large)                                                     \
    {                                                                                              \
        .name = nm, .flags = XP_ONEWAY,                                                            \
        .arg = &(const struct variant){RIPC_WAIT_ADAPTIVE, RIPC_TRANSPORT_SHM, 0, is_large},       \
        .na = na_fn, .setup = m2w_setup, .open = m2w_open, .send = send_fn, .call = m2w_call,      \
        .serve = m2w_serve, .close = m2w_close, .teardown = m2w_teardown,                          \
    }

const struct xport xp_ripc_m2w = RIPC_M2W("ringipc to worker", m2w_send, NULL, 0);
/* Beside it: the same channel, loans for copies (in the ring: rings sized
 * as for the copies, ring_for). */
const struct xport xp_ripc_m2w_loan = RIPC_M2W("ringipc to worker loan", m2w_send_loan, NULL, 0);
const struct xport xp_ripc_m2w_fill =
    RIPC_M2W("ringipc to worker fill+copy", m2w_send_fill, NULL, 0);
/* The large-message path to the worker (1 MiB ring: memfds), copied and
 * lent. */
const struct xport xp_ripc_m2w_large = RIPC_M2W("ringipc to worker memfd", m2w_send, large_na, 1);
const struct xport xp_ripc_m2w_large_loan =
    RIPC_M2W("ringipc to worker memfd loan", m2w_send_loan, large_na, 1);
const struct xport xp_ripc_m2w_large_fill =
    RIPC_M2W("ringipc to worker memfd fill+copy", m2w_send_fill, large_na, 1);

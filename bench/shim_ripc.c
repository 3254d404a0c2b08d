/* SPDX-License-Identifier: MIT */
/*
 * Master/worker plumbing for bench_dispatch.cc and bench_reqrep.cc: see
 * shim.h. One process of the pair runs the timed loop; the other is forked
 * (it may open a client, or a server when this process never opened one: a
 * forked child must not open a server after its parent's server had workers
 * leave, see ringipc.h) and talks back through a small shared control block.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET, prctl */
#endif

#include "shim.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ringipc/ringipc.h"

#define LINE     128
#define T_CALL   1 /* request -> echo */
#define T_RECORD 2 /* one-way record */
#define T_END    3 /* master -> worker: acknowledge what you have */
#define T_STOP   4 /* master -> worker: leave */
#define STEP_MS  100
#define START_S  10

struct ctl {
    _Alignas(LINE) atomic_int ready;       /* forked master: listening at url */
    _Alignas(LINE) atomic_int stop;        /* benchmark process: finish and exit */
    _Alignas(LINE) _Atomic uint64_t acked; /* worker: records at T_END, + 1 */
    _Alignas(LINE) atomic_int failed;      /* first error (-errno), why[] written before */
    char why[200];
    char url[160];
};

/* What both ends of a pair share: CPUs, the control block, the peer. */
struct pair {
    cpu_set_t saved; /* the caller's affinity, restored at close */
    int cpu[2];      /* [0] this process, [1] the forked one */
    struct ctl *ctl;
    pid_t child;
    size_t len;
    int wait;
    unsigned char *buf;
};

static void fail(struct ctl *c, int err, const char *fmt, ...)
{
    int none = 0;
    va_list ap;
    char why[sizeof c->why];
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    /* Release: why[] is complete before anyone sees failed != 0. */
    if (atomic_compare_exchange_strong(&c->failed, &none, 1)) {
        memcpy(c->why, why, sizeof why);
        atomic_store_explicit(&c->failed, err, memory_order_release);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static ripc_options options(const struct pair *p)
{
    return (ripc_options){.wait = p->wait, .transport = RIPC_TRANSPORT_SHM};
}

/* Check the sequence number and size of a record. */
static int check(struct ctl *c, const void *data, uint64_t len, size_t want_len, uint64_t want)
{
    uint64_t seq = ~0ull;
    if (len >= sizeof seq)
        memcpy(&seq, data, sizeof seq);
    if (seq == want && len == want_len)
        return 0;
    fail(c, -EPROTO, "record %llu arrived as %llu with %llu bytes (want %zu)",
         (unsigned long long)want, (unsigned long long)seq, (unsigned long long)len, want_len);
    return -EPROTO;
}

/* Two CPUs, a control block, the record buffer. */
static int pair_init(struct pair *p, size_t len, int wait, char *why, size_t why_len)
{
    int n = 0;
    memset(p, 0, sizeof *p);
    p->len = len < 8 ? 8 : len;
    p->wait = wait;
    if (sched_getaffinity(0, sizeof p->saved, &p->saved) != 0)
        return -errno;
    for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
        if (CPU_ISSET(i, &p->saved))
            p->cpu[n++] = i;
    if (n < 2) {
        snprintf(why, why_len, "needs 2 CPUs; %d allowed", n);
        return -EOPNOTSUPP;
    }
    p->ctl = mmap(NULL, sizeof *p->ctl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    p->buf = calloc(1, p->len);
    if (p->ctl == MAP_FAILED || p->buf == NULL) {
        if (p->ctl != MAP_FAILED)
            munmap(p->ctl, sizeof *p->ctl);
        p->ctl = NULL;
        free(p->buf);
        snprintf(why, why_len, "out of memory");
        return -ENOMEM;
    }
    memset(p->ctl, 0, sizeof *p->ctl);
    pin(p->cpu[0]);
    return 0;
}

/* In the child: die with the parent, run on the other CPU. */
static void child_start(const struct pair *p)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pin(p->cpu[1]);
}

/* Tell the child to stop, reap it (killing it after 10 s), free p. `idle`
 * is called while waiting (the master keeps dispatching). Returns the first
 * failure recorded, or 0. */
static int pair_finish(struct pair *p, void (*idle)(void *), void *arg, char *why, size_t why_len)
{
    int rc = 0, st = 0;
    double deadline = now_s() + START_S;
    if (p->ctl == NULL)
        return 0;
    atomic_store(&p->ctl->stop, 1);
    while (p->child > 0 && waitpid(p->child, &st, WNOHANG) == 0) {
        if (now_s() > deadline)
            kill(p->child, SIGKILL);
        if (idle)
            idle(arg);
        else
            usleep(1000);
    }
    rc = atomic_load_explicit(&p->ctl->failed, memory_order_acquire);
    if (rc != 0)
        snprintf(why, why_len, "%s", p->ctl->why);
    else if (p->child > 0 && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
        snprintf(why, why_len, "peer process died (status %d)", st);
        rc = -EPIPE;
    }
    munmap(p->ctl, sizeof *p->ctl);
    free(p->buf);
    sched_setaffinity(0, sizeof p->saved, &p->saved);
    return rc;
}

/* Wait for flag or for the child to die; 0 or -errno. */
static int pair_await(struct pair *p, atomic_int *flag, char *why, size_t why_len)
{
    double deadline = now_s() + START_S;
    int st;
    while (!atomic_load(flag)) {
        if (atomic_load(&p->ctl->failed) || waitpid(p->child, &st, WNOHANG) == p->child) {
            snprintf(why, why_len, "peer failed to start: %s", p->ctl->why);
            return -EPIPE;
        }
        if (now_s() > deadline) {
            snprintf(why, why_len, "peer did not start within %d s", START_S);
            return -ETIMEDOUT;
        }
        usleep(1000);
    }
    return 0;
}

/* ---- this process is the master ---- */

struct ripc_bench_master {
    struct pair p;
    int mode;
    ripc_server *srv;
    _Atomic uint32_t peer; /* the worker's id, once joined */
    uint64_t expect;       /* WORKER_SENDS: next record */
    unsigned char *batch;  /* MASTER_SENDS: RIPC_BENCH_BATCH records, made on first use */
};

static void on_record(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    struct ripc_bench_master *m = arg;
    (void)from;
    if (check(m->p.ctl, msg->data, msg->len, m->p.len, m->expect) == 0)
        m->expect++;
}

static void on_join(ripc_peer *peer, void *arg)
{
    struct ripc_bench_master *m = arg;
    atomic_store(&m->peer, ripc_peer_id(peer));
}

static void worker_stream(struct pair *p, ripc_client *c)
{
    for (uint64_t seq = 0; !atomic_load_explicit(&p->ctl->stop, memory_order_relaxed);) {
        memcpy(p->buf, &seq, sizeof seq);
        /* No timeout: the master keeps dispatching until this process has
         * exited (master_idle), so a full ring always drains. */
        int rc = ripc_client_send(c, T_RECORD, p->buf, p->len, -1);
        if (rc == 0)
            seq++;
        else {
            fail(p->ctl, rc, "worker send %llu: %s", (unsigned long long)seq, ripc_strerror(rc));
            return;
        }
    }
}

static void worker_receive(struct pair *p, ripc_client *c)
{
    uint64_t expect = 0;
    for (;;) {
        ripc_msg msg;
        int rc = ripc_client_recv(c, &msg, -1);
        if (rc < 0) {
            fail(p->ctl, rc, "worker recv: %s", ripc_strerror(rc));
            return;
        }
        if (msg.type == T_STOP)
            return;
        if (msg.type == T_END) /* Release: pairs with the acquire in master_drain(). */
            atomic_store_explicit(&p->ctl->acked, expect + 1, memory_order_release);
        else if (check(p->ctl, msg.data, msg.len, p->len, expect) == 0)
            expect++;
        else
            return;
    }
}

static void worker_main(struct ripc_bench_master *m, const char *url)
{
    ripc_options o = options(&m->p);
    ripc_client *c;
    child_start(&m->p);
    int rc = ripc_client_open(&c, url, &o);
    if (rc < 0) {
        fail(m->p.ctl, rc, "worker open %s: %s", url, ripc_strerror(rc));
        _exit(1);
    }
    if (m->mode == RIPC_BENCH_WORKER_SENDS)
        worker_stream(&m->p, c);
    else
        worker_receive(&m->p, c);
    ripc_client_close(c);
    _exit(0); /* not exit(): the C++ runtime and stdio belong to the parent */
}

int ripc_bench_master_open(ripc_bench_master **out, int mode, size_t len, int wait, char *why,
                           size_t why_len)
{
    static unsigned serial;
    char url[160];
    ripc_bench_master *m = calloc(1, sizeof *m);
    int rc;
    *out = NULL;
    if (m == NULL)
        return -ENOMEM;
    m->mode = mode;
    rc = pair_init(&m->p, len, wait, why, why_len);
    if (rc < 0) {
        free(m);
        return rc;
    }
    snprintf(url, sizeof url, "unix:/tmp/ringipc-bench-%d-%u.sock", (int)getpid(), serial++);
    ripc_options o = options(&m->p);
    rc = ripc_server_open(&m->srv, url, &o);
    if (rc < 0) {
        snprintf(why, why_len, "server open %s: %s", url, ripc_strerror(rc));
        ripc_bench_master_close(m, NULL, 0);
        return rc;
    }
    ripc_server_handle(m->srv, T_RECORD, on_record, m);
    ripc_server_on_peer(m->srv, on_join, NULL, m);
    m->p.child = fork();
    if (m->p.child == 0)
        worker_main(m, url);
    double deadline = now_s() + START_S;
    while (atomic_load(&m->peer) == 0 && !atomic_load(&m->p.ctl->failed) && now_s() < deadline)
        ripc_server_poll(m->srv, STEP_MS);
    if (atomic_load(&m->peer) == 0) {
        ripc_bench_master_close(m, why, why_len);
        if (why && why[0] == 0)
            snprintf(why, why_len, "the worker did not join");
        return -ETIMEDOUT;
    }
    *out = m;
    return 0;
}

long ripc_bench_master_poll(ripc_bench_master *m)
{
    uint64_t before = m->expect;
    int rc = ripc_server_poll(m->srv, STEP_MS);
    if (rc < 0)
        return rc;
    if (atomic_load(&m->p.ctl->failed))
        return -EPROTO;
    return (long)(m->expect - before);
}

int ripc_bench_master_send(ripc_bench_master *m, uint64_t seq)
{
    memcpy(m->p.buf, &seq, sizeof seq);
    return ripc_server_send(m->srv, atomic_load(&m->peer), T_RECORD, m->p.buf, m->p.len, -1);
}

int ripc_bench_master_send_batch(ripc_bench_master *m, uint64_t first, unsigned n)
{
    size_t len = m->p.len; /* >= 8, as in ripc_bench_master_send */
    if (n > RIPC_BENCH_BATCH)
        return -EINVAL;
    if (m->batch == NULL) {
        if ((m->batch = malloc(RIPC_BENCH_BATCH * len)) == NULL)
            return -ENOMEM;
        for (unsigned i = 0; i < RIPC_BENCH_BATCH; i++)
            memcpy(m->batch + i * len, m->p.buf, len); /* the filler the worker checks */
    }
    ripc_out out[RIPC_BENCH_BATCH];
    for (unsigned i = 0; i < n; i++) {
        uint64_t seq = first + i;
        memcpy(m->batch + i * len, &seq, sizeof seq);
        out[i] = (ripc_out){.type = T_RECORD, .data = m->batch + i * len, .len = m->p.len};
    }
    int rc = ripc_server_send_batch(m->srv, atomic_load(&m->peer), out, n, -1);
    return rc == (int)n ? 0 : rc < 0 ? rc : -EIO;
}

int ripc_bench_master_drain(ripc_bench_master *m, uint64_t sent)
{
    uint64_t acked, end = 0;
    int rc = ripc_server_send(m->srv, atomic_load(&m->peer), T_END, &end, sizeof end, -1);
    double deadline = now_s() + START_S;
    if (rc < 0)
        return rc;
    /* Acquire: pairs with the release in worker_receive(). */
    while ((acked = atomic_load_explicit(&m->p.ctl->acked, memory_order_acquire)) == 0) {
        if (atomic_load(&m->p.ctl->failed) || now_s() > deadline)
            return -EPIPE;
        sched_yield();
    }
    return acked == sent + 1 ? 0 : -EPROTO;
}

static void master_idle(void *arg)
{
    ripc_bench_master *m = arg;
    ripc_server_poll(m->srv, 1); /* lets a worker blocked on a full ring see stop */
}

int ripc_bench_master_close(ripc_bench_master *m, char *why, size_t why_len)
{
    if (m == NULL)
        return 0;
    if (m->mode == RIPC_BENCH_MASTER_SENDS && atomic_load(&m->peer) != 0)
        ripc_server_send(m->srv, atomic_load(&m->peer), T_STOP, "", 0, 1000);
    int rc = pair_finish(&m->p, m->srv ? master_idle : NULL, m, why, why_len);
    ripc_server_close(m->srv);
    free(m->batch);
    free(m);
    return rc;
}

/* ---- this process is a worker; the forked master echoes ---- */

struct ripc_bench_worker {
    struct pair p;
    ripc_client *c;
};

struct echo {
    struct ctl *ctl;
    size_t len;
    uint64_t expect;
};

static void on_call(ripc_peer *from, const ripc_msg *msg, void *arg)
{
    struct echo *e = arg;
    if (check(e->ctl, msg->data, msg->len, e->len, e->expect) == 0)
        e->expect++;
    ripc_reply(from, msg, msg->data, msg->len);
}

static void master_main(struct pair *p)
{
    struct echo e = {.ctl = p->ctl, .len = p->len};
    ripc_options o = options(p);
    ripc_server *s;
    char url[160];
    child_start(p);
    snprintf(url, sizeof url, "unix:/tmp/ringipc-bench-%d.sock", (int)getpid());
    int rc = ripc_server_open(&s, url, &o);
    if (rc < 0) {
        fail(p->ctl, rc, "master open %s: %s", url, ripc_strerror(rc));
        _exit(1);
    }
    ripc_server_handle(s, T_CALL, on_call, &e);
    snprintf(p->ctl->url, sizeof p->ctl->url, "%s", url);
    atomic_store(&p->ctl->ready, 1);
    while (!atomic_load_explicit(&p->ctl->stop, memory_order_relaxed))
        if ((rc = ripc_server_poll(s, STEP_MS)) < 0) {
            fail(p->ctl, rc, "master poll: %s", ripc_strerror(rc));
            break;
        }
    ripc_server_close(s);
    _exit(0);
}

int ripc_bench_worker_open(ripc_bench_worker **out, size_t len, int wait, char *why, size_t why_len)
{
    ripc_bench_worker *w = calloc(1, sizeof *w);
    int rc;
    *out = NULL;
    if (w == NULL)
        return -ENOMEM;
    rc = pair_init(&w->p, len, wait, why, why_len);
    if (rc < 0) {
        free(w);
        return rc;
    }
    w->p.child = fork();
    if (w->p.child == 0)
        master_main(&w->p);
    rc = pair_await(&w->p, &w->p.ctl->ready, why, why_len);
    if (rc == 0) {
        ripc_options o = options(&w->p);
        rc = ripc_client_open(&w->c, w->p.ctl->url, &o);
        if (rc < 0)
            snprintf(why, why_len, "client open %s: %s", w->p.ctl->url, ripc_strerror(rc));
    }
    if (rc < 0) {
        ripc_bench_worker_close(w, NULL, 0);
        return rc;
    }
    *out = w;
    return 0;
}

int ripc_bench_worker_request(ripc_bench_worker *w, uint64_t seq)
{
    ripc_msg reply;
    memcpy(w->p.buf, &seq, sizeof seq);
    int rc = ripc_client_request(w->c, T_CALL, w->p.buf, w->p.len, &reply, -1);
    if (rc < 0)
        return rc;
    return check(w->p.ctl, reply.data, reply.len, w->p.len, seq);
}

int ripc_bench_worker_close(ripc_bench_worker *w, char *why, size_t why_len)
{
    if (w == NULL)
        return 0;
    ripc_client_close(w->c);
    int rc = pair_finish(&w->p, NULL, NULL, why, why_len);
    free(w);
    return rc;
}

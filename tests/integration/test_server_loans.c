/*
 * Zero-copy sends from the master (ripc_server_reserve / _commit /
 * _abandon) across real processes, in both transports: every size boundary
 * (the ring record, the large-message buffer, socket mode's library buffer),
 * content and order checked by the worker, loans abandoned, a worker killed
 * while the master holds a loan to it, two threads reserving to one worker,
 * close and shutdown with a loan open, a hostile worker scribbling over the
 * ring the loan sits in, and the errors.
 *
 * Usage: test_server_loans [shm|socket] [test-name-filter]
 *
 * The test process is the master, running ripc_server_run() in a thread;
 * the test's own thread (and threads it starts) hold the loans. Workers
 * are fork()ed children that print what went wrong and _exit() non-zero
 * (they never call cmocka). Sequencing uses pipes and the protocol.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "shm/fence.h"
#include "src/server_internal.h"
#include "support/hconn.h"
#include "support/support.h"
#include "support/workers.h"

enum { T_DATA = 1, T_POKE };

#define MIB        ((uint64_t)1 << 20)
#define INLINE_MAX 4096 /* max_inline: the boundary the sizes sit around */
#define MAX_MSG    (64 * MIB)

static int g_transport;
static const char *g_transport_name;

/* One message of a sequence: reserve `res` bytes, commit `len` of them
 * (a copying send when res is 0 and len is not: see send_step). */
struct step {
    uint64_t res, len;
    int copy;
};

/* What the worker expects, in order (set before the fork). */
static const struct step *g_steps;
static size_t g_nsteps;

static struct {
    ripc_test_master m;  /* server, dispatch, joins and leaves; m.mu guards poked */
    _Atomic int poke_rc; /* T_POKE's handler: its send to the lent worker */
    _Atomic int poked;
} M;

/* T_POKE: the dispatch thread that owns the worker sends to it (while the
 * test holds a loan to it: -EBUSY at once, never a wait for the test). */
static void on_poke(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)m;
    (void)arg;
    int rc = ripc_server_send(M.m.s, ripc_peer_id(from), T_DATA, "x", 1, 30000);
    pthread_mutex_lock(&M.m.mu);
    atomic_store(&M.poke_rc, rc);
    atomic_store(&M.poked, 1);
    pthread_cond_broadcast(&M.m.cv);
    pthread_mutex_unlock(&M.m.mu);
}

static ripc_options opts(void)
{
    ripc_options o = {0};
    o.transport = g_transport;
    o.max_inline = INLINE_MAX;
    o.max_message = MAX_MSG;
    o.ring_bytes = 64 * 1024;
    return o;
}

static int setup(void **state)
{
    (void)state;
    memset(&M, 0, sizeof M);
    ripc_options o = opts();
    if (ripc_test_master_open(&M.m, "srvloans", &o) < 0)
        return -1;
    ripc_server_handle(M.m.s, T_POKE, on_poke, NULL);
    return 0; /* dispatch starts after the first fork (see fork_kid) */
}

static int teardown(void **state)
{
    (void)state;
    ripc_test_master_close(&M.m);
    return 0;
}

/* ---- worker side ---- */

static int kid_open(ripc_client **c)
{
    ripc_options o = opts();
    return ripc_test_kid_open(c, M.m.url, &o, g_transport_name);
}

/* Receive g_steps in order, each byte checked, then nothing more until the
 * master goes (or, with `until_end` 0, return at once). */
static int kid_expect(ripc_client *c, int until_end)
{
    for (uint64_t i = 0; i < g_nsteps; i++) {
        ripc_msg m;
        int rc = ripc_client_recv(c, &m, 30000);
        if (rc < 0)
            return ripc_test_kid_fail("recv %llu: %s", (unsigned long long)i, ripc_strerror(rc));
        if (m.type != T_DATA || m.len != g_steps[i].len ||
            !ripc_test_check(m.data, (size_t)m.len, i))
            return ripc_test_kid_fail(
                "message %llu: type %u, %llu bytes, wanted %llu, or wrong content",
                (unsigned long long)i, m.type, (unsigned long long)m.len,
                (unsigned long long)g_steps[i].len);
    }
    if (!until_end)
        return 0;
    ripc_msg m;
    int rc = ripc_client_recv(c, &m, 60000);
    if (rc != -EPIPE)
        return ripc_test_kid_fail("after the last message: %d (type %u, %llu bytes), wanted -EPIPE",
                                  rc, rc == 0 ? m.type : 0,
                                  rc == 0 ? (unsigned long long)m.len : 0ull);
    return 0;
}

/* A forked worker, as the test sees it and as the worker does. */
struct kid {
    int up[2];   /* "joined" */
    int down[2]; /* the test's word to go on, where it needs one */
    int pid;
    uint32_t peer;
    /* In the worker, once joined with client c: its verdict (0 or 1). */
    int (*body)(struct kid *k, ripc_client *c);
};

/* The worker: its ends of k's pipes, a client, "joined" said, k->body. */
static int kid_main(void *arg)
{
    struct kid *k = arg;
    close(k->up[0]);
    close(k->down[1]);
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    ripc_test_write_all(k->up[1], "j", 1);
    int rc = k->body(k, c);
    ripc_client_close(c);
    return rc;
}

static int kid_receiver(struct kid *k, ripc_client *c)
{
    (void)k;
    return kid_expect(c, 1);
}

/* Fork a worker running fn(&k) that says "j" on k.up once it has joined;
 * start dispatch with the first; wait for its join on both sides. */
static struct kid fork_kid_main(int (*fn)(void *), int (*body)(struct kid *, ripc_client *))
{
    struct kid k = {.body = body};
    assert_int_equal(pipe(k.up), 0);
    assert_int_equal(pipe(k.down), 0);
    int joined0 = ripc_test_master_joined(&M.m);
    k.pid = ripc_test_fork_dispatch(fn, &k, &M.m.run, M.m.s);
    close(k.up[1]);
    close(k.down[0]);
    char x;
    if (ripc_test_read_within(k.up[0], &x, 1, 30000) < 0) {
        ripc_test_wait(k.pid);
        fail_msg("the worker never joined");
    }
    /* joined runs on the dispatch thread: wait for it too */
    k.peer = ripc_test_master_wait_joined(&M.m, joined0);
    return k;
}

/* A worker with a client that runs body once joined (kid_main). */
static struct kid fork_kid(int (*body)(struct kid *, ripc_client *))
{
    return fork_kid_main(kid_main, body);
}

static void kid_done(struct kid *k)
{
    close(k->up[0]);
    close(k->down[1]);
}

/* Step i to peer: a loan filled in place, or a copying send. */
static void send_step(uint32_t peer, uint64_t i)
{
    const struct step *st = &g_steps[i];
    if (st->copy) {
        unsigned char *b = malloc(st->len ? (size_t)st->len : 1);
        assert_non_null(b);
        ripc_test_fill(b, (size_t)st->len, i);
        assert_int_equal(ripc_server_send(M.m.s, peer, T_DATA, b, st->len, 30000), 0);
        free(b);
        return;
    }
    void *p = NULL;
    int rc = ripc_server_reserve(M.m.s, peer, st->res, &p, 30000);
    if (rc < 0)
        fail_msg("reserve %llu: %s", (unsigned long long)st->res, ripc_strerror(rc));
    assert_non_null(p);
    ripc_test_fill(p, (size_t)st->len, i);
    rc = ripc_server_commit(M.m.s, peer, T_DATA, st->len);
    if (rc < 0)
        fail_msg("commit %llu of %llu: %s", (unsigned long long)st->len,
                 (unsigned long long)st->res, ripc_strerror(rc));
}

/* The master closes the connection (the worker's last recv sees -EPIPE)
 * and the worker's verdict. */
static void finish(struct kid *k)
{
    ripc_test_master_close(&M.m);
    assert_int_equal(ripc_test_wait(k->pid), 0);
    kid_done(k);
}

/* ---- every size boundary, loans and copies interleaved ---- */

static const struct step k_sizes[] = {
    {0, 0, 0},
    {1, 1, 0},
    {INLINE_MAX - 1, INLINE_MAX - 1, 0},
    {INLINE_MAX, INLINE_MAX, 0},
    {INLINE_MAX + 1, INLINE_MAX + 1, 0},
    {64 * 1024, 64 * 1024, 0},
    {3 * MIB + 5, 3 * MIB + 5, 0},
    {9 * MIB, 9 * MIB, 0},
    /* committed shorter than reserved, across every boundary */
    {INLINE_MAX, 10, 0},
    {INLINE_MAX + 1, INLINE_MAX, 0},
    {INLINE_MAX + 1, 0, 0}, /* a large reservation committed empty, */
    {2 * MIB, 7, 0},        /* or small enough for the marker's room, */
    {2 * MIB, 8, 0},
    {2 * MIB, 9, 0}, /* or just past it */
    {5 * MIB, INLINE_MAX + 1, 0},
    {1 * MIB, 1 * MIB - 3, 0},
    {24, 24, 0},
};
#define N_SIZES     (sizeof k_sizes / sizeof k_sizes[0])
#define SIZE_ROUNDS 3
static struct step g_size_steps[SIZE_ROUNDS * N_SIZES];

static void test_server_loans_every_size_in_order(void **state)
{
    (void)state;
    /* Rounds: all loans, then loans and copies alternating each way. */
    for (size_t r = 0; r < SIZE_ROUNDS; r++)
        for (size_t i = 0; i < N_SIZES; i++) {
            struct step *st = &g_size_steps[r * N_SIZES + i];
            *st = k_sizes[i];
            st->copy = r > 0 && (i + r) % 2 == 0;
        }
    g_steps = g_size_steps;
    g_nsteps = SIZE_ROUNDS * N_SIZES;
    struct kid k = fork_kid(kid_receiver);
    uint32_t peer = k.peer;
    for (uint64_t i = 0; i < g_nsteps; i++)
        send_step(peer, i);
    finish(&k);
}

/* ---- abandoned loans: nothing is delivered, the next send goes ---- */

static const struct step k_after_abandon[] = {
    {0, 100, 1}, {2 * MIB, 2 * MIB, 0}, {300, 300, 0}, {0, 5 * MIB, 1}};

static void test_server_loans_abandoned(void **state)
{
    (void)state;
    g_steps = k_after_abandon;
    g_nsteps = 4;
    struct kid k = fork_kid(kid_receiver);
    uint32_t peer = k.peer;
    assert_int_equal(ripc_server_abandon(M.m.s, peer), -EINVAL);
    static const uint64_t sizes[] = {100, INLINE_MAX + 1, 2 * MIB, 0};
    for (size_t i = 0; i < 4; i++) {
        void *p;
        assert_int_equal(ripc_server_reserve(M.m.s, peer, sizes[i], &p, 10000), 0);
        memset(p, 0xA5, (size_t)sizes[i]); /* garbage the worker must never see */
        assert_int_equal(ripc_server_abandon(M.m.s, peer), 0);
        assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, 0), -EINVAL);
        assert_int_equal(ripc_server_abandon(M.m.s, peer), -EINVAL);
        send_step(peer, i); /* the next message goes, copied or lent */
    }
    finish(&k);
}

/* ---- a worker killed while the master holds a loan to it ---- */

static int kid_victim(struct kid *k, ripc_client *c)
{
    (void)k;
    (void)c;
    for (;;)
        pause(); /* until the SIGKILL */
    return 1;    /* not reached */
}

/* SIGKILL a worker, see it die and the master drop it; why it was dropped. */
static int kill_kid(struct kid *k)
{
    int left0 = ripc_test_master_left(&M.m);
    kill(k->pid, SIGKILL);
    assert_int_equal(ripc_test_wait(k->pid), 128 + SIGKILL);
    return ripc_test_master_wait_left(&M.m, left0);
}

/* The descriptors the master holds come back to n (the library may close
 * a dropped worker's socket on a thread of its own, a moment later). */
static int fds_back_to(int n)
{
    uint64_t end = ripc_test_now_ms() + 10000;
    int now;
    while ((now = ripc_test_count_fds()) != n && ripc_test_now_ms() < end)
        usleep(1000);
    return now;
}

static void test_server_loans_worker_killed_holding_a_loan(void **state)
{
    (void)state;
    g_steps = k_after_abandon; /* the bystander gets these */
    g_nsteps = 2;
    /* One victim holding a record in the ring, one holding a large buffer
     * (the master's loan in both cases). */
    static const uint64_t lens[] = {1000, 3 * MIB};
    int fds0 = ripc_test_count_fds();
    for (size_t i = 0; i < 2; i++) {
        struct kid v = fork_kid(kid_victim);
        uint32_t peer = v.peer;
        void *p;
        assert_int_equal(ripc_server_reserve(M.m.s, peer, lens[i], &p, 10000), 0);
        ripc_test_fill(p, (size_t)lens[i] / 2, 7);
        assert_int_not_equal(kill_kid(&v), RIPC_LEFT_BYE);
        /* The worker is gone and dropped: the buffer is still ours. */
        ripc_test_fill(p, (size_t)lens[i], 7);
        assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, lens[i]), -EPIPE);
        assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, lens[i]), -ENOENT);
        assert_int_equal(ripc_server_abandon(M.m.s, peer), -ENOENT);
        kid_done(&v);
    }
    /* Everything the victims held is released with their loans. */
    assert_int_equal(fds_back_to(fds0), fds0);
    /* A dropped worker's loan abandoned, rather than committed. */
    struct kid v = fork_kid(kid_victim);
    uint32_t peer = v.peer;
    void *p;
    assert_int_equal(ripc_server_reserve(M.m.s, peer, 2 * MIB, &p, 10000), 0);
    kill_kid(&v);
    memset(p, 1, 2 * MIB);
    assert_int_equal(ripc_server_abandon(M.m.s, peer), 0);
    assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, 1), -ENOENT);
    kid_done(&v);
    assert_int_equal(fds_back_to(fds0), fds0);
    /* A new worker is served as before. */
    struct kid k = fork_kid(kid_receiver);
    peer = k.peer;
    send_step(peer, 0);
    send_step(peer, 1);
    finish(&k);
}

/* ---- loans streamed through the send lock's bias ---- */

/* Past RIPC_BIAS_STREAK (256) loans in a row, the thread that makes them
 * holds the peer's bias and its inline loans go without the send lock
 * (src/server_send.c). */
#define BIAS_STREAM 3000
static struct step g_bias_steps[BIAS_STREAM];

struct copier {
    uint32_t peer;
    uint64_t i;
    _Atomic int tid; /* its thread id, once it is about to send */
    int rc;
};

/* Step i as a copying send from another thread: it takes the send lock,
 * which withdraws the streaming thread's bias. */
static void *copier_main(void *arg)
{
    struct copier *c = arg;
    const struct step *st = &g_steps[c->i];
    unsigned char *b = malloc((size_t)st->len + 1);
    if (!b) {
        c->rc = -ENOMEM;
        return NULL;
    }
    ripc_test_fill(b, (size_t)st->len, c->i);
    atomic_store(&c->tid, (int)syscall(SYS_gettid));
    c->rc = ripc_server_send(M.m.s, c->peer, T_DATA, b, st->len, 30000);
    free(b);
    return NULL;
}

static void test_server_loans_stream_through_the_bias(void **state)
{
    (void)state;
    for (uint64_t i = 0; i < BIAS_STREAM; i++) {
        uint64_t len = 1 + (i * 37) % 600;
        /* some committed shorter than reserved; two sent by another thread */
        g_bias_steps[i] = (struct step){i % 5 ? len : len + 16, len, i == 1000 || i == 2500};
    }
    g_steps = g_bias_steps;
    g_nsteps = BIAS_STREAM;
    struct kid k = fork_kid(kid_receiver);
    uint32_t peer = k.peer;
    for (uint64_t i = 0; i < BIAS_STREAM; i++) {
        if (g_steps[i].copy) {
            struct copier c = {.peer = peer, .i = i};
            pthread_t th;
            assert_int_equal(pthread_create(&th, NULL, copier_main, &c), 0);
            pthread_join(th, NULL);
            assert_int_equal(c.rc, 0);
            continue;
        }
        if (i + 1 < BIAS_STREAM && g_steps[i + 1].copy && i > 2000) {
            /* A loan open (through the bias) while another thread's send
             * takes the lock and waits for the loan's end: the commit
             * wakes it, and the loan arrives before the copy. */
            void *p;
            assert_int_equal(ripc_server_reserve(M.m.s, peer, g_steps[i].res, &p, 10000), 0);
            struct copier c = {.peer = peer, .i = i + 1};
            pthread_t th;
            assert_int_equal(pthread_create(&th, NULL, copier_main, &c), 0);
            while (atomic_load(&c.tid) == 0)
                sched_yield();
            ripc_test_wait_sleeping(getpid(), atomic_load(&c.tid));
            ripc_test_fill(p, (size_t)g_steps[i].len, i);
            assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, g_steps[i].len), 0);
            pthread_join(th, NULL);
            assert_int_equal(c.rc, 0);
            i++;
            continue;
        }
        if (i % 700 == 0) { /* a loan abandoned on the way: nothing goes */
            void *p;
            assert_int_equal(ripc_server_reserve(M.m.s, peer, 50, &p, 10000), 0);
            memset(p, 0xA5, 50);
            assert_int_equal(ripc_server_abandon(M.m.s, peer), 0);
        }
        send_step(peer, i);
    }
    /* Inline loans went through the bias where there is one (a shared-memory
     * peer and a remote fence), and never elsewhere. */
    uint64_t fast = ripc__peer_loans_fast(M.m.s, peer);
    print_message("%llu of %d steps committed through the bias\n", (unsigned long long)fast,
                  BIAS_STREAM);
    if (g_transport == RIPC_TRANSPORT_SHM && ripc__remote_fence_init() == 1)
        assert_true(fast >= BIAS_STREAM / 4);
    else
        assert_int_equal(fast, 0);
    /* The ring of 64 KiB filled on the way: the worker checked all of it. */
    finish(&k);
}

static void test_server_loans_worker_killed_holding_a_biased_loan(void **state)
{
    (void)state;
    g_steps = g_bias_steps;
    g_nsteps = 400;
    for (uint64_t i = 0; i < 400; i++)
        g_bias_steps[i] = (struct step){64, 64, 0};
    int fds0 = ripc_test_count_fds();
    struct kid v = fork_kid(kid_receiver);
    uint32_t peer = v.peer;
    for (uint64_t i = 0; i < 400; i++)
        send_step(peer, i);
    void *p;
    assert_int_equal(ripc_server_reserve(M.m.s, peer, 100, &p, 10000), 0);
    assert_int_not_equal(kill_kid(&v), RIPC_LEFT_BYE);
    /* The worker is gone and dropped: the record is still ours. */
    memset(p, 3, 100);
    assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, 100), -EPIPE);
    assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, 100), -ENOENT);
    kid_done(&v);
    assert_int_equal(fds_back_to(fds0), fds0);
}

/* ---- the errors ---- */

static const struct step k_errs[] = {{64, 64, 0}, {300, 200, 0}, {0, 1, 1}};

static int kid_errors(struct kid *k, ripc_client *c)
{
    char x;
    if (ripc_test_read_all(k->down[0], &x, 1) < 0) /* the master holds a loan */
        return ripc_test_kid_fail("sync");
    int rc = ripc_client_send(c, T_POKE, NULL, 0, 10000);
    if (rc < 0)
        return ripc_test_kid_fail("poke: %s", ripc_strerror(rc));
    return kid_expect(c, 1);
}

static void test_server_loans_errors(void **state)
{
    (void)state;
    g_steps = k_errs;
    g_nsteps = 3;
    struct kid k = fork_kid(kid_errors);
    uint32_t peer = k.peer;
    void *p = (void *)&p;
    assert_int_equal(ripc_server_reserve(NULL, peer, 1, &p, 0), -EINVAL);
    assert_int_equal(ripc_server_reserve(M.m.s, peer, 1, NULL, 0), -EINVAL);
    assert_int_equal(ripc_server_reserve(M.m.s, peer, MAX_MSG + 1, &p, 0), -EMSGSIZE);
    assert_null(p);
    assert_int_equal(ripc_server_reserve(M.m.s, peer + 1000, 1, &p, 0), -ENOENT);
    assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, 0), -EINVAL);
    assert_int_equal(ripc_server_commit(M.m.s, peer + 1000, T_DATA, 0), -ENOENT);
    assert_int_equal(ripc_server_commit(NULL, peer, T_DATA, 0), -EINVAL);
    assert_int_equal(ripc_server_abandon(M.m.s, peer), -EINVAL);
    assert_int_equal(ripc_server_abandon(NULL, peer), -EINVAL);
    /* step 0, with everything else to that worker refused meanwhile */
    assert_int_equal(ripc_server_reserve(M.m.s, peer, 64, &p, 1000), 0);
    assert_non_null(p);
    ripc_test_fill(p, 64, 0);
    void *q;
    assert_int_equal(ripc_server_reserve(M.m.s, peer, 8, &q, 0), -EBUSY); /* this thread's loan */
    assert_int_equal(ripc_server_send(M.m.s, peer, T_DATA, "x", 1, 1000), -EBUSY);
    ripc_out one = {T_DATA, "x", 1};
    assert_int_equal(ripc_server_send_batch(M.m.s, peer, &one, 1, 1000), -EBUSY);
    assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, 65), -EINVAL);
    assert_int_equal(ripc_server_commit(M.m.s, peer, RIPC_TYPE_RESERVED, 64), -EINVAL);
    /* The worker's dispatch thread sends to it: -EBUSY, not a wait. */
    ripc_test_write_all(k.down[1], "g", 1);
    pthread_mutex_lock(&M.m.mu);
    while (!atomic_load(&M.poked))
        pthread_cond_wait(&M.m.cv, &M.m.mu);
    pthread_mutex_unlock(&M.m.mu);
    assert_int_equal(atomic_load(&M.poke_rc), -EBUSY);
    assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, 64), 0); /* the loan stayed open */
    assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, 64), -EINVAL);
    /* step 1: committed shorter than reserved; step 2 a send after it */
    send_step(peer, 1);
    send_step(peer, 2);
    finish(&k);
}

/* ---- two threads reserving to one worker ---- */

struct second {
    uint32_t peer;
    int timeout_ms;
    _Atomic int tid; /* its thread id, once it is about to reserve */
    int rc;          /* what its reserve returned */
    uint64_t ms;     /* and how long it took */
    int commit;      /* commit step 1 after a successful reserve */
    int commit_rc;
};

static void *second_main(void *arg)
{
    struct second *t = arg;
    void *p = NULL;
    atomic_store(&t->tid, (int)syscall(SYS_gettid));
    uint64_t t0 = ripc_test_now_ms();
    t->rc = ripc_server_reserve(M.m.s, t->peer, g_steps[1].res, &p, t->timeout_ms);
    t->ms = ripc_test_now_ms() - t0;
    if (t->rc == 0 && t->commit) {
        ripc_test_fill(p, (size_t)g_steps[1].len, 1);
        t->commit_rc = ripc_server_commit(M.m.s, t->peer, T_DATA, g_steps[1].len);
    }
    return NULL;
}

/* Another thread's reserve (or send) while our loan is open. */
static void second_try(struct second *t)
{
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, second_main, t), 0);
    pthread_join(th, NULL);
}

static const struct step k_two[] = {{2 * MIB, 2 * MIB, 0}, {1000, 999, 0}, {0, 3, 1}};

struct committer {
    uint32_t peer;
    int rc;
};

static void *commit_main(void *arg)
{
    struct committer *c = arg;
    c->rc = ripc_server_commit(M.m.s, c->peer, T_DATA, g_steps[0].len);
    return NULL;
}

static void test_server_loans_two_threads_one_worker(void **state)
{
    (void)state;
    g_steps = k_two;
    g_nsteps = 3;
    struct kid k = fork_kid(kid_receiver);
    uint32_t peer = k.peer;
    void *p;
    assert_int_equal(ripc_server_reserve(M.m.s, peer, g_steps[0].res, &p, 10000), 0);
    ripc_test_fill(p, (size_t)g_steps[0].len, 0);
    /* Another thread fails within its timeout while we hold the channel. */
    struct second t = {.peer = peer, .timeout_ms = 0};
    second_try(&t);
    assert_int_equal(t.rc, -EAGAIN);
    t.timeout_ms = 100;
    second_try(&t);
    assert_int_equal(t.rc, -ETIMEDOUT);
    assert_true(t.ms >= 90 && t.ms < 10000);
    /* ... or waits, and goes once the loan is committed, after it. */
    t = (struct second){.peer = peer, .timeout_ms = 30000, .commit = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, second_main, &t), 0);
    while (atomic_load(&t.tid) == 0)
        sched_yield();
    ripc_test_wait_sleeping(getpid(), atomic_load(&t.tid));
    /* The loan is committed from a third thread. */
    struct committer cm = {.peer = peer};
    pthread_t cth;
    assert_int_equal(pthread_create(&cth, NULL, commit_main, &cm), 0);
    pthread_join(cth, NULL);
    assert_int_equal(cm.rc, 0);
    pthread_join(th, NULL);
    assert_int_equal(t.rc, 0);
    assert_int_equal(t.commit_rc, 0);
    send_step(peer, 2);
    finish(&k);
}

/* ---- close and shutdown with loans open ---- */

static int kid_until_end(struct kid *k, ripc_client *c)
{
    (void)k;
    g_nsteps = 0;
    return kid_expect(c, 1); /* nothing comes; the master goes */
}

static void test_server_loans_close_with_a_loan_open(void **state)
{
    (void)state;
    struct kid k1 = fork_kid(kid_until_end);
    uint32_t peer1 = k1.peer;
    struct kid k2 = fork_kid(kid_until_end);
    uint32_t peer2 = k2.peer;
    void *p;
    assert_int_equal(ripc_server_reserve(M.m.s, peer1, 3 * MIB, &p, 10000), 0);
    void *q;
    assert_int_equal(ripc_server_reserve(M.m.s, peer2, 100, &q, 10000), 0);
    /* another thread waits for peer1's loan, without a timeout */
    struct second t = {.peer = peer1, .timeout_ms = -1};
    g_steps = k_two;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, second_main, &t), 0);
    while (atomic_load(&t.tid) == 0)
        sched_yield();
    ripc_test_wait_sleeping(getpid(), atomic_load(&t.tid));
    uint64_t t0 = ripc_test_now_ms();
    ripc_server_close(M.m.s); /* the loans do not hold it up */
    M.m.s = NULL;
    uint64_t took = ripc_test_now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(t.rc, -ECANCELED);
    assert_true(took < 10000);
    ripc_test_run_join(&M.m.run);
    assert_int_equal(ripc_test_wait(k1.pid), 0);
    assert_int_equal(ripc_test_wait(k2.pid), 0);
    kid_done(&k1);
    kid_done(&k2);
}

static void test_server_loans_shutdown_then_commit(void **state)
{
    (void)state;
    struct kid k = fork_kid(kid_until_end);
    uint32_t peer = k.peer;
    void *p;
    assert_int_equal(ripc_server_reserve(M.m.s, peer, 2 * MIB, &p, 10000), 0);
    ripc_server_shutdown(M.m.s);
    ripc_test_run_join(&M.m.run); /* run() ends with -ECANCELED */
    memset(p, 3, 2 * MIB);        /* still ours until the loan ends */
    assert_int_equal(ripc_server_commit(M.m.s, peer, T_DATA, 2 * MIB), -ECANCELED);
    assert_int_equal(ripc_server_abandon(M.m.s, peer), -ECANCELED);
    assert_int_equal(ripc_server_reserve(M.m.s, peer, 1, &p, 0), -ECANCELED);
    ripc_server_close(M.m.s);
    M.m.s = NULL;
    assert_int_equal(ripc_test_wait(k.pid), 0);
    kid_done(&k);
}

/* ---- a hostile worker scribbles over the ring the loan sits in ---- */

static int kid_hostile(void *arg) /* no client: a hand-made connection */
{
    struct kid *k = arg;
    close(k->up[0]);
    close(k->down[1]);
    ripc_test_hconn h;
    if (ripc_test_hopen(&h, M.m.url, "hostile", 64 * 1024, RIPC_XPORT_SHM) < 0)
        return ripc_test_kid_fail("hand-made handshake");
    ripc_test_write_all(k->up[1], "j", 1);
    char x;
    if (ripc_test_read_all(k->down[0], &x, 1) < 0) /* the master holds a loan */
        return ripc_test_kid_fail("sync");
    /* Everything of the ring the master produces into: its header (the
     * consumer's index and wait words among it) and every data byte, the
     * reserved record's included. */
    memset(h.m2w, 0xA7, h.ring_sz);
    ripc_test_write_all(k->up[1], "s", 1);
    for (;;)
        pause(); /* until the master drops us or the test ends */
}

static void test_server_loans_hostile_worker_scribbles(void **state)
{
    (void)state;
    if (g_transport != RIPC_TRANSPORT_SHM)
        skip(); /* no shared memory in socket mode */
    g_steps = k_two;
    g_nsteps = 2;
    struct kid bad = fork_kid_main(kid_hostile, NULL);
    uint32_t hpeer = bad.peer;
    struct kid good = fork_kid(kid_receiver);
    uint32_t gpeer = good.peer;
    static const uint64_t lens[] = {1000, 2 * MIB};
    for (size_t i = 0; i < 2; i++) {
        void *p;
        int rc = ripc_server_reserve(M.m.s, hpeer, lens[i], &p, 1000);
        if (i == 0)
            assert_int_equal(rc, 0);
        else if (rc < 0)
            break; /* the first commit showed the ring broken: dropped */
        /* the good worker's loan open at the same time */
        void *g;
        assert_int_equal(ripc_server_reserve(M.m.s, gpeer, g_steps[i].res, &g, 10000), 0);
        if (i == 0) {
            char x;
            ripc_test_write_all(bad.down[1], "g", 1);
            assert_int_equal(ripc_test_read_within(bad.up[0], &x, 1, 30000), 0);
        }
        memset(p, 0x5A, (size_t)lens[i]);
        rc = ripc_server_commit(M.m.s, hpeer, T_DATA, lens[i]);
        assert_true(rc == 0 || rc == -EPROTO || rc == -EPIPE);
        ripc_test_fill(g, (size_t)g_steps[i].len, i);
        assert_int_equal(ripc_server_commit(M.m.s, gpeer, T_DATA, g_steps[i].len), 0);
    }
    /* The master is unharmed; the next send to the bad worker finds its
     * ring broken, or the worker dropped. */
    int rc = ripc_server_send(M.m.s, hpeer, T_DATA, "x", 1, 100);
    assert_true(rc == 0 || rc == -EPROTO || rc == -EPIPE || rc == -ENOENT || rc == -ETIMEDOUT);
    kill(bad.pid, SIGKILL);
    ripc_test_wait(bad.pid);
    finish(&good);
    kid_done(&bad);
}

int main(int argc, char **argv)
{
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_loans_every_size_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_abandoned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_worker_killed_holding_a_loan, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_two_threads_one_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_stream_through_the_bias, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_worker_killed_holding_a_biased_loan,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_close_with_a_loan_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_shutdown_then_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_hostile_worker_scribbles, setup,
                                        teardown),
    };
    return RIPC_TEST_RUN_GROUP("server_loans", g_transport_name, tests);
}

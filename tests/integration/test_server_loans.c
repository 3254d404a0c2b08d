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
#include <stdarg.h>
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
#include "support/hconn.h"
#include "support/support.h"

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
    ripc_server *s;
    pthread_t th;
    int running;
    int closed; /* the test closed s itself */
    char url[128];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int joined, left;
    uint32_t last_joined; /* peer id of the last worker that joined */
    int left_reason;      /* why the last one left */
    _Atomic int poke_rc;  /* T_POKE's handler: its send to the lent worker */
    _Atomic int poked;
} M;

static void on_join(ripc_peer *p, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&M.mu);
    M.joined++;
    M.last_joined = ripc_peer_id(p);
    pthread_cond_broadcast(&M.cv);
    pthread_mutex_unlock(&M.mu);
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    (void)p;
    (void)arg;
    pthread_mutex_lock(&M.mu);
    M.left++;
    M.left_reason = reason;
    pthread_cond_broadcast(&M.cv);
    pthread_mutex_unlock(&M.mu);
}

/* T_POKE: the dispatch thread that owns the worker sends to it (while the
 * test holds a loan to it: -EBUSY at once, never a wait for the test). */
static void on_poke(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)m;
    (void)arg;
    int rc = ripc_server_send(M.s, ripc_peer_id(from), T_DATA, "x", 1, 30000);
    pthread_mutex_lock(&M.mu);
    atomic_store(&M.poke_rc, rc);
    atomic_store(&M.poked, 1);
    pthread_cond_broadcast(&M.cv);
    pthread_mutex_unlock(&M.mu);
}

static void *run_main(void *arg)
{
    (void)arg;
    ripc_server_run(M.s, 1);
    return NULL;
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
    pthread_mutex_init(&M.mu, NULL);
    pthread_cond_init(&M.cv, NULL);
    ripc_test_unix_url(M.url, sizeof M.url, "srvloans");
    ripc_options o = opts();
    int rc = ripc_server_open(&M.s, M.url, &o);
    if (rc < 0) {
        fprintf(stderr, "ripc_server_open: %s\n", ripc_strerror(rc));
        return -1;
    }
    ripc_server_handle(M.s, T_POKE, on_poke, NULL);
    ripc_server_on_peer(M.s, on_join, on_left, NULL);
    return 0; /* dispatch starts after the first fork (see fork_kid) */
}

static int teardown(void **state)
{
    (void)state;
    if (!M.closed) {
        ripc_server_stop(M.s);
        if (M.running)
            pthread_join(M.th, NULL);
        ripc_server_close(M.s);
    } else if (M.running) {
        pthread_join(M.th, NULL);
    }
    return 0;
}

/* ---- worker side ---- */

static int kid_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "worker %d: ", (int)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int kid_open(ripc_client **c)
{
    ripc_options o = opts();
    int rc = ripc_client_open(c, M.url, &o);
    if (rc < 0)
        return kid_fail("open: %s", ripc_strerror(rc));
    if (strcmp(ripc_client_transport(*c), g_transport_name) != 0)
        return kid_fail("transport %s, wanted %s", ripc_client_transport(*c), g_transport_name);
    return 0;
}

/* Receive g_steps in order, each byte checked, then nothing more until the
 * master goes (or, with `until_end` 0, return at once). */
static int kid_expect(ripc_client *c, int until_end)
{
    for (uint64_t i = 0; i < g_nsteps; i++) {
        ripc_msg m;
        int rc = ripc_client_recv(c, &m, 30000);
        if (rc < 0)
            return kid_fail("recv %llu: %s", (unsigned long long)i, ripc_strerror(rc));
        if (m.type != T_DATA || m.len != g_steps[i].len ||
            !ripc_test_check(m.data, (size_t)m.len, i))
            return kid_fail("message %llu: type %u, %llu bytes, wanted %llu, or wrong content",
                            (unsigned long long)i, m.type, (unsigned long long)m.len,
                            (unsigned long long)g_steps[i].len);
    }
    if (!until_end)
        return 0;
    ripc_msg m;
    int rc = ripc_client_recv(c, &m, 60000);
    if (rc != -EPIPE)
        return kid_fail("after the last message: %d (type %u, %llu bytes), wanted -EPIPE", rc,
                        rc == 0 ? m.type : 0, rc == 0 ? (unsigned long long)m.len : 0ull);
    return 0;
}

/* A worker that says it joined on `up`, then checks g_steps. */
struct kid {
    int up[2];   /* "joined" */
    int down[2]; /* the test's word to go on, where it needs one */
};

/* The worker's ends of k's pipes, a client, and "joined" said. 0 or 1. */
static int kid_join(struct kid *k, ripc_client **c)
{
    close(k->up[0]);
    close(k->down[1]);
    if (kid_open(c))
        return 1;
    ripc_test_write_all(k->up[1], "j", 1);
    return 0;
}

static int kid_receiver(void *arg)
{
    struct kid *k = arg;
    ripc_client *c;
    if (kid_join(k, &c))
        return 1;
    int rc = kid_expect(c, 1);
    ripc_client_close(c);
    return rc;
}

static int fork_kid(int (*fn)(void *), struct kid *k)
{
    assert_int_equal(pipe(k->up), 0);
    assert_int_equal(pipe(k->down), 0);
    int joined0;
    pthread_mutex_lock(&M.mu);
    joined0 = M.joined;
    pthread_mutex_unlock(&M.mu);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(k));
    close(k->up[1]);
    close(k->down[0]);
    if (!M.running && pthread_create(&M.th, NULL, run_main, NULL) == 0)
        M.running = 1;
    char x;
    if (ripc_test_read_within(k->up[0], &x, 1, 30000) < 0) {
        ripc_test_wait(pid);
        fail_msg("the worker never joined");
    }
    /* joined runs on the dispatch thread: wait for it too */
    pthread_mutex_lock(&M.mu);
    while (M.joined == joined0)
        pthread_cond_wait(&M.cv, &M.mu);
    pthread_mutex_unlock(&M.mu);
    return pid;
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
        assert_int_equal(ripc_server_send(M.s, peer, T_DATA, b, st->len, 30000), 0);
        free(b);
        return;
    }
    void *p = NULL;
    int rc = ripc_server_reserve(M.s, peer, st->res, &p, 30000);
    if (rc < 0)
        fail_msg("reserve %llu: %s", (unsigned long long)st->res, ripc_strerror(rc));
    assert_non_null(p);
    ripc_test_fill(p, (size_t)st->len, i);
    rc = ripc_server_commit(M.s, peer, T_DATA, st->len);
    if (rc < 0)
        fail_msg("commit %llu of %llu: %s", (unsigned long long)st->len,
                 (unsigned long long)st->res, ripc_strerror(rc));
}

/* The master closes the connection (the worker's last recv sees -EPIPE)
 * and the worker's verdict. */
static void finish(int pid)
{
    ripc_server_stop(M.s);
    pthread_join(M.th, NULL);
    M.running = 0;
    ripc_server_close(M.s);
    M.closed = 1;
    assert_int_equal(ripc_test_wait(pid), 0);
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
    struct kid k;
    int pid = fork_kid(kid_receiver, &k);
    uint32_t peer = M.last_joined;
    for (uint64_t i = 0; i < g_nsteps; i++)
        send_step(peer, i);
    finish(pid);
    kid_done(&k);
}

/* ---- abandoned loans: nothing is delivered, the next send goes ---- */

static const struct step k_after_abandon[] = {
    {0, 100, 1}, {2 * MIB, 2 * MIB, 0}, {300, 300, 0}, {0, 5 * MIB, 1}};

static void test_server_loans_abandoned(void **state)
{
    (void)state;
    g_steps = k_after_abandon;
    g_nsteps = 4;
    struct kid k;
    int pid = fork_kid(kid_receiver, &k);
    uint32_t peer = M.last_joined;
    assert_int_equal(ripc_server_abandon(M.s, peer), -EINVAL);
    static const uint64_t sizes[] = {100, INLINE_MAX + 1, 2 * MIB, 0};
    for (size_t i = 0; i < 4; i++) {
        void *p;
        assert_int_equal(ripc_server_reserve(M.s, peer, sizes[i], &p, 10000), 0);
        memset(p, 0xA5, (size_t)sizes[i]); /* garbage the worker must never see */
        assert_int_equal(ripc_server_abandon(M.s, peer), 0);
        assert_int_equal(ripc_server_commit(M.s, peer, T_DATA, 0), -EINVAL);
        assert_int_equal(ripc_server_abandon(M.s, peer), -EINVAL);
        send_step(peer, i); /* the next message goes, copied or lent */
    }
    finish(pid);
    kid_done(&k);
}

/* ---- a worker killed while the master holds a loan to it ---- */

static int kid_victim(void *arg)
{
    struct kid *k = arg;
    ripc_client *c;
    if (kid_join(k, &c))
        return 1;
    for (;;)
        pause(); /* until the SIGKILL */
}

static void wait_left(int left0)
{
    pthread_mutex_lock(&M.mu);
    while (M.left == left0)
        pthread_cond_wait(&M.cv, &M.mu);
    pthread_mutex_unlock(&M.mu);
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
        struct kid v;
        int pid = fork_kid(kid_victim, &v);
        uint32_t peer = M.last_joined;
        void *p;
        assert_int_equal(ripc_server_reserve(M.s, peer, lens[i], &p, 10000), 0);
        ripc_test_fill(p, (size_t)lens[i] / 2, 7);
        pthread_mutex_lock(&M.mu);
        int left0 = M.left;
        pthread_mutex_unlock(&M.mu);
        kill(pid, SIGKILL);
        assert_int_equal(ripc_test_wait(pid), 128 + SIGKILL);
        wait_left(left0);
        assert_int_not_equal(M.left_reason, RIPC_LEFT_BYE);
        /* The worker is gone and dropped: the buffer is still ours. */
        ripc_test_fill(p, (size_t)lens[i], 7);
        assert_int_equal(ripc_server_commit(M.s, peer, T_DATA, lens[i]), -EPIPE);
        assert_int_equal(ripc_server_commit(M.s, peer, T_DATA, lens[i]), -ENOENT);
        assert_int_equal(ripc_server_abandon(M.s, peer), -ENOENT);
        close(v.up[0]);
        close(v.down[1]);
    }
    /* Everything the victims held is released with their loans. */
    assert_int_equal(fds_back_to(fds0), fds0);
    /* A dropped worker's loan abandoned, rather than committed. */
    struct kid v;
    int pid = fork_kid(kid_victim, &v);
    uint32_t peer = M.last_joined;
    void *p;
    assert_int_equal(ripc_server_reserve(M.s, peer, 2 * MIB, &p, 10000), 0);
    pthread_mutex_lock(&M.mu);
    int left0 = M.left;
    pthread_mutex_unlock(&M.mu);
    kill(pid, SIGKILL);
    assert_int_equal(ripc_test_wait(pid), 128 + SIGKILL);
    wait_left(left0);
    memset(p, 1, 2 * MIB);
    assert_int_equal(ripc_server_abandon(M.s, peer), 0);
    assert_int_equal(ripc_server_commit(M.s, peer, T_DATA, 1), -ENOENT);
    close(v.up[0]);
    close(v.down[1]);
    assert_int_equal(fds_back_to(fds0), fds0);
    /* A new worker is served as before. */
    struct kid k;
    pid = fork_kid(kid_receiver, &k);
    peer = M.last_joined;
    send_step(peer, 0);
    send_step(peer, 1);
    finish(pid);
    kid_done(&k);
}

/* ---- the errors ---- */

static const struct step k_errs[] = {{64, 64, 0}, {300, 200, 0}, {0, 1, 1}};

static int kid_errors(void *arg)
{
    struct kid *k = arg;
    ripc_client *c;
    if (kid_join(k, &c))
        return 1;
    char x;
    if (ripc_test_read_all(k->down[0], &x, 1) < 0) /* the master holds a loan */
        return kid_fail("sync");
    int rc = ripc_client_send(c, T_POKE, NULL, 0, 10000);
    if (rc < 0)
        return kid_fail("poke: %s", ripc_strerror(rc));
    rc = kid_expect(c, 1);
    ripc_client_close(c);
    return rc;
}

static void test_server_loans_errors(void **state)
{
    (void)state;
    g_steps = k_errs;
    g_nsteps = 3;
    struct kid k;
    int pid = fork_kid(kid_errors, &k);
    uint32_t peer = M.last_joined;
    void *p = (void *)&p;
    assert_int_equal(ripc_server_reserve(NULL, peer, 1, &p, 0), -EINVAL);
    assert_int_equal(ripc_server_reserve(M.s, peer, 1, NULL, 0), -EINVAL);
    assert_int_equal(ripc_server_reserve(M.s, peer, MAX_MSG + 1, &p, 0), -EMSGSIZE);
    assert_null(p);
    assert_int_equal(ripc_server_reserve(M.s, peer + 1000, 1, &p, 0), -ENOENT);
    assert_int_equal(ripc_server_commit(M.s, peer, T_DATA, 0), -EINVAL);
    assert_int_equal(ripc_server_commit(M.s, peer + 1000, T_DATA, 0), -ENOENT);
    assert_int_equal(ripc_server_commit(NULL, peer, T_DATA, 0), -EINVAL);
    assert_int_equal(ripc_server_abandon(M.s, peer), -EINVAL);
    assert_int_equal(ripc_server_abandon(NULL, peer), -EINVAL);
    /* step 0, with everything else to that worker refused meanwhile */
    assert_int_equal(ripc_server_reserve(M.s, peer, 64, &p, 1000), 0);
    assert_non_null(p);
    ripc_test_fill(p, 64, 0);
    void *q;
    assert_int_equal(ripc_server_reserve(M.s, peer, 8, &q, 0), -EBUSY); /* this thread's loan */
    assert_int_equal(ripc_server_send(M.s, peer, T_DATA, "x", 1, 1000), -EBUSY);
    ripc_out one = {T_DATA, "x", 1};
    assert_int_equal(ripc_server_send_batch(M.s, peer, &one, 1, 1000), -EBUSY);
    assert_int_equal(ripc_server_commit(M.s, peer, T_DATA, 65), -EINVAL);
    assert_int_equal(ripc_server_commit(M.s, peer, RIPC_TYPE_RESERVED, 64), -EINVAL);
    /* The worker's dispatch thread sends to it: -EBUSY, not a wait. */
    ripc_test_write_all(k.down[1], "g", 1);
    pthread_mutex_lock(&M.mu);
    while (!atomic_load(&M.poked))
        pthread_cond_wait(&M.cv, &M.mu);
    pthread_mutex_unlock(&M.mu);
    assert_int_equal(atomic_load(&M.poke_rc), -EBUSY);
    assert_int_equal(ripc_server_commit(M.s, peer, T_DATA, 64), 0); /* the loan stayed open */
    assert_int_equal(ripc_server_commit(M.s, peer, T_DATA, 64), -EINVAL);
    /* step 1: committed shorter than reserved; step 2 a send after it */
    send_step(peer, 1);
    send_step(peer, 2);
    finish(pid);
    kid_done(&k);
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
    t->rc = ripc_server_reserve(M.s, t->peer, g_steps[1].res, &p, t->timeout_ms);
    t->ms = ripc_test_now_ms() - t0;
    if (t->rc == 0 && t->commit) {
        ripc_test_fill(p, (size_t)g_steps[1].len, 1);
        t->commit_rc = ripc_server_commit(M.s, t->peer, T_DATA, g_steps[1].len);
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
    c->rc = ripc_server_commit(M.s, c->peer, T_DATA, g_steps[0].len);
    return NULL;
}

static void test_server_loans_two_threads_one_worker(void **state)
{
    (void)state;
    g_steps = k_two;
    g_nsteps = 3;
    struct kid k;
    int pid = fork_kid(kid_receiver, &k);
    uint32_t peer = M.last_joined;
    void *p;
    assert_int_equal(ripc_server_reserve(M.s, peer, g_steps[0].res, &p, 10000), 0);
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
    finish(pid);
    kid_done(&k);
}

/* ---- close and shutdown with loans open ---- */

static int kid_until_end(void *arg)
{
    struct kid *k = arg;
    ripc_client *c;
    if (kid_join(k, &c))
        return 1;
    g_nsteps = 0;
    int rc = kid_expect(c, 1); /* nothing comes; the master goes */
    ripc_client_close(c);
    return rc;
}

static void test_server_loans_close_with_a_loan_open(void **state)
{
    (void)state;
    struct kid k1, k2;
    int pid1 = fork_kid(kid_until_end, &k1);
    uint32_t peer1 = M.last_joined;
    int pid2 = fork_kid(kid_until_end, &k2);
    uint32_t peer2 = M.last_joined;
    void *p;
    assert_int_equal(ripc_server_reserve(M.s, peer1, 3 * MIB, &p, 10000), 0);
    void *q;
    assert_int_equal(ripc_server_reserve(M.s, peer2, 100, &q, 10000), 0);
    /* another thread waits for peer1's loan, without a timeout */
    struct second t = {.peer = peer1, .timeout_ms = -1};
    g_steps = k_two;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, second_main, &t), 0);
    while (atomic_load(&t.tid) == 0)
        sched_yield();
    ripc_test_wait_sleeping(getpid(), atomic_load(&t.tid));
    uint64_t t0 = ripc_test_now_ms();
    ripc_server_close(M.s); /* the loans do not hold it up */
    M.closed = 1;
    uint64_t took = ripc_test_now_ms() - t0;
    pthread_join(th, NULL);
    assert_int_equal(t.rc, -ECANCELED);
    assert_true(took < 10000);
    pthread_join(M.th, NULL);
    M.running = 0;
    assert_int_equal(ripc_test_wait(pid1), 0);
    assert_int_equal(ripc_test_wait(pid2), 0);
    kid_done(&k1);
    kid_done(&k2);
}

static void test_server_loans_shutdown_then_commit(void **state)
{
    (void)state;
    struct kid k;
    int pid = fork_kid(kid_until_end, &k);
    uint32_t peer = M.last_joined;
    void *p;
    assert_int_equal(ripc_server_reserve(M.s, peer, 2 * MIB, &p, 10000), 0);
    ripc_server_shutdown(M.s);
    pthread_join(M.th, NULL); /* run() ends with -ECANCELED */
    M.running = 0;
    memset(p, 3, 2 * MIB); /* still ours until the loan ends */
    assert_int_equal(ripc_server_commit(M.s, peer, T_DATA, 2 * MIB), -ECANCELED);
    assert_int_equal(ripc_server_abandon(M.s, peer), -ECANCELED);
    assert_int_equal(ripc_server_reserve(M.s, peer, 1, &p, 0), -ECANCELED);
    ripc_server_close(M.s);
    M.closed = 1;
    assert_int_equal(ripc_test_wait(pid), 0);
    kid_done(&k);
}

/* ---- a hostile worker scribbles over the ring the loan sits in ---- */

static int kid_hostile(void *arg)
{
    struct kid *k = arg;
    close(k->up[0]);
    close(k->down[1]);
    ripc_test_hconn h;
    if (ripc_test_hopen(&h, M.url, "hostile", 64 * 1024, RIPC_XPORT_SHM) < 0)
        return kid_fail("hand-made handshake");
    ripc_test_write_all(k->up[1], "j", 1);
    char x;
    if (ripc_test_read_all(k->down[0], &x, 1) < 0) /* the master holds a loan */
        return kid_fail("sync");
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
    struct kid bad, good;
    g_steps = k_two;
    g_nsteps = 2;
    int hpid = fork_kid(kid_hostile, &bad);
    uint32_t hpeer = M.last_joined;
    int gpid = fork_kid(kid_receiver, &good);
    uint32_t gpeer = M.last_joined;
    static const uint64_t lens[] = {1000, 2 * MIB};
    for (size_t i = 0; i < 2; i++) {
        void *p;
        int rc = ripc_server_reserve(M.s, hpeer, lens[i], &p, 1000);
        if (i == 0)
            assert_int_equal(rc, 0);
        else if (rc < 0)
            break; /* the first commit showed the ring broken: dropped */
        /* the good worker's loan open at the same time */
        void *g;
        assert_int_equal(ripc_server_reserve(M.s, gpeer, g_steps[i].res, &g, 10000), 0);
        if (i == 0) {
            char x;
            ripc_test_write_all(bad.down[1], "g", 1);
            assert_int_equal(ripc_test_read_within(bad.up[0], &x, 1, 30000), 0);
        }
        memset(p, 0x5A, (size_t)lens[i]);
        rc = ripc_server_commit(M.s, hpeer, T_DATA, lens[i]);
        assert_true(rc == 0 || rc == -EPROTO || rc == -EPIPE);
        ripc_test_fill(g, (size_t)g_steps[i].len, i);
        assert_int_equal(ripc_server_commit(M.s, gpeer, T_DATA, g_steps[i].len), 0);
    }
    /* The master is unharmed; the next send to the bad worker finds its
     * ring broken, or the worker dropped. */
    int rc = ripc_server_send(M.s, hpeer, T_DATA, "x", 1, 100);
    assert_true(rc == 0 || rc == -EPROTO || rc == -EPIPE || rc == -ENOENT || rc == -ETIMEDOUT);
    kill(hpid, SIGKILL);
    ripc_test_wait(hpid);
    finish(gpid);
    kid_done(&bad);
    kid_done(&good);
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
        cmocka_unit_test_setup_teardown(test_server_loans_close_with_a_loan_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_shutdown_then_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_loans_hostile_worker_scribbles, setup,
                                        teardown),
    };
    return RIPC_TEST_RUN_GROUP("server_loans", g_transport_name, tests);
}

/*
 * Zero-copy sends from a worker (ripc_client_reserve / _commit / _abandon)
 * across real processes, in both transports: every size boundary (the ring
 * record, the large-message buffer, socket mode's library buffer), content
 * checked by the master's handler, order kept with copying sends, loans
 * abandoned, a worker killed while it holds a loan, and the errors.
 *
 * Usage: test_loans [shm|socket] [test-name-filter]
 *
 * The test process is the master, running ripc_server_run() in a thread;
 * workers are fork()ed children that print what went wrong and _exit()
 * non-zero (they never call cmocka). Sequencing uses pipes and the protocol.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "support/support.h"
#include "support/workers.h"

enum { T_DATA = 1, T_END, T_BLOCK, T_VICTIM, T_FILL };

#define MIB        ((uint64_t)1 << 20)
#define INLINE_MAX 4096 /* max_inline: the boundary the sizes sit around */
#define MAX_MSG    (64 * MIB)

static int g_transport;
static const char *g_transport_name;

/* One message of a sequence: reserve `res` bytes, commit `len` of them
 * (a copying send when the test says so). */
struct step {
    uint64_t res, len;
};

/* The sequence the master expects, in order (set before the fork). */
static const struct step *g_steps;
static size_t g_nsteps;

static struct {
    ripc_test_master m;   /* server, dispatch, joins and leaves, T_BLOCK's hold */
    uint64_t next;        /* T_DATA: the step expected next */
    _Atomic uint64_t got; /* T_DATA messages that checked out */
    _Atomic int victim;   /* T_VICTIM messages (must stay 0) */
    ripc_test_failure fail;
} M;

/* T_DATA: the next step's length, and every byte filled for its index. */
static void on_data(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)from;
    (void)arg;
    uint64_t i = M.next++;
    if (i >= g_nsteps)
        ripc_test_fail_once(&M.fail, "message %llu: more messages than sent",
                            (unsigned long long)i);
    else if (m->len != g_steps[i].len || !ripc_test_check(m->data, (size_t)m->len, i))
        ripc_test_fail_once(
            &M.fail, "message %llu: %llu bytes, wanted %llu, or wrong content / order",
            (unsigned long long)i, (unsigned long long)m->len, (unsigned long long)g_steps[i].len);
    else
        atomic_fetch_add(&M.got, 1);
}

static void on_victim(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)from;
    (void)m;
    (void)arg;
    atomic_fetch_add(&M.victim, 1);
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
    if (ripc_test_master_open(&M.m, "loans", &o) < 0)
        return -1;
    ripc_server_handle(M.m.s, T_DATA, on_data, NULL);
    ripc_server_handle(M.m.s, T_END, ripc_test_on_count_request, &M.got);
    ripc_server_handle(M.m.s, T_BLOCK, ripc_test_on_hold, &M.m);
    ripc_server_handle(M.m.s, T_VICTIM, on_victim, NULL);
    ripc_server_handle(M.m.s, T_FILL, ripc_test_on_count, NULL);
    return 0; /* dispatch starts after the first fork (ripc_test_fork_dispatch) */
}

static int teardown(void **state)
{
    (void)state;
    ripc_test_master_hold(&M.m, 0);
    ripc_test_master_close(&M.m);
    return 0;
}

/* ---- worker side ---- */

static int kid_open(ripc_client **c)
{
    ripc_options o = opts();
    return ripc_test_kid_open(c, M.m.url, &o, g_transport_name);
}

/* Ask the master how many T_DATA messages checked out. */
static int kid_end(ripc_client *c, uint64_t want)
{
    return ripc_test_kid_count(c, T_END, want);
}

/* Step i as a loan: reserve, fill in place, commit. */
static int loan_step(ripc_client *c, uint64_t i)
{
    void *p = NULL;
    int rc = ripc_client_reserve(c, g_steps[i].res, &p, 30000);
    if (rc < 0)
        return ripc_test_kid_fail("reserve %llu bytes: %s", (unsigned long long)g_steps[i].res,
                                  ripc_strerror(rc));
    if (!p)
        return ripc_test_kid_fail("reserve gave no buffer");
    ripc_test_fill(p, (size_t)g_steps[i].len, i);
    if ((rc = ripc_client_commit(c, T_DATA, g_steps[i].len)) < 0)
        return ripc_test_kid_fail("commit %llu of %llu bytes: %s",
                                  (unsigned long long)g_steps[i].len,
                                  (unsigned long long)g_steps[i].res, ripc_strerror(rc));
    return 0;
}

/* Step i as a copying send. */
static int copy_step(ripc_client *c, uint64_t i, unsigned char *buf)
{
    ripc_test_fill(buf, (size_t)g_steps[i].len, i);
    int rc = ripc_client_send(c, T_DATA, buf, g_steps[i].len, 30000);
    if (rc < 0)
        return ripc_test_kid_fail("send %llu bytes: %s", (unsigned long long)g_steps[i].len,
                                  ripc_strerror(rc));
    return 0;
}

/* ---- every size boundary, loans and copies interleaved ---- */

static const struct step k_sizes[] = {
    {0, 0},
    {1, 1},
    {INLINE_MAX - 1, INLINE_MAX - 1},
    {INLINE_MAX, INLINE_MAX},
    {INLINE_MAX + 1, INLINE_MAX + 1},
    {64 * 1024, 64 * 1024},
    {3 * MIB + 5, 3 * MIB + 5},
    {9 * MIB, 9 * MIB},
    /* committed shorter than reserved, across every boundary */
    {INLINE_MAX, 10},
    {INLINE_MAX + 1, INLINE_MAX},
    {INLINE_MAX + 1, 0}, /* a large reservation committed empty, */
    {2 * MIB, 7},        /* or small enough for the marker's room, */
    {2 * MIB, 8},
    {2 * MIB, 9}, /* or just past it */
    {5 * MIB, INLINE_MAX + 1},
    {1 * MIB, 1 * MIB - 3},
    {24, 24},
};
#define N_SIZES (sizeof k_sizes / sizeof k_sizes[0])

/* Rounds: all loans, then loans and copies alternating each way. */
#define SIZE_ROUNDS 3
static struct step g_size_steps[SIZE_ROUNDS * N_SIZES];

static int kid_sizes(void *arg)
{
    (void)arg;
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    unsigned char *buf = malloc(10 * MIB);
    if (!buf)
        return ripc_test_kid_fail("malloc");
    for (uint64_t i = 0; i < g_nsteps; i++) {
        uint64_t round = i / N_SIZES;
        int copy = round > 0 && (i + round) % 2 == 0;
        if (copy ? copy_step(c, i, buf) : loan_step(c, i))
            return 1;
    }
    free(buf);
    int rc = kid_end(c, g_nsteps);
    ripc_client_close(c);
    return rc;
}

static void test_loans_every_size_in_order(void **state)
{
    (void)state;
    for (size_t r = 0; r < SIZE_ROUNDS; r++)
        for (size_t i = 0; i < N_SIZES; i++) {
            g_size_steps[r * N_SIZES + i] = k_sizes[i];
            if (r > 0) /* copies send what they commit */
                g_size_steps[r * N_SIZES + i].res = k_sizes[i].len;
        }
    g_steps = g_size_steps;
    g_nsteps = SIZE_ROUNDS * N_SIZES;
    int pid = ripc_test_fork_dispatch(kid_sizes, NULL, &M.m.run, M.m.s);
    ripc_test_expect_worker(pid, &M.fail, &M.got, g_nsteps);
}

/* ---- abandoned loans: nothing is delivered, the next send goes ---- */

static const struct step k_after_abandon[] = {{100, 100}, {2 * MIB, 2 * MIB}, {300, 300}};

static int kid_abandon(void *arg)
{
    (void)arg;
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    if (ripc_client_abandon(c) != -EINVAL)
        return ripc_test_kid_fail("abandon without a loan is not -EINVAL");
    static const uint64_t sizes[] = {100, INLINE_MAX + 1, 2 * MIB, 0};
    unsigned char buf[300];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        void *p;
        int rc = ripc_client_reserve(c, sizes[k], &p, 10000);
        if (rc < 0)
            return ripc_test_kid_fail("reserve %llu: %s", (unsigned long long)sizes[k],
                                      ripc_strerror(rc));
        memset(p, 0xA5, (size_t)sizes[k]); /* garbage the master must never see */
        if ((rc = ripc_client_abandon(c)) != 0)
            return ripc_test_kid_fail("abandon: %s", ripc_strerror(rc));
        if (ripc_client_commit(c, T_DATA, 0) != -EINVAL)
            return ripc_test_kid_fail("commit after abandon is not -EINVAL");
        /* the next message goes, copied or lent, and is the only one */
        if (k < 3 && (k == 0 ? copy_step(c, k, buf) : loan_step(c, k)))
            return 1;
    }
    int rc = kid_end(c, 3);
    ripc_client_close(c);
    return rc;
}

static void test_loans_abandoned(void **state)
{
    (void)state;
    g_steps = k_after_abandon;
    g_nsteps = 3;
    int pid = ripc_test_fork_dispatch(kid_abandon, NULL, &M.m.run, M.m.s);
    ripc_test_expect_worker(pid, &M.fail, &M.got, 3);
}

/* ---- a worker killed between reserve and commit ---- */

struct victim {
    int up[2];    /* the worker says "reserved and half written" */
    uint64_t len; /* what it reserves */
};

static int kid_victim(void *arg)
{
    struct victim *v = arg;
    close(v->up[0]);
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    void *p;
    int rc = ripc_client_reserve(c, v->len, &p, 10000);
    if (rc < 0)
        return ripc_test_kid_fail("reserve: %s", ripc_strerror(rc));
    ripc_test_fill(p, (size_t)v->len / 2, 0); /* half of it, for T_VICTIM */
    ripc_test_write_all(v->up[1], "r", 1);
    for (;;)
        pause(); /* until the SIGKILL */
}

/* The good worker: a loan open across the other's death, committed after. */
struct bystander {
    int up[2];   /* "joined and reserved" */
    int down[2]; /* "the victim is gone" */
};

static int kid_bystander(void *arg)
{
    struct bystander *b = arg;
    close(b->up[0]);
    close(b->down[1]); /* the parent's end only: its exit is our EOF */
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    void *p;
    int rc = ripc_client_reserve(c, g_steps[0].res, &p, 10000);
    if (rc < 0)
        return ripc_test_kid_fail("reserve: %s", ripc_strerror(rc));
    ripc_test_write_all(b->up[1], "r", 1);
    char x;
    if (ripc_test_read_all(b->down[0], &x, 1) < 0)
        return ripc_test_kid_fail("sync");
    ripc_test_fill(p, (size_t)g_steps[0].len, 0);
    if ((rc = ripc_client_commit(c, T_DATA, g_steps[0].len)) < 0)
        return ripc_test_kid_fail("commit: %s", ripc_strerror(rc));
    if (loan_step(c, 1))
        return 1;
    rc = kid_end(c, 2);
    ripc_client_close(c);
    return rc;
}

static const struct step k_bystander[] = {{2 * MIB, 2 * MIB}, {500, 500}};

static void test_loans_worker_killed_holding_a_loan(void **state)
{
    (void)state;
    g_steps = k_bystander;
    g_nsteps = 2;
    struct bystander b;
    assert_int_equal(pipe(b.up), 0);
    assert_int_equal(pipe(b.down), 0);
    int good = ripc_test_fork_dispatch(kid_bystander, &b, &M.m.run, M.m.s);
    char x;
    assert_int_equal(ripc_test_read_within(b.up[0], &x, 1, 30000), 0);
    /* A victim holding a record in the ring, then one holding a large
     * buffer and its marker. */
    static const uint64_t lens[] = {1000, 3 * MIB};
    for (size_t k = 0; k < 2; k++) {
        struct victim v = {.len = lens[k]};
        assert_int_equal(pipe(v.up), 0);
        int left0 = ripc_test_master_left(&M.m);
        int pid = ripc_test_fork_dispatch(kid_victim, &v, &M.m.run, M.m.s);
        assert_int_equal(ripc_test_read_within(v.up[0], &x, 1, 30000), 0);
        kill(pid, SIGKILL);
        assert_int_equal(ripc_test_wait(pid), 128 + SIGKILL);
        int reason = ripc_test_master_wait_left(&M.m, left0);
        assert_int_not_equal(reason, RIPC_LEFT_BYE);
        close(v.up[0]);
        close(v.up[1]);
    }
    assert_int_equal(atomic_load(&M.victim), 0);
    ripc_test_write_all(b.down[1], "g", 1);
    ripc_test_expect_worker(good, &M.fail, &M.got, 2);
    assert_int_equal(atomic_load(&M.victim), 0);
    assert_int_equal(ripc_server_dropped(M.m.s), 0); /* nothing of any type came */
    close(b.up[0]);
    close(b.up[1]);
    close(b.down[0]);
    close(b.down[1]);
}

/* ---- the errors, and waiting for room ---- */

struct errs {
    int up[2];   /* "the channel is full" */
    int down[2]; /* "the master's handler holds its dispatch" */
};

static const struct step k_errs[] = {{64, 64}, {300, 200}, {2 * MIB, 2 * MIB}};

static int kid_errors(void *arg)
{
    struct errs *e = arg;
    close(e->up[0]);
    close(e->down[1]);
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    void *p;
    int rc;
    if ((rc = ripc_client_commit(c, T_DATA, 0)) != -EINVAL)
        return ripc_test_kid_fail("commit without a loan: %d", rc);
    if ((rc = ripc_client_reserve(c, MAX_MSG + 1, &p, 0)) != -EMSGSIZE)
        return ripc_test_kid_fail("reserve over max_message: %d", rc);
    if ((rc = ripc_client_reserve(c, 64, NULL, 0)) != -EINVAL)
        return ripc_test_kid_fail("reserve with buf NULL: %d", rc);
    /* step 0, with every call refused while the loan is open */
    if ((rc = ripc_client_reserve(c, 64, &p, 1000)) < 0)
        return ripc_test_kid_fail("reserve: %s", ripc_strerror(rc));
    ripc_test_fill(p, 64, 0);
    ripc_msg m;
    if ((rc = ripc_client_send(c, T_DATA, "x", 1, 0)) != -EBUSY)
        return ripc_test_kid_fail("send during a loan: %d", rc);
    if ((rc = ripc_client_request(c, T_END, NULL, 0, &m, 1000)) != -EBUSY)
        return ripc_test_kid_fail("request during a loan: %d", rc);
    void *q;
    if ((rc = ripc_client_reserve(c, 8, &q, 0)) != -EBUSY)
        return ripc_test_kid_fail("second reserve: %d", rc);
    if ((rc = ripc_client_recv(c, &m, 0)) != -EAGAIN)
        return ripc_test_kid_fail("recv during a loan: %d", rc);
    if ((rc = ripc_client_commit(c, T_DATA, 65)) != -EINVAL)
        return ripc_test_kid_fail("commit beyond the reservation: %d", rc);
    if ((rc = ripc_client_commit(c, RIPC_TYPE_RESERVED, 64)) != -EINVAL)
        return ripc_test_kid_fail("commit with a reserved type: %d", rc);
    if ((rc = ripc_client_commit(c, T_DATA, 64)) != 0) /* the loan stayed open */
        return ripc_test_kid_fail("commit: %s", ripc_strerror(rc));
    /* Hold the master's dispatch, then fill the channel (big messages,
     * then empty ones for the last bytes). */
    if ((rc = ripc_client_send(c, T_BLOCK, NULL, 0, 1000)) < 0)
        return ripc_test_kid_fail("block: %s", ripc_strerror(rc));
    char x;
    if (ripc_test_read_all(e->down[0], &x, 1) < 0) /* the handler holds it */
        return ripc_test_kid_fail("sync");
    unsigned char fill[1024];
    memset(fill, 0, sizeof fill);
    /* (A timeout, not 0: in socket mode the writer thread may still take
     * a batch off the queue after a send that found it full.) */
    uint64_t n = 0;
    while ((rc = ripc_client_send(c, T_FILL, fill, sizeof fill, 50)) == 0)
        n++;
    if (rc != -ETIMEDOUT || n == 0)
        return ripc_test_kid_fail("filling the channel: %d after %llu", rc, (unsigned long long)n);
    while ((rc = ripc_client_send(c, T_FILL, NULL, 0, 50)) == 0)
        ;
    if (rc != -ETIMEDOUT)
        return ripc_test_kid_fail("filling the channel to the brim: %d", rc);
    if (g_transport == RIPC_TRANSPORT_SHM) {
        if ((rc = ripc_client_reserve(c, 300, &p, 0)) != -EAGAIN)
            return ripc_test_kid_fail("reserve in a full ring, timeout 0: %d", rc);
        uint64_t t0 = ripc_test_now_ms();
        if ((rc = ripc_client_reserve(c, 300, &p, 100)) != -ETIMEDOUT)
            return ripc_test_kid_fail("reserve in a full ring: %d", rc);
        if ((rc = ripc_client_reserve(c, 2 * MIB, &p, 100)) != -ETIMEDOUT)
            return ripc_test_kid_fail("large reserve in a full ring: %d", rc);
        if (ripc_test_now_ms() - t0 > 5000)
            return ripc_test_kid_fail("the timeouts took %llu ms",
                                      (unsigned long long)(ripc_test_now_ms() - t0));
        ripc_test_write_all(e->up[1], "f", 1);
        /* Waits for the master to read again. */
        if ((rc = ripc_client_reserve(c, 300, &p, 30000)) < 0)
            return ripc_test_kid_fail("reserve after the master read: %s", ripc_strerror(rc));
        ripc_test_fill(p, 200, 1);
        if ((rc = ripc_client_commit(c, T_DATA, 200)) < 0)
            return ripc_test_kid_fail("commit: %s", ripc_strerror(rc));
    } else {
        /* Socket mode: the wait is at commit, and a commit that times out
         * leaves the loan open. */
        if ((rc = ripc_client_reserve(c, 300, &p, 100)) < 0)
            return ripc_test_kid_fail("reserve: %s", ripc_strerror(rc));
        ripc_test_fill(p, 200, 1);
        if ((rc = ripc_client_commit(c, T_DATA, 200)) != -ETIMEDOUT)
            return ripc_test_kid_fail("commit to a full socket: %d", rc);
        ripc_test_write_all(e->up[1], "f", 1);
        if ((rc = ripc_client_send(c, T_DATA, "x", 1, 0)) != -EBUSY)
            return ripc_test_kid_fail("send after a commit timed out: %d (the loan must stay)", rc);
        int tries = 0;
        while ((rc = ripc_client_commit(c, T_DATA, 200)) == -ETIMEDOUT && ++tries < 300)
            ;
        if (rc < 0)
            return ripc_test_kid_fail("commit after the master read: %s", ripc_strerror(rc));
    }
    /* step 2: a large one */
    if ((rc = ripc_client_reserve(c, 2 * MIB, &p, 30000)) < 0)
        return ripc_test_kid_fail("reserve: %s", ripc_strerror(rc));
    ripc_test_fill(p, 2 * MIB, 2);
    if ((rc = ripc_client_commit(c, T_DATA, 2 * MIB)) < 0)
        return ripc_test_kid_fail("commit: %s", ripc_strerror(rc));
    rc = kid_end(c, 3);
    ripc_client_close(c);
    return rc;
}

static void test_loans_errors_and_waits(void **state)
{
    (void)state;
    g_steps = k_errs;
    g_nsteps = 3;
    struct errs e;
    assert_int_equal(pipe(e.up), 0);
    assert_int_equal(pipe(e.down), 0);
    ripc_test_master_hold(&M.m, 1);
    int pid = ripc_test_fork_dispatch(kid_errors, &e, &M.m.run, M.m.s);
    ripc_test_master_wait_held(&M.m);
    ripc_test_write_all(e.down[1], "b", 1);
    char x;
    if (ripc_test_read_within(e.up[0], &x, 1, 60000) < 0) {
        ripc_test_expect_worker(pid, &M.fail, &M.got, 0); /* the worker failed first: say why */
        fail_msg("the worker never filled the channel");
    }
    ripc_test_master_hold(&M.m, 0);
    ripc_test_expect_worker(pid, &M.fail, &M.got, 3);
    close(e.up[0]);
    close(e.up[1]);
    close(e.down[0]);
    close(e.down[1]);
}

int main(int argc, char **argv)
{
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loans_every_size_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loans_abandoned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loans_worker_killed_holding_a_loan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loans_errors_and_waits, setup, teardown),
    };
    return RIPC_TEST_RUN_GROUP("loans", g_transport_name, tests);
}

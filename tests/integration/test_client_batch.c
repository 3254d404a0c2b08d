/*
 * Batches of one-way messages from a worker (ripc_client_send_batch)
 * across real processes, in both transports: many batches of mixed sizes
 * around max_inline and into the large path, content and order checked by
 * the master's handler; a batch larger than the ring, sent while the master
 * does not read (a timeout that sends part of it, then the rest); the
 * arguments refused before anything is sent; a master that goes away
 * under a batch waiting for room (-EPIPE).
 *
 * Usage: test_client_batch [shm|socket] [test-name-filter]
 *
 * The test process is the master, running ripc_server_run() in a thread;
 * workers are fork()ed children that print what went wrong and _exit()
 * non-zero (they never call cmocka). Sequencing uses pipes and the protocol.
 */
#include <errno.h>
#include <limits.h>
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

enum { T_DATA = 1, T_END, T_BLOCK };

#define MIB        ((uint64_t)1 << 20)
#define INLINE_MAX 4096 /* max_inline: the boundary the sizes sit around */
#define MAX_MSG    (8 * MIB)
#define RING_BYTES (64 * 1024)

static int g_transport;
static const char *g_transport_name;

/* The lengths of the messages the master expects, in order (set before
 * the fork); message i is filled for i (ripc_test_fill). */
static uint64_t *g_lens;
static uint64_t g_n;

static struct {
    ripc_test_master m;   /* server, dispatch, joins and leaves, T_BLOCK's hold */
    uint64_t next;        /* T_DATA: the message expected next */
    _Atomic uint64_t got; /* T_DATA messages that checked out */
    ripc_test_failure fail;
} M;

static void on_data(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)from;
    (void)arg;
    uint64_t i = M.next++;
    if (i >= g_n)
        ripc_test_fail_once(&M.fail, "message %llu: more messages than sent",
                            (unsigned long long)i);
    else if (m->len != g_lens[i] || !ripc_test_check(m->data, (size_t)m->len, i))
        ripc_test_fail_once(
            &M.fail, "message %llu: %llu bytes, wanted %llu, or wrong content / order",
            (unsigned long long)i, (unsigned long long)m->len, (unsigned long long)g_lens[i]);
    else
        atomic_fetch_add(&M.got, 1);
}

static ripc_options opts(void)
{
    ripc_options o = {0};
    o.transport = g_transport;
    o.max_inline = INLINE_MAX;
    o.max_message = MAX_MSG;
    o.ring_bytes = RING_BYTES;
    return o;
}

static int open_master(int wait)
{
    memset(&M, 0, sizeof M);
    ripc_options o = opts();
    o.wait = wait;
    if (ripc_test_master_open(&M.m, "batch", &o) < 0)
        return -1;
    ripc_server_handle(M.m.s, T_DATA, on_data, NULL);
    ripc_server_handle(M.m.s, T_END, ripc_test_on_count_request, &M.got);
    ripc_server_handle(M.m.s, T_BLOCK, ripc_test_on_hold, &M.m);
    return 0; /* dispatch starts after the first fork (ripc_test_fork_dispatch) */
}

static int setup(void **state)
{
    (void)state;
    return open_master(RIPC_WAIT_ADAPTIVE);
}

/* A master that sleeps whenever its rings are empty (no spinning first). */
static int setup_block(void **state)
{
    (void)state;
    return open_master(RIPC_WAIT_BLOCK);
}

static int teardown(void **state)
{
    (void)state;
    ripc_test_master_hold(&M.m, 0);
    ripc_test_master_close(&M.m);
    free(g_lens);
    g_lens = NULL;
    return 0;
}

/* The messages first..first+n-1 of g_lens back to back in one buffer, as
 * a batch carries them. NULL (after saying why) when out of memory. */
static unsigned char *kid_pack(uint64_t first, uint64_t n)
{
    size_t total = 0;
    for (uint64_t i = first; i < first + n; i++)
        total += (size_t)g_lens[i];
    unsigned char *buf = malloc(total ? total : 1);
    if (!buf) {
        ripc_test_kid_fail("malloc %zu", total);
        return NULL;
    }
    size_t off = 0;
    for (uint64_t i = first; i < first + n; i++) {
        ripc_test_fill(buf + off, (size_t)g_lens[i], i);
        off += (size_t)g_lens[i];
    }
    return buf;
}

/* Send messages first..first+n-1 as one batch; 0, or 1 after saying why. */
static int kid_batch(ripc_client *c, uint64_t first, uint64_t n, int timeout_ms)
{
    unsigned char *buf = kid_pack(first, n);
    if (!buf)
        return 1;
    int rc = ripc_client_send_batch(c, T_DATA, buf, g_lens + first, (size_t)n, timeout_ms);
    free(buf);
    if (rc != (int)n)
        return ripc_test_kid_fail("batch of %llu from %llu: %d (%s)", (unsigned long long)n,
                                  (unsigned long long)first, rc,
                                  rc < 0 ? ripc_strerror(rc) : "fewer sent");
    return 0;
}

static int kid_open(ripc_client **c)
{
    ripc_options o = opts();
    return ripc_test_kid_open(c, M.m.url, &o, g_transport_name);
}

/* ---- many batches of mixed sizes, in order ---- */

static const uint64_t k_sizes[] = {
    0, 1, 8, 63, 64, INLINE_MAX - 1, INLINE_MAX, INLINE_MAX + 1, 3000, 24, 64 * 1024, 2 * MIB + 3};
#define N_SIZES   (sizeof k_sizes / sizeof k_sizes[0])
#define N_BATCHES 300

/* Batch b's length: 1 to 100 messages, with a few batches of one. */
static uint64_t batch_len(uint64_t b, uint64_t *seed)
{
    return b % 7 == 0 ? 1 : 1 + ripc_test_rand(seed) % 100;
}

static int kid_mixed(void *arg)
{
    (void)arg;
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    uint64_t seed = 42, first = 0;
    for (uint64_t b = 0; b < N_BATCHES; b++) {
        uint64_t n = batch_len(b, &seed);
        if (kid_batch(c, first, n, 30000))
            return 1;
        first += n;
    }
    if (first != g_n)
        return ripc_test_kid_fail("sent %llu, planned %llu", (unsigned long long)first,
                                  (unsigned long long)g_n);
    int rc = ripc_test_kid_count(c, T_END, g_n);
    ripc_client_close(c);
    return rc;
}

static void test_client_batch_mixed_sizes_in_order(void **state)
{
    (void)state;
    /* The same draws as the worker's, for the lengths: mostly small
     * messages (a stream), the boundaries of max_inline, now and then a
     * large one. */
    uint64_t seed = 42, total = 0;
    for (uint64_t b = 0; b < N_BATCHES; b++)
        total += batch_len(b, &seed);
    g_lens = calloc((size_t)total, sizeof *g_lens);
    assert_non_null(g_lens);
    uint64_t s2 = 7;
    for (uint64_t i = 0; i < total; i++) {
        uint64_t r = ripc_test_rand(&s2) % 1024;
        g_lens[i] = r < 8 * (N_SIZES - 1) ? k_sizes[r % (N_SIZES - 1)]
                    : r == 1023           ? k_sizes[N_SIZES - 1]
                                          : r % 256;
    }
    g_n = total;
    int pid = ripc_test_fork_dispatch(kid_mixed, NULL, &M.m.run, M.m.s);
    ripc_test_expect_worker(pid, &M.fail, &M.got, g_n);
}

/* ---- a batch larger than the ring while the master does not read ---- */

struct sync2 {
    int up[2];   /* worker -> test */
    int down[2]; /* test -> worker */
};

static void sync_open(struct sync2 *s)
{
    assert_int_equal(pipe(s->up), 0);
    assert_int_equal(pipe(s->down), 0);
}

static void sync_close(struct sync2 *s)
{
    close(s->up[0]);
    close(s->up[1]);
    close(s->down[0]);
    close(s->down[1]);
}

#define FULL_N   1000 /* 1000 x 2000 bytes: many rings' worth (and socket buffers') */
#define FULL_LEN 2000

/* FULL_N messages of FULL_LEN bytes planned, the master's dispatch held by
 * T_BLOCK (the worker sends it, then waits for "b" on s->down), and the
 * worker kid forked: its pid. */
static int start_held(int (*kid)(void *), struct sync2 *s)
{
    g_n = FULL_N;
    g_lens = calloc(FULL_N, sizeof *g_lens);
    assert_non_null(g_lens);
    for (uint64_t i = 0; i < FULL_N; i++)
        g_lens[i] = FULL_LEN;
    sync_open(s);
    ripc_test_master_hold(&M.m, 1);
    int pid = ripc_test_fork_dispatch(kid, s, &M.m.run, M.m.s);
    ripc_test_master_wait_held(&M.m);
    ripc_test_write_all(s->down[1], "b", 1);
    return pid;
}

/* The worker's side of start_held: connect, hold the master's dispatch
 * with T_BLOCK, wait until it is held, and pack the FULL_N messages. 0, or
 * 1 after saying why. */
static int kid_held(struct sync2 *s, ripc_client **c, unsigned char **buf)
{
    close(s->up[0]);
    close(s->down[1]);
    if (kid_open(c))
        return 1;
    int rc;
    if ((rc = ripc_client_send(*c, T_BLOCK, NULL, 0, 1000)) < 0)
        return ripc_test_kid_fail("block: %s", ripc_strerror(rc));
    char x;
    if (ripc_test_read_all(s->down[0], &x, 1) < 0) /* the handler holds the dispatch */
        return ripc_test_kid_fail("sync");
    return (*buf = kid_pack(0, FULL_N)) == NULL;
}

static int kid_full(void *arg)
{
    struct sync2 *s = arg;
    ripc_client *c;
    unsigned char *buf;
    if (kid_held(s, &c, &buf))
        return 1;
    int rc;
    /* Part of it goes, then the time runs out: how many, not an error. */
    uint64_t t0 = ripc_test_now_ms();
    int sent = ripc_client_send_batch(c, T_DATA, buf, g_lens, FULL_N, 200);
    if (sent <= 0 || sent >= FULL_N)
        return ripc_test_kid_fail("a batch over a full channel: %d (%s)", sent,
                                  sent < 0 ? ripc_strerror(sent) : "not part of it");
    if (ripc_test_now_ms() - t0 > 10000)
        return ripc_test_kid_fail("the timeout took %llu ms",
                                  (unsigned long long)(ripc_test_now_ms() - t0));
    /* Nothing more fits: the rest, never waiting, then waiting briefly.
     * (Socket mode: the writer thread may still take some off the queue
     * after a send that found it full, so a few may go.) */
    size_t off = 0;
    for (int i = 0; i < sent; i++)
        off += (size_t)g_lens[i];
    uint64_t left = FULL_N - (uint64_t)sent;
    for (int round = 0; round < 100; round++) {
        rc = ripc_client_send_batch(c, T_DATA, buf + off, g_lens + sent, (size_t)left, 50);
        if (rc < 0)
            break;
        if ((uint64_t)rc >= left)
            return ripc_test_kid_fail("the whole batch went into a full channel");
        for (int i = 0; i < rc; i++)
            off += (size_t)g_lens[sent + i];
        sent += rc;
        left -= (uint64_t)rc;
    }
    if (rc != -ETIMEDOUT)
        return ripc_test_kid_fail("the rest into a full channel: %d, wanted -ETIMEDOUT", rc);
    if (g_transport == RIPC_TRANSPORT_SHM &&
        (rc = ripc_client_send_batch(c, T_DATA, buf + off, g_lens + sent, (size_t)left, 0)) !=
            -EAGAIN)
        return ripc_test_kid_fail("the rest into a full ring, timeout 0: %d", rc);
    ripc_test_write_all(s->up[1], "f", 1);
    /* The master reads again: the rest goes, waiting for room as it must. */
    rc = ripc_client_send_batch(c, T_DATA, buf + off, g_lens + sent, (size_t)left, 60000);
    free(buf);
    if (rc != (int)left)
        return ripc_test_kid_fail("the rest after the master read: %d of %llu", rc,
                                  (unsigned long long)left);
    rc = ripc_test_kid_count(c, T_END, FULL_N);
    ripc_client_close(c);
    return rc;
}

static void test_client_batch_larger_than_the_ring(void **state)
{
    (void)state;
    struct sync2 s;
    int pid = start_held(kid_full, &s);
    char x;
    if (ripc_test_read_within(s.up[0], &x, 1, 60000) < 0) {
        ripc_test_master_hold(&M.m, 0);
        ripc_test_expect_worker(pid, &M.fail, &M.got, 0); /* the worker failed first: say why */
        fail_msg("the worker never filled the channel");
    }
    ripc_test_master_hold(&M.m, 0);
    ripc_test_expect_worker(pid, &M.fail, &M.got, FULL_N);
    sync_close(&s);
}

/* ---- a master asleep is woken, by the batch's end or before a wait ---- */

#define WAKE_ROUNDS 20
#define WAKE_SMALL  3   /* a batch that fits the ring */
#define WAKE_BIG    200 /* 200 x 2000 bytes: one that does not */

static uint64_t wake_round_len(int r)
{
    return r % 4 == 3 ? WAKE_BIG : WAKE_SMALL;
}

static int kid_wake(void *arg)
{
    struct sync2 *s = arg;
    close(s->up[0]);
    close(s->down[1]);
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    uint64_t first = 0;
    for (int r = 0; r < WAKE_ROUNDS; r++) {
        /* The master has taken everything and sleeps (or is about to): the
         * batch alone must wake it, no later send does. */
        char x;
        if (ripc_test_read_all(s->down[0], &x, 1) < 0)
            return ripc_test_kid_fail("sync");
        uint64_t n = wake_round_len(r);
        if (kid_batch(c, first, n, 30000))
            return 1;
        first += n;
    }
    ripc_client_close(c);
    return 0;
}

static void test_client_batch_wakes_a_sleeping_master(void **state)
{
    (void)state;
    uint64_t total = 0;
    for (int r = 0; r < WAKE_ROUNDS; r++)
        total += wake_round_len(r);
    g_n = total;
    g_lens = calloc((size_t)total, sizeof *g_lens);
    assert_non_null(g_lens);
    for (uint64_t i = 0; i < total; i++)
        g_lens[i] = 2000;
    struct sync2 s;
    sync_open(&s);
    int pid = ripc_test_fork_dispatch(kid_wake, &s, &M.m.run, M.m.s);
    uint64_t want = 0;
    for (int r = 0; r < WAKE_ROUNDS; r++) {
        /* Idle, the worker is parked: the master sleeps until its doorbell
         * rings (before that it looks again every few ms). Socket mode:
         * its peers park too, on their socket. */
        uint64_t t0 = ripc_test_now_ms();
        while (ripc_server_parked_count(M.m.s) == 0 && ripc_test_now_ms() - t0 < 20000)
            usleep(1000);
        assert_int_equal(ripc_server_parked_count(M.m.s), 1);
        ripc_test_write_all(s.down[1], "g", 1);
        want += wake_round_len(r);
        /* Taken within 20 s, or the master was never woken. */
        t0 = ripc_test_now_ms();
        while (atomic_load(&M.got) < want && ripc_test_now_ms() - t0 < 20000 &&
               !ripc_test_failed(&M.fail))
            usleep(1000);
        if (atomic_load(&M.got) != want) {
            kill(pid, SIGKILL);
            ripc_test_wait(pid);
            ripc_test_assert_no_failure(&M.fail);
            fail_msg("round %d: the master took %llu of %llu messages", r,
                     (unsigned long long)atomic_load(&M.got), (unsigned long long)want);
        }
    }
    ripc_test_expect_worker(pid, &M.fail, &M.got, g_n);
    sync_close(&s);
}

/* ---- arguments refused before anything is sent ---- */

static int kid_args(void *arg)
{
    (void)arg;
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    uint64_t lens[3] = {10, 20, 30};
    unsigned char buf[60];
    memset(buf, 0, sizeof buf);
    int rc;
#define EXPECT(call, want)                                                                         \
    if ((rc = (call)) != (want))                                                                   \
        return ripc_test_kid_fail("%s: %d, wanted %d", #call, rc, (want));
    EXPECT(ripc_client_send_batch(NULL, T_DATA, buf, lens, 3, 0), -EINVAL);
    EXPECT(ripc_client_send_batch(c, T_DATA, buf, NULL, 3, 0), -EINVAL);
    EXPECT(ripc_client_send_batch(c, T_DATA, NULL, lens, 3, 0), -EINVAL);
    EXPECT(ripc_client_send_batch(c, RIPC_TYPE_RESERVED, buf, lens, 3, 0), -EINVAL);
    EXPECT(ripc_client_send_batch(c, T_DATA, buf, lens, (size_t)INT_MAX + 1, 0), -EINVAL);
    uint64_t wrap[2] = {UINT64_MAX, 2};
    EXPECT(ripc_client_send_batch(c, T_DATA, buf, wrap, 2, 0), -EMSGSIZE);
    uint64_t big[3] = {10, MAX_MSG + 1, 30};
    EXPECT(ripc_client_send_batch(c, T_DATA, buf, big, 3, 0), -EMSGSIZE);
    EXPECT(ripc_client_send_batch(c, T_DATA, NULL, NULL, 0, 0), 0);
    uint64_t empty[2] = {0, 0};
    EXPECT(ripc_client_send_batch(c, T_DATA, NULL, empty, 2, 1000), 2); /* two empty ones */
    /* A loan open: -EBUSY, nothing sent. */
    void *p;
    EXPECT(ripc_client_reserve(c, 8, &p, 1000), 0);
    EXPECT(ripc_client_send_batch(c, T_DATA, buf, lens, 3, 0), -EBUSY);
    EXPECT(ripc_client_abandon(c), 0);
#undef EXPECT
    /* Only the two empty messages reached the master. */
    rc = ripc_test_kid_count(c, T_END, 2);
    ripc_client_close(c);
    return rc;
}

static void test_client_batch_bad_args(void **state)
{
    (void)state;
    g_n = 2;
    g_lens = calloc(2, sizeof *g_lens);
    assert_non_null(g_lens);
    int pid = ripc_test_fork_dispatch(kid_args, NULL, &M.m.run, M.m.s);
    ripc_test_expect_worker(pid, &M.fail, &M.got, 2);
}

/* ---- the master goes away under a batch that waits for room ---- */

static int kid_gone(void *arg)
{
    struct sync2 *s = arg;
    ripc_client *c;
    unsigned char *buf;
    if (kid_held(s, &c, &buf))
        return 1;
    int rc;
    ripc_test_write_all(s->up[1], "s", 1);
    /* No timeout: only the master's end can end it. */
    uint64_t t0 = ripc_test_now_ms();
    int sent = ripc_client_send_batch(c, T_DATA, buf, g_lens, FULL_N, -1);
    if (sent >= FULL_N)
        return ripc_test_kid_fail("the whole batch went to a master that did not read");
    if (sent >= 0) {
        size_t off = 0;
        for (int i = 0; i < sent; i++)
            off += (size_t)g_lens[i];
        rc = ripc_client_send_batch(c, T_DATA, buf + off, g_lens + sent, FULL_N - (size_t)sent, -1);
    } else {
        rc = sent;
    }
    free(buf);
    if (rc != -EPIPE)
        return ripc_test_kid_fail("a batch to a master that went away: %d (%s), wanted -EPIPE", rc,
                                  rc < 0 ? ripc_strerror(rc) : "sent");
    if (ripc_test_now_ms() - t0 > 30000)
        return ripc_test_kid_fail("it took %llu ms", (unsigned long long)(ripc_test_now_ms() - t0));
    const uint64_t one = 1;
    if ((rc = ripc_client_send_batch(c, T_DATA, "x", &one, 1, 1000)) != -EPIPE)
        return ripc_test_kid_fail("a batch after the master went away: %d", rc);
    ripc_client_close(c);
    return 0;
}

static void test_client_batch_master_gone(void **state)
{
    (void)state;
    struct sync2 s;
    int pid = start_held(kid_gone, &s);
    char x;
    assert_int_equal(ripc_test_read_within(s.up[0], &x, 1, 60000), 0);
    /* The worker is about to send, or waits for room already: end the
     * server under it, then let the handler go. */
    ripc_server_shutdown(M.m.s);
    ripc_test_master_hold(&M.m, 0);
    assert_int_equal(ripc_test_wait(pid), 0);
    ripc_test_assert_no_failure(&M.fail);
    sync_close(&s);
}

int main(int argc, char **argv)
{
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_batch_mixed_sizes_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_batch_larger_than_the_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_batch_wakes_a_sleeping_master, setup_block,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_client_batch_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_batch_master_gone, setup, teardown),
    };
    return RIPC_TEST_RUN_GROUP("client_batch", g_transport_name, tests);
}

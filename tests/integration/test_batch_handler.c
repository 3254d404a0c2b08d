/*
 * Batch handlers (ripc_server_handle_batch) across real processes, in both
 * transports: streams from several workers, one-way runs of a batch type
 * with a single-handler type, requests to the batch type and large
 * messages between them, every message checked for content and for its
 * place in its worker's stream; max_batch honoured and runs cut at another
 * type (a held master, so that the runs are there whole); switching a
 * type between single and batch handlers at run time, and removing it; a
 * worker killed in the middle of its stream.
 *
 * Usage: test_batch_handler [shm|socket] [test-name-filter]
 *
 * The test process is the master, running ripc_server_run() in a thread;
 * workers are fork()ed children that print what went wrong and _exit()
 * non-zero. Order means per worker: each message carries its worker's
 * index and its place in that worker's stream, whatever its type.
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

enum { T_DATA = 1, T_MARK, T_END, T_BLOCK, T_SWITCH };

#define INLINE_MAX  1024
#define RING_BYTES  (16 * 1024) /* small: workers often wait for room */
#define MAX_WORKERS 4
#define HDR         16 /* each payload: u64 worker, u64 seq, then filler */

static int g_transport;
static const char *g_transport_name;

static struct {
    ripc_test_master m;
    uint64_t next[MAX_WORKERS]; /* the seq expected next, per worker */
    _Atomic uint64_t got[MAX_WORKERS];
    _Atomic uint64_t got_all;
    size_t max_batch;            /* what the batch handler was registered with */
    _Atomic uint64_t batches;    /* calls of the batch handler */
    _Atomic uint64_t max_n;      /* its largest n */
    _Atomic uint64_t singles;    /* T_DATA messages that reached the single handler */
    _Atomic uint64_t kill_after; /* worker 0's messages after which it is killed */
    ripc_test_failure fail;
} M;

/* ---- the stream a worker sends ---- */

/* Message seq of a worker: its type (a T_MARK now and then, a request of
 * T_DATA now and then) and its length (mostly small, now and then past
 * max_inline, so large in shared memory). */
static int is_mark(uint64_t seq)
{
    return seq % 29 == 5;
}

static int is_request(uint64_t seq)
{
    return seq % 101 == 50 && !is_mark(seq);
}

static uint64_t len_of(uint64_t w, uint64_t seq)
{
    if (seq % 397 == 7)
        return INLINE_MAX + 100 + (w * 13 + seq) % 5000;
    return HDR + (w * 7 + seq * 31) % 97;
}

static uint64_t fill_seed(uint64_t w, uint64_t seq)
{
    return (w << 40) ^ seq;
}

static void payload(unsigned char *buf, uint64_t w, uint64_t seq, uint64_t len)
{
    memcpy(buf, &w, 8);
    memcpy(buf + 8, &seq, 8);
    ripc_test_fill(buf + HDR, (size_t)(len - HDR), fill_seed(w, seq));
}

/* Check m as the next message of its worker (a request is answered with
 * its seq): 1, or 0 after recording why. */
static int check_next(ripc_peer *from, const ripc_msg *m, uint16_t want_type)
{
    uint64_t w, seq;
    if (m->len < HDR || m->type != want_type) {
        ripc_test_fail_once(&M.fail, "a message of type %u and %llu bytes", (unsigned)m->type,
                            (unsigned long long)m->len);
        return 0;
    }
    memcpy(&w, m->data, 8);
    memcpy(&seq, (const unsigned char *)m->data + 8, 8);
    if (w >= MAX_WORKERS || seq != M.next[w] || m->len != len_of(w, seq) ||
        !ripc_test_check((const unsigned char *)m->data + HDR, (size_t)(m->len - HDR),
                         fill_seed(w, seq))) {
        ripc_test_fail_once(&M.fail, "worker %llu: seq %llu (%llu bytes), wanted seq %llu",
                            (unsigned long long)w, (unsigned long long)seq,
                            (unsigned long long)m->len,
                            (unsigned long long)(w < MAX_WORKERS ? M.next[w] : 0));
        return 0;
    }
    if (is_mark(seq) != (want_type == T_MARK) || is_request(seq) != (m->kind == RIPC_REQUEST)) {
        ripc_test_fail_once(&M.fail, "worker %llu: seq %llu came as type %u kind %u",
                            (unsigned long long)w, (unsigned long long)seq, (unsigned)m->type,
                            (unsigned)m->kind);
        return 0;
    }
    M.next[w]++;
    atomic_fetch_add(&M.got[w], 1);
    atomic_fetch_add(&M.got_all, 1);
    if (m->peer_id != ripc_peer_id(from)) {
        ripc_test_fail_once(&M.fail, "peer_id %u from worker %u", (unsigned)m->peer_id,
                            (unsigned)ripc_peer_id(from));
        return 0;
    }
    if (m->kind == RIPC_REQUEST)
        ripc_reply(from, m, &seq, sizeof seq);
    return 1;
}

/* ---- the master's handlers ---- */

static void on_batch(ripc_peer *from, const ripc_msg *msgs, size_t n, void *arg)
{
    (void)arg;
    atomic_fetch_add(&M.batches, 1);
    if (n > atomic_load(&M.max_n))
        atomic_store(&M.max_n, n);
    size_t max = M.max_batch ? M.max_batch : 256;
    if (n == 0 || n > max) {
        ripc_test_fail_once(&M.fail, "a batch of %zu (max_batch %zu)", n, M.max_batch);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        /* A request, and a large message in shared memory, come alone. */
        if (n > 1 && (msgs[i].kind != RIPC_ONEWAY ||
                      (g_transport != RIPC_TRANSPORT_SOCKET && msgs[i].len > INLINE_MAX))) {
            ripc_test_fail_once(&M.fail, "a batch of %zu with kind %u, %llu bytes", n,
                                (unsigned)msgs[i].kind, (unsigned long long)msgs[i].len);
            return;
        }
        if (!check_next(from, &msgs[i], T_DATA))
            return;
    }
    /* Every view is still what its worker sent once the run is whole: the
     * room of the first ones was not handed back while the call ran. */
    for (size_t i = 0; i < n; i++) {
        uint64_t w, seq;
        memcpy(&w, msgs[i].data, 8);
        memcpy(&seq, (const unsigned char *)msgs[i].data + 8, 8);
        if (w >= MAX_WORKERS || seq != M.next[w] - n + i ||
            !ripc_test_check((const unsigned char *)msgs[i].data + HDR, (size_t)(msgs[i].len - HDR),
                             fill_seed(w, seq))) {
            ripc_test_fail_once(&M.fail, "message %zu of a batch of %zu changed under it", i, n);
            return;
        }
    }
}

static void on_data_single(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    if (check_next(from, m, T_DATA))
        atomic_fetch_add(&M.singles, 1);
}

static void on_mark(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    check_next(from, m, T_MARK);
}

/* T_END, a request carrying the worker's index: its count. */
static void on_end(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    uint64_t w = 0, n = UINT64_MAX;
    if (m->len == sizeof w)
        memcpy(&w, m->data, sizeof w);
    if (w < MAX_WORKERS)
        n = atomic_load(&M.got[w]);
    ripc_reply(from, m, &n, sizeof n);
}

/* T_SWITCH, a request: the next T_DATA messages go to the single handler
 * (payload "s"), to the batch handler ("b"), or to none ("0"). */
static void on_switch(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    int rc = -EINVAL;
    char how = m->len ? *(const char *)m->data : '?';
    if (how == 's')
        rc = ripc_server_handle(M.m.s, T_DATA, on_data_single, NULL);
    else if (how == 'b')
        rc = ripc_server_handle_batch(M.m.s, T_DATA, on_batch, M.max_batch, NULL);
    else if (how == '0')
        rc = ripc_server_handle_batch(M.m.s, T_DATA, NULL, 0, NULL);
    ripc_reply(from, m, &rc, sizeof rc);
}

static ripc_options opts(void)
{
    ripc_options o = {0};
    o.transport = g_transport;
    o.max_inline = INLINE_MAX;
    o.ring_bytes = RING_BYTES;
    return o;
}

static int open_master(size_t max_batch, size_t ring_bytes)
{
    memset(&M, 0, sizeof M);
    M.max_batch = max_batch;
    ripc_options o = opts();
    o.ring_bytes = ring_bytes;
    if (ripc_test_master_open(&M.m, "bh", &o) < 0)
        return -1;
    ripc_server_handle_batch(M.m.s, T_DATA, on_batch, max_batch, NULL);
    ripc_server_handle(M.m.s, T_MARK, on_mark, NULL);
    ripc_server_handle(M.m.s, T_END, on_end, NULL);
    ripc_server_handle(M.m.s, T_BLOCK, ripc_test_on_hold, &M.m);
    ripc_server_handle(M.m.s, T_SWITCH, on_switch, NULL);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return open_master(50, RING_BYTES);
}

/* A ring that holds a whole held stream (test_batch_handler_max_batch). */
static int setup_big(void **state)
{
    (void)state;
    return open_master(7, 256 * 1024);
}

static int teardown(void **state)
{
    (void)state;
    ripc_test_master_hold(&M.m, 0);
    ripc_test_master_close(&M.m);
    return 0;
}

/* ---- the worker's side ---- */

/* A held master's worker sends this many (up to its first request) before
 * it says so. */
#define HELD_AHEAD 50

struct kid {
    uint64_t w;     /* its index */
    uint64_t first; /* its first seq (M.next[w] must start there) */
    uint64_t n;     /* how many (UINT64_MAX: until killed) */
    int hold_first; /* send T_BLOCK first, and say "s" on up after HELD_AHEAD */
    int up[2];
};

static int kid_open(ripc_client **c)
{
    ripc_options o = opts();
    return ripc_test_kid_open(c, M.m.url, &o, g_transport_name);
}

/* Messages first..end-1 of worker w, one-way: runs of T_DATA as batches
 * (or one by one, every other run), T_MARKs alone, requests waited for. 0,
 * or 1 after saying why. */
static int kid_send(ripc_client *c, uint64_t w, uint64_t first, uint64_t end)
{
    static unsigned char buf[64 * 1024 + 8 * 1024];
    uint64_t lens[64], seed = w + 1;
    size_t k = 0, off = 0;
    int rc, one_by_one = 0;
    for (uint64_t seq = first;; seq++) {
        int boundary = seq == end || is_mark(seq) || is_request(seq) || k == 64 ||
                       off + 8192 > sizeof buf || ripc_test_rand(&seed) % 16 == 0;
        if (boundary && k) {
            if (one_by_one) {
                size_t o2 = 0;
                for (size_t i = 0; i < k; i++) {
                    if ((rc = ripc_client_send(c, T_DATA, buf + o2, lens[i], 30000)) < 0)
                        return ripc_test_kid_fail("send: %s", ripc_strerror(rc));
                    o2 += (size_t)lens[i];
                }
            } else if ((rc = ripc_client_send_batch(c, T_DATA, buf, lens, k, 30000)) != (int)k) {
                return ripc_test_kid_fail("send_batch of %zu: %d", k, rc);
            }
            one_by_one = !one_by_one;
            k = 0;
            off = 0;
        }
        if (seq == end)
            return 0;
        uint64_t len = len_of(w, seq);
        unsigned char one[8 * 1024];
        if (is_mark(seq) || is_request(seq)) {
            payload(one, w, seq, len);
            if (is_mark(seq)) {
                rc = ripc_client_send(c, T_MARK, one, len, 30000);
            } else {
                ripc_msg r;
                rc = ripc_client_request(c, T_DATA, one, len, &r, 30000);
                uint64_t back = UINT64_MAX;
                if (rc == 0 && r.len == sizeof back)
                    memcpy(&back, r.data, sizeof back);
                if (rc == 0 && back != seq)
                    return ripc_test_kid_fail("request %llu answered with %llu",
                                              (unsigned long long)seq, (unsigned long long)back);
            }
            if (rc < 0)
                return ripc_test_kid_fail("seq %llu: %s", (unsigned long long)seq,
                                          ripc_strerror(rc));
            continue;
        }
        payload(buf + off, w, seq, len);
        lens[k++] = len;
        off += (size_t)len;
    }
}

/* The master's count of worker w's messages must be want: 0, or 1. */
static int kid_end(ripc_client *c, uint64_t w, uint64_t want)
{
    ripc_msg r;
    int rc = ripc_client_request(c, T_END, &w, sizeof w, &r, 30000);
    if (rc < 0)
        return ripc_test_kid_fail("end: %s", ripc_strerror(rc));
    uint64_t got = UINT64_MAX;
    if (r.len == sizeof got)
        memcpy(&got, r.data, sizeof got);
    if (got != want)
        return ripc_test_kid_fail("the master checked %llu, wanted %llu", (unsigned long long)got,
                                  (unsigned long long)want);
    return 0;
}

static int kid_stream(void *arg)
{
    struct kid *k = arg;
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    int rc;
    if (k->hold_first && (rc = ripc_client_send(c, T_BLOCK, NULL, 0, 1000)) < 0)
        return ripc_test_kid_fail("block: %s", ripc_strerror(rc));
    if (k->n == UINT64_MAX) {
        for (uint64_t first = k->first;; first += 1000)
            if (kid_send(c, k->w, first, first + 1000))
                return 1;
    }
    uint64_t ahead = k->hold_first ? HELD_AHEAD : 0;
    if (kid_send(c, k->w, k->first, k->first + ahead))
        return 1;
    if (k->hold_first)
        ripc_test_write_all(k->up[1], "s", 1);
    if (kid_send(c, k->w, k->first + ahead, k->first + k->n))
        return 1;
    rc = kid_end(c, k->w, k->first + k->n);
    ripc_client_close(c);
    return rc;
}

/* Wait for the worker forked with ripc_test_fork_dispatch: it exited with
 * 0, and the master recorded no failure. */
static void expect_kid(int pid)
{
    int st = ripc_test_wait(pid);
    ripc_test_assert_no_failure(&M.fail);
    assert_int_equal(st, 0);
}

/* ---- several workers, mixed types, in order ---- */

#define STREAM_N 6000

static void test_batch_handler_several_workers_in_order(void **state)
{
    (void)state;
    static struct kid kids[MAX_WORKERS];
    int pids[MAX_WORKERS];
    /* All forked before dispatch starts: a fork while a library thread
     * holds a lock can leave the child's copy of it locked. */
    for (int w = 0; w < MAX_WORKERS; w++) {
        kids[w] = (struct kid){.w = (uint64_t)w, .n = STREAM_N};
        pids[w] = ripc_test_fork(kid_stream, &kids[w]);
        assert_true(pids[w] > 0);
    }
    assert_int_equal(ripc_test_run_start(&M.m.run, M.m.s, 1), 0);
    for (int w = 0; w < MAX_WORKERS; w++)
        expect_kid(pids[w]);
    assert_int_equal(atomic_load(&M.got_all), (uint64_t)MAX_WORKERS * STREAM_N);
    print_message("%llu messages in %llu batch calls, the largest %llu\n",
                  (unsigned long long)atomic_load(&M.got_all),
                  (unsigned long long)atomic_load(&M.batches),
                  (unsigned long long)atomic_load(&M.max_n));
}

/* ---- max_batch, runs cut at another type ---- */

#define HELD_N 600

static void test_batch_handler_max_batch(void **state)
{
    (void)state;
    static struct kid k = {.w = 0, .n = HELD_N, .hold_first = 1};
    assert_int_equal(pipe(k.up), 0);
    ripc_test_master_hold(&M.m, 1);
    int pid = ripc_test_fork_dispatch(kid_stream, &k, &M.m.run, M.m.s);
    ripc_test_master_wait_held(&M.m);
    /* The messages before the first request are queued before the master
     * takes any. */
    char x;
    int rc = ripc_test_read_within(k.up[0], &x, 1, 60000);
    ripc_test_master_hold(&M.m, 0);
    if (rc < 0) {
        expect_kid(pid); /* the worker failed first: say why */
        fail_msg("the worker never said it had sent");
    }
    expect_kid(pid);
    close(k.up[0]);
    close(k.up[1]);
    assert_int_equal(atomic_load(&M.got_all), HELD_N);
    /* The runs up to the first request (seq 50) were queued whole while the
     * master was held: each is cut at max_batch, at a T_MARK, or at a large
     * message (seq 7, in shared memory), and 28 in a row (seq 6..33) or 15
     * (35..49) make batches of 7. */
    assert_int_equal(atomic_load(&M.max_n), 7);
}

/* ---- switching handler kinds at run time ---- */

static int kid_switch(void *arg)
{
    (void)arg;
    ripc_client *c;
    if (kid_open(&c))
        return 1;
    const char *phases = "sbs0";
    uint64_t seq = 0;
    int rc;
    for (const char *p = phases; *p; p++) {
        ripc_msg r;
        if ((rc = ripc_client_request(c, T_SWITCH, p, 1, &r, 30000)) < 0)
            return ripc_test_kid_fail("switch %c: %s", *p, ripc_strerror(rc));
        if (*p == '0')
            break;
        if (kid_send(c, 0, seq, seq + 1000))
            return 1;
        seq += 1000;
    }
    /* No handler for T_DATA any more: a request of it is refused. */
    unsigned char one[HDR];
    payload(one, 0, seq, HDR);
    ripc_msg r;
    if ((rc = ripc_client_request(c, T_DATA, one, HDR, &r, 30000)) != -ENOENT)
        return ripc_test_kid_fail("a request without a handler: %d", rc);
    rc = kid_end(c, 0, seq);
    ripc_client_close(c);
    return rc;
}

static void test_batch_handler_switch_kinds(void **state)
{
    (void)state;
    int pid = ripc_test_fork_dispatch(kid_switch, NULL, &M.m.run, M.m.s);
    expect_kid(pid);
    assert_int_equal(atomic_load(&M.got_all), 3000);
    /* Phases 1 and 3 went to the single handler: their T_DATA messages. */
    uint64_t data = 0;
    for (uint64_t seq = 0; seq < 3000; seq++)
        data += (seq < 1000 || seq >= 2000) && !is_mark(seq);
    assert_int_equal(atomic_load(&M.singles), data);
}

/* ---- a worker killed in the middle of its stream ---- */

static void test_batch_handler_worker_killed(void **state)
{
    (void)state;
    static struct kid k0 = {.w = 0, .n = UINT64_MAX};
    int left0 = ripc_test_master_left(&M.m);
    int pid = ripc_test_fork_dispatch(kid_stream, &k0, &M.m.run, M.m.s);
    uint64_t t0 = ripc_test_now_ms();
    while (atomic_load(&M.got[0]) < 3000 && ripc_test_now_ms() - t0 < 60000 &&
           !ripc_test_failed(&M.fail))
        usleep(1000);
    kill(pid, SIGKILL);
    ripc_test_wait(pid);
    ripc_test_assert_no_failure(&M.fail);
    assert_true(atomic_load(&M.got[0]) >= 3000);
    assert_int_equal(ripc_test_master_wait_left(&M.m, left0), -EPIPE);
    /* The master serves the next worker as before. */
    static struct kid k1 = {.w = 1, .n = 2000};
    pid = ripc_test_fork_dispatch(kid_stream, &k1, &M.m.run, M.m.s);
    expect_kid(pid);
}

static void test_batch_handler_bad_args(void **state)
{
    (void)state;
    assert_int_equal(ripc_server_handle_batch(NULL, T_DATA, on_batch, 0, NULL), -EINVAL);
    assert_int_equal(ripc_server_handle_batch(M.m.s, RIPC_TYPE_RESERVED, on_batch, 0, NULL),
                     -EINVAL);
    assert_int_equal(ripc_server_handle_batch(M.m.s, 0, on_batch, 0, NULL), 0);
    assert_int_equal(ripc_server_handle_batch(M.m.s, 0, NULL, 0, NULL), 0);
}

int main(int argc, char **argv)
{
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_handler_several_workers_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_handler_max_batch, setup_big, teardown),
        cmocka_unit_test_setup_teardown(test_batch_handler_switch_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_handler_worker_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_handler_bad_args, setup, teardown),
    };
    return RIPC_TEST_RUN_GROUP("batch_handler", g_transport_name, tests);
}

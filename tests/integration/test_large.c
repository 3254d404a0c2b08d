/*
 * Large messages across real processes: payloads over max_inline take the
 * control channel (shm mode: a buffer per message, a marker in the ring;
 * socket mode: a frame like any other) and must arrive whole, in order with
 * the ring traffic, both ways, with max_message enforced on both sides.
 *
 * Usage: test_large [shm|shm_open|socket] [test-name-filter]
 *   shm_open: shm mode with memfd_create refused in this process and its
 *   children (a seccomp filter, as some profiles do): the buffers come from
 *   shm_open and each side maps the other's under its fault guard.
 *   The test "over_4gib" (more than 4 GiB in one message, each way; about
 *   12 GiB of memory at its peak) runs only when the filter names it; ctest
 *   registers it separately with the label "slow".
 *
 * The test process is the master, running ripc_server_run() in a thread;
 * workers are fork()ed children that print what went wrong and _exit()
 * non-zero (they never call cmocka). Sequencing uses pipes and the protocol.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "support/support.h"
#include "support/workers.h"

enum { T_DATA = 1, T_ECHO, T_END, T_BIG, T_PUSH };

#define MIB        ((uint64_t)1 << 20)
#define INLINE_MAX 4096 /* small max_inline: the large path carries most sizes */

static int g_transport = RIPC_TRANSPORT_SHM;
static const char *g_filter;

/* What the master saw (its handlers run on the run() thread). */
static struct {
    ripc_server *s;
    ripc_test_runner run; /* dispatch, started after the fork */
    char url[128];
    char dir[64];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t peer; /* the last worker that joined (under mu) */
    int joined;
    _Atomic int dropped;    /* workers that left other than by goodbye */
    uint64_t next_seq;      /* T_DATA / T_BIG: the sequence expected next */
    _Atomic uint64_t got;   /* T_DATA / T_BIG messages that checked out */
    ripc_test_failure fail; /* a message out of order or with wrong bytes */
} M;

/* Payloads: the first 8 bytes carry the sequence number, the rest is
 * ripc_test_fill()'s pattern for that sequence, so a receiver checks both
 * order and every byte. */
static void make_payload(unsigned char *buf, uint64_t len, uint64_t seq)
{
    memcpy(buf, &seq, 8);
    ripc_test_fill(buf + 8, (size_t)len - 8, seq);
}

static int check_payload(const void *data, uint64_t len, uint64_t seq)
{
    uint64_t got;
    if (len < 8)
        return 0;
    memcpy(&got, data, 8);
    return got == seq && ripc_test_check((const unsigned char *)data + 8, (size_t)len - 8, seq);
}

static void on_data(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)from;
    (void)arg;
    if (!check_payload(m->data, m->len, M.next_seq))
        ripc_test_fail_once(&M.fail, "message %llu (%llu bytes): wrong order or content",
                            (unsigned long long)M.next_seq, (unsigned long long)m->len);
    else
        atomic_fetch_add(&M.got, 1);
    M.next_seq++;
}

/* T_ECHO: reply with a payload of the length the request names, built for
 * the request's sequence + 1000; the request itself is checked first. */
static void on_echo(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    uint64_t seq = 0, want = 0;
    if (m->len < 16) {
        ripc_test_fail_once(&M.fail, "short echo request");
        return;
    }
    memcpy(&seq, m->data, 8);
    memcpy(&want, (const unsigned char *)m->data + 8, 8);
    /* the request: seq, wanted reply length, then the pattern */
    int ok = ripc_test_check((const unsigned char *)m->data + 16, (size_t)m->len - 16, seq);
    unsigned char *reply = want >= 8 ? malloc((size_t)want) : NULL;
    if (!ok || !reply) {
        ripc_test_fail_once(&M.fail, "echo request %llu damaged", (unsigned long long)seq);
        free(reply);
        return;
    }
    make_payload(reply, want, seq + 1000);
    int rc = ripc_reply(from, m, reply, want);
    if (rc < 0)
        ripc_test_fail_once(&M.fail, "ripc_reply(%llu bytes): %s", (unsigned long long)want,
                            ripc_strerror(rc));
    free(reply);
}

/* T_PUSH (a request): from the handler, i.e. the dispatch thread, send the
 * worker PUSH_N large one-way messages of the same size, then reply. The
 * worker is inside ripc_client_request meanwhile: it must keep them, whole
 * and in order, although the master refills its buffers as they come back. */
#define PUSH_N   6
#define PUSH_LEN (3 * MIB + 11)

static void on_push(ripc_peer *from, const ripc_msg *m, void *arg)
{
    (void)arg;
    unsigned char *buf = malloc(PUSH_LEN);
    if (!buf) {
        ripc_test_fail_once(&M.fail, "malloc");
        return;
    }
    for (uint64_t i = 0; i < PUSH_N; i++) {
        make_payload(buf, PUSH_LEN, 200 + i);
        int rc = ripc_server_send(M.s, ripc_peer_id(from), T_DATA, buf, PUSH_LEN, 30000);
        if (rc < 0)
            ripc_test_fail_once(&M.fail, "push %llu: %s", (unsigned long long)i, ripc_strerror(rc));
    }
    free(buf);
    ripc_reply(from, m, "ok", 2);
}

static void on_join(ripc_peer *p, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&M.mu);
    M.peer = ripc_peer_id(p);
    M.joined++;
    pthread_cond_broadcast(&M.cv);
    pthread_mutex_unlock(&M.mu);
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    (void)arg;
    if (reason != RIPC_LEFT_BYE) {
        fprintf(stderr, "master: worker %u dropped: %s\n", ripc_peer_id(p), ripc_strerror(reason));
        atomic_fetch_add(&M.dropped, 1);
    }
}

/* The id of the worker, once the master has seen it join. */
static uint32_t wait_joined(void)
{
    pthread_mutex_lock(&M.mu);
    while (M.joined == 0)
        pthread_cond_wait(&M.cv, &M.mu);
    uint32_t id = M.peer;
    pthread_mutex_unlock(&M.mu);
    return id;
}

static ripc_options opts(uint64_t max_message)
{
    ripc_options o = {0};
    o.transport = g_transport;
    o.max_inline = INLINE_MAX;
    o.max_message = max_message;
    return o;
}

static int start_master(uint64_t max_message)
{
    memset(&M, 0, sizeof M);
    pthread_mutex_init(&M.mu, NULL);
    pthread_cond_init(&M.cv, NULL);
    snprintf(M.dir, sizeof M.dir, "/tmp/ripc-large-XXXXXX");
    if (!mkdtemp(M.dir))
        return -1;
    snprintf(M.url, sizeof M.url, "unix:%s/s", M.dir);
    ripc_options o = opts(max_message);
    int rc = ripc_server_open(&M.s, M.url, &o);
    if (rc < 0) {
        fprintf(stderr, "ripc_server_open: %s\n", ripc_strerror(rc));
        return -1;
    }
    ripc_server_handle(M.s, T_DATA, on_data, NULL);
    ripc_server_handle(M.s, T_BIG, on_data, NULL);
    ripc_server_handle(M.s, T_ECHO, on_echo, NULL);
    ripc_server_handle(M.s, T_END, ripc_test_on_count_request, &M.got);
    ripc_server_handle(M.s, T_PUSH, on_push, NULL);
    ripc_server_on_peer(M.s, on_join, on_left, NULL);
    return 0; /* dispatch starts after the fork (ripc_test_fork_dispatch) */
}

static int setup(void **state)
{
    (void)state;
    return start_master(64 * MIB);
}

static void master_close(void)
{
    if (!M.s)
        return;
    ripc_server_stop(M.s);
    ripc_test_run_join(&M.run);
    ripc_server_close(M.s);
    M.s = NULL;
}

static int teardown(void **state)
{
    (void)state;
    master_close();
    rmdir(M.dir);
    return 0;
}

/* ---- worker side ---- */

static int kid_open(ripc_client **c, uint64_t max_message)
{
    ripc_options o = opts(max_message);
    const char *want = g_transport == RIPC_TRANSPORT_SOCKET ? "socket" : "shm";
    return ripc_test_kid_open(c, M.url, &o, want);
}

/* Ask the master how many messages checked out on its side. */
static int kid_end(ripc_client *c, uint64_t want)
{
    return ripc_test_kid_count(c, T_END, want);
}

/* ---- 1: sizes around every boundary, interleaved, in order ---- */

static const uint64_t k_sizes[] = {
    8,       100, INLINE_MAX - 16, INLINE_MAX + 1, 65536, 600000, 3 * MIB + 5, 16 * MIB + 1, 24,
    1 * MIB, 16,  9 * MIB + 3,
};
#define N_SIZES    (sizeof k_sizes / sizeof k_sizes[0])
#define MIX_ROUNDS 3

static int kid_mix(void *arg)
{
    (void)arg;
    ripc_client *c;
    if (kid_open(&c, 64 * MIB))
        return 1;
    unsigned char *buf = malloc(17 * MIB);
    if (!buf)
        return ripc_test_kid_fail("malloc");
    uint64_t seq = 0;
    for (int r = 0; r < MIX_ROUNDS; r++)
        for (size_t i = 0; i < N_SIZES; i++, seq++) {
            make_payload(buf, k_sizes[i], seq);
            int rc = ripc_client_send(c, T_DATA, buf, k_sizes[i], 30000);
            if (rc < 0)
                return ripc_test_kid_fail("send %llu bytes: %s", (unsigned long long)k_sizes[i],
                                          ripc_strerror(rc));
        }
    /* Requests with every mix of small and large request and reply. */
    static const uint64_t rq[][2] = {{64, 5 * MIB}, {5 * MIB, 64}, {7 * MIB, 9 * MIB}, {32, 32}};
    for (size_t i = 0; i < sizeof rq / sizeof rq[0]; i++) {
        uint64_t rs = 500 + i;
        memcpy(buf, &rs, 8);
        memcpy(buf + 8, &rq[i][1], 8);
        ripc_test_fill(buf + 16, (size_t)rq[i][0] - 16, rs);
        ripc_msg rep;
        int rc = ripc_client_request(c, T_ECHO, buf, rq[i][0], &rep, 30000);
        if (rc < 0)
            return ripc_test_kid_fail("request %zu: %s", i, ripc_strerror(rc));
        if (rep.len != rq[i][1] || !check_payload(rep.data, rep.len, rs + 1000))
            return ripc_test_kid_fail("reply %zu: %llu bytes, wrong content", i,
                                      (unsigned long long)rep.len);
    }
    int rc = kid_end(c, seq);
    free(buf);
    ripc_client_close(c);
    return rc;
}

static void test_large_ordered_mix(void **state)
{
    (void)state;
    int pid = ripc_test_fork_dispatch(kid_mix, NULL, &M.run, M.s);
    ripc_test_expect_worker(pid, &M.fail, &M.got, MIX_ROUNDS * N_SIZES);
}

/* ---- 2: both sides send large messages at the same moment ---- */

#define BOTH_N   8 /* more than the sender's in-flight buffers (4) */
#define BOTH_LEN (2 * MIB + 77)

struct both {
    int go[2];
};

static int kid_both(void *arg)
{
    struct both *b = arg;
    ripc_client *c;
    if (kid_open(&c, 64 * MIB))
        return 1;
    unsigned char *buf = malloc(BOTH_LEN);
    char go;
    if (!buf || read(b->go[0], &go, 1) != 1)
        return ripc_test_kid_fail("setup");
    /* Everything out before reading anything: the master does the same. */
    for (uint64_t i = 0; i < BOTH_N; i++) {
        make_payload(buf, BOTH_LEN, i);
        int rc = ripc_client_send(c, T_DATA, buf, BOTH_LEN, 60000);
        if (rc < 0)
            return ripc_test_kid_fail("send %llu: %s", (unsigned long long)i, ripc_strerror(rc));
    }
    for (uint64_t i = 0; i < BOTH_N; i++) {
        ripc_msg m;
        int rc = ripc_client_recv(c, &m, 60000);
        if (rc < 0)
            return ripc_test_kid_fail("recv %llu: %s", (unsigned long long)i, ripc_strerror(rc));
        if (m.type != T_DATA || m.len != BOTH_LEN || !check_payload(m.data, m.len, 100 + i))
            return ripc_test_kid_fail("message %llu from the master is wrong",
                                      (unsigned long long)i);
    }
    int rc = kid_end(c, BOTH_N);
    free(buf);
    ripc_client_close(c);
    return rc;
}

static void test_large_both_ways_at_once(void **state)
{
    (void)state;
    struct both b;
    assert_int_equal(pipe(b.go), 0);
    int pid = ripc_test_fork_dispatch(kid_both, &b, &M.run, M.s);
    uint32_t peer = wait_joined();
    unsigned char *buf = malloc(BOTH_LEN);
    assert_non_null(buf);
    assert_int_equal(write(b.go[1], "g", 1), 1);
    for (uint64_t i = 0; i < BOTH_N; i++) {
        make_payload(buf, BOTH_LEN, 100 + i);
        int rc = ripc_server_send(M.s, peer, T_DATA, buf, BOTH_LEN, 60000);
        if (rc < 0)
            fail_msg("ripc_server_send %llu: %s", (unsigned long long)i, ripc_strerror(rc));
    }
    free(buf);
    close(b.go[0]);
    close(b.go[1]);
    ripc_test_expect_worker(pid, &M.fail, &M.got, BOTH_N);
}

/* ---- 2b: large messages arriving while a request waits ---- */

static int kid_push(void *arg)
{
    (void)arg;
    ripc_client *c;
    if (kid_open(&c, 64 * MIB))
        return 1;
    ripc_msg r;
    int rc = ripc_client_request(c, T_PUSH, "go", 2, &r, 60000);
    if (rc < 0)
        return ripc_test_kid_fail("push request: %s", ripc_strerror(rc));
    if (r.len != 2 || memcmp(r.data, "ok", 2) != 0)
        return ripc_test_kid_fail("push reply is wrong");
    for (uint64_t i = 0; i < PUSH_N; i++) {
        ripc_msg m;
        if ((rc = ripc_client_recv(c, &m, 10000)) < 0)
            return ripc_test_kid_fail("recv %llu: %s", (unsigned long long)i, ripc_strerror(rc));
        if (m.type != T_DATA || m.len != PUSH_LEN || !check_payload(m.data, m.len, 200 + i))
            return ripc_test_kid_fail("pushed message %llu is wrong", (unsigned long long)i);
    }
    rc = kid_end(c, 0);
    ripc_client_close(c);
    return rc;
}

static void test_large_kept_while_a_request_waits(void **state)
{
    (void)state;
    int pid = ripc_test_fork_dispatch(kid_push, NULL, &M.run, M.s);
    ripc_test_expect_worker(pid, &M.fail, &M.got, 0);
}

/* ---- 2c: the master closes right after sending: the worker still drains
 * every large message intact, then gets -EPIPE ---- */

#define GONE_N   3
#define GONE_LEN (2 * MIB + 5)

static int kid_gone(void *arg)
{
    int *sync = arg;
    ripc_client *c;
    if (kid_open(&c, 64 * MIB))
        return 1;
    char b;
    if (write(sync[1], "j", 1) != 1 || read(sync[0], &b, 1) != 1) /* the master closed */
        return ripc_test_kid_fail("sync");
    for (uint64_t i = 0; i < GONE_N; i++) {
        ripc_msg m;
        int rc = ripc_client_recv(c, &m, 10000);
        if (rc < 0)
            return ripc_test_kid_fail("recv %llu after the master closed: %s",
                                      (unsigned long long)i, ripc_strerror(rc));
        if (m.len != GONE_LEN || !check_payload(m.data, m.len, 300 + i))
            return ripc_test_kid_fail("message %llu is damaged", (unsigned long long)i);
    }
    ripc_msg m;
    int rc = ripc_client_recv(c, &m, 10000);
    if (rc != -EPIPE)
        return ripc_test_kid_fail("after the last message: %d, wanted -EPIPE", rc);
    ripc_client_close(c);
    return 0;
}

static void test_large_drained_after_master_close(void **state)
{
    (void)state;
    if (g_transport == RIPC_TRANSPORT_SOCKET) {
        /* Streamed frames: the master's sends wait for a reader, who here
         * reads only after the close. Nothing of the buffer path to test. */
        print_message("SKIP: shared-memory mode only\n");
        skip();
    }
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    int sync[2] = {down[0], up[1]}; /* the worker reads down, writes up */
    int pid = ripc_test_fork_dispatch(kid_gone, sync, &M.run, M.s);
    char b;
    assert_int_equal(read(up[0], &b, 1), 1);
    uint32_t peer = wait_joined();
    unsigned char *buf = malloc(GONE_LEN);
    assert_non_null(buf);
    for (uint64_t i = 0; i < GONE_N; i++) {
        make_payload(buf, GONE_LEN, 300 + i);
        assert_int_equal(ripc_server_send(M.s, peer, T_DATA, buf, GONE_LEN, 10000), 0);
    }
    free(buf);
    master_close();
    assert_int_equal(write(down[1], "c", 1), 1);
    assert_int_equal(ripc_test_wait(pid), 0);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
}

/* ---- 3: max_message on both sides ---- */

static int kid_limits(void *arg)
{
    int *sync = arg;
    ripc_client *c;
    /* The worker's own cap is lower than the master's: it wins both ways. */
    if (kid_open(&c, 1 * MIB))
        return 1;
    unsigned char *buf = malloc(MIB + 1);
    if (!buf)
        return ripc_test_kid_fail("malloc");
    make_payload(buf, MIB + 1, 0);
    int rc = ripc_client_send(c, T_DATA, buf, MIB + 1, 1000);
    if (rc != -EMSGSIZE)
        return ripc_test_kid_fail("send of max_message + 1: %d, wanted -EMSGSIZE", rc);
    make_payload(buf, MIB, 0);
    if ((rc = ripc_client_send(c, T_DATA, buf, MIB, 10000)) < 0)
        return ripc_test_kid_fail("send of max_message: %s", ripc_strerror(rc));
    if (write(sync[1], "s", 1) != 1) /* the master may try its sends now */
        return ripc_test_kid_fail("sync");
    ripc_msg m;
    if ((rc = ripc_client_recv(c, &m, 30000)) < 0)
        return ripc_test_kid_fail("recv: %s", ripc_strerror(rc));
    if (m.len != MIB || !check_payload(m.data, m.len, 7))
        return ripc_test_kid_fail("the master's max_message message is wrong");
    rc = kid_end(c, 1);
    free(buf);
    ripc_client_close(c);
    return rc;
}

static void test_large_max_message_both_sides(void **state)
{
    (void)state;
    int sync[2];
    assert_int_equal(pipe(sync), 0);
    int pid = ripc_test_fork_dispatch(kid_limits, sync, &M.run, M.s);
    char s;
    assert_int_equal(read(sync[0], &s, 1), 1);
    uint32_t peer = wait_joined();
    unsigned char *buf = malloc(MIB + 1);
    assert_non_null(buf);
    make_payload(buf, MIB + 1, 7);
    assert_int_equal(ripc_server_send(M.s, peer, T_DATA, buf, MIB + 1, 1000), -EMSGSIZE);
    make_payload(buf, MIB, 7);
    assert_int_equal(ripc_server_send(M.s, peer, T_DATA, buf, MIB, 10000), 0);
    free(buf);
    close(sync[0]);
    close(sync[1]);
    ripc_test_expect_worker(pid, &M.fail, &M.got, 1);
}

/* ---- 3b: a max_message broadcast from an application thread ----
 * Four workers; the first broadcast finds them not reading (each send ends
 * at its short timeout), the second reading. In socket mode the first can
 * keep the unread rest of only so many frames (the master's send budget):
 * the others must be refused before their first byte, never cut (a cut
 * frame breaks the stream: the worker would be dropped). Every worker gets
 * the first message whole or not at all, and the second whole. */

#define BCAST_WORKERS 4
#define BCAST_LEN     (64 * MIB)

/* Exit 0: got both broadcasts; 10: only the second. */
static int kid_bcast(void *arg)
{
    const int *sync = arg;
    ripc_client *c;
    if (kid_open(&c, BCAST_LEN))
        return 1;
    char b;
    if (write(sync[1], "j", 1) != 1 || read(sync[0], &b, 1) != 1) /* the first broadcast is over */
        return ripc_test_kid_fail("sync");
    int got_first = 0;
    for (;;) {
        ripc_msg m;
        int rc = ripc_client_recv(c, &m, 60000);
        if (rc < 0)
            return ripc_test_kid_fail("recv: %s", ripc_strerror(rc));
        if (m.len != BCAST_LEN)
            return ripc_test_kid_fail("a message of %llu bytes", (unsigned long long)m.len);
        if (!got_first && check_payload(m.data, m.len, 1)) {
            got_first = 1;
            continue;
        }
        if (!check_payload(m.data, m.len, 2))
            return ripc_test_kid_fail("a broadcast arrived damaged");
        break;
    }
    ripc_client_close(c);
    return got_first ? 0 : 10;
}

static void test_large_broadcast_from_an_application_thread(void **state)
{
    (void)state;
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    int sync[2] = {down[0], up[1]}; /* the workers read down, write up */
    int pid[BCAST_WORKERS];
    for (int i = 0; i < BCAST_WORKERS; i++)
        assert_true((pid[i] = ripc_test_fork(kid_bcast, sync)) >= 0);
    /* Dispatch after the forks: see ripc_test_fork_dispatch. */
    assert_int_equal(ripc_test_run_start(&M.run, M.s, 1), 0);
    char b;
    for (int i = 0; i < BCAST_WORKERS; i++)
        assert_int_equal(read(up[0], &b, 1), 1);
    pthread_mutex_lock(&M.mu);
    while (M.joined < BCAST_WORKERS)
        pthread_cond_wait(&M.cv, &M.mu);
    pthread_mutex_unlock(&M.mu);
    unsigned char *buf = malloc(BCAST_LEN);
    assert_non_null(buf);
    make_payload(buf, BCAST_LEN, 1);
    int first = ripc_server_broadcast(M.s, T_DATA, buf, BCAST_LEN, 300);
    for (int i = 0; i < BCAST_WORKERS; i++)
        assert_int_equal(write(down[1], "g", 1), 1);
    make_payload(buf, BCAST_LEN, 2);
    int second = ripc_server_broadcast(M.s, T_DATA, buf, BCAST_LEN, 60000);
    free(buf);
    int got_first = 0, failed = 0;
    for (int i = 0; i < BCAST_WORKERS; i++) {
        int st = ripc_test_wait(pid[i]);
        got_first += st == 0;
        failed += st != 0 && st != 10;
    }
    print_message("broadcasts reached %d, then %d of %d workers; %d got the first\n", first, second,
                  BCAST_WORKERS, got_first);
    assert_int_equal(atomic_load(&M.dropped), 0);
    assert_int_equal(failed, 0);
    assert_int_equal(second, BCAST_WORKERS);
    assert_true(first >= 1);
    assert_int_equal(got_first, first);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    close(down[1]);
}

/* ---- 4 (slow): more than 4 GiB in one message, each way ---- */

#define HUGE_LEN (((uint64_t)4 << 30) + 4099)

static int kid_huge(void *arg)
{
    int *sync = arg;
    ripc_client *c;
    if (kid_open(&c, HUGE_LEN))
        return 1;
    unsigned char *buf = malloc((size_t)HUGE_LEN);
    if (!buf)
        return ripc_test_kid_fail("malloc(%llu)", (unsigned long long)HUGE_LEN);
    make_payload(buf, HUGE_LEN, 0);
    int rc = ripc_client_send(c, T_BIG, buf, HUGE_LEN, 300000);
    free(buf);
    if (rc < 0)
        return ripc_test_kid_fail("send: %s", ripc_strerror(rc));
    if ((rc = kid_end(c, 1)) != 0) /* the master checked every byte */
        return rc;
    if (write(sync[1], "s", 1) != 1)
        return ripc_test_kid_fail("sync");
    ripc_msg m;
    if ((rc = ripc_client_recv(c, &m, 300000)) < 0)
        return ripc_test_kid_fail("recv: %s", ripc_strerror(rc));
    if (m.len != HUGE_LEN || !check_payload(m.data, m.len, 9))
        return ripc_test_kid_fail("the master's %llu-byte message is wrong",
                                  (unsigned long long)m.len);
    ripc_client_close(c);
    return 0;
}

static int setup_huge(void **state)
{
    (void)state;
    return start_master(HUGE_LEN);
}

static void test_large_over_4gib(void **state)
{
    (void)state;
    int sync[2];
    assert_int_equal(pipe(sync), 0);
    int pid = ripc_test_fork_dispatch(kid_huge, sync, &M.run, M.s);
    close(sync[1]); /* a worker that fails before its turn ends the read */
    char s;
    if (read(sync[0], &s, 1) != 1) { /* the worker failed before its turn */
        close(sync[0]);
        ripc_test_expect_worker(pid, &M.fail, &M.got, 1);
        return;
    }
    unsigned char *buf = malloc((size_t)HUGE_LEN);
    assert_non_null(buf);
    make_payload(buf, HUGE_LEN, 9);
    int rc = ripc_server_send(M.s, wait_joined(), T_BIG, buf, HUGE_LEN, 300000);
    free(buf);
    assert_int_equal(rc, 0);
    close(sync[0]);
    ripc_test_expect_worker(pid, &M.fail, &M.got, 1);
}

int main(int argc, char **argv)
{
    const char *group = "large (shm)";
    if (argc > 1 && strcmp(argv[1], "socket") == 0) {
        g_transport = RIPC_TRANSPORT_SOCKET;
        group = "large (socket)";
    } else if (argc > 1 && strcmp(argv[1], "shm_open") == 0) {
        int rc = ripc_test_refuse_memfd();
        if (rc < 0)
            ripc_test_skip("cannot refuse memfd_create: %s", strerror(-rc));
        group = "large (shm, memfd refused)";
    } else if (argc > 1 && strcmp(argv[1], "shm") != 0) {
        fprintf(stderr, "usage: %s [shm|shm_open|socket] [filter]\n", argv[0]);
        return 2;
    }
    g_filter = argc > 2 ? argv[2] : NULL;
    struct CMUnitTest all[] = {
        cmocka_unit_test_setup_teardown(test_large_ordered_mix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_both_ways_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_kept_while_a_request_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_drained_after_master_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_max_message_both_sides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_broadcast_from_an_application_thread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_large_over_4gib, setup_huge, teardown),
    };
    struct CMUnitTest run[sizeof all / sizeof all[0]];
    size_t n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        int slow = strstr(all[i].name, "over_4gib") != NULL;
        if (g_filter ? strstr(all[i].name, g_filter) != NULL : !slow)
            run[n++] = all[i];
    }
    if (n == 0)
        ripc_test_skip("no test matches \"%s\"", g_filter);
    return _cmocka_run_group_tests(group, run, n, NULL, NULL);
}

/*
 * The counters (ripc_server_stats, ripc_server_peer_stats,
 * ripc_client_stats) between real processes: a worker streams known
 * numbers of messages and bytes of every kind each way, and both sides'
 * counters must say exactly that once a request/reply has shown that
 * everything before it was dispatched; hostile connections show up in the
 * server's reasons; the calls' arguments; stats read from other threads
 * while dispatch threads and senders count (the TSan build runs this).
 *
 * Usage: test_stats [shm|socket] [test-name-filter]
 *   The transport (default shm) goes into every ripc_options.transport.
 *
 * The test process is the master; workers are fork()ed children that only
 * open clients, talk to the test through pipes, and report through their
 * exit status (and stderr), with alarm() against hangs.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "sockets/sock.h"
#include "src/proto.h"
#include "support/hconn.h"
#include "support/support.h"
#include "support/workers.h"

static int g_transport = RIPC_TRANSPORT_SHM;
static const char *g_transport_name = "shm";

enum {
    T_ONE = 1, /* one-way: taken */
    T_ECHO,    /* request: the payload back */
    T_SYNC,    /* request: RIPC_TEST_SYNC_REPLY bytes back (everything before it was dispatched) */
    T_WAKE,    /* master -> worker: one-way, the worker was asleep */
    T_BULK,    /* master -> worker: one-way, a stream */
};

#define CHILD_ALARM_S 30
#define WORKER_NAME   "stat-worker"
#define RING          ((size_t)64 << 10) /* the worker's rings: max_inline 32 KiB - 24 */
#define N_ONE         1000
#define ONE_LEN       100
#define N_ECHO        50
#define ECHO_LEN      200
#define N_LARGE       3
#define LARGE_LEN     ((size_t)100 << 10) /* above max_inline: a large message */
#define N_BULK        2000                /* 2000 x 80 ring bytes: more than a 64 KiB ring holds */
#define BULK_LEN      64

static struct {
    ripc_test_master m; /* the worker's id: m.last_joined */
    pid_t kid;
    int to_kid, from_kid;
} F;

static ripc_options opts(void)
{
    ripc_options o;
    memset(&o, 0, sizeof o);
    o.transport = g_transport;
    return o;
}

/* ---- master side ---- */

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    F.to_kid = F.from_kid = -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ripc_test_end_server(F.m.s, &F.m.run, F.kid);
    if (F.to_kid >= 0)
        close(F.to_kid);
    if (F.from_kid >= 0)
        close(F.from_kid);
    return 0;
}

static void open_server(const ripc_options *o)
{
    char url[sizeof F.m.url];
    ripc_test_unix_url(url, sizeof url, "stats");
    assert_int_equal(ripc_test_master_listen(&F.m, url, o), 0);
    assert_int_equal(ripc_server_handle(F.m.s, T_ONE, ripc_test_on_count, NULL), 0);
    assert_int_equal(ripc_server_handle(F.m.s, T_ECHO, ripc_test_on_echo, NULL), 0);
    assert_int_equal(ripc_server_handle(F.m.s, T_SYNC, ripc_test_on_sync, NULL), 0);
}

/* Fork the worker with its two pipes (the child's ends: rd, wr), then
 * start dispatching on `threads` threads (no thread exists at the fork). */
static void start(int (*child)(int rd, int wr, void *arg), unsigned threads)
{
    F.kid = ripc_test_fork_piped(child, NULL, CHILD_ALARM_S, &F.to_kid, &F.from_kid);
    assert_int_equal(ripc_test_run_start(&F.m.run, F.m.s, threads), 0);
}

static void to_kid(char c)
{
    ripc_test_write_all(F.to_kid, &c, 1);
}

static void from_kid(void *buf, size_t len)
{
    if (ripc_test_read_within(F.from_kid, buf, len, 20000) != 0)
        fail_msg("the worker did not report (pid %d)", (int)F.kid);
}

/* Wait (up to 10 s) until n workers have left. */
static void wait_left(int n)
{
    assert_int_equal(ripc_test_master_await(&F.m, &F.m.left, n, 10000), n);
}

static ripc_peer_stats_t peer_stats(uint32_t id)
{
    ripc_peer_stats_t st;
    memset(&st, 0xA5, sizeof st);
    st.size = sizeof st;
    int rc = ripc_server_peer_stats(F.m.s, id, &st);
    if (rc != 0)
        fail_msg("ripc_server_peer_stats(%u): %s", (unsigned)id, ripc_strerror(rc));
    assert_int_equal(st.size, sizeof st);
    return st;
}

static ripc_server_stats_t server_stats(void)
{
    ripc_server_stats_t st;
    memset(&st, 0xA5, sizeof st);
    st.size = sizeof st;
    assert_int_equal(ripc_server_stats(F.m.s, &st), 0);
    assert_int_equal(st.size, sizeof st);
    return st;
}

/* ---- the worker ---- */

static ripc_client *w_open(void)
{
    ripc_options o = opts();
    o.name = WORKER_NAME;
    o.ring_bytes = RING;
    o.wait = RIPC_WAIT_BLOCK; /* every wait for data sleeps: sleeps and doorbells are certain */
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, F.m.url, &o, why, sizeof why);
    WCHECK(rc == 0, "open %s: %s (%s)", F.m.url, ripc_strerror(rc), why);
    return c;
}

static void w_sync(ripc_client *c)
{
    ripc_msg r;
    int rc = ripc_client_request(c, T_SYNC, NULL, 0, &r, 10000);
    WCHECK(rc == 0 && r.len == RIPC_TEST_SYNC_REPLY, "sync: %s", ripc_strerror(rc));
}

static void w_report(ripc_client *c, int wr)
{
    ripc_peer_stats_t st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    int rc = ripc_client_stats(c, &st);
    WCHECK(rc == 0, "ripc_client_stats: %s", ripc_strerror(rc));
    ripc_test_write_all(wr, &st, sizeof st);
}

static void w_wait(int rd, char want)
{
    char c = 0;
    WCHECK(ripc_test_read_all(rd, &c, 1) == 0 && c == want, "expected '%c' from the test", want);
}

/* Streams known numbers of every kind, reports, sleeps in recv until the
 * master's T_WAKE, then leaves its ring full of the master's T_BULK until
 * told to read it, reports again, and says goodbye when told. */
static int kid_stream(int rd, int wr, void *arg)
{
    (void)arg;
    ripc_client *c = w_open();
    static unsigned char buf[LARGE_LEN];
    ripc_test_fill(buf, sizeof buf, 7);
    for (int i = 0; i < N_ONE; i++) {
        int rc = ripc_client_send(c, T_ONE, buf, ONE_LEN, 10000);
        WCHECK(rc == 0, "send %d: %s", i, ripc_strerror(rc));
    }
    for (int i = 0; i < N_ECHO; i++) {
        ripc_msg r;
        int rc = ripc_client_request(c, T_ECHO, buf, ECHO_LEN, &r, 10000);
        WCHECK(rc == 0 && r.len == ECHO_LEN, "echo %d: %s", i, ripc_strerror(rc));
    }
    for (int i = 0; i < N_LARGE; i++) {
        int rc = ripc_client_send(c, T_ONE, buf, LARGE_LEN, 10000);
        WCHECK(rc == 0, "large %d: %s", i, ripc_strerror(rc));
    }
    w_sync(c);
    w_report(c, wr);
    /* Asleep in recv: the master's message must ring our doorbell. */
    ripc_msg m;
    int rc = ripc_client_recv(c, &m, 20000);
    WCHECK(rc == 0 && m.type == T_WAKE && m.len == BULK_LEN, "wake: %s", ripc_strerror(rc));
    ripc_test_write_all(wr, "w", 1);
    w_wait(rd, 'g');
    for (int i = 0; i < N_BULK; i++) {
        rc = ripc_client_recv(c, &m, 10000);
        WCHECK(rc == 0 && m.type == T_BULK && m.len == BULK_LEN, "bulk %d: %s", i,
               ripc_strerror(rc));
    }
    w_sync(c);
    w_report(c, wr);
    w_wait(rd, 'b');
    ripc_client_close(c);
    return 0;
}

/* ---- exact counts ---- */

struct bulk_sender {
    pthread_t th;
    int failed; /* the first send that did not return 0, its index + 1 */
    int rc;
};

static void *bulk_send(void *arg)
{
    struct bulk_sender *b = arg;
    unsigned char msg[BULK_LEN] = {0};
    for (int i = 0; i < N_BULK && !b->failed; i++) {
        int rc =
            ripc_server_send(F.m.s, ripc_test_master_last_id(&F.m), T_BULK, msg, sizeof msg, 20000);
        if (rc != 0) {
            b->failed = i + 1;
            b->rc = rc;
        }
    }
    return NULL;
}

static void test_stats_exact_counts(void **state)
{
    (void)state;
    int shm = g_transport == RIPC_TRANSPORT_SHM;
    ripc_options o = opts();
    open_server(&o);
    start(kid_stream, 2);

    /* Phase 1: the worker's stream, then its SYNC came back. */
    ripc_peer_stats_t cs;
    from_kid(&cs, sizeof cs);
    assert_int_equal(ripc_test_master_joined(&F.m), 1);
    uint32_t id = ripc_test_master_last_id(&F.m);
    ripc_peer_stats_t ps = peer_stats(id);
    assert_int_equal(ps.peer_id, id);
    assert_int_equal(ps.pid, F.kid);
    assert_int_equal(ps.transport, shm ? RIPC_TRANSPORT_SHM : RIPC_TRANSPORT_SOCKET);
    assert_string_equal(ps.name, WORKER_NAME);
    assert_true(ps.reason[0] != 0);
    assert_true(ps.connected_ns > 1000000000ull * 1600000000ull);
    assert_int_equal(ps.msgs_in[RIPC_ONEWAY], N_ONE + N_LARGE);
    assert_int_equal(ps.bytes_in[RIPC_ONEWAY], N_ONE * ONE_LEN + N_LARGE * LARGE_LEN);
    assert_int_equal(ps.msgs_in[RIPC_REQUEST], N_ECHO + 1);
    assert_int_equal(ps.bytes_in[RIPC_REQUEST], N_ECHO * ECHO_LEN);
    assert_int_equal(ps.msgs_in[RIPC_REPLY], 0);
    assert_int_equal(ps.msgs_out[RIPC_ONEWAY], 0);
    assert_int_equal(ps.msgs_out[RIPC_REPLY], N_ECHO + 1);
    assert_int_equal(ps.bytes_out[RIPC_REPLY], N_ECHO * ECHO_LEN + RIPC_TEST_SYNC_REPLY);
    assert_int_equal(ps.large_in, shm ? N_LARGE : 0);
    assert_int_equal(ps.large_bytes_in, shm ? N_LARGE * LARGE_LEN : 0);
    assert_int_equal(ps.ring_bytes, shm ? RING : 0);
    assert_int_equal(ps.dropped, 0);
    assert_int_equal(ps.proto_errors, 0);
    /* The worker's own view, mirrored. */
    assert_int_equal(cs.peer_id, id);
    assert_int_equal(cs.transport, ps.transport);
    assert_string_equal(cs.name, WORKER_NAME);
    assert_string_equal(cs.reason, ps.reason);
    assert_int_equal(cs.msgs_out[RIPC_ONEWAY], N_ONE + N_LARGE);
    assert_int_equal(cs.bytes_out[RIPC_ONEWAY], N_ONE * ONE_LEN + N_LARGE * LARGE_LEN);
    assert_int_equal(cs.msgs_out[RIPC_REQUEST], N_ECHO + 1);
    assert_int_equal(cs.bytes_out[RIPC_REQUEST], N_ECHO * ECHO_LEN);
    assert_int_equal(cs.msgs_in[RIPC_REPLY], N_ECHO + 1);
    assert_int_equal(cs.bytes_in[RIPC_REPLY], N_ECHO * ECHO_LEN + RIPC_TEST_SYNC_REPLY);
    assert_int_equal(cs.msgs_in[RIPC_ONEWAY], 0);
    assert_int_equal(cs.large_out, shm ? N_LARGE : 0);
    assert_int_equal(cs.large_bytes_out, shm ? N_LARGE * LARGE_LEN : 0);
    assert_int_equal(cs.ring_bytes, shm ? RING : 0);
    assert_int_equal(cs.dropped, 0);

    /* Phase 2: the worker sleeps in recv; our message rings it. */
    ripc_test_wait_sleeping(F.kid, F.kid);
    unsigned char msg[BULK_LEN] = {0};
    assert_int_equal(ripc_server_send(F.m.s, id, T_WAKE, msg, sizeof msg, 5000), 0);
    char w = 0;
    from_kid(&w, 1);
    assert_int_equal(w, 'w');
    /* A stream into a ring that nobody reads: the sender waits for room. */
    struct bulk_sender b = {0};
    assert_int_equal(pthread_create(&b.th, NULL, bulk_send, &b), 0);
    if (shm) {
        uint64_t end = ripc_test_now_ms() + 10000;
        while (peer_stats(id).send_waits == 0 && ripc_test_now_ms() < end)
            usleep(1000);
        ps = peer_stats(id);
        assert_true(ps.send_waits >= 1);
        assert_true(ps.ring_out_used > RING / 2); /* full, less a record or so */
        assert_true(ps.ring_out_high >= ps.ring_out_used);
    }
    to_kid('g');
    pthread_join(b.th, NULL);
    if (b.failed)
        fail_msg("bulk send %d: %s", b.failed - 1, ripc_strerror(b.rc));
    from_kid(&cs, sizeof cs);
    ps = peer_stats(id);
    assert_int_equal(ps.msgs_out[RIPC_ONEWAY], 1 + N_BULK);
    assert_int_equal(ps.bytes_out[RIPC_ONEWAY], (1 + N_BULK) * BULK_LEN);
    assert_int_equal(ps.msgs_out[RIPC_REPLY], N_ECHO + 2);
    assert_int_equal(ps.msgs_in[RIPC_REQUEST], N_ECHO + 2);
    assert_int_equal(cs.msgs_in[RIPC_ONEWAY], 1 + N_BULK);
    assert_int_equal(cs.bytes_in[RIPC_ONEWAY], (1 + N_BULK) * BULK_LEN);
    assert_int_equal(cs.msgs_in[RIPC_REPLY], N_ECHO + 2);
    if (shm) {
        assert_true(ps.send_waits >= 1);
        assert_true(ps.send_wait_ns > 0);
        assert_true(ps.ring_out_high > RING / 2);
        assert_true(ps.doorbells >= 1); /* the worker slept in recv */
        assert_true(cs.sleeps >= 1);
        assert_true(cs.wakeups >= 1);
        assert_true(ps.ring_in_high > 0);
    }

    /* A caller built against a larger struct: ours is filled, the rest
     * zeroed, and size says how much. */
    struct {
        ripc_peer_stats_t st;
        unsigned char more[40];
    } big;
    memset(&big, 0xA5, sizeof big);
    big.st.size = sizeof big;
    assert_int_equal(ripc_server_peer_stats(F.m.s, id, &big.st), 0);
    assert_int_equal(big.st.size, sizeof big.st);
    for (size_t i = 0; i < sizeof big.more; i++)
        assert_int_equal(big.more[i], 0);
    assert_int_equal(big.st.msgs_out[RIPC_ONEWAY], 1 + N_BULK);

    to_kid('b');
    assert_int_equal(ripc_test_wait(F.kid), 0);
    F.kid = 0;
    wait_left(1);
    assert_int_equal(ripc_test_master_left_reason(&F.m), RIPC_LEFT_BYE);
    ripc_server_stats_t ss = server_stats();
    assert_int_equal(ss.peers_now, 0);
    assert_int_equal(ss.peers_total, 1);
    assert_int_equal(ss.left_bye, 1);
    assert_int_equal(
        ss.left_pipe + ss.left_proto + ss.left_timedout + ss.left_canceled + ss.left_other, 0);
    assert_int_equal(ss.unhandled, 0);
    assert_true(ss.opened_ns > 1000000000ull * 1600000000ull);
    /* Gone: its counters went with it. */
    ripc_peer_stats_t gone = {.size = sizeof gone};
    assert_int_equal(ripc_server_peer_stats(F.m.s, id, &gone), -ENOENT);
}

/* ---- arguments ---- */

static int kid_idle(int rd, int wr, void *arg)
{
    (void)arg;
    ripc_client *c = w_open();
    /* Arguments on the worker's side. */
    ripc_peer_stats_t st = {.size = sizeof st};
    WCHECK(ripc_client_stats(NULL, &st) == -EINVAL, "NULL client");
    WCHECK(ripc_client_stats(c, NULL) == -EINVAL, "NULL out");
    st.size = RIPC_PEER_STATS_SIZE_V1 - 1;
    WCHECK(ripc_client_stats(c, &st) == -EINVAL, "short size");
    st.size = 0;
    WCHECK(ripc_client_stats(c, &st) == -EINVAL, "size 0");
    st.size = sizeof st;
    WCHECK(ripc_client_stats(c, &st) == 0 && st.msgs_out[RIPC_ONEWAY] == 0, "stats");
    w_sync(c);
    ripc_test_write_all(wr, "j", 1);
    w_wait(rd, 'b');
    ripc_client_close(c);
    return 0;
}

static void test_stats_arguments(void **state)
{
    (void)state;
    ripc_options o = opts();
    open_server(&o);
    start(kid_idle, 1);
    char j = 0;
    from_kid(&j, 1);
    uint32_t id = ripc_test_master_last_id(&F.m);
    ripc_peer_stats_t ps = {.size = sizeof ps};
    ripc_server_stats_t ss = {.size = sizeof ss};
    assert_int_equal(ripc_server_peer_stats(F.m.s, id, &ps), 0);
    assert_int_equal(ripc_server_peer_stats(F.m.s, id + 1000, &ps), -ENOENT);
    assert_int_equal(ripc_server_peer_stats(F.m.s, 0, &ps), -ENOENT);
    assert_int_equal(ripc_server_peer_stats(NULL, id, &ps), -EINVAL);
    assert_int_equal(ripc_server_peer_stats(F.m.s, id, NULL), -EINVAL);
    ps.size = RIPC_PEER_STATS_SIZE_V1 - 1;
    assert_int_equal(ripc_server_peer_stats(F.m.s, id, &ps), -EINVAL);
    ps.size = 4;
    assert_int_equal(ripc_server_peer_stats(F.m.s, id, &ps), -EINVAL);
    assert_int_equal(ripc_server_stats(NULL, &ss), -EINVAL);
    assert_int_equal(ripc_server_stats(F.m.s, NULL), -EINVAL);
    ss.size = RIPC_SERVER_STATS_SIZE_V1 - 1;
    assert_int_equal(ripc_server_stats(F.m.s, &ss), -EINVAL);
    ss.size = sizeof ss;
    assert_int_equal(ripc_server_stats(F.m.s, &ss), 0);
    assert_int_equal(ss.peers_now, 1);
    to_kid('b');
    assert_int_equal(ripc_test_wait(F.kid), 0);
    F.kid = 0;
    wait_left(1);
}

/* ---- hostile connections ---- */

/* Poll the server's counters until pred holds (10 s at most). */
static ripc_server_stats_t await_stats(int (*pred)(const ripc_server_stats_t *))
{
    uint64_t end = ripc_test_now_ms() + 10000;
    ripc_server_stats_t st = server_stats();
    while (!pred(&st) && ripc_test_now_ms() < end) {
        usleep(1000);
        st = server_stats();
    }
    return st;
}

static int hung_up(const ripc_server_stats_t *s)
{
    return s->handshake_hangups >= 1;
}

static int malformed(const ripc_server_stats_t *s)
{
    return s->refused_malformed >= 1;
}

static int dropped_proto(const ripc_server_stats_t *s)
{
    return s->left_proto >= 1;
}

static void test_stats_hostile(void **state)
{
    (void)state;
    ripc_options o = opts();
    o.transport = RIPC_TRANSPORT_AUTO; /* the hand-made worker asks for socket mode */
    open_server(&o);
    assert_int_equal(ripc_test_run_start(&F.m.run, F.m.s, 1), 0);

    /* Connects and hangs up before its HELLO. */
    int fd = ripc_test_hconnect(F.m.url);
    assert_true(fd >= 0);
    ripc__sock_close(fd);
    ripc_server_stats_t st = await_stats(hung_up);
    assert_int_equal(st.handshake_hangups, 1);

    /* Sends garbage for a HELLO: refused as malformed. */
    fd = ripc_test_hconnect(F.m.url);
    assert_true(fd >= 0);
    uint8_t junk[RIPC_FRAME_HDR];
    memset(junk, 0xEE, sizeof junk);
    assert_int_equal(ripc__sock_send_all(fd, junk, sizeof junk), 0);
    st = await_stats(malformed);
    assert_int_equal(st.refused_malformed, 1);
    ripc__sock_close(fd);

    /* Joins, then sends a reply (workers send none): dropped, -EPROTO. */
    fd = ripc_test_hconnect(F.m.url);
    assert_true(fd >= 0);
    assert_int_equal(ripc_test_socket_hello(fd, "hostile", NULL), 0);
    ripc__frame f = {.ftype = RIPC_FRAME_MSG, .kind = RIPC_KIND_REPLY, .type = 1, .id = 1};
    uint8_t hdr[RIPC_FRAME_HDR];
    ripc__frame_encode(hdr, &f);
    assert_int_equal(ripc__sock_send_all(fd, hdr, sizeof hdr), 0);
    st = await_stats(dropped_proto);
    assert_int_equal(st.left_proto, 1);
    assert_int_equal(st.peers_total, 1);
    /* `left` runs after the drop counted it out of peers_now. */
    wait_left(1);
    assert_int_equal(ripc_test_master_left_reason(&F.m), -EPROTO);
    assert_int_equal(server_stats().peers_now, 0);
    ripc_peer_stats_t ps = {.size = sizeof ps};
    assert_int_equal(ripc_server_peer_stats(F.m.s, ripc_test_master_last_id(&F.m), &ps), -ENOENT);
    ripc__sock_close(fd);
}

/* ---- readers on other threads while everything counts ---- */

#define N_STREAM 20000

struct reader {
    pthread_t th;
    _Atomic int *stop;
    ripc_client *c;     /* worker side; NULL: the master's */
    int bad;            /* a counter went backwards, or a call failed */
    _Atomic long reads; /* reads that found the worker */
};

static void *read_loop(void *arg)
{
    struct reader *r = arg;
    uint64_t last_in = 0, last_out = 0;
    while (!atomic_load(r->stop)) {
        ripc_peer_stats_t st = {.size = sizeof st};
        int rc;
        if (r->c) {
            rc = ripc_client_stats(r->c, &st);
        } else {
            ripc_server_stats_t ss = {.size = sizeof ss};
            if (ripc_server_stats(F.m.s, &ss) != 0)
                r->bad = 1;
            rc = ripc_server_peer_stats(F.m.s, ripc_test_master_last_id(&F.m), &st);
            if (rc == -ENOENT)
                continue; /* not joined yet, or gone */
        }
        if (rc != 0 || st.msgs_in[RIPC_ONEWAY] < last_in || st.msgs_out[RIPC_ONEWAY] < last_out)
            r->bad = 1;
        last_in = st.msgs_in[RIPC_ONEWAY];
        last_out = st.msgs_out[RIPC_ONEWAY];
        atomic_fetch_add(&r->reads, 1);
    }
    return NULL;
}

/* Streams while a thread of its own reads its counters; takes what the
 * master sends meanwhile. */
static int kid_concurrent(int rd, int wr, void *arg)
{
    (void)arg;
    ripc_client *c = w_open();
    _Atomic int stop = 0;
    struct reader r = {.stop = &stop, .c = c};
    WCHECK(pthread_create(&r.th, NULL, read_loop, &r) == 0, "reader thread");
    /* The stream starts once the master's readers have found us, so that
     * they read while it runs however the threads are scheduled. */
    char go = 0;
    WCHECK(ripc_test_read_within(rd, &go, 1, 60000) == 0 && go == 'g', "no go from the master");
    unsigned char buf[256] = {0};
    for (int i = 0; i < N_STREAM; i++) {
        int rc = ripc_client_send(c, T_ONE, buf, 1 + (size_t)i % sizeof buf, 10000);
        WCHECK(rc == 0, "send %d: %s", i, ripc_strerror(rc));
        ripc_msg m;
        while (ripc_client_recv(c, &m, 0) == 0)
            ;
        if (i % 1000 == 0)
            w_sync(c);
    }
    w_sync(c);
    atomic_store(&stop, 1);
    pthread_join(r.th, NULL);
    WCHECK(!r.bad, "a client counter went backwards or a call failed");
    ripc_test_write_all(wr, "d", 1);
    ripc_client_close(c);
    return 0;
}

static void test_stats_concurrent_readers(void **state)
{
    (void)state;
    ripc_options o = opts();
    open_server(&o);
    start(kid_concurrent, 2);
    _Atomic int stop = 0;
    struct reader r[2] = {{.stop = &stop}, {.stop = &stop}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&r[i].th, NULL, read_loop, &r[i]), 0);
    uint64_t found = ripc_test_now_ms() + 60000;
    while ((atomic_load(&r[0].reads) == 0 || atomic_load(&r[1].reads) == 0) &&
           ripc_test_now_ms() < found)
        usleep(1000);
    assert_true(atomic_load(&r[0].reads) > 0 && atomic_load(&r[1].reads) > 0);
    to_kid('g');
    /* A sender too, so that the `out` half is written while it is read. */
    unsigned char msg[32] = {0};
    char d = 0;
    uint64_t end = ripc_test_now_ms() + 60000;
    /* A send, then up to 1 ms for the worker's "done". */
    while (ripc_test_read_within(F.from_kid, &d, 1, 1) != 0 && ripc_test_now_ms() < end)
        if (ripc_test_master_joined(&F.m))
            (void)ripc_server_send(F.m.s, ripc_test_master_last_id(&F.m), T_BULK, msg, sizeof msg,
                                   0);
    assert_int_equal(d, 'd');
    assert_int_equal(ripc_test_wait(F.kid), 0);
    F.kid = 0;
    wait_left(1);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(r[i].th, NULL);
        assert_false(r[i].bad);
        assert_true(r[i].reads > 0);
    }
    ripc_server_stats_t ss = server_stats();
    assert_int_equal(ss.peers_total, 1);
    assert_int_equal(ss.left_bye, 1);
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stats_exact_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_concurrent_readers, setup, teardown),
    };
    return RIPC_TEST_RUN_GROUP("stats", g_transport_name, tests);
}

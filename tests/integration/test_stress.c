/*
 * A multi-threaded master under churn, for ThreadSanitizer (CI runs it in a
 * TSan build; it is an ordinary integration test elsewhere):
 * ripc_server_run(s, 2) on a thread, four application threads sending,
 * sending batches, broadcasting and changing a handler, while workers join,
 * talk, and leave by goodbye, by exit without goodbye, and by SIGKILL in
 * the middle of their stream; then stop, then close with workers still
 * connected.
 *
 * Usage: test_stress [shm|socket] [test-name-filter]
 *        test_stress worker <shm|socket> <url> <role> <index>   (internal)
 *
 * Workers are this program re-executed (ripc_test_spawn_self): a child
 * forked from a process with threads and then starting threads of its own
 * is outside what TSan supports, and its allocator state is whatever the
 * other threads left (ASan's allocator does not lock around fork). Each
 * worker writes one line to its stdout per milestone; the master reads
 * them, so every step is ordered by a pipe, never by a sleep.
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
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ringipc.h"
#include "support/support.h"
#include "support/workers.h"

enum { T_MSG = 1, T_REQ, T_PUSH, T_BCAST, T_OPT };
enum { R_BYE, R_EXIT, R_KILL, R_LINGER, R_NROLES };
static const char *const role_name[R_NROLES] = {"bye", "exit", "kill", "linger"};

#define WAVES       6
#define WORKER_OPS  1500 /* one-way messages per worker (every 8th also a request) */
#define APP_THREADS 4
#define MAX_IDS     256
#define PAYLOAD_MAX 512

static int g_transport = RIPC_TRANSPORT_SHM;
static const char *g_transport_name = "shm";

/* Payload: u32 worker index, u32 sequence number, then filler derived
 * from both (so either side can check a message byte for byte). */
static size_t mk_payload(unsigned char *buf, uint32_t idx, uint32_t seq, size_t extra)
{
    memcpy(buf, &idx, 4);
    memcpy(buf + 4, &seq, 4);
    ripc_test_fill(buf + 8, extra, ((uint64_t)idx << 32) | seq);
    return 8 + extra;
}

static int ck_payload(const void *data, uint64_t len, uint32_t *idx, uint32_t *seq)
{
    if (len < 8 || len > PAYLOAD_MAX)
        return 0;
    memcpy(idx, data, 4);
    memcpy(seq, (const unsigned char *)data + 4, 4);
    return ripc_test_check((const unsigned char *)data + 8, (size_t)len - 8,
                           ((uint64_t)*idx << 32) | *seq);
}

/* ---- the worker (a separate process) ---- */

/* Take in whatever the master pushed, without waiting. */
static void drain(ripc_client *c)
{
    ripc_msg m;
    int rc;
    while ((rc = ripc_client_recv(c, &m, 0)) == 0)
        WCHECK(m.kind == RIPC_ONEWAY && (m.type == T_PUSH || m.type == T_BCAST) &&
                   m.peer_id == 0 && m.len >= 8 && m.len <= PAYLOAD_MAX,
               "pushed message: kind %u type %u len %llu", m.kind, m.type,
               (unsigned long long)m.len);
    WCHECK(rc == -EAGAIN, "recv: %s", ripc_strerror(rc));
}

static int worker_main(const char *url, int role, uint32_t idx)
{
    ripc_options o;
    memset(&o, 0, sizeof o);
    o.transport = g_transport;
    o.ring_bytes = 64 * 1024; /* small rings: senders on both sides meet full rings */
    o.name = role_name[role];
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, url, &o, why, sizeof why);
    WCHECK(rc == 0, "open %s: %s (%s)", url, ripc_strerror(rc), why);
    ripc_test_say("J\n");
    uint64_t rs = 0x57E55u + idx;
    unsigned char buf[PAYLOAD_MAX];
    uint32_t n = role == R_KILL ? UINT32_MAX : WORKER_OPS;
    for (uint32_t seq = 0; seq < n; seq++) {
        size_t len = mk_payload(buf, idx, seq, ripc_test_rand(&rs) % (PAYLOAD_MAX - 8));
        rc = ripc_client_send(c, T_MSG, buf, len, 30000);
        WCHECK(rc == 0, "send %u: %s", seq, ripc_strerror(rc));
        if (seq % 8 == 0) {
            ripc_msg r;
            rc = ripc_client_request(c, T_REQ, buf, len, &r, 30000);
            WCHECK(rc == 0, "request %u: %s", seq, ripc_strerror(rc));
            WCHECK(r.kind == RIPC_REPLY && r.len == len && memcmp(r.data, buf, len) == 0,
                   "reply %u: kind %u len %llu, want %zu", seq, r.kind,
                   (unsigned long long)r.len, len);
        }
        if (seq % 32 == 0) {
            /* No handler, or one an application thread set a moment ago. */
            rc = ripc_client_send(c, T_OPT, buf, len, 30000);
            WCHECK(rc == 0, "send T_OPT: %s", ripc_strerror(rc));
        }
        drain(c);
        if (role == R_KILL && seq == 200)
            ripc_test_say("M\n"); /* mid-stream: the master kills us now */
    }
    switch (role) {
    case R_BYE:
        ripc_client_close(c);
        return 0;
    case R_EXIT:
        _exit(0); /* no goodbye, no cleanup: the master sees the connection end */
    default:      /* R_LINGER */
        ripc_test_say("D\n");
        for (;;) {
            ripc_msg m;
            rc = ripc_client_recv(c, &m, -1);
            if (rc < 0)
                break;
        }
        WCHECK(rc == -EPIPE, "recv until the master closes: %s", ripc_strerror(rc));
        ripc_client_close(c);
        return 0;
    }
}

/* ---- the master ---- */

static struct {
    ripc_server *s;
    _Atomic int joined, left;
    _Atomic int left_by[R_NROLES][2]; /* [role][as expected?] */
    _Atomic uint32_t max_id;
    _Atomic uint64_t msgs, reqs, opts, app_sent, app_bcast;
    _Atomic int stop_apps;
    uint32_t next_seq[MAX_IDS]; /* per peer: one dispatch thread at a time */
    ripc_test_failure fail;
} g;

static int role_of(ripc_peer *p)
{
    const char *n = ripc_peer_name(p);
    for (int r = 0; r < R_NROLES; r++)
        if (n && strcmp(n, role_name[r]) == 0)
            return r;
    return -1;
}

static void on_joined(ripc_peer *p, void *arg)
{
    (void)arg;
    uint32_t id = ripc_peer_id(p);
    if (id == 0 || id >= MAX_IDS || role_of(p) < 0) {
        ripc_test_fail_once(&g.fail, "joined: id %u, name %s", id, ripc_peer_name(p));
        return;
    }
    uint32_t hi = atomic_load(&g.max_id);
    while (id > hi && !atomic_compare_exchange_weak(&g.max_id, &hi, id)) {
    }
    atomic_fetch_add(&g.joined, 1);
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    (void)arg;
    int r = role_of(p);
    if (r < 0) {
        ripc_test_fail_once(&g.fail, "left: unknown worker %s", ripc_peer_name(p));
        return;
    }
    int want = r == R_BYE ? RIPC_LEFT_BYE : r == R_LINGER ? -ECANCELED : -EPIPE;
    atomic_fetch_add(&g.left_by[r][reason == want], 1);
    atomic_fetch_add(&g.left, 1);
}

static void h_msg(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    (void)arg;
    uint32_t idx, seq, id = ripc_peer_id(p);
    if (id >= MAX_IDS || msg->kind != RIPC_ONEWAY || !ck_payload(msg->data, msg->len, &idx, &seq)) {
        ripc_test_fail_once(&g.fail, "peer %u: bad one-way message (kind %u len %llu)", id,
                            msg->kind, (unsigned long long)msg->len);
        return;
    }
    if (seq != g.next_seq[id]) {
        ripc_test_fail_once(&g.fail, "peer %u: message %u, want %u", id, seq, g.next_seq[id]);
        return;
    }
    g.next_seq[id]++;
    atomic_fetch_add(&g.msgs, 1);
}

static void h_req(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    (void)arg;
    uint32_t idx, seq;
    if (msg->kind != RIPC_REQUEST || !ck_payload(msg->data, msg->len, &idx, &seq)) {
        ripc_test_fail_once(&g.fail, "peer %u: bad request", ripc_peer_id(p));
        return;
    }
    int rc = ripc_reply(p, msg, msg->data, msg->len);
    if (rc != 0 && !(rc == -EPIPE && role_of(p) == R_KILL)) {
        ripc_test_fail_once(&g.fail, "peer %u: reply: %s", ripc_peer_id(p), ripc_strerror(rc));
        return;
    }
    atomic_fetch_add(&g.reqs, 1);
}

static void h_opt(ripc_peer *p, const ripc_msg *msg, void *arg)
{
    (void)p;
    (void)msg;
    atomic_fetch_add((_Atomic uint64_t *)arg, 1);
}

static int send_ok(int rc)
{
    return rc == 0 || rc == -ENOENT || rc == -EPIPE || rc == -EAGAIN || rc == -ETIMEDOUT;
}

/* An application thread: sends to whoever is there, in every way the API
 * offers, until told to stop. */
static void *app_main(void *arg)
{
    uint32_t me = (uint32_t)(uintptr_t)arg;
    uint64_t rs = 0xA11CEu + me;
    unsigned char buf[PAYLOAD_MAX];
    for (uint32_t seq = 0; !atomic_load(&g.stop_apps); seq++) {
        uint32_t hi = atomic_load(&g.max_id);
        uint32_t id = hi ? 1 + (uint32_t)(ripc_test_rand(&rs) % hi) : 1;
        size_t len = mk_payload(buf, 0xA000u + me, seq, ripc_test_rand(&rs) % 200);
        int what = (int)(ripc_test_rand(&rs) % 32), rc;
        if (what == 0) {
            rc = ripc_server_broadcast(g.s, T_BCAST, buf, len, 0);
            if (rc < 0)
                ripc_test_fail_once(&g.fail, "app %u: broadcast: %s", me, ripc_strerror(rc));
            atomic_fetch_add(&g.app_bcast, 1);
        } else if (what == 1) {
            ripc_out out[4];
            for (int i = 0; i < 4; i++)
                out[i] = (ripc_out){.type = T_PUSH, .data = buf, .len = len};
            rc = ripc_server_send_batch(g.s, id, out, 4, 2);
            if (rc < 0 && !send_ok(rc))
                ripc_test_fail_once(&g.fail, "app %u: send_batch: %s", me, ripc_strerror(rc));
        } else if (what == 2 && me == 0) {
            /* The handler table changes under the dispatch threads' feet. */
            rc = ripc_server_handle(g.s, T_OPT, (seq & 64) ? h_opt : NULL, &g.opts);
            if (rc != 0)
                ripc_test_fail_once(&g.fail, "app %u: handle: %s", me, ripc_strerror(rc));
        } else {
            rc = ripc_server_send(g.s, id, T_PUSH, buf, len, what & 1 ? 0 : 2);
            if (!send_ok(rc))
                ripc_test_fail_once(&g.fail, "app %u: send to %u: %s", me, id, ripc_strerror(rc));
            if (rc == 0)
                atomic_fetch_add(&g.app_sent, 1);
        }
        if ((seq & 255) == 0)
            (void)ripc_server_peer_count(g.s);
    }
    return NULL;
}

struct wk {
    ripc_test_child c;
    int role;
};

static struct wk start_worker(const char *url, int role, int idx)
{
    char sidx[16];
    snprintf(sidx, sizeof sidx, "%d", idx);
    char *argv[] = {"test_stress",          "worker",   (char *)g_transport_name, (char *)url,
                    (char *)role_name[role], sidx, NULL};
    return (struct wk){.c = ripc_test_child_spawn(argv, role_name[role]), .role = role};
}

static void test_stress_churn_under_threads(void **state)
{
    (void)state;
    char dir[] = "/tmp/ripc-stress-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64], url[80];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(url, sizeof url, "unix:%s", path);

    ripc_options o;
    memset(&o, 0, sizeof o);
    o.transport = g_transport;
    assert_int_equal(ripc_test_server_open(&g.s, url, &o), 0);
    assert_int_equal(ripc_server_on_peer(g.s, on_joined, on_left, NULL), 0);
    assert_int_equal(ripc_server_handle(g.s, T_MSG, h_msg, NULL), 0);
    assert_int_equal(ripc_server_handle(g.s, T_REQ, h_req, NULL), 0);

    ripc_test_runner run;
    pthread_t apps[APP_THREADS];
    assert_int_equal(ripc_test_run_start(&run, g.s, 2), 0);
    for (uintptr_t i = 0; i < APP_THREADS; i++)
        assert_int_equal(pthread_create(&apps[i], NULL, app_main, (void *)i), 0);

    /* Waves of workers; each wave's joins and leaves overlap with the
     * application threads' traffic and with each other. */
    static const int wave_roles[] = {R_BYE, R_EXIT, R_KILL, R_BYE, R_KILL};
    enum { PER_WAVE = sizeof wave_roles / sizeof wave_roles[0] };
    int idx = 0, expected[R_NROLES] = {0};
    for (int wave = 0; wave < WAVES; wave++) {
        struct wk w[PER_WAVE];
        for (int i = 0; i < PER_WAVE; i++)
            w[i] = start_worker(url, wave_roles[i], idx++);
        for (int i = 0; i < PER_WAVE; i++) {
            ripc_test_child_expect(&w[i].c, 'J');
            expected[w[i].role]++;
        }
        for (int i = 0; i < PER_WAVE; i++)
            if (w[i].role == R_KILL) {
                ripc_test_child_expect(&w[i].c, 'M');
                assert_int_equal(kill(w[i].c.pid, SIGKILL), 0);
            }
        for (int i = 0; i < PER_WAVE; i++)
            ripc_test_child_finish(&w[i].c, w[i].role == R_KILL ? 128 + SIGKILL : 0);
        ripc_test_assert_no_failure(&g.fail);
    }
    /* Two workers stay connected through stop and close. */
    struct wk lw[2];
    for (int i = 0; i < 2; i++)
        lw[i] = start_worker(url, R_LINGER, idx++);
    for (int i = 0; i < 2; i++) {
        ripc_test_child_expect(&lw[i].c, 'J');
        ripc_test_child_expect(&lw[i].c, 'D');
        expected[R_LINGER]++;
    }

    atomic_store(&g.stop_apps, 1);
    for (int i = 0; i < APP_THREADS; i++)
        assert_int_equal(pthread_join(apps[i], NULL), 0);
    ripc_server_stop(g.s);
    assert_int_equal(ripc_test_run_join(&run), 0);
    ripc_server_close(g.s);
    g.s = NULL;
    for (int i = 0; i < 2; i++)
        ripc_test_child_finish(&lw[i].c, 0);
    unlink(path);
    rmdir(dir);

    ripc_test_assert_no_failure(&g.fail);
    print_message("%d workers; master took %llu messages, %llu requests, %llu optional; "
                  "application threads sent %llu, broadcast %llu times\n",
                  idx, (unsigned long long)g.msgs, (unsigned long long)g.reqs,
                  (unsigned long long)g.opts, (unsigned long long)g.app_sent,
                  (unsigned long long)g.app_bcast);
    assert_int_equal(atomic_load(&g.joined), idx);
    assert_int_equal(atomic_load(&g.left), idx);
    for (int r = 0; r < R_NROLES; r++) {
        if (g.left_by[r][0])
            fail_msg("%d %s workers left with an unexpected reason", g.left_by[r][0],
                     role_name[r]);
        assert_int_equal(g.left_by[r][1], expected[r]);
    }
    /* Every message of a worker that said goodbye was handled (one that
     * exits without goodbye may lose what its socket-mode queue held). */
    assert_true(atomic_load(&g.msgs) >= (uint64_t)WAVES * 2 * WORKER_OPS);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "worker") == 0) {
        if (argc != 6)
            return 2;
        g_transport = strcmp(argv[2], "socket") == 0 ? RIPC_TRANSPORT_SOCKET : RIPC_TRANSPORT_SHM;
        for (int r = 0; r < R_NROLES; r++)
            if (strcmp(argv[4], role_name[r]) == 0)
                return worker_main(argv[3], r, (uint32_t)atoi(argv[5]));
        return 2;
    }
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_churn_under_threads),
    };
    return RIPC_TEST_RUN_GROUP("stress", g_transport_name, tests);
}

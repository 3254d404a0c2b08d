/*
 * The master's stream to one worker (src/server_send.c): a thread that keeps
 * sending to the same worker goes through a per-thread peer cache and the
 * peer's send-lock bias, without the mutex. These tests drive the edges of
 * that fast path with real processes: several threads streaming to one
 * worker (each thread's messages in order, the bias passing between them),
 * the worker killed while a thread streams to it (the drop withdraws the
 * bias; the cached peer is never used once its removal is visible), and a
 * new worker afterwards (the cache moves on).
 *
 * Usage: test_send_stream [shm|socket] [test-name-filter]
 *        test_send_stream sink <shm|socket> <url>   (internal)
 *
 * The worker is this program re-executed (ripc_test_spawn_self); it writes
 * one line to its stdout per milestone, so every step is ordered by a pipe.
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

enum { T_SEQ = 1, T_END };

#define SENDERS     3
#define STREAM_MSGS 20000u /* from sender 0 before the worker says 'M' */
#define PAYLOAD     64

static int g_transport = RIPC_TRANSPORT_SHM;
static const char *g_transport_name = "shm";

/* ---- the worker: checks each sender's order, reports milestones ---- */

/* Payload: u32 sender, u32 sequence number, filler derived from both. */
static void mk_payload(unsigned char *buf, uint32_t who, uint32_t seq)
{
    memcpy(buf, &who, 4);
    memcpy(buf + 4, &seq, 4);
    ripc_test_fill(buf + 8, PAYLOAD - 8, ((uint64_t)who << 32) | seq);
}

static int sink_main(const char *url)
{
    ripc_options o;
    memset(&o, 0, sizeof o);
    o.transport = g_transport;
    o.ring_bytes = 64 * 1024; /* small: senders meet a full ring and wait */
    ripc_client *c = NULL;
    char why[256] = "";
    int rc = ripc_client_open_ex(&c, url, &o, why, sizeof why);
    WCHECK(rc == 0, "open %s: %s (%s)", url, ripc_strerror(rc), why);
    ripc_test_say("J\n");
    uint32_t next[SENDERS] = {0};
    int said_m = 0;
    for (;;) {
        ripc_msg m;
        rc = ripc_client_recv(c, &m, -1);
        if (rc == -EPIPE)
            break; /* the master closed */
        WCHECK(rc == 0, "recv: %s", ripc_strerror(rc));
        if (m.type == T_END) {
            ripc_test_say("E\n");
            continue;
        }
        uint32_t who, seq;
        WCHECK(m.type == T_SEQ && m.len == PAYLOAD, "type %u len %llu", m.type,
               (unsigned long long)m.len);
        memcpy(&who, m.data, 4);
        memcpy(&seq, (const unsigned char *)m.data + 4, 4);
        WCHECK(who < SENDERS && seq == next[who], "sender %u: message %u, want %u", who, seq,
               who < SENDERS ? next[who] : 0);
        WCHECK(ripc_test_check((const unsigned char *)m.data + 8, PAYLOAD - 8,
                               ((uint64_t)who << 32) | seq),
               "sender %u message %u: payload", who, seq);
        next[who]++;
        if (!said_m && next[0] >= STREAM_MSGS) {
            said_m = 1;
            ripc_test_say("M\n"); /* mid-stream: the master may kill us now */
        }
    }
    ripc_client_close(c);
    return 0;
}

/* ---- the master ---- */

static struct {
    ripc_server *s;
    _Atomic uint32_t target; /* the id the senders stream to */
    _Atomic uint32_t gone;   /* an id whose `left` has run: sends to it say -ENOENT */
    _Atomic int stop;
    _Atomic uint64_t sent[SENDERS];
    ripc_test_failure fail;
} g;

static void on_joined(ripc_peer *p, void *arg)
{
    (void)arg;
    atomic_store(&g.target, ripc_peer_id(p));
}

static void on_left(ripc_peer *p, int reason, void *arg)
{
    (void)reason;
    (void)arg;
    /* After the peer left the table: from here on its id is unknown. */
    atomic_store(&g.gone, ripc_peer_id(p));
}

/*
 * Sender 0 streams single sends (it earns the bias); sender 1 sends one
 * message now and then (each takes the bias away); sender 2 sends batches.
 * Each keeps its own sequence per worker: a message that did not go is
 * sent again. Once an id's `left` has run, a send to it must say -ENOENT:
 * a cached peer must not outlive its removal.
 */
static void *sender_main(void *arg)
{
    uint32_t me = (uint32_t)(uintptr_t)arg, seq = 0, id = 0;
    unsigned char buf[4][PAYLOAD];
    /* Senders 1 and 2 go once per `pace` messages of sender 0, which so
     * earns the bias between their visits and loses it at each. */
    uint64_t pace = me == 1 ? 1000 : 300, last = 0;
    while (!atomic_load(&g.stop)) {
        uint32_t t = atomic_load(&g.target);
        if (t != id) {
            id = t; /* a new worker: a new sequence */
            seq = 0;
        }
        uint64_t lead = atomic_load(&g.sent[0]);
        if (id == 0 || (me != 0 && lead - last < pace && atomic_load(&g.gone) != id)) {
            sched_yield();
            continue;
        }
        last = lead;
        /* Read before the send: if `left` ran before, the send began after it. */
        int gone = atomic_load(&g.gone) == id;
        int rc;
        uint32_t n = 1;
        if (me == 2) {
            ripc_out out[4];
            for (int i = 0; i < 4; i++) {
                mk_payload(buf[i], me, seq + (uint32_t)i);
                out[i] = (ripc_out){.type = T_SEQ, .data = buf[i], .len = PAYLOAD};
            }
            rc = ripc_server_send_batch(g.s, id, out, 4, 5000);
            if (rc > 0) {
                n = (uint32_t)rc;
                rc = 0;
            }
        } else {
            mk_payload(buf[0], me, seq);
            rc = ripc_server_send(g.s, id, T_SEQ, buf[0], PAYLOAD, me == 0 ? 100 : 5000);
        }
        if (rc == 0) {
            seq += n;
            atomic_fetch_add(&g.sent[me], n);
        }
        if (gone && rc != -ENOENT)
            ripc_test_fail_once(&g.fail, "sender %u: send to %u after it left: %s", me, id,
                                rc == 0 ? "sent" : ripc_strerror(rc));
        else if (rc != 0 && rc != -ETIMEDOUT && rc != -EAGAIN && rc != -EPIPE && rc != -ENOENT)
            ripc_test_fail_once(&g.fail, "sender %u: send to %u: %s", me, id, ripc_strerror(rc));
        if (gone || rc == -ENOENT || rc == -EPIPE)
            sched_yield(); /* waiting for the next worker */
    }
    return NULL;
}

static ripc_test_child start_sink(const char *url)
{
    char *argv[] = {"test_send_stream", "sink", (char *)g_transport_name, (char *)url, NULL};
    return ripc_test_child_spawn(argv, NULL);
}

/* The master of one test at a fresh address (into url), in this test's
 * transport, whose peer callbacks track the current worker and the last
 * one that left. */
static void open_master(char *url, size_t len, const char *tag)
{
    ripc_test_unix_url(url, len, tag);
    ripc_options o;
    memset(&o, 0, sizeof o);
    o.transport = g_transport;
    assert_int_equal(ripc_test_server_open(&g.s, url, &o), 0);
    atomic_store(&g.target, 0);
    atomic_store(&g.gone, 0);
    assert_int_equal(ripc_server_on_peer(g.s, on_joined, on_left, NULL), 0);
}

static void wait_gone(uint32_t id)
{
    uint64_t end = ripc_test_now_ms() + 30000;
    while (atomic_load(&g.gone) != id) {
        if (ripc_test_now_ms() > end)
            fail_msg("worker %u was not dropped within 30 s", id);
        sched_yield();
    }
}

static void test_send_stream_threads_kill_and_rejoin(void **state)
{
    (void)state;
    char url[128];
    open_master(url, sizeof url, "send-stream");
    ripc_test_runner run;
    assert_int_equal(ripc_test_run_start(&run, g.s, 2), 0);
    pthread_t th[SENDERS];
    for (uintptr_t i = 0; i < SENDERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sender_main, (void *)i), 0);

    /* A worker killed in the middle of the streams. */
    ripc_test_child w = start_sink(url);
    ripc_test_child_expect(&w, 'J');
    ripc_test_child_expect(&w, 'M');
    uint32_t first = atomic_load(&g.target);
    assert_int_equal(kill(w.pid, SIGKILL), 0);
    ripc_test_child_finish(&w, 128 + SIGKILL);
    wait_gone(first);

    /* The next one gets every thread's stream in order, to the end. */
    uint64_t before[SENDERS];
    ripc_test_child w2 = start_sink(url);
    ripc_test_child_expect(&w2, 'J');
    for (int i = 0; i < SENDERS; i++)
        before[i] = atomic_load(&g.sent[i]);
    ripc_test_child_expect(&w2, 'M');
    /* Every sender reaches the second worker before the streams end (the
     * occasional ones go once per `pace` of sender 0's messages). */
    uint64_t end = ripc_test_now_ms() + 30000;
    for (int i = 0; i < SENDERS; i++)
        while (atomic_load(&g.sent[i]) == before[i] && !ripc_test_failed(&g.fail)) {
            if (ripc_test_now_ms() > end)
                fail_msg("sender %d sent nothing to the second worker within 30 s", i);
            sched_yield();
        }
    atomic_store(&g.stop, 1);
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    uint32_t second = atomic_load(&g.target);
    assert_int_not_equal(second, first);
    /* From this thread: a first send here (the cache is per thread), then
     * the end marker the worker acknowledges after all that came before. */
    int rc = ripc_server_send(g.s, first, T_SEQ, "x", 1, 0);
    assert_int_equal(rc, -ENOENT);
    assert_int_equal(ripc_server_send(g.s, second, T_END, NULL, 0, 5000), 0);
    ripc_test_child_expect(&w2, 'E');
    ripc_server_stop(g.s);
    assert_int_equal(ripc_test_run_join(&run), 0);
    ripc_server_close(g.s);
    g.s = NULL;
    ripc_test_child_finish(&w2, 0);
    ripc_test_assert_no_failure(&g.fail);
    print_message("sent %llu, %llu, %llu\n", (unsigned long long)atomic_load(&g.sent[0]),
                  (unsigned long long)atomic_load(&g.sent[1]),
                  (unsigned long long)atomic_load(&g.sent[2]));
}

/*
 * One thread, no dispatch thread: stream to a worker until the fast path
 * is in use, let the worker leave, and send to its id again: -ENOENT once
 * the drop is done, from the same thread whose cache holds the peer, also
 * after more workers came and went (more removals) and with a new worker
 * on another id.
 */
static void test_send_stream_cached_peer_dropped(void **state)
{
    (void)state;
    char url[128];
    open_master(url, sizeof url, "send-cached");
    ripc_test_child w = start_sink(url);
    while (atomic_load(&g.target) == 0)
        assert_true(ripc_server_poll(g.s, 100) >= 0);
    ripc_test_child_expect(&w, 'J');
    uint32_t id = atomic_load(&g.target);
    unsigned char buf[PAYLOAD];
    for (uint32_t seq = 0; seq < STREAM_MSGS; seq++) {
        mk_payload(buf, 0, seq);
        assert_int_equal(ripc_server_send(g.s, id, T_SEQ, buf, PAYLOAD, 10000), 0);
    }
    ripc_test_child_expect(&w, 'M');
    assert_int_equal(kill(w.pid, SIGKILL), 0);
    ripc_test_child_finish(&w, 128 + SIGKILL);
    while (atomic_load(&g.gone) != id)
        assert_true(ripc_server_poll(g.s, 100) >= 0);
    /* Dropped: its rings are unmapped, the struct may be freed. */
    assert_int_equal(ripc_server_send(g.s, id, T_SEQ, buf, PAYLOAD, 0), -ENOENT);
    ripc_out one = {.type = T_SEQ, .data = buf, .len = PAYLOAD};
    assert_int_equal(ripc_server_send_batch(g.s, id, &one, 1, 0), -ENOENT);
    /* Another worker: a send to it works, the old id stays unknown. */
    ripc_test_child w2 = start_sink(url);
    while (atomic_load(&g.target) == id)
        assert_true(ripc_server_poll(g.s, 100) >= 0);
    ripc_test_child_expect(&w2, 'J');
    uint32_t id2 = atomic_load(&g.target);
    mk_payload(buf, 0, 0);
    assert_int_equal(ripc_server_send(g.s, id2, T_SEQ, buf, PAYLOAD, 5000), 0);
    assert_int_equal(ripc_server_send(g.s, id, T_SEQ, buf, PAYLOAD, 0), -ENOENT);
    assert_int_equal(ripc_server_send(g.s, id2, T_END, NULL, 0, 5000), 0);
    ripc_test_child_expect(&w2, 'E');
    /* Close with the fast path's peer still connected: the send after close
     * has begun is -ECANCELED as ever (here: the server is gone, so only
     * close itself is checked to end). */
    ripc_server_close(g.s);
    g.s = NULL;
    ripc_test_child_finish(&w2, 0);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "sink") == 0) {
        if (argc != 4)
            return 2;
        g_transport = strcmp(argv[2], "socket") == 0 ? RIPC_TRANSPORT_SOCKET : RIPC_TRANSPORT_SHM;
        return sink_main(argv[3]);
    }
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_stream_threads_kill_and_rejoin),
        cmocka_unit_test(test_send_stream_cached_peer_dropped),
    };
    return RIPC_TEST_RUN_GROUP("send_stream", g_transport_name, tests);
}

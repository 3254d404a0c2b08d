/* SPDX-License-Identifier: MIT */
/*
 * Idle workers and the dispatch loop's active set (src/server_park.c): many
 * idle workers connected beside a busy one (or none), until the master has
 * parked them; then every idle worker sends, and each message must arrive,
 * in order, and each worker's request be answered. With ripc_server_poll,
 * run(1) and run(2); per transport (argument: shm or socket, all workers
 * the same); CMake also runs the suite under `taskset -c 0`.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "support/support.h"

enum { T_CALL = 1, T_SEQ = 2 };
static int g_transport = RIPC_TRANSPORT_SHM;
static const char *g_transport_name = "shm";
#define IDLE  64  /* idle workers */
#define BURST 100 /* one-way messages each sends once parked */

struct msg {
    uint32_t idx; /* worker index in the child */
    uint32_t pad;
    uint64_t seq;
};

struct master {
    ripc_server *s;
    int threads; /* 0: ripc_server_poll */
    _Atomic int stop;
    _Atomic uint64_t want[IDLE + 1];
    _Atomic unsigned bad;
    pthread_t th;
};

static void on_seq(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)p;
    struct master *M = arg;
    struct msg x;
    if (m->len != sizeof x) {
        atomic_fetch_add(&M->bad, 1);
        return;
    }
    memcpy(&x, m->data, sizeof x);
    /* One worker's messages come in order, on one thread at a time. */
    if (x.idx > IDLE || atomic_load(&M->want[x.idx]) != x.seq)
        atomic_fetch_add(&M->bad, 1);
    else
        atomic_fetch_add(&M->want[x.idx], 1);
}

static void on_call(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)arg;
    ripc_reply(p, m, m->data, m->len);
}

static void *master_main(void *arg)
{
    struct master *M = arg;
    if (M->threads == 0)
        while (!atomic_load(&M->stop))
            ripc_server_poll(M->s, 20);
    else
        ripc_server_run(M->s, (unsigned)M->threads);
    return NULL;
}

static ripc_options small_rings(void)
{
    return (ripc_options){.ring_bytes = 16 << 10, .transport = g_transport};
}

static int request_ok(ripc_client *c, uint64_t v)
{
    ripc_msg r;
    if (ripc_client_request(c, T_CALL, &v, sizeof v, &r, 10000) < 0)
        return 0;
    uint64_t got;
    memcpy(&got, r.data, sizeof got);
    return r.len == sizeof got && got == v;
}

/* The workers, in one child: IDLE idle ones and one that is busy or not;
 * 'c' to the parent once all are connected; the busy one sends requests
 * until the parent says (a byte) that the master has parked the idle ones;
 * then each idle one sends BURST numbered messages and a request, the busy
 * one a request between them. */
static _Noreturn void workers(const char *url, int busy, int to_parent, int from_parent)
{
    static ripc_client *c[IDLE + 1];
    ripc_options o = small_rings();
    for (int i = 0; i <= IDLE; i++) {
        int rc = ripc_client_open(&c[i], url, &o);
        WCHECK(rc == 0, "open %d: %s", i, ripc_strerror(rc));
        WCHECK(strcmp(ripc_client_transport(c[i]), g_transport_name) == 0, "transport %s",
               ripc_client_transport(c[i]));
    }
    WCHECK(write(to_parent, "c", 1) == 1, "write");
    ripc_client *b = c[IDLE];
    char go;
    if (busy) {
        WCHECK(fcntl(from_parent, F_SETFL, O_NONBLOCK) == 0, "nonblock");
        for (uint64_t k = 0;; k++) {
            WCHECK(request_ok(b, k), "busy request %llu", (unsigned long long)k);
            if ((k & 255) == 0 && read(from_parent, &go, 1) == 1)
                break;
        }
    } else {
        WCHECK(read(from_parent, &go, 1) == 1, "read");
    }
    for (int i = 0; i < IDLE; i++) {
        for (uint64_t s = 0; s < BURST; s++) {
            struct msg m = {.idx = (uint32_t)i, .seq = s};
            int rc = ripc_client_send(c[i], T_SEQ, &m, sizeof m, 10000);
            WCHECK(rc == 0, "send %d/%llu: %s", i, (unsigned long long)s, ripc_strerror(rc));
        }
        WCHECK(request_ok(c[i], (uint64_t)i), "request of idle worker %d", i);
        if (busy)
            WCHECK(request_ok(b, (uint64_t)i), "busy request after worker %d", i);
    }
    /* The busy one's own numbered messages, behind everything else. */
    for (uint64_t s = 0; s < BURST; s++) {
        struct msg m = {.idx = IDLE, .seq = s};
        WCHECK(ripc_client_send(b, T_SEQ, &m, sizeof m, 10000) == 0, "busy send");
    }
    WCHECK(request_ok(b, 1), "last request");
    for (int i = 0; i <= IDLE; i++)
        ripc_client_close(c[i]);
    _exit(0);
}

static void run_case(int threads, int busy)
{
    static int cases;
    char url[96];
    snprintf(url, sizeof url, "unix:/tmp/ripc-idle-%d-%d.sock", (int)getpid(), cases++);
    struct master *M = calloc(1, sizeof *M);
    assert_non_null(M);
    M->threads = threads;
    ripc_options o = small_rings();
    assert_int_equal(ripc_server_open(&M->s, url, &o), 0);
    ripc_server_handle(M->s, T_CALL, on_call, M);
    ripc_server_handle(M->s, T_SEQ, on_seq, M);
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        workers(url, busy, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    assert_int_equal(pthread_create(&M->th, NULL, master_main, M), 0);
    char ch;
    assert_int_equal(read(up[0], &ch, 1), 1);
    /* Wait for the master to park the idle workers (a few coarse ticks;
     * the bound only ends a broken run). */
    unsigned want = busy ? IDLE : IDLE + 1;
    for (int ms = 0; ripc_server_parked_count(M->s) < want; ms++) {
        if (ms > 30000)
            fail_msg("only %u of %u workers parked after 30 s", ripc_server_parked_count(M->s),
                     want);
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    assert_int_equal(write(down[1], "p", 1), 1);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    if (threads)
        ripc_server_stop(M->s);
    atomic_store(&M->stop, 1);
    pthread_join(M->th, NULL);
    assert_int_equal(atomic_load(&M->bad), 0);
    for (int i = 0; i <= IDLE; i++)
        assert_int_equal(atomic_load(&M->want[i]), BURST);
    ripc_server_close(M->s);
    close(up[0]);
    close(down[1]);
    free(M);
}

static void test_idle_parked_poll(void **state)
{
    (void)state;
    run_case(0, 1);
}

static void test_idle_parked_run1(void **state)
{
    (void)state;
    run_case(1, 1);
}

static void test_idle_parked_run2(void **state)
{
    (void)state;
    run_case(2, 1);
}

static void test_idle_all_parked_poll(void **state)
{
    (void)state;
    run_case(0, 0);
}

static void test_idle_all_parked_run2(void **state)
{
    (void)state;
    run_case(2, 0);
}

int main(int argc, char **argv)
{
    if ((g_transport = ripc_test_transport_args(argc, argv, &g_transport_name)) < 0)
        return 2;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_parked_poll),     cmocka_unit_test(test_idle_parked_run1),
        cmocka_unit_test(test_idle_parked_run2),     cmocka_unit_test(test_idle_all_parked_poll),
        cmocka_unit_test(test_idle_all_parked_run2),
    };
    return RIPC_TEST_RUN_GROUP("idle", g_transport_name, tests);
}

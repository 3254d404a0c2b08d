/* SPDX-License-Identifier: MIT */
/*
 * Both processes on one CPU (CMake runs this under `taskset -c 0`; run by
 * hand, it pins itself to the first CPU it may use). There a spinner only
 * burns the slice its peer needs, so no side spins (ripc__spin_ok), and a
 * sleeper that sleeps after every message must not pay a remote fence
 * (membarrier) per sleep: the handshake picks plain fences for both rings.
 *
 *   decision        adaptive and spin workers: spin_us 0 on the worker,
 *                   neither ring on asymmetric fences (told by the
 *                   master's WELCOME); round trips echo intact
 *   master_killed   a worker in a request loop, its master SIGKILLed while
 *                   the worker sleeps for a reply: the request ends with
 *                   -EPIPE (the futex sleep looks at the control socket
 *                   between its slices, and skips the look before its
 *                   first when it looked within the clock tick)
 *   two_cpus        the contrast, where the process may use two CPUs (not
 *                   under taskset -c 0): spinning, and asymmetric fences
 *                   where membarrier is available
 *
 * Usage: test_onecpu [shm] [test-name-filter]
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "platform/thread.h"
#include "ringipc/ringipc.h"
#include "shm/fence.h"
#include "shm/ring_internal.h"
#include "src/client_internal.h"
#include "support/support.h"

enum { T_ECHO = 1, T_DIE = 2 };
#define ROUNDS 2000

static cpu_set_t g_start; /* the CPUs we were given */

/* Pin this process (and the children it forks from now on) to the first
 * CPU of the set we were given. */
static void pin_one(void)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &g_start)) {
            CPU_SET(i, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    assert_int_equal(ripc_test_cpus(), 1);
}

struct kill_arg {
    int ready_w;  /* master -> test: 'R' listening, 'D' in the T_DIE handler */
    pid_t worker; /* the worker's thread, to wait until it sleeps */
    pid_t wtid;
};

/* T_DIE: once the worker sleeps waiting for the reply, die without one. */
static void on_die(ripc_peer *p, const ripc_msg *m, void *arg)
{
    (void)p;
    (void)m;
    struct kill_arg *a = arg;
    ripc_test_write_all(a->ready_w, "D", 1);
    ripc_test_wait_sleeping(a->worker, a->wtid);
    kill(getpid(), SIGKILL);
}

/* The master child: an echo master (and T_DIE) at url, polled until its
 * worker has come and gone. */
static pid_t spawn_master(const char *url, int wait, struct kill_arg *a)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0)
        return pid;
    ripc_options o = {.wait = wait, .transport = RIPC_TRANSPORT_SHM};
    ripc_server *s = NULL;
    if (ripc_test_echo_master(&s, url, &o, T_ECHO) < 0)
        _exit(3);
    ripc_server_handle(s, T_DIE, on_die, a);
    ripc_test_write_all(a->ready_w, "R", 1);
    uint64_t end = ripc_test_now_ms() + 60000;
    int seen = 0;
    while (ripc_test_now_ms() < end) {
        if (ripc_server_poll(s, 100) < 0)
            _exit(4);
        unsigned n = ripc_server_peer_count(s);
        seen |= n > 0;
        if (seen && n == 0)
            break;
    }
    ripc_server_close(s);
    _exit(seen ? 0 : 5);
}

/* A master child and a worker (this process) with wait mode `wait`. */
static ripc_client *connect_pair(char *url, size_t url_len, int wait, struct kill_arg *a,
                                 pid_t *mpid, int *ready_r)
{
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    ripc_test_unix_url(url, url_len, "onecpu");
    a->ready_w = ready[1];
    a->worker = getpid();
    a->wtid = (pid_t)syscall(SYS_gettid);
    *mpid = spawn_master(url, wait, a);
    close(ready[1]);
    char b;
    assert_int_equal(ripc_test_read_all(ready[0], &b, 1), 0);
    assert_int_equal(b, 'R');
    *ready_r = ready[0];
    ripc_options o = {.wait = wait, .transport = RIPC_TRANSPORT_SHM};
    ripc_client *c = NULL;
    char why[200] = "";
    int rc = ripc_client_open_ex(&c, url, &o, why, sizeof why);
    if (rc != 0)
        fail_msg("client open: %s (%s)", ripc_strerror(rc), why);
    assert_string_equal(ripc_client_transport(c), "shm");
    return c;
}

static void echo_rounds(ripc_client *c)
{
    ripc_test_tally t = {0};
    for (uint64_t i = 0; i < ROUNDS; i++)
        if (ripc_test_echo_request(c, T_ECHO, i, 64 + (size_t)(i % 512), 10000, &t) < 0)
            fail_msg("round trip %llu: %s", (unsigned long long)i,
                     ripc_strerror(atomic_load(&t.err)));
    assert_int_equal(atomic_load(&t.ok), ROUNDS);
}

/* Connect in `wait` mode; check the spin and fence decisions against
 * `spins` (and membarrier's availability), then round trips. */
static void decision_case(int wait, int spins)
{
    char url[160];
    struct kill_arg a;
    pid_t mpid;
    int ready_r;
    ripc_client *c = connect_pair(url, sizeof url, wait, &a, &mpid, &ready_r);
    int fast = spins && ripc__remote_fence_init();
    if (spins)
        assert_true(c->ch.spin_us > 0);
    else
        assert_int_equal(c->ch.spin_us, 0);
    /* w->m: the master sleeps on it; m->w: we do (spin mode never
     * sleeps for data, but a full ring still makes it wait for room). */
    assert_int_equal(ripc__ring_fastpub(c->ch.tx), fast);
    assert_int_equal(ripc__ring_fastpub(c->ch.rx), fast);
    echo_rounds(c);
    ripc_client_close(c);
    assert_int_equal(ripc_test_wait(mpid), 0);
    close(ready_r);
}

static void test_onecpu_decision(void **state)
{
    (void)state;
    pin_one();
    /* The portable build decides from the CPUs online, not affinity. */
    if (ripc__spin_ok(getpid())) {
        print_message("SKIP: this build does not see CPU affinity\n");
        skip();
    }
    decision_case(RIPC_WAIT_ADAPTIVE, 0);
    decision_case(RIPC_WAIT_SPIN, 0);
}

static void test_onecpu_master_killed(void **state)
{
    (void)state;
    pin_one();
    static const int waits[] = {RIPC_WAIT_ADAPTIVE, RIPC_WAIT_BLOCK};
    for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++) {
        char url[160];
        struct kill_arg a;
        pid_t mpid;
        int ready_r;
        ripc_client *c = connect_pair(url, sizeof url, waits[i], &a, &mpid, &ready_r);
        echo_rounds(c); /* the futex waits have looked at the socket lately */
        ripc_msg r;
        uint64_t t0 = ripc_test_now_ms();
        int rc = ripc_client_request(c, T_DIE, "x", 1, &r, -1);
        uint64_t ms = ripc_test_now_ms() - t0;
        print_message("wait %d: the request saw its master's death after %llu ms\n", waits[i],
                      (unsigned long long)ms);
        assert_int_equal(rc, -EPIPE);
        char b;
        assert_int_equal(ripc_test_read_all(ready_r, &b, 1), 0);
        assert_int_equal(b, 'D'); /* it died in the handler, as planned */
        assert_int_equal(ripc_client_request(c, T_ECHO, "y", 1, &r, -1), -EPIPE);
        ripc_client_close(c);
        assert_int_equal(ripc_test_wait(mpid), 128 + SIGKILL);
        close(ready_r);
        unlink(url + strlen("unix:")); /* the dead master's socket file */
    }
}

static void test_onecpu_two_cpus(void **state)
{
    (void)state;
    if (CPU_COUNT(&g_start) < 2)
        skip(); /* under taskset -c 0: nothing to contrast with */
    assert_int_equal(sched_setaffinity(0, sizeof g_start, &g_start), 0);
    decision_case(RIPC_WAIT_ADAPTIVE, 1);
}

int main(int argc, char **argv)
{
    const char *name;
    if (ripc_test_transport_args(argc, argv, &name) != RIPC_TRANSPORT_SHM) {
        fprintf(stderr, "test_onecpu: shared memory only\n");
        return 2;
    }
    if (sched_getaffinity(0, sizeof g_start, &g_start) != 0)
        ripc_test_skip("sched_getaffinity: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onecpu_decision),
        cmocka_unit_test(test_onecpu_master_killed),
        cmocka_unit_test(test_onecpu_two_cpus),
    };
    return RIPC_TEST_RUN_GROUP("onecpu", name, tests);
}

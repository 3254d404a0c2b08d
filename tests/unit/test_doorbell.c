/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for shm/doorbell.h. Every kind-specific test runs once per kind
 * (names end in _eventfd / _futex / _socket) and skips with a reason when the
 * kind is not built or not usable here. Children report through their exit
 * status (cmocka asserts must not run in a child): 0 = fine, anything else
 * names the failed step. Ordering between processes goes through pipes, never
 * through sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm/doorbell.h"
#include "support/support.h"

static int kind_eventfd = RIPC_DB_EVENTFD;
static int kind_futex = RIPC_DB_FUTEX;
static int kind_socket = RIPC_DB_SOCKET;

/* Futex words live here: an anonymous shared page, so a forked child sees
 * the same word (and the same futex key) as the parent. */
static _Atomic uint32_t *g_words;
#define WORD (&g_words[0])

#define KIND_OF(state) (*(const int *)*(state))

static void need(int kind)
{
    if (!(ripc__doorbell_caps() & RIPC_DB_CAP(kind))) {
        print_message("SKIP: %s doorbells are not supported here\n", ripc__doorbell_name(kind));
        skip();
    }
}

static void open_db(ripc__doorbell *db, int kind)
{
    need(kind);
    assert_int_equal(ripc__doorbell_open(db, kind, kind == RIPC_DB_FUTEX ? WORD : NULL), 0);
    assert_int_equal(db->kind, kind);
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static int is_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    return fl >= 0 && (fl & FD_CLOEXEC) != 0;
}

static int is_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

/* A descriptor number that is certainly not open right now. */
static int closed_fd(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    close(p[0]);
    close(p[1]);
    return p[0];
}

static void put_byte(int fd, char c)
{
    assert_int_equal(write(fd, &c, 1), 1);
}

static void get_byte(int fd, char want)
{
    char c = 0;
    assert_int_equal(read(fd, &c, 1), 1);
    assert_int_equal(c, want);
}

/*
 * Child side: spin (yielding) until `pid` sleeps in the kernel, so the ring
 * that follows exercises a real wake-up rather than a pending one. Gives up
 * after 5 s and returns anyway: the test stays correct either way (a ring
 * before the wait is pending and consumed by it), only less sharp.
 */
static void until_sleeping(pid_t pid)
{
    char path[64], buf[512];
    struct timespec t0, t;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return; /* no /proc: nothing to look at */
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            return;
        buf[n] = 0;
        const char *rp = strrchr(buf, ')');
        if (rp != NULL && rp[1] == ' ' && rp[2] == 'S')
            return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 5)
            return;
        sched_yield();
    }
}

/* ---- tests ---- */

static void test_doorbell_ring_then_wait(void **state)
{
    ripc__doorbell db;
    open_db(&db, KIND_OF(state));
    uint32_t seen = ripc__doorbell_seq(&db);
    ripc__doorbell_ring(&db);
    /* Pending: a wait that may not sleep at all still sees it. */
    assert_int_equal(ripc__doorbell_wait(&db, seen, -1, 0), 1);
    seen = ripc__doorbell_seq(&db);
    ripc__doorbell_ring(&db);
    assert_int_equal(ripc__doorbell_wait(&db, seen, -1, -1), 1);
    /* Consumed: nothing left. */
    seen = ripc__doorbell_seq(&db);
    assert_int_equal(ripc__doorbell_wait(&db, seen, -1, 0), 0);
    ripc__doorbell_close(&db);
}

static void test_doorbell_wait_timeout_zero(void **state)
{
    ripc__doorbell db;
    open_db(&db, KIND_OF(state));
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), -1, 0), 0);
    ripc__doorbell_close(&db);
}

static void test_doorbell_wait_timeout_30ms(void **state)
{
    ripc__doorbell db;
    int sp[2];
    open_db(&db, KIND_OF(state));
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), -1, 30), 0);
    /* A quiet watch_fd changes nothing (futex: sliced sleep). */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), sp[0], 30), 0);
    close(sp[0]);
    close(sp[1]);
    ripc__doorbell_close(&db);
}

/* Child: adopt the ringer's end, say ready, wait for "go" and for the parent
 * to be asleep, ring. */
static void ringer_child(const ripc__doorbell *parent_db, int ready_w, int go_r)
{
    ripc__doorbell db;
    int rc;
    if (parent_db->kind == RIPC_DB_FUTEX)
        rc = ripc__doorbell_adopt(&db, RIPC_DB_FUTEX, -1, -1, parent_db->word);
    else
        rc = ripc__doorbell_adopt(&db, parent_db->kind, -1, parent_db->ring_fd, NULL);
    if (rc != 0)
        _exit(2);
    char c = 'r';
    if (write(ready_w, &c, 1) != 1)
        _exit(3);
    if (read(go_r, &c, 1) != 1 || c != 'g')
        _exit(4);
    until_sleeping(getppid());
    ripc__doorbell_ring(&db);
    ripc__doorbell_close(&db);
    _exit(0);
}

static void test_doorbell_cross_process(void **state)
{
    ripc__doorbell db;
    int ready[2], go[2];
    open_db(&db, KIND_OF(state));
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        ringer_child(&db, ready[1], go[0]);
    }
    close(ready[1]);
    close(go[0]);
    get_byte(ready[0], 'r');
    uint32_t seen = ripc__doorbell_seq(&db);
    put_byte(go[1], 'g');
    assert_int_equal(ripc__doorbell_wait(&db, seen, -1, -1), 1);
    assert_int_equal(ripc_test_wait(pid), 0);
    /* The one ring was consumed by that wait. */
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), -1, 0), 0);
    close(ready[0]);
    close(go[1]);
    ripc__doorbell_close(&db);
}

static void test_doorbell_watch_fd_peer_killed(void **state)
{
    ripc__doorbell db;
    int sp[2], ready[2], go[2];
    open_db(&db, KIND_OF(state));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Holds sp[1], the only copy once the parent closes its own. */
        char c = 'r';
        close(sp[0]);
        close(ready[0]);
        close(go[1]);
        if (write(ready[1], &c, 1) != 1)
            _exit(3);
        if (read(go[0], &c, 1) != 1 || c != 'g')
            _exit(4);
        until_sleeping(getppid());
        kill(getpid(), SIGKILL);
        _exit(5);
    }
    close(sp[1]);
    close(ready[1]);
    close(go[0]);
    get_byte(ready[0], 'r');
    put_byte(go[1], 'g');
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), sp[0], -1), 2);
    assert_int_equal(ripc_test_wait(pid), 128 + SIGKILL);
    close(sp[0]);
    close(ready[0]);
    close(go[1]);
    ripc__doorbell_close(&db);
}

static void test_doorbell_watch_fd_readable(void **state)
{
    ripc__doorbell db;
    int sp[2];
    open_db(&db, KIND_OF(state));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    put_byte(sp[1], 'x');
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), sp[0], 0), 2);
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), sp[0], -1), 2);
    /* A ring and a ready watch_fd together: the ring first, then watch_fd
     * (level-triggered) on the next wait. */
    uint32_t seen = ripc__doorbell_seq(&db);
    ripc__doorbell_ring(&db);
    assert_int_equal(ripc__doorbell_wait(&db, seen, sp[0], 0), 1);
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), sp[0], 0), 2);
    close(sp[0]);
    close(sp[1]);
    ripc__doorbell_close(&db);
}

static void test_doorbell_watch_fd_bad(void **state)
{
    ripc__doorbell db;
    open_db(&db, KIND_OF(state));
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), closed_fd(), 0), -EBADF);
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), closed_fd(), 30), -EBADF);
    ripc__doorbell_close(&db);
}

static void test_doorbell_rings_coalesce(void **state)
{
    ripc__doorbell db;
    open_db(&db, KIND_OF(state));
    uint32_t seen = ripc__doorbell_seq(&db);
    for (int i = 0; i < 1000; i++)
        ripc__doorbell_ring(&db);
    assert_int_equal(ripc__doorbell_wait(&db, seen, -1, 0), 1);
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), -1, 0), 0);
    /* drain() consumes without waiting. */
    for (int i = 0; i < 1000; i++)
        ripc__doorbell_ring(&db);
    ripc__doorbell_drain(&db);
    assert_int_equal(ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), -1, 0), 0);
    ripc__doorbell_close(&db);
}

/*
 * Lost wake-ups: parent and child hand a turn back and forth ROUNDS times,
 * each sleeping on its own doorbell with the caller's protocol (read the
 * sequence, check the condition, wait). A lost ring shows up as a wait that
 * times out (5 s) instead of a hang.
 */
#define ROUNDS 2000

static int ping_pong_side(ripc__doorbell *mine, ripc__doorbell *theirs, _Atomic uint32_t *turn,
                          uint32_t me)
{
    for (int i = 0; i < ROUNDS; i++) {
        for (;;) {
            uint32_t seen = ripc__doorbell_seq(mine);
            if (atomic_load(turn) == me)
                break;
            int rc = ripc__doorbell_wait(mine, seen, -1, 5000);
            if (rc != 1)
                return rc == 0 ? -ETIMEDOUT : rc;
        }
        atomic_store(turn, !me);
        ripc__doorbell_ring(theirs);
    }
    return 0;
}

static void test_doorbell_ping_pong(void **state)
{
    int kind = KIND_OF(state);
    ripc__doorbell a, b;
    need(kind);
    _Atomic uint32_t *turn = &g_words[32];
    atomic_store(turn, 0);
    assert_int_equal(ripc__doorbell_open(&a, kind, &g_words[16]), 0);
    assert_int_equal(ripc__doorbell_open(&b, kind, &g_words[17]), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(ping_pong_side(&b, &a, turn, 1) == 0 ? 0 : 1);
    assert_int_equal(ping_pong_side(&a, &b, turn, 0), 0);
    assert_int_equal(ripc_test_wait(pid), 0);
    ripc__doorbell_close(&a);
    ripc__doorbell_close(&b);
}

static volatile sig_atomic_t g_alarms;

static void on_alarm(int sig)
{
    (void)sig;
    g_alarms++;
}

/* Signals without SA_RESTART interrupt the sleep (EINTR) every 2 ms: the wait
 * goes back to sleep for the time left and still ends in a timeout. */
static void test_doorbell_wait_eintr(void **state)
{
    ripc__doorbell db;
    int sp[2];
    struct sigaction sa, old;
    struct itimerval it = {{0, 2000}, {0, 2000}}, off = {{0, 0}, {0, 0}};
    open_db(&db, KIND_OF(state));
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    g_alarms = 0;
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    int rc1 = ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), -1, 60);
    int rc2 = ripc__doorbell_wait(&db, ripc__doorbell_seq(&db), sp[0], 60);
    assert_int_equal(setitimer(ITIMER_REAL, &off, NULL), 0);
    assert_int_equal(sigaction(SIGALRM, &old, NULL), 0);
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    assert_true(g_alarms > 0);
    close(sp[0]);
    close(sp[1]);
    ripc__doorbell_close(&db);
}

static void test_doorbell_futex_word_moved(void **state)
{
    ripc__doorbell db;
    open_db(&db, RIPC_DB_FUTEX);
    uint32_t seen = ripc__doorbell_seq(&db);
    /* Somebody rang between the caller's read and its wait. */
    atomic_fetch_add(WORD, 1);
    assert_int_equal(ripc__doorbell_wait(&db, seen, -1, -1), 1);
    assert_int_equal(ripc__doorbell_seq(&db), seen + 1);
    ripc__doorbell_close(&db);
    assert_null(db.word);
}

static void test_doorbell_close_zeroed(void **state)
{
    ripc__doorbell db;
    int fd0_open = fd_is_open(0);
    memset(&db, 0, sizeof db); /* kind NONE, fds 0: stdin must survive */
    ripc__doorbell_close(&db);
    ripc__doorbell_close(&db);
    assert_int_equal(fd_is_open(0), fd0_open);
    assert_int_equal(db.kind, RIPC_DB_NONE);
    assert_int_equal(db.wait_fd, -1);
    assert_int_equal(db.ring_fd, -1);
    ripc__doorbell_close(NULL);
    /* Ringing or waiting on it is harmless / refused. */
    memset(&db, 0, sizeof db);
    ripc__doorbell_ring(&db);
    ripc__doorbell_drain(&db);
    assert_int_equal(ripc__doorbell_wait(&db, 0, -1, 0), -EINVAL);
    assert_int_equal(ripc__doorbell_seq(&db), 0);
    assert_int_equal(fd_is_open(0), fd0_open);
}

static void test_doorbell_close_twice(void **state)
{
    ripc__doorbell db;
    open_db(&db, KIND_OF(state));
    int w = db.wait_fd, r = db.ring_fd;
    ripc__doorbell_close(&db);
    assert_int_equal(db.kind, RIPC_DB_NONE);
    assert_int_equal(db.wait_fd, -1);
    assert_int_equal(db.ring_fd, -1);
    if (w >= 0)
        assert_false(fd_is_open(w));
    if (r >= 0)
        assert_false(fd_is_open(r));
    ripc__doorbell_close(&db);
}

static void test_doorbell_cloexec(void **state)
{
    int kind = KIND_OF(state);
    ripc__doorbell db;
    open_db(&db, kind);
    if (kind == RIPC_DB_FUTEX) {
        assert_int_equal(db.wait_fd, -1);
        assert_int_equal(db.ring_fd, -1);
        assert_ptr_equal(db.word, WORD);
        ripc__doorbell_close(&db);
        return;
    }
    assert_true(db.wait_fd >= 0 && db.ring_fd >= 0);
    assert_true(is_cloexec(db.wait_fd));
    assert_true(is_cloexec(db.ring_fd));
    assert_true(is_nonblock(db.wait_fd));
    assert_true(is_nonblock(db.ring_fd));
    if (kind == RIPC_DB_EVENTFD)
        assert_int_equal(db.wait_fd, db.ring_fd);
    else
        assert_int_not_equal(db.wait_fd, db.ring_fd);

    /* Adopting a descriptor without the flag (dup() clears it) sets it. */
    ripc__doorbell a, b;
    int w = dup(db.wait_fd), r = dup(db.ring_fd);
    assert_true(w >= 0 && r >= 0);
    assert_false(is_cloexec(w));
    assert_int_equal(ripc__doorbell_adopt(&a, kind, w, -1, NULL), 0);
    assert_int_equal(ripc__doorbell_adopt(&b, kind, -1, r, NULL), 0);
    assert_true(is_cloexec(w));
    assert_true(is_cloexec(r));
    /* The adopted ends work together. */
    uint32_t seen = ripc__doorbell_seq(&a);
    ripc__doorbell_ring(&b);
    assert_int_equal(ripc__doorbell_wait(&a, seen, -1, -1), 1);
    ripc__doorbell_close(&a);
    ripc__doorbell_close(&b);
    assert_false(fd_is_open(w));
    assert_false(fd_is_open(r));
    ripc__doorbell_close(&db);
}

static void test_doorbell_ring_keeps_errno(void **state)
{
    int kind = KIND_OF(state);
    ripc__doorbell db;
    open_db(&db, kind);
    if (kind == RIPC_DB_SOCKET) {
        /* The sleeper is gone: the send fails with EPIPE, which must raise
         * no SIGPIPE (the default action would kill this test). */
        close(db.wait_fd);
        db.wait_fd = -1;
    }
    errno = 4242;
    ripc__doorbell_ring(&db);
    assert_int_equal(errno, 4242);
    ripc__doorbell_close(&db);
}

static void test_doorbell_socket_ringer_gone(void **state)
{
    ripc__doorbell db;
    open_db(&db, RIPC_DB_SOCKET);
    ripc__doorbell_ring(&db);
    close(db.ring_fd);
    db.ring_fd = -1;
    /* What was rung before the end is still delivered, then end of stream. */
    assert_int_equal(ripc__doorbell_wait(&db, 0, -1, -1), 1);
    assert_int_equal(ripc__doorbell_wait(&db, 0, -1, -1), -EPIPE);
    assert_int_equal(ripc__doorbell_wait(&db, 0, -1, 0), -EPIPE);
    ripc__doorbell_close(&db);
}

static void test_doorbell_args(void **state)
{
    ripc__doorbell db;
    int p[2];
    uint32_t caps = ripc__doorbell_caps();

    assert_int_equal(ripc__doorbell_open(&db, RIPC_DB_NONE, NULL), -EINVAL);
    assert_int_equal(ripc__doorbell_open(&db, 99, NULL), -EINVAL);
    assert_int_equal(ripc__doorbell_open(NULL, RIPC_DB_SOCKET, NULL), -EINVAL);
    assert_int_equal(db.kind, RIPC_DB_NONE);
    assert_int_equal(db.wait_fd, -1);
    assert_false(caps & RIPC_DB_CAP(RIPC_DB_NONE));
    assert_true(caps & RIPC_DB_CAP(RIPC_DB_SOCKET)); /* every POSIX has it */
    assert_string_equal(ripc__doorbell_name(RIPC_DB_EVENTFD), "eventfd");
    assert_string_equal(ripc__doorbell_name(RIPC_DB_FUTEX), "futex");
    assert_string_equal(ripc__doorbell_name(RIPC_DB_SOCKET), "socket");
    assert_string_equal(ripc__doorbell_name(RIPC_DB_NONE), "none");
    assert_string_equal(ripc__doorbell_name(42), "unknown");

    if (caps & RIPC_DB_CAP(RIPC_DB_FUTEX)) {
        assert_int_equal(ripc__doorbell_open(&db, RIPC_DB_FUTEX, NULL), -EINVAL);
        assert_int_equal(
            ripc__doorbell_open(&db, RIPC_DB_FUTEX, (_Atomic uint32_t *)((char *)g_words + 1)),
            -EINVAL);
        assert_int_equal(ripc__doorbell_adopt(&db, RIPC_DB_FUTEX, -1, -1, NULL), -EINVAL);
    }

    /* Bad shapes and bad descriptors: refused, and the fds stay ours. */
    assert_int_equal(pipe(p), 0);
    assert_int_equal(ripc__doorbell_adopt(&db, RIPC_DB_SOCKET, -1, -1, NULL), -EINVAL);
    assert_int_equal(ripc__doorbell_adopt(&db, RIPC_DB_SOCKET, p[0], p[0], NULL), -EINVAL);
    assert_int_equal(ripc__doorbell_adopt(&db, RIPC_DB_SOCKET, p[0], -1, NULL), -ENOTSOCK);
    assert_int_equal(ripc__doorbell_adopt(&db, RIPC_DB_SOCKET, -1, closed_fd(), NULL), -EBADF);
    assert_int_equal(ripc__doorbell_adopt(&db, RIPC_DB_EVENTFD, -1, -1, NULL), -EINVAL);
    assert_int_equal(ripc__doorbell_adopt(&db, RIPC_DB_EVENTFD, p[0], p[1], NULL), -EINVAL);
    assert_int_equal(ripc__doorbell_adopt(&db, RIPC_DB_FUTEX, p[0], -1, WORD), -EINVAL);
    assert_int_equal(ripc__doorbell_adopt(&db, 99, p[0], -1, NULL), -EINVAL);
    assert_int_equal(db.kind, RIPC_DB_NONE);
    ripc__doorbell_close(&db);
    assert_true(fd_is_open(p[0]));
    assert_true(fd_is_open(p[1]));
    close(p[0]);
    close(p[1]);

    /* A sleeper's end without a ringer: ring is a no-op; a ringer's end
     * cannot wait. */
    if (caps & RIPC_DB_CAP(RIPC_DB_SOCKET)) {
        ripc__doorbell s, w, r;
        assert_int_equal(ripc__doorbell_open(&s, RIPC_DB_SOCKET, NULL), 0);
        assert_int_equal(ripc__doorbell_adopt(&w, RIPC_DB_SOCKET, dup(s.wait_fd), -1, NULL), 0);
        assert_int_equal(ripc__doorbell_adopt(&r, RIPC_DB_SOCKET, -1, dup(s.ring_fd), NULL), 0);
        ripc__doorbell_ring(&w);
        assert_int_equal(ripc__doorbell_wait(&w, 0, -1, 0), 0);
        assert_int_equal(ripc__doorbell_wait(&r, 0, -1, 0), -EINVAL);
        ripc__doorbell_close(&w);
        ripc__doorbell_close(&r);
        ripc__doorbell_close(&s);
    }
}

/* clang-format off */
#define KIND_TEST(fn, k) { #fn "_" #k, fn, NULL, NULL, &kind_##k }
/* clang-format on */
#define ALL(fn) KIND_TEST(fn, eventfd), KIND_TEST(fn, futex), KIND_TEST(fn, socket)

int main(void)
{
    /* SIGPIPE keeps its default action: a ring that raised it would kill
     * the test instead of passing unnoticed. */
    g_words = ripc_test_shared_alloc(4096);
    const struct CMUnitTest tests[] = {
        ALL(test_doorbell_ring_then_wait),
        ALL(test_doorbell_wait_timeout_zero),
        ALL(test_doorbell_wait_timeout_30ms),
        ALL(test_doorbell_wait_eintr),
        ALL(test_doorbell_cross_process),
        ALL(test_doorbell_watch_fd_peer_killed),
        ALL(test_doorbell_watch_fd_readable),
        ALL(test_doorbell_watch_fd_bad),
        ALL(test_doorbell_rings_coalesce),
        ALL(test_doorbell_ping_pong),
        cmocka_unit_test(test_doorbell_futex_word_moved),
        cmocka_unit_test(test_doorbell_close_zeroed),
        ALL(test_doorbell_close_twice),
        ALL(test_doorbell_cloexec),
        ALL(test_doorbell_ring_keeps_errno),
        cmocka_unit_test(test_doorbell_socket_ringer_gone),
        cmocka_unit_test(test_doorbell_args),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    ripc_test_shared_free((void *)g_words, 4096);
    return rc;
}

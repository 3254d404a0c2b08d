/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for sockets/poller.h, against whichever poller this build has
 * (epoll by default, poll(2) with RIPC_PORTABLE_POSIX): level-triggered
 * readiness with a pointer per registration, writability switched on and
 * off (from another thread while the owner sleeps, too), the wake handle,
 * and no registration starved when more are ready than one wait takes.
 * Cross-thread ordering goes through ripc_test_wait_sleeping, never sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm/clock.h"
#include "sockets/poller.h"
#include "support/support.h"

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static ripc__poller *open_poller(void)
{
    ripc__poller *pl = NULL;
    assert_int_equal(ripc__poller_open(&pl), 0);
    assert_non_null(pl);
    return pl;
}

/* The cases on one connection: a poller, a socket pair (sv[0] the end
 * watched, sv[1] its peer) and a tag to register with. Teardown closes
 * what a case left open (a case that closes an end sets it to -1). */
struct fx {
    ripc__poller *pl;
    int sv[2];
    int tag;
};

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->pl = open_poller();
    pair(f->sv);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 2; i++)
        if (f->sv[i] >= 0)
            close(f->sv[i]);
    ripc__poller_close(f->pl);
    free(f);
    return 0;
}

/* The peer hangs up. */
static void fx_hang_up(struct fx *f)
{
    close(f->sv[1]);
    f->sv[1] = -1;
}

static void test_poller_level_triggered(void **state)
{
    struct fx *f = *state;
    ripc__poller *pl = f->pl;
    ripc__poll_event ev[4];
    assert_int_equal(ripc__poller_add(pl, f->sv[0], RIPC_POLL_IN, &f->tag), 0);
    assert_int_equal(ripc__poller_wait(pl, ev, 4, 0), 0);
    assert_int_equal(write(f->sv[1], "x", 1), 1);
    for (int round = 0; round < 2; round++) { /* still ready: reported again */
        assert_int_equal(ripc__poller_wait(pl, ev, 4, 1000), 1);
        assert_ptr_equal(ev[0].data, &f->tag);
        assert_int_equal(ev[0].events, RIPC_POLL_IN);
    }
    char c;
    assert_int_equal(read(f->sv[0], &c, 1), 1);
    assert_int_equal(ripc__poller_wait(pl, ev, 4, 0), 0);
    /* A hang-up is for a read. */
    fx_hang_up(f);
    assert_int_equal(ripc__poller_wait(pl, ev, 4, 1000), 1);
    assert_true(ev[0].events & RIPC_POLL_IN);
    assert_true(ev[0].events & RIPC_POLL_HUP);
    ripc__poller_del(pl, f->sv[0]);
    assert_int_equal(ripc__poller_wait(pl, ev, 4, 0), 0);
}

/* A registration that watches neither readability nor (yet) writability
 * still hears a hang-up, as RIPC_POLL_HUP: the server's blocked readers
 * rely on it (src/server_sockmode.c). */
static void test_poller_hangup_unwatched(void **state)
{
    struct fx *f = *state;
    ripc__poller *pl = f->pl;
    ripc__poll_event ev[4];
    assert_int_equal(ripc__poller_add(pl, f->sv[0], RIPC_POLL_IN, &f->tag), 0);
    assert_int_equal(ripc__poller_mod(pl, f->sv[0], 0, &f->tag), 0);
    assert_int_equal(write(f->sv[1], "x", 1), 1); /* data alone is not reported */
    assert_int_equal(ripc__poller_wait(pl, ev, 4, 0), 0);
    fx_hang_up(f);
    assert_int_equal(ripc__poller_wait(pl, ev, 4, 1000), 1);
    assert_ptr_equal(ev[0].data, &f->tag);
    assert_true(ev[0].events & RIPC_POLL_HUP);
    ripc__poller_del(pl, f->sv[0]);
}

static void test_poller_registrations(void **state)
{
    struct fx *f = *state;
    ripc__poller *pl = f->pl;
    int *sv = f->sv, a, b;
    ripc__poll_event ev[4];
    assert_int_equal(ripc__poller_mod(pl, sv[0], RIPC_POLL_IN, &a), -ENOENT);
    assert_int_equal(ripc__poller_add(pl, sv[0], RIPC_POLL_IN, &a), 0);
    assert_int_equal(ripc__poller_add(pl, sv[0], RIPC_POLL_IN, &a), -EEXIST);
    assert_true(ripc__poller_add(pl, -1, RIPC_POLL_IN, &a) < 0);
    /* Writable all along, but only reported once asked for, with the
     * pointer of the latest mod. */
    assert_int_equal(ripc__poller_wait(pl, ev, 4, 0), 0);
    assert_int_equal(ripc__poller_mod(pl, sv[0], RIPC_POLL_IN | RIPC_POLL_OUT, &b), 0);
    assert_int_equal(ripc__poller_wait(pl, ev, 4, 0), 1);
    assert_ptr_equal(ev[0].data, &b);
    assert_int_equal(ev[0].events, RIPC_POLL_OUT);
    assert_int_equal(ripc__poller_mod(pl, sv[0], RIPC_POLL_IN, &a), 0);
    assert_int_equal(ripc__poller_wait(pl, ev, 4, 0), 0);
    ripc__poller_del(pl, sv[0]);
    ripc__poller_del(pl, sv[0]); /* not watched: nothing */
    ripc__poller_del(pl, -1);
    ripc__poller_del(NULL, sv[0]);
    assert_int_equal(ripc__poller_mod(pl, sv[0], RIPC_POLL_IN, &a), -ENOENT);
    ripc__poller_close(NULL);
}

/* ---- the owner asleep, another thread acting ---- */

struct sleeper {
    ripc__poller *pl;
    _Atomic int tid;
    int n;
    ripc__poll_event ev[4];
    uint64_t ms;
};

static void *sleeper_main(void *arg)
{
    struct sleeper *z = arg;
    atomic_store(&z->tid, (int)syscall(SYS_gettid));
    uint64_t t0 = ripc__now_ns();
    z->n = ripc__poller_wait(z->pl, z->ev, 4, 20000);
    z->ms = (ripc__now_ns() - t0) / 1000000u;
    return NULL;
}

/* Start a thread waiting on pl (20 s) and return once it sleeps. */
static pthread_t start_sleeper(struct sleeper *z)
{
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, sleeper_main, z), 0);
    while (atomic_load(&z->tid) == 0)
        sched_yield();
    ripc_test_wait_sleeping(getpid(), atomic_load(&z->tid));
    return th;
}

static void test_poller_mod_while_waiting(void **state)
{
    struct fx *f = *state;
    struct sleeper z = {.pl = f->pl};
    assert_int_equal(ripc__poller_add(z.pl, f->sv[0], RIPC_POLL_IN, &f->tag), 0);
    pthread_t th = start_sleeper(&z);
    /* As a sender turning writability on for the loop asleep. */
    assert_int_equal(ripc__poller_mod(z.pl, f->sv[0], RIPC_POLL_IN | RIPC_POLL_OUT, &f->tag), 0);
    pthread_join(th, NULL);
    assert_int_equal(z.n, 1);
    assert_ptr_equal(z.ev[0].data, &f->tag);
    assert_int_equal(z.ev[0].events, RIPC_POLL_OUT);
    assert_true(z.ms < 10000);
}

static void test_poller_wake(void **state)
{
    (void)state;
    struct sleeper z = {.pl = open_poller()};
    ripc__wake w;
    int tag;
    assert_int_equal(ripc__wake_open(&w), 0);
    assert_int_equal(ripc__poller_add(z.pl, w.rfd, RIPC_POLL_IN, &tag), 0);
    pthread_t th = start_sleeper(&z);
    ripc__wake_signal(&w);
    pthread_join(th, NULL);
    assert_int_equal(z.n, 1);
    assert_ptr_equal(z.ev[0].data, &tag);
    assert_true(z.ms < 10000);
    /* Signals coalesce; one drain takes them all. */
    for (int i = 0; i < 1000; i++)
        ripc__wake_signal(&w);
    assert_int_equal(ripc__poller_wait(z.pl, z.ev, 4, 0), 1);
    ripc__wake_drain(&w);
    assert_int_equal(ripc__poller_wait(z.pl, z.ev, 4, 0), 0);
    ripc__wake_drain(&w); /* nothing pending: returns at once */
    ripc__poller_del(z.pl, w.rfd);
    ripc__wake_close(&w);
    ripc__wake_close(&w); /* closed: nothing */
    ripc__poller_close(z.pl);
}

/* Each ready registration once per wait, wherever the wait starts. */
static void test_poller_each_once(void **state)
{
    (void)state;
    ripc__poller *pl = open_poller();
    int sv[3][2], tag[3];
    for (int i = 0; i < 3; i++) {
        pair(sv[i]);
        assert_int_equal(ripc__poller_add(pl, sv[i][0], RIPC_POLL_IN, &tag[i]), 0);
    }
    assert_int_equal(write(sv[0][1], "x", 1), 1);
    assert_int_equal(write(sv[2][1], "x", 1), 1);
    ripc__poll_event ev[4];
    for (int round = 0; round < 4; round++) {
        assert_int_equal(ripc__poller_wait(pl, ev, 4, 1000), 2);
        assert_ptr_not_equal(ev[0].data, ev[1].data);
        for (int k = 0; k < 2; k++)
            assert_true(ev[k].data == &tag[0] || ev[k].data == &tag[2]);
    }
    for (int i = 0; i < 3; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
    ripc__poller_close(pl);
}

/* More ready than one wait takes: every one is reported within a few
 * waits, none of them read in between. */
#define NFD 40
static void test_poller_no_starvation(void **state)
{
    (void)state;
    ripc__poller *pl = open_poller();
    int sv[NFD][2], seen[NFD] = {0};
    for (int i = 0; i < NFD; i++) {
        pair(sv[i]);
        assert_int_equal(write(sv[i][1], "x", 1), 1);
        assert_int_equal(ripc__poller_add(pl, sv[i][0], RIPC_POLL_IN, &seen[i]), 0);
    }
    ripc__poll_event ev[8];
    for (int round = 0; round < 2 * NFD / 8; round++) {
        int n = ripc__poller_wait(pl, ev, 8, 1000);
        assert_true(n > 0 && n <= 8);
        for (int k = 0; k < n; k++)
            (*(int *)ev[k].data)++;
    }
    for (int i = 0; i < NFD; i++) {
        if (seen[i] == 0)
            fail_msg("registration %d never reported in %d waits", i, 2 * NFD / 8);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    ripc__poller_close(pl);
}

/* The epoll set is itself pollable; the poll(2) poller says -ENOTSUP. */
static void test_poller_fd(void **state)
{
    struct fx *f = *state;
    int fd = ripc__poller_fd(f->pl);
    if (fd == -ENOTSUP) {
        print_message("SKIP: this build's poller has no descriptor (poll(2))\n");
        skip();
    }
    assert_true(fd >= 0);
    assert_int_equal(ripc__poller_add(f->pl, f->sv[0], RIPC_POLL_IN, &f->tag), 0);
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 0), 0);
    assert_int_equal(write(f->sv[1], "x", 1), 1);
    assert_int_equal(poll(&pf, 1, 1000), 1);
}

/* ---- a wait under memory exhaustion ---- */

/* The test's own malloc and realloc fail on demand, in this thread only:
 * they stand in for glibc's (the library's calls reach them). Not under a
 * sanitizer, whose allocator these would bypass. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NO_ALLOC_SHIM 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define NO_ALLOC_SHIM 1
#endif
#endif
#if !defined(NO_ALLOC_SHIM) && defined(__GLIBC__)
extern void *__libc_malloc(size_t n);
extern void *__libc_realloc(void *p, size_t n);
static _Thread_local int tls_no_memory;

void *malloc(size_t n)
{
    if (tls_no_memory) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(n);
}

void *realloc(void *p, size_t n)
{
    if (tls_no_memory) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(p, n);
}
#else
#define NO_ALLOC_SHIM 1
#endif

/* A wait never allocates: with no memory to be had, it still reports what
 * is ready among more registrations than any earlier wait saw, rather than
 * failing at once (which a loop retrying it would turn into a spin). */
static void test_poller_wait_without_memory(void **state)
{
    (void)state;
#ifdef NO_ALLOC_SHIM
    print_message("SKIP: no allocation shim in a sanitizer build or without glibc\n");
    skip();
#else
    enum { N = 40 }; /* past two doublings of the table */
    ripc__poller *pl = open_poller();
    int sv[N][2];
    ripc__poll_event ev[4];
    assert_int_equal(ripc__poller_wait(pl, ev, 4, 0), 0);
    for (int i = 0; i < N; i++) {
        pair(sv[i]);
        assert_int_equal(ripc__poller_add(pl, sv[i][0], RIPC_POLL_IN, sv[i]), 0);
    }
    assert_int_equal(write(sv[N - 1][1], "x", 1), 1);
    tls_no_memory = 1;
    int n = ripc__poller_wait(pl, ev, 4, 0);
    tls_no_memory = 0;
    assert_int_equal(n, 1);
    assert_ptr_equal(ev[0].data, sv[N - 1]);
    for (int i = 0; i < N; i++) {
        ripc__poller_del(pl, sv[i][0]);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    ripc__poller_close(pl);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_poller_level_triggered, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_poller_hangup_unwatched, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_poller_registrations, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_poller_mod_while_waiting, fx_setup, fx_teardown),
        cmocka_unit_test(test_poller_wake),
        cmocka_unit_test(test_poller_each_once),
        cmocka_unit_test(test_poller_no_starvation),
        cmocka_unit_test_setup_teardown(test_poller_fd, fx_setup, fx_teardown),
        cmocka_unit_test(test_poller_wait_without_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The fault guard (shm/fault_guard.h) through real shm_open segments: a
 * segment truncated under our mapping reads as zeros instead of killing us,
 * on any thread, among many segments; faults that are not ours still reach
 * the handler installed before, or kill the process as they would without
 * the guard. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/segment.h"
#include "support/support.h"
#include "support/workers.h"

static void need_shm_open(void)
{
    if (!ripc__segment_supported(RIPC_SEG_SHM_OPEN)) {
        print_message("SKIP: no shm_open here\n");
        skip();
    }
}

/* A guarded segment of len bytes, each 4 KiB page starting with `mark`. */
static void make(ripc__segment *seg, size_t len, uint64_t mark)
{
    char why[RIPC_SEG_WHY_LEN] = "";
    int rc = ripc__segment_create(seg, len, RIPC_SEG_SHM_OPEN, why, sizeof why);
    if (rc == -ENOTSUP) {
        print_message("SKIP: %s (ASAN_OPTIONS=allow_user_segv_handler=0?)\n", why);
        skip();
    }
    if (rc < 0)
        fail_msg("shm_open segment: %s (%s)", strerror(-rc), why);
    assert_non_null(seg->guard);
    for (size_t off = 0; off < len; off += 4096)
        memcpy((unsigned char *)seg->base + off, &mark, sizeof mark);
}

static uint64_t first_word(const ripc__segment *seg, size_t off)
{
    uint64_t v;
    memcpy(&v, (const unsigned char *)seg->base + off, sizeof v);
    return v;
}

static void test_fault_guard_truncated(void **state)
{
    (void)state;
    need_shm_open();
    ripc__segment seg;
    make(&seg, 64 * 1024, 0x1234);
    assert_int_equal(first_word(&seg, 60 * 1024), 0x1234);
    assert_false(ripc__segment_faulted(&seg));
    /* Half of it cut off: the access there faults; then all of it is ours
     * alone, zero-filled, and writable. */
    assert_int_equal(ftruncate((int)seg.fd, 32 * 1024), 0);
    assert_int_equal(first_word(&seg, 60 * 1024), 0);
    assert_true(ripc__segment_faulted(&seg));
    assert_int_equal(first_word(&seg, 0), 0);
    memset(seg.base, 0x77, seg.len);
    assert_int_equal(((unsigned char *)seg.base)[seg.len - 1], 0x77);
    ripc__segment_close(&seg);
}

/* 2,000 segments (more than a master with 1,000 workers has), two of them
 * cut: exactly those two read as zeros and are marked; then all go, and the
 * slots serve again. */
#define MANY 2000

static void test_fault_guard_many_segments(void **state)
{
    (void)state;
    need_shm_open();
    static ripc__segment segs[MANY];
    static const int cut[] = {7, 1500};
    for (int i = 0; i < MANY; i++) {
        make(&segs[i], 4096, (uint64_t)i + 1);
        if (i == cut[0] || i == cut[1])
            assert_int_equal(ftruncate((int)segs[i].fd, 0), 0);
        ripc__segment_close_fd(&segs[i]); /* a master keeps no descriptor */
    }
    for (int i = 0; i < MANY; i++) {
        int was_cut = i == cut[0] || i == cut[1];
        assert_int_equal(first_word(&segs[i], 0), was_cut ? 0 : (uint64_t)i + 1);
        assert_int_equal(ripc__segment_faulted(&segs[i]), was_cut);
    }
    for (int i = 0; i < MANY; i++)
        ripc__segment_close(&segs[i]);
    for (int i = 0; i < 100; i++) {
        make(&segs[i], 4096, 5);
        assert_false(ripc__segment_faulted(&segs[i]));
    }
    assert_int_equal(ftruncate((int)segs[42].fd, 0), 0);
    assert_int_equal(first_word(&segs[42], 0), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(ripc__segment_faulted(&segs[i]), i == 42);
        ripc__segment_close(&segs[i]);
    }
}

/* Four threads fault on the same cut segment at once (one replaces it, the
 * others wait for that or find it done); every read completes. */
struct reader {
    ripc__segment *seg;
    pthread_barrier_t *go;
    uint64_t sum;
};

static void *read_all(void *arg)
{
    struct reader *r = arg;
    pthread_barrier_wait(r->go);
    for (size_t off = 0; off < r->seg->len; off += 4096)
        r->sum += first_word(r->seg, off);
    return NULL;
}

static void test_fault_guard_threads(void **state)
{
    (void)state;
    need_shm_open();
    ripc__segment seg;
    make(&seg, 1 << 20, 9);
    assert_int_equal(ftruncate((int)seg.fd, 0), 0);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 4);
    struct reader r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct reader){&seg, &go, 0};
        assert_int_equal(pthread_create(&th[i], NULL, read_all, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(r[i].sum, 0);
    }
    assert_true(ripc__segment_faulted(&seg));
    pthread_barrier_destroy(&go);
    ripc__segment_close(&seg);
}

/* A mapping of a file that we truncate ourselves: not guarded. */
static void *foreign_cut(size_t len, FILE **keep)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)len), 0);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(f), 0);
    assert_true(p != MAP_FAILED);
    assert_int_equal(ftruncate(fileno(f), 0), 0);
    *keep = f;
    return p;
}

static sigjmp_buf prev_jmp;
static void *volatile prev_addr;

static void prev_handler(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    prev_addr = si->si_addr;
    siglongjmp(prev_jmp, 1);
}

/* A handler installed before: a fault outside our ranges reaches it with its
 * own siginfo; ours still fixes a fault inside them. */
static void test_fault_guard_chains_to_previous(void **state)
{
    (void)state;
    need_shm_open();
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = prev_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGBUS, &sa, &old), 0);
    ripc__segment seg;
    make(&seg, 4096, 3); /* puts ours back in front of prev_handler */
    FILE *f;
    volatile unsigned char *p = foreign_cut(4096, &f);
    prev_addr = NULL;
    if (sigsetjmp(prev_jmp, 1) == 0) {
        (void)p[100];
        fail_msg("reading a cut file mapping did not fault");
    }
    assert_ptr_equal(prev_addr, (void *)(p + 100));
    assert_int_equal(ftruncate((int)seg.fd, 0), 0);
    assert_int_equal(first_word(&seg, 0), 0);
    assert_true(ripc__segment_faulted(&seg));
    ripc__segment_close(&seg);
    munmap((void *)p, 4096);
    fclose(f);
    sigaction(SIGBUS, &old, NULL);
}

/* In a child: SIGBUS set to `before`, then a guarded segment that is cut
 * (ours: must be fixed, else exit 3), then a fault outside our ranges
 * (how 0) or a SIGBUS sent by kill and raise (how 1). Returns the child's
 * status: 0 when it lived on, 128 + SIGBUS when the signal killed it. */
static int after_guard(void (*before)(int), int how)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGBUS, before);
        ripc__segment seg;
        make(&seg, 4096, 3);
        if (ftruncate((int)seg.fd, 0) != 0 || first_word(&seg, 0) != 0 ||
            !ripc__segment_faulted(&seg))
            _exit(3);
        if (how == 0) {
            FILE *f;
            volatile unsigned char *p = foreign_cut(4096, &f);
            (void)p[0];
            _exit(4);
        }
        kill(getpid(), SIGBUS);
        raise(SIGBUS);
        _exit(0);
    }
    return ripc_test_wait(pid);
}

/* With no handler before ours, a fault outside our ranges, and a SIGBUS
 * sent by kill, end the process with SIGBUS as they would without us. */
static void test_fault_guard_default_action(void **state)
{
    (void)state;
    need_shm_open();
    assert_int_equal(after_guard(SIG_DFL, 0), 128 + SIGBUS);
    assert_int_equal(after_guard(SIG_DFL, 1), 128 + SIGBUS);
}

/* An application handler that recovers from faults on its own mappings
 * (maps zeros over the page) may run on two threads at once: each thread's
 * fault must reach it, not only the first one's. The handler waits (up to
 * 5 s) until both threads are inside it, so that the calls overlap. */
static _Atomic int app_inside;

static void app_recover(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)ctx;
    atomic_fetch_add(&app_inside, 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do
        clock_gettime(CLOCK_MONOTONIC, &t);
    while (atomic_load(&app_inside) < 2 && t.tv_sec - t0.tv_sec < 5);
    uintptr_t page = (uintptr_t)si->si_addr & ~(uintptr_t)4095;
    if (mmap((void *)page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
             -1, 0) == MAP_FAILED)
        _exit(5);
}

struct app_reader {
    volatile unsigned char *p;
    pthread_barrier_t *go;
    int v;
};

static void *app_read(void *arg)
{
    struct app_reader *r = arg;
    pthread_barrier_wait(r->go);
    r->v = r->p[100];
    return NULL;
}

static void test_fault_guard_previous_handler_two_threads(void **state)
{
    (void)state;
    need_shm_open();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = app_recover;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, NULL) != 0)
            _exit(2);
        ripc__segment seg;
        make(&seg, 4096, 3); /* ours in front, app_recover behind it */
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        struct app_reader r[2];
        pthread_t th[2];
        FILE *f[2];
        for (int i = 0; i < 2; i++) {
            r[i] = (struct app_reader){foreign_cut(4096, &f[i]), &go, -1};
            if (pthread_create(&th[i], NULL, app_read, &r[i]) != 0)
                _exit(3);
        }
        for (int i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            if (r[i].v != 0)
                _exit(4);
        }
        _exit(atomic_load(&app_inside) == 2 ? 0 : 6);
    }
    assert_int_equal(ripc_test_wait(pid), 0);
}

/* SIGBUS ignored before the guard: one that is sent (kill, raise) stays
 * ignored; a fault outside our ranges kills as it would without us; ours
 * are still fixed. */
static void test_fault_guard_ignored_before(void **state)
{
    (void)state;
    need_shm_open();
    assert_int_equal(after_guard(SIG_IGN, 1), 0);
    assert_int_equal(after_guard(SIG_IGN, 0), 128 + SIGBUS);
}

/* A fork while another thread adds and removes guards: the child, alone
 * with a copy of the guard table, must be able to add its own (a lock held
 * across the fork by the other thread would be held in the child forever). */
static _Atomic int churn_stop;
/* Rounds the churn thread finished: the first fork waits for one, so that
 * the thread's own start-up (which allocates) is over. */
static _Atomic int churn_rounds;

static void *guard_churn(void *arg)
{
    char *page = arg;
    while (!atomic_load(&churn_stop)) {
        ripc__fault_guard_slot *s;
        if (ripc__fault_guard_add(page, 4096, &s) == 0)
            ripc__fault_guard_remove(s);
        atomic_fetch_add(&churn_rounds, 1);
    }
    return NULL;
}

/* In the forked child: add a guard and remove it; 0, or 1 when the add
 * failed. */
static int add_one(void *page)
{
    ripc__fault_guard_slot *s;
    if (ripc__fault_guard_add(page, 4096, &s) != 0)
        return 1;
    ripc__fault_guard_remove(s);
    return 0;
}

static void test_fault_guard_fork_while_adding(void **state)
{
    (void)state;
    char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(page != MAP_FAILED);
    atomic_store(&churn_stop, 0);
    pthread_t th;
    atomic_store(&churn_rounds, 0);
    assert_int_equal(pthread_create(&th, NULL, guard_churn, page), 0);
    while (atomic_load(&churn_rounds) == 0)
        usleep(1000);
    for (int i = 0; i < 200; i++) {
        pid_t c = ripc_test_fork_alarm(add_one, page, 10); /* SIGALRM: it hung */
        assert_true(c > 0);
        int st;
        assert_int_equal(waitpid(c, &st, 0), c);
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
            atomic_store(&churn_stop, 1);
            pthread_join(th, NULL);
            fail_msg("round %d: the child never got its guard added", i);
        }
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    atomic_store(&churn_stop, 1);
    assert_int_equal(pthread_join(th, NULL), 0);
    munmap(page, 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault_guard_truncated),
        cmocka_unit_test(test_fault_guard_many_segments),
        cmocka_unit_test(test_fault_guard_threads),
        cmocka_unit_test(test_fault_guard_chains_to_previous),
        cmocka_unit_test(test_fault_guard_default_action),
        cmocka_unit_test(test_fault_guard_previous_handler_two_threads),
        cmocka_unit_test(test_fault_guard_ignored_before),
        cmocka_unit_test(test_fault_guard_fork_while_adding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The one-thread-at-a-time guard (src/guard.h): threads racing for it never
 * find another inside, with and without asymmetric fences and with more
 * threads than the guard has slots; a guard handed from thread to thread
 * admits each in turn and refuses a second thread while one is inside. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shm/fence.h"
#include "src/guard.h"

#define ROUNDS 20000
#define MET    2000 /* refusals: proof that threads raced */

struct race {
    ripc__guard g;
    pthread_barrier_t start;
    _Atomic int inside;        /* threads inside now (must stay <= 1) */
    _Atomic int overlaps;      /* times a thread found another inside */
    _Atomic uint64_t admitted; /* entries, counted atomically */
    _Atomic uint64_t refused;  /* entries refused */
    uint64_t plain;            /* entries, counted by whoever is inside */
};

static void *racer(void *arg)
{
    struct race *r = arg;
    pthread_barrier_wait(&r->start);
    /* ROUNDS tries each, then on until the threads have met often enough
     * (or a ceiling: on one CPU they may rarely overlap). */
    for (int i = 0; i < ROUNDS || (atomic_load(&r->refused) < MET && i < 100 * ROUNDS); i++) {
        ripc__guard_token t = ripc__guard_enter(&r->g);
        if (!t) {
            atomic_fetch_add(&r->refused, 1);
            continue;
        }
        if (atomic_fetch_add(&r->inside, 1) != 0)
            atomic_fetch_add(&r->overlaps, 1);
        r->plain++;
        for (volatile int k = 0; k < 64; k++) /* stay a while: others arrive */
            ;
        atomic_fetch_add(&r->admitted, 1);
        atomic_fetch_sub(&r->inside, 1);
        ripc__guard_leave(&r->g, t);
    }
    return NULL;
}

static void race(int nthreads, int asym)
{
    static struct race r;
    memset(&r, 0, sizeof r);
    ripc__guard_init(&r.g, asym);
    pthread_barrier_init(&r.start, NULL, (unsigned)nthreads);
    pthread_t th[32];
    for (int i = 0; i < nthreads; i++)
        assert_int_equal(pthread_create(&th[i], NULL, racer, &r), 0);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&r.start);
    print_message("%d threads, asym %d: %llu admitted, %llu refused\n", nthreads, asym,
                  (unsigned long long)r.admitted, (unsigned long long)r.refused);
    assert_int_equal(atomic_load(&r.overlaps), 0);
    assert_int_equal(r.plain, atomic_load(&r.admitted));
    assert_true(r.admitted > 0); /* a refusal means somebody was inside */
    assert_true(r.admitted + r.refused >= (uint64_t)nthreads * ROUNDS);
}

static void test_guard_race_asym(void **state)
{
    (void)state;
    if (!ripc__remote_fence_init())
        skip(); /* the symmetric case below still runs */
    race(4, 1);
}

static void test_guard_race_symmetric(void **state)
{
    (void)state;
    race(4, 0);
}

static void test_guard_more_threads_than_slots(void **state)
{
    (void)state;
    race(RIPC_GUARD_SLOTS + 8, ripc__remote_fence_init());
}

/* Ordered hand-over: each step waits for the one before through a pipe. */
struct handover {
    ripc__guard *g;
    int go[2], done[2];
    ripc__guard_token got;
};

static void *enter_then_report(void *arg)
{
    struct handover *h = arg;
    char b;
    assert_int_equal(read(h->go[0], &b, 1), 1);
    h->got = ripc__guard_enter(h->g);
    if (h->got)
        ripc__guard_leave(h->g, h->got);
    assert_int_equal(write(h->done[1], "x", 1), 1);
    return NULL;
}

/* Another thread tries once, after `go`; returns whether it got in. */
static int other_thread_gets_in(struct handover *h)
{
    pthread_t th;
    char b;
    assert_int_equal(pthread_create(&th, NULL, enter_then_report, h), 0);
    assert_int_equal(write(h->go[1], "x", 1), 1);
    assert_int_equal(read(h->done[0], &b, 1), 1);
    pthread_join(th, NULL);
    return h->got != NULL;
}

static void test_guard_handover(void **state)
{
    (void)state;
    ripc__guard g;
    ripc__guard_init(&g, ripc__remote_fence_init());
    struct handover h = {.g = &g};
    assert_int_equal(pipe(h.go), 0);
    assert_int_equal(pipe(h.done), 0);

    ripc__guard_token t = ripc__guard_enter(&g); /* this thread owns it */
    assert_non_null(t);
    assert_false(other_thread_gets_in(&h)); /* refused while we are inside */
    ripc__guard_leave(&g, t);
    assert_true(other_thread_gets_in(&h)); /* the bias moves to it */
    t = ripc__guard_enter(&g);             /* and back to us */
    assert_non_null(t);
    assert_false(other_thread_gets_in(&h));
    ripc__guard_leave(&g, t);
    for (int i = 0; i < RIPC_GUARD_SLOTS + 4; i++) /* slots run out: still works */
        assert_true(other_thread_gets_in(&h));
    t = ripc__guard_enter(&g);
    assert_non_null(t);
    assert_false(other_thread_gets_in(&h));
    ripc__guard_leave(&g, t);
    close(h.go[0]);
    close(h.go[1]);
    close(h.done[0]);
    close(h.done[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_race_asym),
        cmocka_unit_test(test_guard_race_symmetric),
        cmocka_unit_test(test_guard_more_threads_than_slots),
        cmocka_unit_test(test_guard_handover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

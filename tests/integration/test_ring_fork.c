/* Two processes across fork(): a producer child pushes N records of random
 * sizes (0 B .. 4 KiB) through one ring; the parent consumes them and checks
 * order, every byte, and a checksum over the whole stream against the one
 * the producer computed. Usage: test_ring_fork [records] (default 10M). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ring.h"
#include "support/ringpair.h"
#include "support/support.h"

#define CAPACITY (256u * 1024u)
#define MAX_REC 4096u
#define SEED 0xF0F0CAFEULL

/* 10 million records (about 20 GB through the ring); sanitizer builds, which
 * are 5-20x slower, move 2 million unless told otherwise. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RIPC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RIPC_SANITIZED 1
#endif
#endif
#ifdef RIPC_SANITIZED
static uint64_t g_records = 2000000;
#else
static uint64_t g_records = 10000000;
#endif

struct shared {
    _Atomic uint64_t producer_sum; /* written once, before the last record */
    _Alignas(128) unsigned char ring[];
};

static void produce(struct shared *sh, size_t ring_len)
{
    ripc_ring *p;
    if (ripc_ring_attach(&p, sh->ring, ring_len, RIPC_RING_PRODUCER) != 0)
        _exit(2);
    uint64_t sum = RIPC_TEST_SUM_INIT;
    for (uint64_t n = 0; n < g_records; n++) {
        size_t len = ripc_test_rec_len(SEED, n, MAX_REC);
        void *buf;
        int rc;
        unsigned spins = 0;
        while ((rc = ripc_ring_reserve(p, len, &buf)) == -EAGAIN)
            ripc_test_backoff(&spins);
        if (rc != 0)
            _exit(3);
        ripc_test_rec_fill(buf, len, n);
        sum = ripc_test_sum(sum, buf, len);
        if (n + 1 == g_records) /* published by the commit below (release) */
            atomic_store_explicit(&sh->producer_sum, sum, memory_order_relaxed);
        ripc_ring_commit(p, len);
    }
    ripc_ring_detach(p);
    _exit(0);
}

static void test_ring_fork_ten_million_records(void **state)
{
    (void)state;
    size_t ring_len = ripc_ring_size(CAPACITY);
    size_t total = sizeof(struct shared) + ring_len;
    struct shared *sh = ripc_test_shared_alloc(total);
    assert_int_equal(ripc_ring_format(sh->ring, ring_len, CAPACITY), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        produce(sh, ring_len);

    ripc_ring *c;
    assert_int_equal(ripc_ring_attach(&c, sh->ring, ring_len, RIPC_RING_CONSUMER), 0);
    uint64_t sum = RIPC_TEST_SUM_INIT, bytes = 0;
    for (uint64_t n = 0; n < g_records; n++) {
        const void *buf;
        size_t len;
        int rc;
        unsigned spins = 0;
        while ((rc = ripc_ring_peek(c, &buf, &len)) == -EAGAIN) {
            ripc_test_backoff(&spins);
            if (spins % 4096 == 0) { /* the producer must still be alive */
                int st;
                if (waitpid(pid, &st, WNOHANG) == pid)
                    fail_msg("producer exited (status %d) after %llu records", st,
                             (unsigned long long)n);
            }
        }
        assert_int_equal(rc, 0);
        size_t want = ripc_test_rec_len(SEED, n, MAX_REC);
        if (len != want)
            fail_msg("record %llu: length %zu, expected %zu", (unsigned long long)n, len, want);
        if (!ripc_test_rec_ok(buf, len, n))
            fail_msg("record %llu: content differs", (unsigned long long)n);
        sum = ripc_test_sum(sum, buf, len);
        bytes += len;
        ripc_ring_release(c);
    }
    const void *buf;
    size_t len;
    assert_int_equal(ripc_ring_peek(c, &buf, &len), -EAGAIN); /* nothing extra */
    assert_int_equal(ripc_test_wait(pid), 0);
    uint64_t psum = atomic_load(&sh->producer_sum);
    assert_true(psum == sum);
    printf("moved %llu records, %.2f GiB, checksum %016llx on both sides\n",
           (unsigned long long)g_records, (double)bytes / (1u << 30), (unsigned long long)sum);
    ripc_ring_detach(c);
    ripc_test_shared_free(sh, total);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_records = strtoull(argv[1], NULL, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_fork_ten_million_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

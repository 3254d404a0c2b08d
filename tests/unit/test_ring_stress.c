/* Two threads hammer one small ring (it wraps every few records), mixing the
 * zero-copy calls with the copy helpers and sizes up to the maximum. Run
 * under ThreadSanitizer in CI: the acquire/release pairs in ring.c are what
 * make the payload accesses race-free. Usage: test_ring_stress [records]. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "ringipc/ring.h"
#include "support/ringpair.h"
#include "support/support.h"

#define SEED 0x57E55ULL

static uint64_t g_records = 500000;

struct ctx {
    void *mem;
    size_t mem_len;
    size_t max_rec;
    uint64_t sum;
    int err;
    struct ripc_test_bell bell; /* rung after each commit and each release */
};

static void *producer(void *arg)
{
    struct ctx *x = arg;
    ripc_ring *p;
    if (ripc_ring_attach(&p, x->mem, x->mem_len, RIPC_RING_PRODUCER) != 0) {
        x->err = 1;
        return NULL;
    }
    unsigned char *tmp = malloc(x->max_rec + 1);
    uint64_t sum = RIPC_TEST_SUM_INIT;
    for (uint64_t n = 0; n < g_records; n++) {
        size_t len = ripc_test_rec_len(SEED, n, x->max_rec);
        struct ripc_test_waiter w = {.bell = &x->bell};
        int rc;
        if (n % 3 == 0) { /* copy helper */
            ripc_test_rec_fill(tmp, len, n);
            while ((rc = ripc_ring_push(p, tmp, len)) == -EAGAIN)
                ripc_test_bell_wait(&w);
            sum = ripc_test_sum(sum, tmp, len);
        } else { /* zero copy; reserve more than we commit every other time */
            size_t want = (n % 2) ? x->max_rec : len;
            void *buf;
            while ((rc = ripc_ring_reserve(p, want, &buf)) == -EAGAIN)
                ripc_test_bell_wait(&w);
            if (rc == 0) {
                ripc_test_rec_fill(buf, len, n);
                sum = ripc_test_sum(sum, buf, len);
                ripc_ring_commit(p, len);
            }
        }
        ripc_test_bell_ring(&x->bell);
        if (rc != 0) {
            x->err = 2;
            break;
        }
    }
    free(tmp);
    ripc_ring_detach(p);
    x->sum = sum;
    return NULL;
}

static void test_ring_stress_two_threads(void **state)
{
    (void)state;
    const size_t caps[] = {256, 4096, 65536};
    for (size_t ci = 0; ci < sizeof caps / sizeof caps[0]; ci++) {
        size_t cap = caps[ci];
        struct ctx x = {0};
        x.mem_len = ripc_ring_size(cap);
        assert_int_equal(posix_memalign(&x.mem, 128, x.mem_len), 0);
        assert_int_equal(ripc_ring_format(x.mem, x.mem_len, cap), 0);
        x.max_rec = ripc_ring_max_payload(cap);

        ripc_ring *c;
        assert_int_equal(ripc_ring_attach(&c, x.mem, x.mem_len, RIPC_RING_CONSUMER), 0);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, producer, &x), 0);

        unsigned char *out = malloc(x.max_rec + 1);
        uint64_t sum = RIPC_TEST_SUM_INIT;
        uint64_t n = 0;
        for (; n < g_records; n++) {
            size_t want = ripc_test_rec_len(SEED, n, x.max_rec);
            size_t len;
            int rc;
            struct ripc_test_waiter w = {.bell = &x.bell};
            if (n % 2) {
                const void *buf;
                while ((rc = ripc_ring_peek(c, &buf, &len)) == -EAGAIN)
                    ripc_test_bell_wait(&w);
                assert_int_equal(rc, 0);
                assert_int_equal(len, want);
                assert_true(ripc_test_rec_ok(buf, len, n));
                sum = ripc_test_sum(sum, buf, len);
                ripc_ring_release(c);
            } else {
                while ((rc = ripc_ring_pop(c, out, x.max_rec, &len)) == -EAGAIN)
                    ripc_test_bell_wait(&w);
                assert_int_equal(rc, 0);
                assert_int_equal(len, want);
                assert_true(ripc_test_rec_ok(out, len, n));
                sum = ripc_test_sum(sum, out, len);
            }
            ripc_test_bell_ring(&x.bell);
        }
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(x.err, 0);
        assert_true(x.sum == sum);
        printf("capacity %zu: %llu records checked\n", cap, (unsigned long long)n);
        free(out);
        ripc_ring_detach(c);
        free(x.mem);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_records = strtoull(argv[1], NULL, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_stress_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The sending side's pool of large-message buffers (src/large.h), driven
 * through a real ring in this process: a buffer is in flight until the
 * consumer's index passes its marker, comes back idle, and stays only
 * within the channel's budget and the shared one (the master's, across all
 * its workers). The buffers are memfds, or shm_open objects where memfd is
 * not built (the portable build).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ringipc/ring.h"
#include "shm/ring_internal.h"
#include "src/large.h"
#include "support/support.h"

#define MIB      ((uint64_t)1 << 20)
#define RING_CAP 16384u

struct chan {
    void *mem;
    ripc_ring *tx, *rx; /* the same ring: producer and consumer ends */
    ripc__large lg;
};

static void chan_open(struct chan *c, ripc__large_budget *budget)
{
    size_t sz = ripc_ring_size(RING_CAP);
    c->mem = aligned_alloc(64, sz);
    assert_non_null(c->mem);
    assert_int_equal(ripc_ring_format(c->mem, sz, RING_CAP), 0);
    assert_int_equal(ripc_ring_attach(&c->tx, c->mem, sz, RIPC_RING_PRODUCER), 0);
    assert_int_equal(ripc_ring_attach(&c->rx, c->mem, sz, RIPC_RING_CONSUMER), 0);
    ripc__large_init(&c->lg);
    c->lg.budget = budget;
}

static void chan_close(struct chan *c)
{
    ripc__large_free(&c->lg);
    ripc_ring_detach(c->tx);
    ripc_ring_detach(c->rx);
    free(c->mem);
}

/* Take a buffer for len bytes and put it in flight behind a marker record. */
static ripc__large_buf *send_one(struct chan *c, uint64_t len)
{
    ripc__large_buf *b = NULL;
    uint64_t wait_pos = 0;
    assert_int_equal(ripc__large_get(&c->lg, c->tx, len, &b, &wait_pos), 0);
    assert_non_null(b);
    assert_true(b->seg.len >= len);
    memset(b->seg.base, 0x5A, 4096); /* touch it, as a copy would */
    assert_int_equal(ripc_ring_push(c->tx, "marker", 6), 0);
    ripc__large_sent(&c->lg, b, ripc__ring_pos(c->tx));
    return b;
}

static void consume_all(struct chan *c)
{
    const void *p;
    size_t n;
    while (ripc_ring_peek(c->rx, &p, &n) == 0)
        ripc_ring_release(c->rx);
}

static int buffers(const struct chan *c)
{
    int n = 0;
    for (int i = 0; i < RIPC_LARGE_SLOTS; i++)
        n += c->lg.out[i].seg.base != NULL;
    return n;
}

static size_t idle(ripc__large_budget *b)
{
    return atomic_load(&b->idle);
}

/* Two channels share a 12 MiB budget: the first one's 8 MiB buffer comes
 * back and stays (8 <= 12), the second one's would make 16 and is closed.
 * Freeing a channel gives its idle bytes back. */
static void test_shared_budget(void **state)
{
    (void)state;
    ripc__large_budget budget = {.cap = 12 * MIB};
    struct chan a, b;
    chan_open(&a, &budget);
    chan_open(&b, &budget);

    send_one(&a, 8 * MIB);
    send_one(&b, 8 * MIB);
    assert_int_equal(idle(&budget), 0); /* in flight is not idle */
    consume_all(&a);
    consume_all(&b);

    /* 10 MiB does not fit the idle 8 MiB buffer: a new one is made, and
     * the old one is kept (a), or closed for the shared budget (b). */
    send_one(&a, 10 * MIB);
    assert_int_equal(idle(&budget), 8 * MIB);
    assert_int_equal(buffers(&a), 2);
    send_one(&b, 10 * MIB);
    assert_int_equal(idle(&budget), 8 * MIB);
    assert_int_equal(buffers(&b), 1);

    /* a's 10 MiB buffer comes back while the 8 MiB one is idle: 18 > 12,
     * closed. Reusing the 8 MiB one takes it out of the budget. */
    consume_all(&a);
    ripc__large_buf *x = send_one(&a, 7 * MIB);
    assert_int_equal(x->seg.len, 8 * MIB);
    assert_int_equal(idle(&budget), 0);
    assert_int_equal(buffers(&a), 1);

    /* b's 10 MiB buffer comes back (10 <= 12) and is too small for 11. */
    consume_all(&b);
    send_one(&b, 11 * MIB);
    assert_int_equal(idle(&budget), 10 * MIB);
    assert_int_equal(buffers(&b), 2);

    /* Closing a channel gives its idle bytes back. */
    chan_close(&b);
    assert_int_equal(idle(&budget), 0);
    chan_close(&a);
    assert_int_equal(idle(&budget), 0);
}

/* Without a shared budget only the channel's own RIPC_LARGE_KEEP applies:
 * both 8 MiB buffers come back and stay. */
static void test_channel_budget_only(void **state)
{
    (void)state;
    struct chan a;
    chan_open(&a, NULL);
    send_one(&a, 8 * MIB);
    send_one(&a, 8 * MIB);
    assert_int_equal(buffers(&a), 2);
    consume_all(&a);
    send_one(&a, 10 * MIB);
    assert_int_equal(buffers(&a), 3);
    chan_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_budget),
        cmocka_unit_test(test_channel_budget_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

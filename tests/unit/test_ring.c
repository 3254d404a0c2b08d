/* Unit tests of the raw SPSC ring: behaviour, edges and a hostile peer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "ringipc/ring.h"
#include "shm/ring_layout.h"
#include "support/support.h"

#define CAP 1024u

/* A ring in its own mapping with an inaccessible page on each side: any read
 * or write outside [mem, mem + len) faults and fails the test. */
struct fixture {
    unsigned char *map;
    size_t map_len;
    unsigned char *mem;
    size_t len;
    ripc_ring *p;
    ripc_ring *c;
};

static struct fixture *fixture_new(size_t capacity)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    f->len = ripc_ring_size(capacity);
    assert_true(f->len > 0);
    size_t body = (f->len + page - 1) / page * page;
    f->map_len = body + 2 * page;
    f->map = mmap(NULL, f->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(f->map != MAP_FAILED);
    /* Put the ring flush against the upper guard page. */
    assert_int_equal(mprotect(f->map + page, body, PROT_READ | PROT_WRITE), 0);
    f->mem = f->map + page + (body - f->len);
    assert_int_equal(ripc_ring_format(f->mem, f->len, capacity), 0);
    assert_int_equal(ripc_ring_attach(&f->p, f->mem, f->len, RIPC_RING_PRODUCER), 0);
    assert_int_equal(ripc_ring_attach(&f->c, f->mem, f->len, RIPC_RING_CONSUMER), 0);
    return f;
}

static void fixture_free(struct fixture *f)
{
    ripc_ring_detach(f->p);
    ripc_ring_detach(f->c);
    munmap(f->map, f->map_len);
    free(f);
}

static int setup(void **state)
{
    *state = fixture_new(CAP);
    return 0;
}

static int teardown(void **state)
{
    fixture_free(*state);
    return 0;
}

static struct ripc_ring_hdr *hdr(struct fixture *f)
{
    return (struct ripc_ring_hdr *)f->mem;
}

static unsigned char *data(struct fixture *f)
{
    return f->mem + RIPC_RING_HDR_BYTES;
}

static void set_rec(struct fixture *f, size_t off, uint32_t len, uint32_t flags)
{
    uint64_t h = ripc__rec_pack(len, flags);
    memcpy(data(f) + off, &h, 8);
}

static void push_seq(ripc_ring *p, size_t len, uint64_t seq)
{
    void *buf;
    assert_int_equal(ripc_ring_reserve(p, len, &buf), 0);
    ripc_test_fill(buf, len, seq);
    ripc_ring_commit(p, len);
}

static void pop_seq(ripc_ring *c, size_t len, uint64_t seq)
{
    const void *buf;
    size_t n;
    assert_int_equal(ripc_ring_peek(c, &buf, &n), 0);
    assert_int_equal(n, len);
    assert_true(ripc_test_check(buf, n, seq));
    ripc_ring_release(c);
}

static void test_ring_size_and_format_args(void **state)
{
    (void)state;
    assert_int_equal(ripc_ring_size(0), 0);
    assert_int_equal(ripc_ring_size(100), 0); /* not a power of two */
    assert_int_equal(ripc_ring_size(32), 0);  /* below the minimum */
    assert_int_equal(ripc_ring_size(RIPC_RING_MAX_CAPACITY * 2), 0);
    assert_int_equal(ripc_ring_size(64), RIPC_RING_HDR_BYTES + 64);
    assert_int_equal(ripc_ring_max_payload(1024), 512 - 8);
    assert_int_equal(ripc_ring_max_payload(3), 0);

    static _Alignas(128) unsigned char mem[RIPC_RING_HDR_BYTES + 256];
    assert_int_equal(ripc_ring_format(NULL, sizeof mem, 256), -EINVAL);
    assert_int_equal(ripc_ring_format(mem, sizeof mem - 1, 256), -EINVAL);
    assert_int_equal(ripc_ring_format(mem + 4, sizeof mem - 4, 128), -EINVAL);
    assert_int_equal(ripc_ring_format(mem, sizeof mem, 200), -EINVAL);
    assert_int_equal(ripc_ring_format(mem, sizeof mem, 256), 0);

    ripc_ring *r = (ripc_ring *)1;
    assert_int_equal(ripc_ring_attach(&r, mem, sizeof mem, 3), -EINVAL);
    assert_null(r);
    assert_int_equal(ripc_ring_attach(NULL, mem, sizeof mem, RIPC_RING_PRODUCER), -EINVAL);
    assert_int_equal(ripc_ring_attach(&r, mem, 100, RIPC_RING_PRODUCER), -EINVAL);
    assert_int_equal(ripc_ring_attach(&r, mem + 4, sizeof mem - 4, RIPC_RING_PRODUCER), -EINVAL);
    assert_int_equal(ripc_ring_attach(&r, mem, sizeof mem, RIPC_RING_PRODUCER), 0);
    assert_int_equal(ripc_ring_capacity(r), 256);
    assert_int_equal(ripc_ring_payload_max(r), 120);
    ripc_ring_detach(r);
    ripc_ring_detach(NULL);
}

static void test_ring_empty(void **state)
{
    struct fixture *f = *state;
    const void *buf;
    size_t n;
    assert_int_equal(ripc_ring_peek(f->c, &buf, &n), -EAGAIN);
    assert_int_equal(ripc_ring_pop(f->c, NULL, 0, &n), -EAGAIN);
    assert_int_equal(ripc_ring_used(f->c), 0);
    assert_int_equal(ripc_ring_used(f->p), 0);
    ripc_ring_release(f->c); /* nothing peeked: no effect */
    assert_int_equal(ripc_ring_peek(f->c, &buf, &n), -EAGAIN);
    ripc_ring_commit(f->p, 10); /* nothing reserved: no effect */
    assert_int_equal(ripc_ring_peek(f->c, &buf, &n), -EAGAIN);
}

static void test_ring_fifo_order_and_content(void **state)
{
    struct fixture *f = *state;
    for (uint64_t i = 0; i < 10; i++)
        push_seq(f->p, (size_t)(i * 7), i);
    uint64_t bytes = 0;
    for (uint64_t i = 0; i < 10; i++)
        bytes += ripc__rec_size(i * 7);
    assert_int_equal(bytes, 424);
    assert_int_equal(ripc_ring_used(f->c), bytes);
    for (uint64_t i = 0; i < 10; i++)
        pop_seq(f->c, (size_t)(i * 7), i);
    const void *buf;
    size_t n;
    assert_int_equal(ripc_ring_peek(f->c, &buf, &n), -EAGAIN);
}

/* The 8-byte header slot after the last committed record: must read 0. */
static uint64_t slot_after_head(struct fixture *f, uint64_t capacity)
{
    uint64_t head = atomic_load(&hdr(f)->prod.head);
    uint64_t w;
    memcpy(&w, data(f) + (head & (capacity - 1)), 8);
    return w;
}

static void test_ring_full(void **state)
{
    struct fixture *f = *state;
    /* 56-byte payloads take 64 bytes: 15 fit in 1024, the 16th would take
     * the spare header slot. */
    for (uint64_t i = 0; i < 15; i++)
        push_seq(f->p, 56, i);
    void *buf;
    assert_int_equal(ripc_ring_reserve(f->p, 56, &buf), -EAGAIN);
    /* 48 bytes: 56 + the spare 8 = the 64 left. */
    push_seq(f->p, 48, 15);
    assert_int_equal(ripc_ring_used(f->p), CAP - 8);
    assert_int_equal(slot_after_head(f, CAP), 0);
    assert_int_equal(ripc_ring_reserve(f->p, 0, &buf), -EAGAIN);
    assert_int_equal(ripc_ring_push(f->p, "x", 1), -EAGAIN);
    pop_seq(f->c, 56, 0);
    pop_seq(f->c, 56, 1);
    /* 128 bytes freed at the front, 8 left at the end: a 56-byte record
     * takes pad 8 + 64 + spare 8, and then 48 bytes fill it again. */
    push_seq(f->p, 56, 16);
    assert_int_equal(ripc_ring_reserve(f->p, 56, &buf), -EAGAIN);
    push_seq(f->p, 48, 17);
    assert_int_equal(ripc_ring_used(f->p), CAP - 8);
    assert_int_equal(ripc_ring_reserve(f->p, 0, &buf), -EAGAIN);
    assert_int_equal(slot_after_head(f, CAP), 0);
    for (uint64_t i = 2; i < 15; i++)
        pop_seq(f->c, 56, i);
    pop_seq(f->c, 48, 15);
    pop_seq(f->c, 56, 16);
    pop_seq(f->c, 48, 17);
    const void *rb;
    size_t n;
    assert_int_equal(ripc_ring_peek(f->c, &rb, &n), -EAGAIN);
}

/* Whatever the mix of sizes, the producer never queues more than
 * capacity - 8 bytes and the slot after its last record stays zero. */
static void test_ring_spare_slot_at_full(void **state)
{
    (void)state;
    uint64_t seed = 0x5BA2E;
    for (int round = 0; round < 200; round++) {
        struct fixture *f = fixture_new(256);
        uint64_t seq = 0, next = 0;
        for (int lap = 0; lap < 8; lap++) {
            for (;;) { /* fill until refused */
                size_t len = (size_t)(ripc_test_rand(&seed) % 121);
                void *buf;
                int rc = ripc_ring_reserve(f->p, len, &buf);
                if (rc == -EAGAIN)
                    break;
                assert_int_equal(rc, 0);
                ripc_test_fill(buf, len, seq++);
                ripc_ring_commit(f->p, len);
                assert_true(ripc_ring_used(f->p) <= 256 - 8);
                assert_int_equal(slot_after_head(f, 256), 0);
            }
            /* Drain a random part. */
            uint64_t k = ripc_test_rand(&seed) % (seq - next + 1);
            for (uint64_t i = 0; i < k; i++, next++) {
                const void *rb;
                size_t n;
                assert_int_equal(ripc_ring_peek(f->c, &rb, &n), 0);
                assert_true(ripc_test_check(rb, n, next));
                ripc_ring_release(f->c);
            }
        }
        fixture_free(f);
    }
}

static void test_ring_exact_fit_at_end(void **state)
{
    struct fixture *f = *state;
    /* Place the next record so that it ends exactly at the end of the data
     * area: no pad, and the one after starts at offset 0. */
    push_seq(f->p, 504 - 8, 0); /* 504 bytes: offset 0..504 */
    push_seq(f->p, 400, 1);     /* 408 bytes: 504..912 */
    pop_seq(f->c, 496, 0);
    pop_seq(f->c, 400, 1);
    push_seq(f->p, 104, 2); /* 112 bytes: 912..1024, no pad */
    assert_int_equal(ripc_ring_used(f->p), 112);
    /* The record header sits at 912, not a pad at 912. */
    uint64_t h;
    memcpy(&h, data(f) + 912, 8);
    assert_int_equal(ripc__rec_flags(h), RIPC_REC_VALID);
    assert_int_equal(ripc__rec_len(h), 104);
    /* The spare slot wrapped to offset 0 and was zeroed. */
    memcpy(&h, data(f), 8);
    assert_int_equal(h, 0);
    pop_seq(f->c, 104, 2);
    push_seq(f->p, 8, 3); /* wraps to 0 cleanly */
    memcpy(&h, data(f), 8);
    assert_int_equal(h, ripc__rec_pack(8, RIPC_REC_VALID));
    memcpy(&h, data(f) + 16, 8);
    assert_int_equal(h, 0);
    pop_seq(f->c, 8, 3);
}

static void test_ring_wrap_with_pad(void **state)
{
    struct fixture *f = *state;
    push_seq(f->p, 400, 0); /* 0..408 */
    push_seq(f->p, 400, 1); /* 408..816 */
    pop_seq(f->c, 400, 0);
    /* 208 bytes left before the end: a 300-byte record pads and wraps. */
    push_seq(f->p, 300, 2);
    uint64_t h;
    memcpy(&h, data(f) + 816, 8);
    assert_int_equal(ripc__rec_flags(h), RIPC_REC_PAD | RIPC_REC_VALID);
    assert_int_equal(ripc__rec_len(h), 1024 - 816 - 8);
    memcpy(&h, data(f), 8); /* the real record behind the pad */
    assert_int_equal(h, ripc__rec_pack(300, RIPC_REC_VALID));
    memcpy(&h, data(f) + 312, 8); /* its spare slot: the first record's payload before */
    assert_int_equal(h, 0);
    assert_int_equal(ripc_ring_used(f->p), 408 + 208 + 312);
    pop_seq(f->c, 400, 1);
    pop_seq(f->c, 300, 2);
    assert_int_equal(ripc_ring_used(f->c), 0);
}

static void test_ring_pad_needs_room_for_both(void **state)
{
    struct fixture *f = *state;
    push_seq(f->p, 400, 0); /* 0..408 */
    push_seq(f->p, 400, 1); /* 408..816 */
    pop_seq(f->c, 400, 0);  /* free: 0..408 at the front, 816..1024 at the end */
    void *buf;
    /* 393 bytes need 408: 208 pad + 408 + 8 spare > 616 free. */
    assert_int_equal(ripc_ring_reserve(f->p, 393, &buf), -EAGAIN);
    assert_int_equal(ripc_ring_reserve(f->p, 392, &buf), 0); /* 208 + 400 + 8 = 616 */
    ripc_ring_commit(f->p, 0);
    pop_seq(f->c, 400, 1);
    const void *rb;
    size_t n;
    assert_int_equal(ripc_ring_peek(f->c, &rb, &n), 0);
    assert_int_equal(n, 0);
    assert_ptr_equal(rb, data(f) + 8);
    ripc_ring_release(f->c);
}

static void test_ring_maximum_size(void **state)
{
    struct fixture *f = *state;
    size_t max = ripc_ring_payload_max(f->p);
    assert_int_equal(max, CAP / 2 - 8);
    void *buf;
    assert_int_equal(ripc_ring_reserve(f->p, max + 1, &buf), -EMSGSIZE);
    assert_int_equal(ripc_ring_push(f->p, "", (size_t)-1), -EMSGSIZE);
    /* A maximum record fits from any start position once the ring is empty. */
    for (uint64_t start = 0; start < CAP; start += 8) {
        struct fixture *g = fixture_new(CAP);
        for (uint64_t moved = 0; moved < start;) {
            uint64_t chunk = start - moved > 512 ? 512 : start - moved;
            push_seq(g->p, chunk - 8, moved);
            pop_seq(g->c, chunk - 8, moved);
            moved += chunk;
        }
        push_seq(g->p, max, start);
        pop_seq(g->c, max, start);
        push_seq(g->p, max, start + 1);
        pop_seq(g->c, max, start + 1);
        fixture_free(g);
    }
}

static void test_ring_zero_length(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 300; i++) { /* 8 bytes each: wraps twice */
        assert_int_equal(ripc_ring_push(f->p, NULL, 0), 0);
        const void *buf;
        size_t n = 99;
        assert_int_equal(ripc_ring_peek(f->c, &buf, &n), 0);
        assert_int_equal(n, 0);
        ripc_ring_release(f->c);
    }
    assert_int_equal(ripc_ring_used(f->p), 0);
}

static void test_ring_reserve_larger_than_committed(void **state)
{
    struct fixture *f = *state;
    void *buf;
    assert_int_equal(ripc_ring_reserve(f->p, 400, &buf), 0);
    memcpy(buf, "hello", 5);
    ripc_ring_commit(f->p, 5);
    assert_int_equal(ripc_ring_used(f->p), 16); /* the committed size, not 408 */
    assert_int_equal(ripc_ring_reserve(f->p, 8, &buf), 0);
    memcpy(buf, "world!!!", 8);
    ripc_ring_commit(f->p, 1000); /* clamped to the reservation */
    char out[16];
    size_t n;
    assert_int_equal(ripc_ring_pop(f->c, out, sizeof out, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, "hello", 5);
    assert_int_equal(ripc_ring_pop(f->c, out, 4, &n), -EMSGSIZE);
    assert_int_equal(n, 8); /* still there */
    assert_int_equal(ripc_ring_pop(f->c, out, 8, &n), 0);
    assert_memory_equal(out, "world!!!", 8);
    /* A reservation never committed publishes nothing. */
    assert_int_equal(ripc_ring_reserve(f->p, 100, &buf), 0);
    const void *rb;
    assert_int_equal(ripc_ring_peek(f->c, &rb, &n), -EAGAIN);
}

static void test_ring_peek_twice_same_record(void **state)
{
    struct fixture *f = *state;
    push_seq(f->p, 400, 0);
    push_seq(f->p, 400, 1);
    pop_seq(f->c, 400, 0);
    push_seq(f->p, 300, 2); /* behind a pad */
    pop_seq(f->c, 400, 1);
    const void *a, *b;
    size_t na, nb;
    assert_int_equal(ripc_ring_peek(f->c, &a, &na), 0);
    assert_int_equal(ripc_ring_peek(f->c, &b, &nb), 0);
    assert_ptr_equal(a, b);
    assert_int_equal(na, 300);
    assert_int_equal(nb, 300);
    ripc_ring_release(f->c);
    ripc_ring_release(f->c); /* second release: no effect */
    assert_int_equal(ripc_ring_peek(f->c, &a, &na), -EAGAIN);
}

static void test_ring_attach_unformatted_or_foreign(void **state)
{
    (void)state;
    static _Alignas(128) unsigned char mem[RIPC_RING_HDR_BYTES + 256];
    ripc_ring *r = NULL;
    memset(mem, 0, sizeof mem);
    assert_int_equal(ripc_ring_attach(&r, mem, sizeof mem, RIPC_RING_CONSUMER), -EPROTO);
    memset(mem, 0xA5, sizeof mem);
    assert_int_equal(ripc_ring_attach(&r, mem, sizeof mem, RIPC_RING_CONSUMER), -EPROTO);
    assert_null(r);
    /* A ring formatted for more memory than we were given. */
    static _Alignas(128) unsigned char big[RIPC_RING_HDR_BYTES + 1024];
    assert_int_equal(ripc_ring_format(big, sizeof big, 1024), 0);
    assert_int_equal(ripc_ring_attach(&r, big, RIPC_RING_HDR_BYTES + 512, RIPC_RING_CONSUMER),
                     -EPROTO);
    /* Other layout version: 1 polled head, not the header slot. */
    struct ripc_ring_hdr *h = (struct ripc_ring_hdr *)big;
    h->consts.c.version = 1;
    assert_int_equal(ripc_ring_attach(&r, big, sizeof big, RIPC_RING_CONSUMER), -EPROTONOSUPPORT);
}

/* Corrupt one constant and expect attach to refuse. */
static void attach_refuses(size_t field_off, uint64_t value, size_t width)
{
    static _Alignas(128) unsigned char mem[RIPC_RING_HDR_BYTES + 1024];
    assert_int_equal(ripc_ring_format(mem, sizeof mem, 1024), 0);
    memcpy(mem + field_off, &value, width);
    ripc_ring *r = NULL;
    int rc = ripc_ring_attach(&r, mem, sizeof mem, RIPC_RING_CONSUMER);
    assert_true(rc == -EPROTO || rc == -EPROTONOSUPPORT);
    assert_null(r);
    rc = ripc_ring_attach(&r, mem, sizeof mem, RIPC_RING_PRODUCER);
    assert_true(rc == -EPROTO || rc == -EPROTONOSUPPORT);
}

static void test_ring_corrupt_constants(void **state)
{
    (void)state;
    size_t base = offsetof(struct ripc_ring_hdr, consts);
    attach_refuses(base + offsetof(struct ripc_ring_consts, magic), 0x1234, 8);
    attach_refuses(base + offsetof(struct ripc_ring_consts, version), 0, 4);
    attach_refuses(base + offsetof(struct ripc_ring_consts, hdr_bytes), 64, 4);
    attach_refuses(base + offsetof(struct ripc_ring_consts, capacity), 1000, 8); /* not pow2 */
    attach_refuses(base + offsetof(struct ripc_ring_consts, capacity), 2048, 8); /* > memory */
    attach_refuses(base + offsetof(struct ripc_ring_consts, capacity), 0, 8);
    attach_refuses(base + offsetof(struct ripc_ring_consts, capacity), 1ULL << 63, 8);
    attach_refuses(base + offsetof(struct ripc_ring_consts, max_payload), 1024, 8);
    /* Indices that break the invariants at attach time. */
    attach_refuses(offsetof(struct ripc_ring_hdr, prod), 2048, 8); /* head - tail > cap */
    attach_refuses(offsetof(struct ripc_ring_hdr, prod), 1024, 8); /* no spare slot */
    attach_refuses(offsetof(struct ripc_ring_hdr, prod), 4, 8);    /* unaligned */
    attach_refuses(offsetof(struct ripc_ring_hdr, cons), 4096, 8); /* tail far beyond head */
}

/* tail ahead of head: a consumer that took records by their headers before
 * the producer stored head may re-attach; a producer may not start there. */
static void test_ring_attach_tail_ahead_of_head(void **state)
{
    (void)state;
    static _Alignas(128) unsigned char mem[RIPC_RING_HDR_BYTES + 1024];
    assert_int_equal(ripc_ring_format(mem, sizeof mem, 1024), 0);
    struct ripc_ring_hdr *h = (struct ripc_ring_hdr *)mem;
    atomic_store(&h->cons.tail, 8);
    ripc_ring *r = NULL;
    assert_int_equal(ripc_ring_attach(&r, mem, sizeof mem, RIPC_RING_CONSUMER), 0);
    ripc_ring_detach(r);
    r = NULL;
    assert_int_equal(ripc_ring_attach(&r, mem, sizeof mem, RIPC_RING_PRODUCER), -EPROTO);
    assert_null(r);
}

/* Which call meets the corrupt record first: peek, or pop (whose fast path
 * is inlined from the public header and checks the header itself). */
static int pop_first;

static void expect_dead_consumer(struct fixture *f)
{
    const void *buf;
    size_t n;
    if (pop_first) {
        static unsigned char out[CAP];
        assert_int_equal(ripc_ring_pop(f->c, out, sizeof out, &n), -EPROTO);
    }
    assert_int_equal(ripc_ring_peek(f->c, &buf, &n), -EPROTO);
    /* Sticky: the ring stays dead whatever the memory says later. */
    assert_int_equal(ripc_ring_peek(f->c, &buf, &n), -EPROTO);
    assert_int_equal(ripc_ring_pop(f->c, NULL, 0, &n), -EPROTO);
    assert_int_equal(ripc_ring_used(f->c), 0);
}

static void set_head(struct fixture *f, uint64_t v)
{
    atomic_store(&hdr(f)->prod.head, v);
}

/* The consumer's fast path does not read head; ripc_ring_used() does, and a
 * bad one kills the ring like a bad record. */
static void expect_dead_after_used(struct fixture *f)
{
    assert_int_equal(ripc_ring_used(f->c), 0);
    expect_dead_consumer(f);
}

static void test_ring_corrupt_head(void **state)
{
    struct fixture *f = *state;
    set_head(f, CAP + 8); /* more than capacity ahead of tail */
    expect_dead_after_used(f);

    f = fixture_new(CAP);
    set_head(f, CAP); /* capacity ahead: no room for the spare slot */
    expect_dead_after_used(f);
    fixture_free(f);

    f = fixture_new(CAP);
    set_head(f, 12); /* unaligned */
    expect_dead_after_used(f);
    fixture_free(f);

    f = fixture_new(CAP);
    push_seq(f->p, 8, 0);
    assert_int_equal(ripc_ring_used(f->c), 16);
    pop_seq(f->c, 8, 0);
    set_head(f, 0); /* moved backwards from the 16 we saw */
    expect_dead_after_used(f);
    fixture_free(f);

    f = fixture_new(CAP);
    set_head(f, UINT64_MAX - 7); /* "negative" */
    expect_dead_after_used(f);
    fixture_free(f);

    /* Lagging by a whole capacity behind records we took: not a lag any
     * honest producer shows. */
    f = fixture_new(CAP);
    for (uint64_t i = 0; i < 3; i++) {
        push_seq(f->p, 400, i);
        assert_true(ripc_ring_used(f->c) >= 408);
        pop_seq(f->c, 400, i);
    }
    set_head(f, 0); /* our position: 1432 (the third one padded) */
    expect_dead_after_used(f);
    fixture_free(f);
}

/* A record is committed by its header; head comes after. A consumer can
 * take it before head moves (or a hostile producer never moves head): that
 * is in bounds, and ripc_ring_used() then says 0, not -EPROTO. */
static void test_ring_header_before_head(void **state)
{
    struct fixture *f = *state;
    push_seq(f->p, 40, 0);
    push_seq(f->p, 40, 1);
    set_head(f, 48); /* as if the producer's second head store were not seen yet */
    pop_seq(f->c, 40, 0);
    pop_seq(f->c, 40, 1);
    assert_int_equal(ripc_ring_used(f->c), 0); /* head lags: no error */
    const void *rb;
    size_t n;
    assert_int_equal(ripc_ring_peek(f->c, &rb, &n), -EAGAIN);
    set_head(f, 96);
    assert_int_equal(ripc_ring_used(f->c), 0);
    push_seq(f->p, 8, 2);
    assert_int_equal(ripc_ring_used(f->c), 16);
    pop_seq(f->c, 8, 2);
}

/* A producer that died between its header store and its head store: a new
 * producer must not write over the committed record. */
static void test_ring_producer_reattach_after_crash(void **state)
{
    struct fixture *f = *state;
    push_seq(f->p, 456, 0); /* 0..464 */
    pop_seq(f->c, 456, 0);
    push_seq(f->p, 400, 1); /* 464..872 */
    push_seq(f->p, 200, 2); /* pad 872..1024, record 1024..1232 */
    set_head(f, 464);       /* the last two head stores were lost */
    ripc_ring_detach(f->p);
    assert_int_equal(ripc_ring_attach(&f->p, f->mem, f->len, RIPC_RING_PRODUCER), 0);
    assert_int_equal(atomic_load(&hdr(f)->prod.head), 1232); /* republished */
    push_seq(f->p, 8, 3);                                    /* 1232..1248 */
    pop_seq(f->c, 400, 1);
    pop_seq(f->c, 200, 2);
    pop_seq(f->c, 8, 3);
    assert_int_equal(ripc_ring_used(f->c), 0);

    /* Garbage at head (not a committed header, not zero): refuse. */
    set_rec(f, 1248 - 1024, 5, 0);
    ripc_ring_detach(f->p);
    assert_int_equal(ripc_ring_attach(&f->p, f->mem, f->len, RIPC_RING_PRODUCER), -EPROTO);
    assert_null(f->p);
}

static void test_ring_corrupt_record_length(void **state)
{
    struct fixture *f = *state;
    push_seq(f->p, 16, 0);
    set_rec(f, 0, 0xFFFFFFFFu, RIPC_REC_VALID);
    expect_dead_consumer(f);

    /* A nonzero header without the committed bit: never written by a
     * producer (the slot is 0 until the header lands). */
    f = fixture_new(CAP);
    push_seq(f->p, 8, 0);
    set_rec(f, 0, 8, 0);
    expect_dead_consumer(f);
    fixture_free(f);

    /* Nonzero junk in the empty slot at the consumer's position. */
    f = fixture_new(CAP);
    push_seq(f->p, 8, 0);
    pop_seq(f->c, 8, 0);
    set_rec(f, 16, 0, 0x40);
    expect_dead_consumer(f);
    fixture_free(f);

    /* A length crossing the end of the data area. */
    f = fixture_new(CAP);
    push_seq(f->p, 400, 0);
    push_seq(f->p, 400, 1);
    pop_seq(f->c, 400, 0);
    push_seq(f->p, 100, 2); /* 816..928 */
    pop_seq(f->c, 400, 1);
    set_rec(f, 816, 400, RIPC_REC_VALID); /* would run to 1224 */
    expect_dead_consumer(f);
    fixture_free(f);

    /* Above the maximum payload although inside the published bytes. */
    f = fixture_new(CAP);
    push_seq(f->p, 200, 0);
    push_seq(f->p, 200, 1);
    push_seq(f->p, 200, 2);
    set_rec(f, 0, 600, RIPC_REC_VALID);
    expect_dead_consumer(f);
    fixture_free(f);
}

/* A ring whose consumer stands at 816 before a pad, with a 300-byte record
 * (seq 2) wrapped to offset 0 behind it. */
static struct fixture *fixture_wrapped(void)
{
    struct fixture *f = fixture_new(CAP);
    push_seq(f->p, 400, 0);
    push_seq(f->p, 400, 1);
    pop_seq(f->c, 400, 0);
    push_seq(f->p, 300, 2); /* pad at 816, record at 0 */
    pop_seq(f->c, 400, 1);
    return f;
}

static void test_ring_corrupt_record_flags(void **state)
{
    struct fixture *f = *state;
    push_seq(f->p, 16, 0);
    set_rec(f, 0, 16, 0x80 | RIPC_REC_VALID);
    expect_dead_consumer(f);

    /* A pad in the middle of the data area that does not reach the end. */
    f = fixture_new(CAP);
    push_seq(f->p, 16, 0);
    push_seq(f->p, 16, 1);
    set_rec(f, 0, 8, RIPC_REC_PAD | RIPC_REC_VALID);
    expect_dead_consumer(f);
    fixture_free(f);

    /* A pad at offset 0 covering the whole ring. */
    f = fixture_new(CAP);
    push_seq(f->p, 16, 0);
    set_rec(f, 0, CAP - 8, RIPC_REC_PAD | RIPC_REC_VALID);
    expect_dead_consumer(f);
    fixture_free(f);

    /* A pad followed by nothing (an empty slot at offset 0). */
    f = fixture_new(CAP);
    push_seq(f->p, 400, 0);
    push_seq(f->p, 400, 1);
    pop_seq(f->c, 400, 0);
    pop_seq(f->c, 400, 1);
    push_seq(f->p, 200, 2); /* 816..1024 exactly: 200 + 8 = 208 */
    set_rec(f, 816, 200, RIPC_REC_PAD | RIPC_REC_VALID);
    set_rec(f, 0, 0, 0);
    expect_dead_consumer(f);
    fixture_free(f);

    /* Two pads in a row. */
    f = fixture_wrapped();
    set_rec(f, 0, CAP - 8, RIPC_REC_PAD | RIPC_REC_VALID);
    expect_dead_consumer(f);
    fixture_free(f);

    /* A pad header without the committed bit. */
    f = fixture_wrapped();
    set_rec(f, 816, 200, RIPC_REC_PAD);
    expect_dead_consumer(f);
    fixture_free(f);

    /* A pad that stops short of the end. */
    f = fixture_wrapped();
    set_rec(f, 816, 192, RIPC_REC_PAD | RIPC_REC_VALID);
    expect_dead_consumer(f);
    fixture_free(f);
}

/* The same hostile records met by ripc_ring_pop first. */
static void test_ring_pop_corrupt_record_length(void **state)
{
    pop_first = 1;
    test_ring_corrupt_record_length(state);
    pop_first = 0;
}

static void test_ring_pop_corrupt_record_flags(void **state)
{
    pop_first = 1;
    test_ring_corrupt_record_flags(state);
    pop_first = 0;
}

/* push/pop through every path: records that end exactly at the end of the
 * data area, wraps (pad), a full ring, a buffer too small (the record
 * stays, and a later pop with room takes it), and zero-length records. */
static void test_ring_pop_wraps_and_small_buffers(void **state)
{
    struct fixture *f = *state;
    unsigned char in[CAP / 2], out[CAP / 2];
    uint64_t sent = 0, got = 0;
    size_t n;
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(sent * 37 % 300);
        ripc_test_fill(in, len, sent);
        int rc = ripc_ring_push(f->p, in, len);
        if (rc == -EAGAIN) {
            /* Full: drain one, with a buffer too small first when it can be. */
            size_t want = (size_t)(got * 37 % 300);
            if (want > 0)
                assert_int_equal(ripc_ring_pop(f->c, out, want - 1, &n), -EMSGSIZE);
            assert_int_equal(ripc_ring_pop(f->c, out, sizeof out, &n), 0);
            assert_int_equal(n, want);
            assert_true(ripc_test_check(out, n, got));
            got++;
            continue;
        }
        assert_int_equal(rc, 0);
        sent++;
    }
    while (got < sent) {
        size_t want = (size_t)(got * 37 % 300);
        assert_int_equal(ripc_ring_pop(f->c, out, sizeof out, &n), 0);
        assert_int_equal(n, want);
        assert_true(ripc_test_check(out, n, got));
        got++;
    }
    assert_int_equal(ripc_ring_pop(f->c, out, sizeof out, &n), -EAGAIN);
    assert_int_equal(ripc_ring_used(f->c), 0);
}

static void test_ring_corrupt_tail_seen_by_producer(void **state)
{
    struct fixture *f = *state;
    /* Fill (64 bytes left, a 56-byte record needs 72), so the producer must
     * read the consumer index. */
    for (uint64_t i = 0; i < 15; i++)
        push_seq(f->p, 56, i);
    atomic_store(&hdr(f)->cons.tail, (uint64_t)CAP * 4); /* beyond head */
    void *buf;
    assert_int_equal(ripc_ring_reserve(f->p, 56, &buf), -EPROTO);
    assert_int_equal(ripc_ring_reserve(f->p, 8, &buf), -EPROTO); /* sticky */
    assert_int_equal(ripc_ring_push(f->p, "a", 1), -EPROTO);

    f = fixture_new(CAP);
    push_seq(f->p, 56, 0);
    pop_seq(f->c, 56, 0);
    for (uint64_t i = 0; i < 15; i++) /* the last one makes it read tail = 64 */
        push_seq(f->p, 56, i);
    atomic_store(&hdr(f)->cons.tail, 0); /* moved backwards */
    assert_int_equal(ripc_ring_reserve(f->p, 56, &buf), -EPROTO);
    fixture_free(f);

    f = fixture_new(CAP);
    for (uint64_t i = 0; i < 15; i++)
        push_seq(f->p, 56, i);
    atomic_store(&hdr(f)->cons.tail, 4); /* unaligned */
    assert_int_equal(ripc_ring_reserve(f->p, 56, &buf), -EPROTO);
    assert_int_equal(ripc_ring_used(f->p), 0);
    fixture_free(f);
}

static void test_ring_consumer_ignores_shared_tail(void **state)
{
    struct fixture *f = *state;
    /* The consumer never reads its own index back: a peer scribbling on it
     * cannot make the consumer skip or replay records. */
    push_seq(f->p, 8, 0);
    push_seq(f->p, 8, 1);
    pop_seq(f->c, 8, 0);
    atomic_store(&hdr(f)->cons.tail, 0);
    pop_seq(f->c, 8, 1);
}

/* Fill buf with words that each look like a committed header (of a small
 * record or of a pad), as user data may. */
static void fill_phantoms(void *buf, size_t len, uint64_t seq)
{
    unsigned char *b = buf;
    for (size_t i = 0; i < len; i++) {
        uint64_t w = (seq + i / 8) % 3 == 0 ? ripc__rec_pack(8, RIPC_REC_VALID)
                     : (seq + i / 8) % 3 == 1
                         ? ripc__rec_pack(0, RIPC_REC_VALID)
                         : ripc__rec_pack(248 - 8, RIPC_REC_PAD | RIPC_REC_VALID);
        b[i] = (unsigned char)(w >> (8 * (i % 8)));
    }
    if (len >= 8) /* the first word names the record, for the checker */
        memcpy(b, &seq, 8);
}

/*
 * The phantom-record rule: payloads full of words that look like committed
 * headers, many laps round a small ring with every mix of sizes, pads and
 * reservations left open (written, not committed). The consumer must see
 * exactly the committed records, in order, and -EAGAIN otherwise: never a
 * header it finds in an older lap's payload or in an open reservation.
 */
static void test_ring_phantom_records(void **state)
{
    (void)state;
    uint64_t seed = 0xFA27;
    const size_t caps[] = {64, 256, 1024};
    for (size_t ci = 0; ci < 3; ci++) {
        size_t cap = caps[ci], max = ripc_ring_max_payload(cap);
        struct fixture *f = fixture_new(cap);
        uint64_t qlen[512], pushed = 0, popped = 0, bytes = 0;
        while (bytes < 300 * cap) {
            uint64_t op = ripc_test_rand(&seed) % 8;
            if (op < 4 && pushed - popped < 512) {
                size_t len = 8 + (size_t)(ripc_test_rand(&seed) % (max - 7));
                void *buf;
                int rc = ripc_ring_reserve(f->p, len, &buf);
                if (rc == -EAGAIN)
                    continue;
                assert_int_equal(rc, 0);
                fill_phantoms(buf, len, pushed);
                if (op == 0) { /* left open: a later reserve replaces it */
                    const void *rb;
                    size_t n;
                    if (pushed == popped)
                        assert_int_equal(ripc_ring_peek(f->c, &rb, &n), -EAGAIN);
                    continue;
                }
                size_t keep = op == 1 ? len / 2 : len; /* commit shorter */
                if (keep < 8)
                    keep = 8;
                ripc_ring_commit(f->p, keep);
                qlen[pushed++ % 512] = keep;
                bytes += keep;
                assert_int_equal(slot_after_head(f, cap), 0);
            } else {
                const void *rb;
                size_t n;
                int rc = ripc_ring_peek(f->c, &rb, &n);
                if (pushed == popped) {
                    assert_int_equal(rc, -EAGAIN);
                    continue;
                }
                assert_int_equal(rc, 0);
                assert_int_equal(n, qlen[popped % 512]);
                uint64_t id;
                memcpy(&id, rb, 8);
                assert_int_equal(id, popped);
                ripc_ring_release(f->c);
                popped++;
            }
        }
        while (popped < pushed) {
            const void *rb;
            size_t n;
            assert_int_equal(ripc_ring_peek(f->c, &rb, &n), 0);
            assert_int_equal(n, qlen[popped % 512]);
            ripc_ring_release(f->c);
            popped++;
        }
        const void *rb;
        size_t n;
        assert_int_equal(ripc_ring_peek(f->c, &rb, &n), -EAGAIN);
        assert_int_equal(ripc_ring_used(f->c), 0);
        fixture_free(f);
    }
}

/* Random garbage everywhere the peer can write, many times over: the
 * consumer must return only records inside the data area or -EPROTO. The
 * guard pages turn any stray access into a crash. */
static void test_ring_random_garbage(void **state)
{
    (void)state;
    uint64_t seed = 0x5EED;
    static const unsigned char junk[128] = {1, 2, 3};
    for (int round = 0; round < 20000; round++) {
        struct fixture *f = fixture_new(256);
        unsigned char *d = data(f);
        /* A few valid records first, then garbage at random places. */
        int nrec = (int)(ripc_test_rand(&seed) % 6);
        for (int i = 0; i < nrec; i++)
            if (ripc_ring_push(f->p, junk, ripc_test_rand(&seed) % 100) != 0)
                break;
        int hits = 1 + (int)(ripc_test_rand(&seed) % 4);
        for (int i = 0; i < hits; i++) {
            uint64_t v = ripc_test_rand(&seed);
            switch (ripc_test_rand(&seed) % 4) {
            case 0:
                memcpy(d + (ripc_test_rand(&seed) % 32) * 8, &v, 8);
                break;
            case 1: /* plausible small length, random flags bits */
                set_rec(f, (ripc_test_rand(&seed) % 32) * 8, (uint32_t)(v % 300),
                        (uint32_t)((v >> 40) % 4)); /* PAD, VALID, both */
                break;
            case 2:
                set_head(f, v % 600);
                break;
            default:
                atomic_store(&hdr(f)->cons.tail, v % 600);
                break;
            }
        }
        for (int i = 0; i < 64; i++) {
            const void *buf;
            size_t n;
            if (round % 2) {
                /* pop: copies at most the buffer, never past the ring. */
                static unsigned char out[256];
                int rc = ripc_ring_pop(f->c, out, sizeof out, &n);
                if (rc == -EAGAIN || rc == -EPROTO)
                    break;
                assert_int_equal(rc, 0);
                assert_true(n <= ripc_ring_payload_max(f->c));
                continue;
            }
            int rc = ripc_ring_peek(f->c, &buf, &n);
            if (rc == -EAGAIN || rc == -EPROTO)
                break;
            assert_int_equal(rc, 0);
            const unsigned char *b = buf;
            assert_true(b >= d + 8 && b + n <= d + 256);
            volatile unsigned char sink = 0;
            for (size_t k = 0; k < n; k++)
                sink ^= b[k];
            (void)sink;
            ripc_ring_release(f->c);
        }
        fixture_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_size_and_format_args),
        cmocka_unit_test_setup_teardown(test_ring_pop_corrupt_record_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_pop_corrupt_record_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_pop_wraps_and_small_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_fifo_order_and_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_full, setup, teardown),
        cmocka_unit_test(test_ring_spare_slot_at_full),
        cmocka_unit_test(test_ring_phantom_records),
        cmocka_unit_test_setup_teardown(test_ring_exact_fit_at_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_wrap_with_pad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_pad_needs_room_for_both, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_maximum_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_zero_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_reserve_larger_than_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_peek_twice_same_record, setup, teardown),
        cmocka_unit_test(test_ring_attach_unformatted_or_foreign),
        cmocka_unit_test(test_ring_corrupt_constants),
        cmocka_unit_test(test_ring_attach_tail_ahead_of_head),
        cmocka_unit_test_setup_teardown(test_ring_header_before_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_producer_reattach_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_corrupt_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_corrupt_record_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_corrupt_record_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_corrupt_tail_seen_by_producer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_consumer_ignores_shared_tail, setup, teardown),
        cmocka_unit_test(test_ring_random_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

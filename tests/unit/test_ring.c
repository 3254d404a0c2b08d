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
    assert_int_equal(ripc_ring_size(100), 0);  /* not a power of two */
    assert_int_equal(ripc_ring_size(32), 0);   /* below the minimum */
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
    assert_int_equal(ripc_ring_attach(&r, mem + 4, sizeof mem - 4, RIPC_RING_PRODUCER),
                     -EINVAL);
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

static void test_ring_full(void **state)
{
    struct fixture *f = *state;
    /* 56-byte payloads take 64 bytes: exactly 16 fit in 1024. */
    for (uint64_t i = 0; i < 16; i++)
        push_seq(f->p, 56, i);
    void *buf;
    assert_int_equal(ripc_ring_reserve(f->p, 0, &buf), -EAGAIN);
    assert_int_equal(ripc_ring_push(f->p, "x", 1), -EAGAIN);
    assert_int_equal(ripc_ring_used(f->p), CAP);
    pop_seq(f->c, 56, 0);
    /* One record freed: exactly one more fits. */
    push_seq(f->p, 56, 16);
    assert_int_equal(ripc_ring_reserve(f->p, 0, &buf), -EAGAIN);
    for (uint64_t i = 1; i < 17; i++)
        pop_seq(f->c, 56, i);
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
    push_seq(f->p, 104, 2);     /* 112 bytes: 912..1024, no pad */
    assert_int_equal(ripc_ring_used(f->p), 112);
    /* The record header sits at 912, not a pad at 912. */
    uint64_t h;
    memcpy(&h, data(f) + 912, 8);
    assert_int_equal(ripc__rec_flags(h), 0);
    assert_int_equal(ripc__rec_len(h), 104);
    pop_seq(f->c, 104, 2);
    push_seq(f->p, 8, 3); /* wraps to 0 cleanly */
    memcpy(&h, data(f), 8);
    assert_int_equal(ripc__rec_len(h), 8);
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
    assert_int_equal(ripc__rec_flags(h), RIPC_REC_PAD);
    assert_int_equal(ripc__rec_len(h), 1024 - 816 - 8);
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
    /* 409 bytes need 424: 208 pad + 424 > 616 free. */
    assert_int_equal(ripc_ring_reserve(f->p, 409, &buf), -EAGAIN);
    assert_int_equal(ripc_ring_reserve(f->p, 400, &buf), 0); /* 208 + 408 = 616 */
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
    /* Other layout version. */
    struct ripc_ring_hdr *h = (struct ripc_ring_hdr *)big;
    h->consts.c.version = 2;
    assert_int_equal(ripc_ring_attach(&r, big, sizeof big, RIPC_RING_CONSUMER),
                     -EPROTONOSUPPORT);
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
    attach_refuses(base + offsetof(struct ripc_ring_consts, capacity), 1000, 8);   /* not pow2 */
    attach_refuses(base + offsetof(struct ripc_ring_consts, capacity), 2048, 8);   /* > memory */
    attach_refuses(base + offsetof(struct ripc_ring_consts, capacity), 0, 8);
    attach_refuses(base + offsetof(struct ripc_ring_consts, capacity), 1ULL << 63, 8);
    attach_refuses(base + offsetof(struct ripc_ring_consts, max_payload), 1024, 8);
    /* Indices that break the invariants at attach time. */
    attach_refuses(offsetof(struct ripc_ring_hdr, prod), 2048, 8); /* head - tail > cap */
    attach_refuses(offsetof(struct ripc_ring_hdr, prod), 4, 8);    /* unaligned */
    attach_refuses(offsetof(struct ripc_ring_hdr, cons), 8, 8);    /* tail > head */
}

static void expect_dead_consumer(struct fixture *f)
{
    const void *buf;
    size_t n;
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

static void test_ring_corrupt_head(void **state)
{
    struct fixture *f = *state;
    set_head(f, CAP + 8); /* more than capacity ahead of tail */
    expect_dead_consumer(f);

    f = fixture_new(CAP);
    set_head(f, 12); /* unaligned */
    expect_dead_consumer(f);
    fixture_free(f);

    f = fixture_new(CAP);
    push_seq(f->p, 8, 0);
    pop_seq(f->c, 8, 0);
    set_head(f, 0); /* moved backwards */
    expect_dead_consumer(f);
    fixture_free(f);

    f = fixture_new(CAP);
    set_head(f, UINT64_MAX - 7); /* "negative" */
    expect_dead_consumer(f);
    fixture_free(f);
}

static void set_rec(struct fixture *f, size_t off, uint32_t len, uint32_t flags)
{
    uint64_t h = ripc__rec_pack(len, flags);
    memcpy(data(f) + off, &h, 8);
}

static void test_ring_corrupt_record_length(void **state)
{
    struct fixture *f = *state;
    push_seq(f->p, 16, 0);
    set_rec(f, 0, 0xFFFFFFFFu, 0);
    expect_dead_consumer(f);

    /* A length past the published head (record claims 24 bytes, 16 committed). */
    f = fixture_new(CAP);
    push_seq(f->p, 8, 0);
    set_rec(f, 0, 16, 0);
    expect_dead_consumer(f);
    fixture_free(f);

    /* A length crossing the end of the data area. */
    f = fixture_new(CAP);
    push_seq(f->p, 400, 0);
    push_seq(f->p, 400, 1);
    pop_seq(f->c, 400, 0);
    push_seq(f->p, 100, 2);  /* 816..928 */
    pop_seq(f->c, 400, 1);
    set_rec(f, 816, 400, 0); /* would run to 1224 */
    expect_dead_consumer(f);
    fixture_free(f);

    /* Above the maximum payload although inside the published bytes. */
    f = fixture_new(CAP);
    push_seq(f->p, 200, 0);
    push_seq(f->p, 200, 1);
    push_seq(f->p, 200, 2);
    set_rec(f, 0, 600, 0);
    expect_dead_consumer(f);
    fixture_free(f);
}

static void test_ring_corrupt_record_flags(void **state)
{
    struct fixture *f = *state;
    push_seq(f->p, 16, 0);
    set_rec(f, 0, 16, 0x80);
    expect_dead_consumer(f);

    /* A pad in the middle of the data area that does not reach the end. */
    f = fixture_new(CAP);
    push_seq(f->p, 16, 0);
    push_seq(f->p, 16, 1);
    set_rec(f, 0, 8, RIPC_REC_PAD);
    expect_dead_consumer(f);
    fixture_free(f);

    /* A pad at offset 0 covering the whole ring. */
    f = fixture_new(CAP);
    push_seq(f->p, 16, 0);
    set_rec(f, 0, CAP - 8, RIPC_REC_PAD);
    expect_dead_consumer(f);
    fixture_free(f);

    /* A pad followed by nothing (head stops right after it). */
    f = fixture_new(CAP);
    push_seq(f->p, 400, 0);
    push_seq(f->p, 400, 1);
    pop_seq(f->c, 400, 0);
    pop_seq(f->c, 400, 1);
    push_seq(f->p, 200, 2); /* 816..1024 exactly: 200 + 8 = 208 */
    set_rec(f, 816, 200, RIPC_REC_PAD);
    expect_dead_consumer(f);
    fixture_free(f);

    /* Two pads in a row. */
    f = fixture_new(CAP);
    push_seq(f->p, 400, 0);
    push_seq(f->p, 400, 1);
    pop_seq(f->c, 400, 0);
    push_seq(f->p, 300, 2); /* pad at 816, record at 0 */
    pop_seq(f->c, 400, 1);
    set_rec(f, 0, CAP - 8, RIPC_REC_PAD);
    expect_dead_consumer(f);
    fixture_free(f);
}

static void test_ring_corrupt_tail_seen_by_producer(void **state)
{
    struct fixture *f = *state;
    /* Fill, so the producer must read the consumer index. */
    for (uint64_t i = 0; i < 16; i++)
        push_seq(f->p, 56, i);
    atomic_store(&hdr(f)->cons.tail, (uint64_t)CAP * 4); /* beyond head */
    void *buf;
    assert_int_equal(ripc_ring_reserve(f->p, 8, &buf), -EPROTO);
    assert_int_equal(ripc_ring_reserve(f->p, 8, &buf), -EPROTO); /* sticky */
    assert_int_equal(ripc_ring_push(f->p, "a", 1), -EPROTO);

    f = fixture_new(CAP);
    push_seq(f->p, 56, 0);
    pop_seq(f->c, 56, 0);
    for (uint64_t i = 0; i < 16; i++) /* the last one makes it read tail = 64 */
        push_seq(f->p, 56, i);
    atomic_store(&hdr(f)->cons.tail, 0); /* moved backwards */
    assert_int_equal(ripc_ring_reserve(f->p, 8, &buf), -EPROTO);
    fixture_free(f);

    f = fixture_new(CAP);
    for (uint64_t i = 0; i < 16; i++)
        push_seq(f->p, 56, i);
    atomic_store(&hdr(f)->cons.tail, 4); /* unaligned */
    assert_int_equal(ripc_ring_reserve(f->p, 8, &buf), -EPROTO);
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
                        (uint32_t)((v >> 40) % 3));
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
        cmocka_unit_test_setup_teardown(test_ring_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_fifo_order_and_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_exact_fit_at_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_wrap_with_pad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_pad_needs_room_for_both, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_maximum_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_zero_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_reserve_larger_than_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_peek_twice_same_record, setup, teardown),
        cmocka_unit_test(test_ring_attach_unformatted_or_foreign),
        cmocka_unit_test(test_ring_corrupt_constants),
        cmocka_unit_test_setup_teardown(test_ring_corrupt_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_corrupt_record_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_corrupt_record_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_corrupt_tail_seen_by_producer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_consumer_ignores_shared_tail, setup, teardown),
        cmocka_unit_test(test_ring_random_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

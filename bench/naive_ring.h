/* SPDX-License-Identifier: MIT */
/*
 * The naive ring: the baseline the ringipc rows are held against. A
 * cached-index single-producer / single-consumer byte ring between two
 * processes, with 8-byte length headers and no checks at all (it trusts its
 * peer completely): an honest upper bound for what a ring can move here,
 * written inline so that nothing but the copy and the index traffic is left.
 *
 *   producer  write [u64 len][payload, padded to 8]; release store of head
 *   consumer  acquire load of head only when its cached copy says empty;
 *             read in place; release store of tail
 *
 * The producer reads tail only when its cached copy says full. A record that
 * would cross the end of the data area is preceded by NAIVE_WRAP (skip to
 * the start). The capacity must be a power of two that holds two of the
 * largest records.
 */
#ifndef RIPC_BENCH_NAIVE_RING_H
#define RIPC_BENCH_NAIVE_RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NAIVE_WRAP UINT64_MAX

struct naive_ring {
    _Alignas(128) _Atomic uint64_t head;
    _Alignas(128) _Atomic uint64_t tail;
    _Alignas(128) unsigned char data[];
};

/* One side's private view. */
struct naive_end {
    struct naive_ring *q;
    uint64_t cap, mask;
    uint64_t pos;  /* own index */
    uint64_t peer; /* cached index of the other side */
    uint64_t held; /* consumer: bytes of the record the last peek returned */
};

static inline size_t naive_ring_bytes(size_t cap)
{
    return sizeof(struct naive_ring) + cap;
}

static inline void naive_attach(struct naive_end *e, void *mem, size_t cap)
{
    *e = (struct naive_end){.q = mem, .cap = cap, .mask = cap - 1};
}

static inline int naive_push(struct naive_end *e, const void *buf, size_t len)
{
    uint64_t need = 8 + ((len + 7) & ~(uint64_t)7);
    uint64_t off = e->pos & e->mask, to_end = e->cap - off;
    uint64_t total = need <= to_end ? need : to_end + need;
    if (e->cap - (e->pos - e->peer) < total) {
        /* Acquire: pairs with the consumer's release of tail. */
        e->peer = atomic_load_explicit(&e->q->tail, memory_order_acquire);
        if (e->cap - (e->pos - e->peer) < total)
            return -EAGAIN;
    }
    if (need > to_end) {
        uint64_t wrap = NAIVE_WRAP;
        memcpy(e->q->data + off, &wrap, sizeof wrap);
        e->pos += to_end;
        off = 0;
    }
    uint64_t n = len;
    memcpy(e->q->data + off, &n, sizeof n);
    memcpy(e->q->data + off + 8, buf, len);
    e->pos += need;
    /* Release: the record is written before the consumer sees head move. */
    atomic_store_explicit(&e->q->head, e->pos, memory_order_release);
    return 0;
}

/* The oldest record, in place; naive_release() drops it. */
static inline int naive_peek(struct naive_end *e, const void **buf, size_t *len)
{
    if (e->pos == e->peer) {
        /* Acquire: pairs with the producer's release of head. */
        e->peer = atomic_load_explicit(&e->q->head, memory_order_acquire);
        if (e->pos == e->peer)
            return -EAGAIN;
    }
    uint64_t off = e->pos & e->mask, n;
    memcpy(&n, e->q->data + off, sizeof n);
    if (n == NAIVE_WRAP) {
        e->pos += e->cap - off;
        off = 0;
        memcpy(&n, e->q->data, sizeof n);
    }
    e->held = 8 + ((n + 7) & ~(uint64_t)7);
    *buf = e->q->data + off + 8;
    *len = (size_t)n;
    return 0;
}

static inline void naive_release(struct naive_end *e)
{
    e->pos += e->held;
    e->held = 0;
    /* Release: our reads of the record are done before the space is reused. */
    atomic_store_explicit(&e->q->tail, e->pos, memory_order_release);
}

static inline int naive_pop(struct naive_end *e, void *buf, size_t cap, size_t *len)
{
    const void *p;
    int rc = naive_peek(e, &p, len);
    if (rc < 0)
        return rc;
    if (*len > cap)
        return -EMSGSIZE;
    memcpy(buf, p, *len);
    naive_release(e);
    return 0;
}

#endif /* RIPC_BENCH_NAIVE_RING_H */

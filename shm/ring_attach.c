/* SPDX-License-Identifier: MIT */
/*
 * A ring over memory: its size, its format, and attaching a handle to it.
 * The memory is shared with a peer that may be hostile, so attach reads
 * every constant once, checks it, and uses only its own copies; a producer
 * that attaches again finds where the committed records end. What a handle
 * does once attached (records, the eventcount): shm/ring.c. Format:
 * shm/ring_layout.h. Contract: include/ringipc/ring.h.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ringipc/ring.h"
#include "shm/ring_internal.h"
#include "shm/ring_layout.h"

static int is_pow2(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

static int capacity_ok(uint64_t capacity)
{
    return is_pow2(capacity) && capacity >= RIPC_RING_MIN_CAPACITY &&
           capacity <= (uint64_t)RIPC_RING_MAX_CAPACITY;
}

size_t ripc_ring_size(size_t capacity)
{
    if (!capacity_ok(capacity))
        return 0;
    return RIPC_RING_HDR_BYTES + capacity;
}

size_t ripc_ring_max_payload(size_t capacity)
{
    if (!capacity_ok(capacity))
        return 0;
    return capacity / 2 - RIPC_REC_HDR;
}

static int format(void *mem, size_t mem_len, size_t capacity, int zero_data)
{
    if (mem == NULL || ((uintptr_t)mem & (RIPC_RING_ALIGN - 1)) != 0)
        return -EINVAL;
    size_t need = ripc_ring_size(capacity);
    if (need == 0 || mem_len < need)
        return -EINVAL;

    struct ripc_ring_hdr *h = mem;
    memset(h, 0, sizeof *h);
    /* Zero slots mean "empty" (the phantom-record rule): the data area starts
     * all zero, so the consumer's first look finds no record. */
    if (zero_data)
        memset((unsigned char *)mem + RIPC_RING_HDR_BYTES, 0, capacity);
    h->consts.c.version = RIPC_RING_LAYOUT_VERSION;
    h->consts.c.hdr_bytes = RIPC_RING_HDR_BYTES;
    h->consts.c.capacity = capacity;
    h->consts.c.max_payload = ripc_ring_max_payload(capacity);
    atomic_store_explicit(&h->prod.head, 0, memory_order_relaxed);
    atomic_store_explicit(&h->cons.tail, 0, memory_order_relaxed);
    /* M1: the magic goes last, with release; pairs with M2 in attach:
     * whoever sees it sees a complete header. */
    __atomic_store_n(&h->consts.c.magic, RIPC_RING_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

int ripc_ring_format(void *mem, size_t mem_len, size_t capacity)
{
    return format(mem, mem_len, capacity, 1);
}

int ripc__ring_format_zeroed(void *mem, size_t mem_len, size_t capacity)
{
    return format(mem, mem_len, capacity, 0);
}

/*
 * Producer attach: where does the committed data end? A record is committed
 * by its header; head follows it. A producer that died between the two
 * stores left committed records beyond head, which the consumer may take (or
 * already took), so walk the headers from head to the zero slot that ends
 * them (the phantom-record rule puts one there) and publish head = that end.
 * The walk trusts nothing: at most capacity bytes, every header checked like
 * the consumer checks it, and the result must satisfy tail <= end <=
 * tail + capacity - 8.
 */
static int find_end(ripc_ring *r, uint64_t head, uint64_t tail, uint64_t *end)
{
    uint64_t p = head;
    for (;;) {
        if (p - head > r->capacity)
            return -EPROTO;
        uint64_t off = p & r->f.mask, to_end = r->capacity - off;
        uint64_t h = ripc__ring_load_slot(r, off, __ATOMIC_ACQUIRE);
        if (h == 0)
            break;
        uint32_t flags = ripc__rec_flags(h), len = ripc__rec_len(h);
        if (flags == (RIPC_REC_VALID | RIPC_REC_PAD) && off != 0 &&
            (uint64_t)len + RIPC_REC_HDR == to_end) {
            p += to_end;
            continue;
        }
        if (flags != RIPC_REC_VALID || len > r->f.max_payload || ripc__rec_size(len) > to_end)
            return -EPROTO;
        p += ripc__rec_size(len);
    }
    if (p - tail > r->capacity - RIPC_REC_SPARE)
        return -EPROTO;
    if (p != head)
        atomic_store_explicit(&r->hdr->prod.head, p, memory_order_release);
    *end = p;
    return 0;
}

int ripc_ring_attach(ripc_ring **out, void *mem, size_t mem_len, int role)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (mem == NULL || ((uintptr_t)mem & (RIPC_RING_ALIGN - 1)) != 0)
        return -EINVAL;
    if (role != RIPC_RING_PRODUCER && role != RIPC_RING_CONSUMER)
        return -EINVAL;
    if (mem_len < RIPC_RING_HDR_BYTES)
        return -EINVAL;

    struct ripc_ring_hdr *h = mem;
    /* Read every constant exactly once into locals; only the locals are used
     * from here on. M2: acquire, pairs with M1 in format. */
    uint64_t magic = __atomic_load_n(&h->consts.c.magic, __ATOMIC_ACQUIRE);
    uint32_t version = __atomic_load_n(&h->consts.c.version, __ATOMIC_RELAXED);
    uint32_t hdr_bytes = __atomic_load_n(&h->consts.c.hdr_bytes, __ATOMIC_RELAXED);
    uint64_t capacity = __atomic_load_n(&h->consts.c.capacity, __ATOMIC_RELAXED);
    uint64_t max_payload = __atomic_load_n(&h->consts.c.max_payload, __ATOMIC_RELAXED);

    if (magic != RIPC_RING_MAGIC)
        return -EPROTO;
    if (version != RIPC_RING_LAYOUT_VERSION)
        return -EPROTONOSUPPORT;
    if (hdr_bytes != RIPC_RING_HDR_BYTES || !capacity_ok(capacity) ||
        max_payload != capacity / 2 - RIPC_REC_HDR)
        return -EPROTO;
    if (capacity > mem_len - RIPC_RING_HDR_BYTES)
        return -EPROTO;

    ripc_ring *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    r->hdr = h;
    r->f.data = (unsigned char *)mem + RIPC_RING_HDR_BYTES;
    r->capacity = capacity;
    r->f.mask = capacity - 1;
    r->f.max_payload = max_payload;
    r->role = role;

    /* Start from the indices as they stand: a side may re-attach to a live
     * ring. Validate them like any other shared value. The consumer index
     * may be ahead of head by the record(s) taken by their headers before
     * the producer stored head (refresh_head, shm/ring.c). */
    uint64_t head = atomic_load_explicit(&h->prod.head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&h->cons.tail, memory_order_acquire);
    int rc = 0;
    if (((head | tail) & (RIPC_RING_ALIGN - 1)) != 0 ||
        (head - tail > capacity - RIPC_REC_SPARE && tail - head >= capacity))
        rc = -EPROTO;
    else if (role == RIPC_RING_PRODUCER)
        rc = find_end(r, head, tail, &head);
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->f.pos = role == RIPC_RING_PRODUCER ? head : tail;
    r->f.index = role == RIPC_RING_PRODUCER ? (uint64_t *)&h->prod.head : (uint64_t *)&h->cons.tail;
    r->f.peer = role == RIPC_RING_PRODUCER ? tail : head;
    *out = r;
    return 0;
}

void ripc_ring_detach(ripc_ring *r)
{
    free(r);
}

size_t ripc_ring_capacity(const ripc_ring *r)
{
    return (size_t)r->capacity;
}

size_t ripc_ring_payload_max(const ripc_ring *r)
{
    return (size_t)r->f.max_payload;
}

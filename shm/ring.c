/* SPDX-License-Identifier: MIT */
/*
 * The SPSC ring. Format: shm/ring_layout.h. Contract: include/ringipc/ring.h.
 *
 * Each side keeps its own index privately and never reads it back from
 * shared memory (the peer could have scribbled on it); it reads the peer's
 * index only when its cached copy says full (producer) or empty (consumer).
 * In the common streaming case that is one shared read per batch of records,
 * not one per record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ringipc/ring.h"
#include "shm/fence.h"
#include "shm/ring_internal.h"
#include "shm/ring_layout.h"

/* Ask for a cache line in exclusive state before we write it. The consumer
 * read it on the previous lap, so without this every store waits for a
 * cross-core ownership transfer; prefetching a few lines ahead overlaps
 * those transfers with the copying of the current record. */
static inline void prefetch_w(const void *p)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p, 1, 3);
#endif
}

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

int ripc_ring_format(void *mem, size_t mem_len, size_t capacity)
{
    if (mem == NULL || ((uintptr_t)mem & (RIPC_RING_ALIGN - 1)) != 0)
        return -EINVAL;
    size_t need = ripc_ring_size(capacity);
    if (need == 0 || mem_len < need)
        return -EINVAL;

    struct ripc_ring_hdr *h = mem;
    memset(h, 0, sizeof *h);
    h->consts.c.version = RIPC_RING_LAYOUT_VERSION;
    h->consts.c.hdr_bytes = RIPC_RING_HDR_BYTES;
    h->consts.c.capacity = capacity;
    h->consts.c.max_payload = ripc_ring_max_payload(capacity);
    atomic_store_explicit(&h->prod.head, 0, memory_order_relaxed);
    atomic_store_explicit(&h->cons.tail, 0, memory_order_relaxed);
    /* The magic goes last, with release: whoever sees it (acquire in
     * attach) sees a complete header. */
    __atomic_store_n(&h->consts.c.magic, RIPC_RING_MAGIC, __ATOMIC_RELEASE);
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
     * from here on. Pairs with the release store of magic in format. */
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
    r->data = (unsigned char *)mem + RIPC_RING_HDR_BYTES;
    r->capacity = capacity;
    r->mask = capacity - 1;
    r->max_payload = max_payload;
    r->role = role;

    /* Start from the indices as they stand: a side may re-attach to a live
     * ring. Validate them like any other shared value. */
    uint64_t head = atomic_load_explicit(&h->prod.head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&h->cons.tail, memory_order_acquire);
    if (head - tail > capacity || ((head | tail) & (RIPC_RING_ALIGN - 1)) != 0) {
        free(r);
        return -EPROTO;
    }
    r->pos = role == RIPC_RING_PRODUCER ? head : tail;
    r->peer = role == RIPC_RING_PRODUCER ? tail : head;
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
    return (size_t)r->max_payload;
}

/* Producer: read the consumer index and check it against our own head.
 * Acquire pairs with the consumer's release store in ripc_ring_release():
 * the consumer is done reading the space before we overwrite it. */
static int refresh_tail(ripc_ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->hdr->cons.tail, memory_order_acquire);
    /* tail may only move forward, never past head, and stays aligned. */
    if (tail - r->peer > r->pos - r->peer || (tail & (RIPC_RING_ALIGN - 1)) != 0) {
        r->dead = 1;
        return -EPROTO;
    }
    r->peer = tail;
    return 0;
}

int ripc_ring_reserve(ripc_ring *r, size_t len, void **buf)
{
    if (r->dead)
        return -EPROTO;
    if (len > r->max_payload)
        return -EMSGSIZE;

    uint64_t need = ripc__rec_size(len);
    uint64_t off = r->pos & r->mask;
    uint64_t to_end = r->capacity - off;
    uint64_t pad = need > to_end ? to_end : 0;
    uint64_t total = pad + need;

    if (r->capacity - (r->pos - r->peer) < total) {
        int rc = refresh_tail(r);
        if (rc < 0)
            return rc;
        if (r->capacity - (r->pos - r->peer) < total)
            return -EAGAIN;
    }
    r->res_pad = pad;
    r->res_len = len;
    r->reserved = 1;
    uint64_t at = pad ? 0 : off;
    if (r->capacity >= 4096)
        prefetch_w(r->data + ((at + need + 512) & r->mask));
    *buf = r->data + at + RIPC_REC_HDR;
    return 0;
}

/* Write the pad (if any) and record headers of the open reservation and
 * advance our private head; the caller publishes it. 0 when none is open. */
static int commit_prepare(ripc_ring *r, size_t len)
{
    if (!r->reserved)
        return 0;
    if (len > r->res_len)
        len = r->res_len;
    uint64_t off = r->pos & r->mask;
    if (r->res_pad) {
        __atomic_store_n((uint64_t *)(r->data + off),
                         ripc__rec_pack((uint32_t)(r->res_pad - RIPC_REC_HDR), RIPC_REC_PAD),
                         __ATOMIC_RELAXED);
        off = 0;
    }
    __atomic_store_n((uint64_t *)(r->data + off), ripc__rec_pack((uint32_t)len, 0),
                     __ATOMIC_RELAXED);
    r->pos += r->res_pad + ripc__rec_size(len);
    r->reserved = 0;
    return 1;
}

void ripc_ring_commit(ripc_ring *r, size_t len)
{
    if (!commit_prepare(r, len))
        return;
    /* Release: the payload and record headers written above are visible to
     * a consumer whose acquire load (refresh_head) sees this head. */
    atomic_store_explicit(&r->hdr->prod.head, r->pos, memory_order_release);
}

int ripc_ring_push(ripc_ring *r, const void *buf, size_t len)
{
    void *dst;
    int rc = ripc_ring_reserve(r, len, &dst);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(dst, buf, len);
    ripc_ring_commit(r, len);
    return 0;
}

/* Consumer: read the producer index and check it against our own tail.
 * Acquire pairs with the release store of head in ripc_ring_commit(). */
static int refresh_head(ripc_ring *r)
{
    uint64_t head = atomic_load_explicit(&r->hdr->prod.head, memory_order_acquire);
    /* head may only move forward, at most capacity ahead of our tail. */
    if (head - r->peer > r->capacity - (r->peer - r->pos) || head - r->pos > r->capacity ||
        (head & (RIPC_RING_ALIGN - 1)) != 0) {
        r->dead = 1;
        return -EPROTO;
    }
    r->peer = head;
    return 0;
}

static int fail(ripc_ring *r)
{
    r->dead = 1;
    return -EPROTO;
}

int ripc_ring_peek(ripc_ring *r, const void **buf, size_t *len)
{
    if (r->dead)
        return -EPROTO;
    if (r->peeked) {
        *buf = r->data + ((r->pos + r->peek_skip) & r->mask) + RIPC_REC_HDR;
        *len = r->peek_len;
        return 0;
    }
    uint64_t skip = 0;
    for (;;) {
        uint64_t at = r->pos + skip;
        if (r->peer == at) {
            int rc = refresh_head(r);
            if (rc < 0)
                return rc;
            if (r->peer == at) {
                if (skip) {
                    /* Only a broken producer publishes a pad alone. */
                    return fail(r);
                }
                /* A consumer that polls us while empty gets the next
                 * record's line fetched alongside the producer index: when
                 * the index moves, the record is (nearly) here already, so a
                 * round trip pays one cross-core miss per hop, not two. */
                __builtin_prefetch(r->data + (at & r->mask), 0, 3);
                return -EAGAIN;
            }
        }
        uint64_t avail = r->peer - at;
        uint64_t off = at & r->mask;
        uint64_t to_end = r->capacity - off;
        /* One read of the record header (no double fetch); everything below
         * uses the local copy. */
        uint64_t h = __atomic_load_n((const uint64_t *)(r->data + off), __ATOMIC_RELAXED);
        uint32_t rlen = ripc__rec_len(h);
        uint32_t flags = ripc__rec_flags(h);

        if ((flags & ~RIPC_REC_KNOWN_FLAGS) != 0)
            return fail(r);
        if (flags & RIPC_REC_PAD) {
            /* A pad fills exactly the rest of the data area, is never the
             * whole ring, and is followed by a real record. */
            if (skip || off == 0 || (uint64_t)rlen + RIPC_REC_HDR != to_end || avail < to_end)
                return fail(r);
            skip = to_end;
            continue;
        }
        uint64_t size = ripc__rec_size(rlen);
        if (rlen > r->max_payload || size > to_end || size > avail)
            return fail(r);
        r->peeked = 1;
        r->peek_skip = skip;
        r->peek_size = size;
        r->peek_len = rlen;
        *buf = r->data + off + RIPC_REC_HDR;
        *len = rlen;
        return 0;
    }
}

void ripc_ring_release(ripc_ring *r)
{
    if (!r->peeked)
        return;
    r->pos += r->peek_skip + r->peek_size;
    r->peeked = 0;
    /* Release: our reads of the record are done before the producer, whose
     * acquire load (refresh_tail) sees this tail, reuses the space. */
    atomic_store_explicit(&r->hdr->cons.tail, r->pos, memory_order_release);
}

int ripc_ring_pop(ripc_ring *r, void *buf, size_t cap, size_t *len)
{
    const void *src;
    size_t n;
    int rc = ripc_ring_peek(r, &src, &n);
    if (rc < 0)
        return rc;
    *len = n;
    if (n > cap)
        return -EMSGSIZE;
    if (n)
        memcpy(buf, src, n);
    ripc_ring_release(r);
    return 0;
}

size_t ripc_ring_used(ripc_ring *r)
{
    if (r->dead)
        return 0;
    if (r->role == RIPC_RING_PRODUCER) {
        if (refresh_tail(r) < 0)
            return 0;
        return (size_t)(r->pos - r->peer);
    }
    if (refresh_head(r) < 0)
        return 0;
    return (size_t)(r->peer - r->pos);
}

/* ---- eventcount (shm/ring_internal.h) ---- */

int ripc__ring_readable(ripc_ring *r)
{
    if (r->dead || r->peeked)
        return 1; /* let the caller's peek report it */
    if (r->peer != r->pos)
        return 1;
    uint64_t head = atomic_load_explicit(&r->hdr->prod.head, memory_order_acquire);
    if (head == r->pos)
        __builtin_prefetch(r->data + (r->pos & r->mask), 0, 3); /* see ripc_ring_peek */
    return head != r->pos;
}

int ripc__ring_writable(ripc_ring *r, size_t len)
{
    if (r->dead)
        return 1; /* the caller's reserve reports -EPROTO */
    uint64_t need = ripc__rec_size(len);
    uint64_t to_end = r->capacity - (r->pos & r->mask);
    uint64_t total = (need > to_end ? to_end : 0) + need;
    if (r->capacity - (r->pos - r->peer) >= total)
        return 1;
    uint64_t tail = atomic_load_explicit(&r->hdr->cons.tail, memory_order_acquire);
    return r->capacity - (r->pos - tail) >= total; /* garbage: reserve will say */
}

void ripc__ring_set_fastpub(ripc_ring *r, int on)
{
    r->fastpub = on;
}

int ripc__ring_fastpub(const ripc_ring *r)
{
    return r->fastpub;
}

void ripc__ring_arm_consumer_flag(ripc_ring *r)
{
    atomic_store_explicit(&r->hdr->wait.w.consumer_sleeping, 1, memory_order_seq_cst);
}

int ripc__ring_consumer_recheck(ripc_ring *r)
{
    /* seq_cst load of head: pairs with the seq_cst store in commit_wake, or
     * (fastpub) with the remote fence the caller issued after arming. */
    uint64_t head = atomic_load_explicit(&r->hdr->prod.head, memory_order_seq_cst);
    if (head != r->pos || r->peeked || r->dead) {
        atomic_store_explicit(&r->hdr->wait.w.consumer_sleeping, 0, memory_order_relaxed);
        return 1;
    }
    return 0;
}

int ripc__ring_arm_consumer(ripc_ring *r)
{
    ripc__ring_arm_consumer_flag(r);
    if (r->fastpub)
        ripc__remote_fence();
    return ripc__ring_consumer_recheck(r);
}

void ripc__ring_disarm_consumer(ripc_ring *r)
{
    atomic_store_explicit(&r->hdr->wait.w.consumer_sleeping, 0, memory_order_relaxed);
}

int ripc__ring_arm_producer(ripc_ring *r, size_t len)
{
    struct ripc_ring_wait *w = &r->hdr->wait.w;
    atomic_store_explicit(&w->producer_sleeping, 1, memory_order_seq_cst);
    /* Pairs with the fence in space_wake. */
    uint64_t need = ripc__rec_size(len);
    uint64_t to_end = r->capacity - (r->pos & r->mask);
    uint64_t total = (need > to_end ? to_end : 0) + need;
    uint64_t tail = atomic_load_explicit(&r->hdr->cons.tail, memory_order_seq_cst);
    if (r->dead || r->capacity - (r->pos - tail) >= total) {
        atomic_store_explicit(&w->producer_sleeping, 0, memory_order_relaxed);
        return 1;
    }
    return 0;
}

uint64_t ripc__ring_pos(const ripc_ring *r)
{
    return r->pos;
}

int ripc__ring_consumed(ripc_ring *r, uint64_t pos)
{
    uint64_t tail = atomic_load_explicit(&r->hdr->cons.tail, memory_order_acquire);
    return r->dead || (int64_t)(tail - pos) >= 0;
}

int ripc__ring_arm_producer_pos(ripc_ring *r, uint64_t pos)
{
    struct ripc_ring_wait *w = &r->hdr->wait.w;
    atomic_store_explicit(&w->producer_sleeping, 1, memory_order_seq_cst);
    /* Pairs with the fence in space_wake, as in arm_producer. */
    uint64_t tail = atomic_load_explicit(&r->hdr->cons.tail, memory_order_seq_cst);
    if (r->dead || (int64_t)(tail - pos) >= 0) {
        atomic_store_explicit(&w->producer_sleeping, 0, memory_order_relaxed);
        return 1;
    }
    return 0;
}

void ripc__ring_disarm_producer(ripc_ring *r)
{
    atomic_store_explicit(&r->hdr->wait.w.producer_sleeping, 0, memory_order_relaxed);
}

int ripc__ring_commit_wake(ripc_ring *r, size_t len)
{
    if (!commit_prepare(r, len))
        return 0;
    _Atomic uint32_t *flag = &r->hdr->wait.w.consumer_sleeping;
    if (r->fastpub) {
        /* Release store, and only a compiler barrier before the flag load:
         * the consumer's remote fence (arm_consumer) supplies the hardware
         * barrier when it matters, i.e. when it is about to sleep. */
        atomic_store_explicit(&r->hdr->prod.head, r->pos, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst);
        if (atomic_load_explicit(flag, memory_order_relaxed) == 0)
            return 0;
        return atomic_exchange_explicit(flag, 0, memory_order_acq_rel) != 0;
    }
    /* seq_cst store (one locked instruction on x86): publishes the record
     * like the release store of ripc_ring_commit, and orders the load of
     * the sleep flag after it (Dekker with arm_consumer). */
    atomic_store_explicit(&r->hdr->prod.head, r->pos, memory_order_seq_cst);
    /* Cheap relaxed look first: a flag that is clear costs no RMW. */
    if (atomic_load_explicit(flag, memory_order_seq_cst) == 0)
        return 0;
    return atomic_exchange_explicit(flag, 0, memory_order_acq_rel) != 0;
}

int ripc__ring_space_wake(ripc_ring *r)
{
    /* Orders our earlier release stores of tail before the flag load
     * (Dekker with arm_producer). */
    atomic_thread_fence(memory_order_seq_cst);
    _Atomic uint32_t *flag = &r->hdr->wait.w.producer_sleeping;
    if (atomic_load_explicit(flag, memory_order_relaxed) == 0)
        return 0;
    return atomic_exchange_explicit(flag, 0, memory_order_acq_rel) != 0;
}

void ripc__ring_release_lazy(ripc_ring *r)
{
    if (!r->peeked)
        return;
    r->pos += r->peek_skip + r->peek_size;
    r->peeked = 0;
}

void ripc__ring_publish_tail(ripc_ring *r)
{
    /* Release: pairs with the producer's acquire in refresh_tail, as in
     * ripc_ring_release(). */
    atomic_store_explicit(&r->hdr->cons.tail, r->pos, memory_order_release);
}

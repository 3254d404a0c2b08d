/* SPDX-License-Identifier: MIT */
/*
 * The SPSC ring. Format: shm/ring_layout.h. Contract: include/ringipc/ring.h.
 *
 * Each side keeps its own index privately and never reads it back from
 * shared memory (the peer could have scribbled on it). The producer reads
 * the consumer index only when its cached copy says full: in the common
 * streaming case one shared read per batch of records, not one per record.
 * The consumer does not read the producer index on its fast path at all: it
 * polls the header slot at its own position (format 2, shm/ring_layout.h),
 * so one cache miss brings it both "there is a record" and the record.
 * Sizing, formatting and attaching a handle: shm/ring_attach.c.
 */
#define RIPC_RING_NO_INLINE /* this file defines the out-of-line functions */
#include <errno.h>
#include <stddef.h>
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

/* Push a line we wrote out of our private caches into the shared last
 * level (CLDEMOTE): the consumer's miss on it is then served by the LLC
 * instead of a snoop of our core. A hint: where the CPU lacks it, the
 * encoding (0F 1C, a reserved NOP) does nothing. */
static inline void demote(const void *p)
{
#if defined(__x86_64__) && defined(__GNUC__)
    /* cldemote (%rax), spelled out for assemblers older than binutils 2.31;
     * the clobber keeps it after the stores it is about. */
    __asm__ __volatile__(".byte 0x0f, 0x1c, 0x00" : : "a"(p) : "memory");
#else
    (void)p;
#endif
}

/* x86 and most arm64 cores: the unit of coherence (RIPC_RING_LINE is two). */
#define CACHE_LINE 64u
/* Urgent records up to this size get every line asked for at reserve and
 * demoted at commit; beyond it the copy dominates and thousands of hints
 * only slow it (64 KiB round trip: 10.1 -> 11.8 us with them). */
#define URGENT_MAX_BYTES 2048u

/* The inline fast paths of the public header (struct ripc_ring_fast) take
 * a record only while this is 0: not on a dead ring, and not while a
 * reservation or a peeked record is open (the library's own bookkeeping
 * then decides). Called after every change of the three. */
_Static_assert(offsetof(struct ripc_ring, f) == 0, "the inline fast paths cast the handle");

static inline void sync_slow(ripc_ring *r)
{
    r->f.slow = (uint32_t)(r->dead | r->reserved | r->peeked);
}

/* Producer: read the consumer index and check it against our own head.
 * T2: acquire, pairs with T1, the consumer's store in ripc_ring_release():
 * the consumer is done reading the space before we overwrite it. */
static int refresh_tail(ripc_ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->hdr->cons.tail, memory_order_acquire);
    /* tail may only move forward, never past head, and stays aligned. */
    if (tail - r->f.peer > r->f.pos - r->f.peer || (tail & (RIPC_RING_ALIGN - 1)) != 0) {
        r->dead = 1;
        sync_slow(r);
        return -EPROTO;
    }
    r->f.peer = tail;
    /* The fill is exact here, and this runs about once per lap of the ring
     * (and whenever it looks full): the counters' high-water mark. */
    if (r->f.pos - tail > r->high)
        __atomic_store_n(&r->high, r->f.pos - tail, __ATOMIC_RELAXED);
    return 0;
}

/* Producer: bytes a record of len payload bytes takes from our position:
 * the pad (when it would straddle the end), the record, and the spare header
 * slot after it that the commit zeroes (shm/ring_layout.h). */
static inline uint64_t room_for(const ripc_ring *r, size_t len, uint64_t *pad_out)
{
    uint64_t need = ripc__rec_size(len);
    uint64_t to_end = r->capacity - (r->f.pos & r->f.mask);
    uint64_t pad = need > to_end ? to_end : 0;
    if (pad_out != NULL)
        *pad_out = pad;
    return pad + need + RIPC_REC_SPARE;
}

static inline int reserve(ripc_ring *r, size_t len, void **buf, int urgent)
{
    if (r->dead)
        return -EPROTO;
    if (len > r->f.max_payload)
        return -EMSGSIZE;

    uint64_t pad;
    uint64_t total = room_for(r, len, &pad);
    uint64_t need = ripc__rec_size(len);

    if (r->capacity - (r->f.pos - r->f.peer) < total) {
        int rc = refresh_tail(r);
        if (rc < 0)
            return rc;
        if (r->capacity - (r->f.pos - r->f.peer) < total)
            return -EAGAIN;
    }
    r->res_pad = pad;
    r->res_len = len;
    r->reserved = 1;
    sync_slow(r);
    uint64_t at = pad ? 0 : r->f.pos & r->f.mask;
    /* Urgent: ask for every line the record and its spare slot touch before
     * the payload is written (and demote them at commit). An idle consumer
     * polls the header slot, so it holds that line shared; without this the
     * stores wait for the lines one after another, the polling consumer
     * takes the header line back meanwhile, and the header store needs yet
     * another transfer. With all requests in flight at once, every store of
     * the record is queued by the time the lines arrive and drains in one
     * go. Measured, 64 B round trip: only the header and spare lines asked
     * for (a record over three lines then waited for its middle one) 0.46
     * us, every line 0.44, every line + demote at commit 0.36.
     * Not for a stream: a consumer chasing the producer is reading those
     * lines (the previous records) and loses them early (library one-way,
     * 64 B: 62 -> 45 M/s). Not when the ring is (nearly) full either: those
     * lines are then the ones the consumer is reading right now (64 B
     * through a full ring: 100 -> 40 M/s). */
    r->res_urgent = urgent && need <= URGENT_MAX_BYTES &&
                    r->capacity - (r->f.pos - r->f.peer) - total >= 2 * RIPC_RING_LINE;
    if (r->res_urgent)
        for (uint64_t k = at & ~(uint64_t)(CACHE_LINE - 1); k <= at + need; k += CACHE_LINE)
            prefetch_w(r->f.data + (k & r->f.mask));
    if (r->capacity >= 4096)
        prefetch_w(r->f.data + ((at + need + 512) & r->f.mask));
    *buf = r->f.data + at + RIPC_REC_HDR;
    return 0;
}

int ripc_ring_reserve(ripc_ring *r, size_t len, void **buf)
{
    return reserve(r, len, buf, 0);
}

int ripc__ring_reserve_urgent(ripc_ring *r, size_t len, void **buf)
{
    return reserve(r, len, buf, 1);
}

/*
 * Publish the open reservation; 0 when none is open. Stores, in order:
 *   1. 0 into the header slot after the record (the phantom-record rule:
 *      the next record's first header goes there, and until then a consumer
 *      that reaches it must read "empty", not an older lap's bytes);
 *   2. with a pad: the real record's header at offset 0;
 *   3. the first header (the pad, or the record): THE publishing store,
 *      release (seq_cst when `sc`): a consumer whose acquire load of this
 *      slot sees it also sees the payload and stores 1-2;
 *   4. head, release, for ripc_ring_used(), re-attach and the producer
 *      side's checks; the consumer's fast path does not wait for it.
 */
static inline int commit_publish(ripc_ring *r, size_t len, int sc)
{
    if (!r->reserved)
        return 0;
    if (len > r->res_len)
        len = r->res_len;
    uint64_t off = r->f.pos & r->f.mask;
    uint64_t at = r->res_pad ? 0 : off;
    uint64_t size = ripc__rec_size(len);
    uint64_t rec = ripc__rec_pack((uint32_t)len, RIPC_REC_VALID);
    __atomic_store_n((uint64_t *)(r->f.data + ((at + size) & r->f.mask)), 0, __ATOMIC_RELAXED);
    if (r->res_pad) {
        /* Ordered before the pad by the pad's release. */
        __atomic_store_n((uint64_t *)r->f.data, rec, __ATOMIC_RELAXED);
        rec = ripc__rec_pack((uint32_t)(r->res_pad - RIPC_REC_HDR), RIPC_REC_PAD | RIPC_REC_VALID);
    }
    /* P1: publishes the record, release (seq_cst for commit_wake's Dekker
     * pair, E3); pairs with P2 in ripc_ring_peek and E2 in
     * ripc__ring_consumer_recheck. */
    if (sc)
        __atomic_store_n((uint64_t *)(r->f.data + off), rec, __ATOMIC_SEQ_CST);
    else
        __atomic_store_n((uint64_t *)(r->f.data + off), rec, __ATOMIC_RELEASE);
    if (r->res_urgent) {
        /* Someone polls for this record: hand its lines (and the spare
         * slot's, which that reader polls next) to the shared cache. */
        for (uint64_t k = at & ~(uint64_t)(CACHE_LINE - 1); k <= at + size; k += CACHE_LINE)
            demote(r->f.data + (k & r->f.mask));
        if (r->res_pad)
            demote(r->f.data + off);
    }
    r->f.pos += r->res_pad + size;
    r->reserved = 0;
    sync_slow(r);
    /* H1: release, pairs with H2 in refresh_head (ripc_ring_used). */
    atomic_store_explicit(&r->hdr->prod.head, r->f.pos, memory_order_release);
    return 1;
}

void ripc_ring_commit(ripc_ring *r, size_t len)
{
    (void)commit_publish(r, len, 0);
}

void ripc__ring_abandon(ripc_ring *r)
{
    r->reserved = 0;
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

/* Consumer, slow path only (ripc_ring_used): read the producer index and
 * check it. H2: acquire, pairs with H1, the store of head in commit_publish.
 * head never moves backwards, stays aligned and is at most capacity - 8
 * ahead of our position; it may also lag our position, because we take a
 * record as soon as its header is published and head is stored after it:
 * by at most the pad + record just taken (< capacity). */
static int refresh_head(ripc_ring *r)
{
    uint64_t head = atomic_load_explicit(&r->hdr->prod.head, memory_order_acquire);
    uint64_t ahead = head - r->f.pos, lag = r->f.pos - head;
    if ((head & (RIPC_RING_ALIGN - 1)) != 0 ||
        head - r->f.peer > r->f.pos + r->capacity - r->f.peer ||
        (ahead > r->capacity - RIPC_REC_SPARE && lag >= r->capacity)) {
        r->dead = 1;
        sync_slow(r);
        return -EPROTO;
    }
    r->f.peer = head;
    return 0;
}

static int fail(ripc_ring *r)
{
    r->dead = 1;
    sync_slow(r);
    return -EPROTO;
}

/*
 * The fast path reads one word: the header slot at our position (acquire,
 * pairs with the publishing store in commit_publish). 0 is empty. Anything
 * else must be a committed header, checked in full from a local copy (one
 * read, no double fetch): flags known and VALID, a pad only where it fills
 * the rest of the data area and is followed by a committed real record at
 * offset 0, len <= max_payload, the record inside the data area. A hostile
 * producer can make us take records it never published head for; that
 * stays in bounds, each call takes at most one record, and a later
 * refresh_head catches the inconsistent indices.
 */
int ripc_ring_peek(ripc_ring *r, const void **buf, size_t *len)
{
    if (r->dead)
        return -EPROTO;
    if (r->peeked) {
        *buf = r->f.data + ((r->f.pos + r->peek_skip) & r->f.mask) + RIPC_REC_HDR;
        *len = r->peek_len;
        return 0;
    }
    uint64_t off = r->f.pos & r->f.mask;
    uint64_t h = ripc__ring_load_slot(r, off, __ATOMIC_ACQUIRE); /* P2: pairs with P1 */
    if (h == 0)
        return -EAGAIN;
    uint64_t skip = 0;
    uint32_t flags = ripc__rec_flags(h);
    if (flags != RIPC_REC_VALID) {
        uint64_t to_end = r->capacity - off;
        if (flags != (RIPC_REC_VALID | RIPC_REC_PAD) || off == 0 ||
            (uint64_t)ripc__rec_len(h) + RIPC_REC_HDR != to_end)
            return fail(r);
        /* The real record's header was stored before the pad (release):
         * it is there, committed, and not another pad. */
        skip = to_end;
        off = 0;
        h = ripc__ring_load_slot(r, 0, __ATOMIC_ACQUIRE);
        if (ripc__rec_flags(h) != RIPC_REC_VALID)
            return fail(r);
    }
    uint32_t rlen = ripc__rec_len(h);
    uint64_t size = ripc__rec_size(rlen);
    if (rlen > r->f.max_payload || size > r->capacity - off)
        return fail(r);
    r->peeked = 1;
    sync_slow(r);
    r->peek_skip = skip;
    r->peek_size = size;
    r->peek_len = rlen;
    *buf = r->f.data + off + RIPC_REC_HDR;
    *len = rlen;
    return 0;
}

void ripc_ring_release(ripc_ring *r)
{
    if (!r->peeked)
        return;
    r->f.pos += r->peek_skip + r->peek_size;
    r->peeked = 0;
    sync_slow(r);
    /* T1: release, pairs with T2 (refresh_tail): our reads of the record
     * are done before the producer that sees this tail reuses the space. */
    atomic_store_explicit(&r->hdr->cons.tail, r->f.pos, memory_order_release);
}

/* ring.h: the one body of pop, also the inline ripc_ring_pop's slow path. */
int ripc__ring_pop_slow(ripc_ring *r, void *buf, size_t cap, size_t *len)
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

int ripc_ring_pop(ripc_ring *r, void *buf, size_t cap, size_t *len)
{
    return ripc__ring_pop_slow(r, buf, cap, len);
}

size_t ripc_ring_used(ripc_ring *r)
{
    if (r->dead)
        return 0;
    if (r->role == RIPC_RING_PRODUCER) {
        if (refresh_tail(r) < 0)
            return 0;
        return (size_t)(r->f.pos - r->f.peer);
    }
    if (refresh_head(r) < 0)
        return 0;
    uint64_t ahead = r->f.peer - r->f.pos;
    return ahead <= r->capacity ? (size_t)ahead : 0; /* head lagging: 0 */
}

/* ---- eventcount (shm/ring_internal.h) ----
 *
 * Two Dekker pairs on the wait line, each side a store then a load:
 *
 *   data   consumer: E1 store consumer_sleeping, E2 load the header slot
 *          producer: E3 store the header slot (P1), E4 load the flag
 *   space  producer: K1 store producer_sleeping, K2 load tail
 *          consumer: K3 store tail (T1), K4 load the flag
 *
 * Each side puts a full fence between its store and its load (seq_cst
 * operations, or a seq_cst fence), so at least one load sees the other
 * side's store: the waker rings, or the sleeper does not sleep. With
 * asymmetric fences (fastpub, fastspace) the waker's fence is a compiler
 * barrier and the sleeper's ripc__remote_fence, between its store and its
 * load, stands in for it (shm/fence.h). The waker's exchange of the flag
 * to 0 lets only the first waker after an arm ring. A disarm is relaxed:
 * a waker that still sees the flag rings once for nothing.
 */

int ripc__ring_readable(ripc_ring *r)
{
    if (r->dead || r->peeked)
        return 1; /* let the caller's peek report it */
    /* The slot peek reads first: nonzero is a record (or garbage for peek
     * to report). Relaxed: peek loads it again with acquire. */
    return ripc__ring_load_slot(r, r->f.pos & r->f.mask, __ATOMIC_RELAXED) != 0;
}

int ripc__ring_writable(ripc_ring *r, size_t len)
{
    if (r->dead)
        return 1; /* the caller's reserve reports -EPROTO */
    uint64_t total = room_for(r, len, NULL);
    if (r->capacity - (r->f.pos - r->f.peer) >= total)
        return 1;
    uint64_t tail = atomic_load_explicit(&r->hdr->cons.tail, memory_order_acquire); /* T2 */
    return r->capacity - (r->f.pos - tail) >= total; /* garbage: reserve will say */
}

void ripc__ring_set_fastpub(ripc_ring *r, int on)
{
    r->fastpub = on;
}

void ripc__ring_set_fastspace(ripc_ring *r, int on)
{
    r->fastspace = on;
}

int ripc__ring_fastpub(const ripc_ring *r)
{
    return r->fastpub;
}

void ripc__ring_arm_consumer_flag(ripc_ring *r)
{
    /* E1: seq_cst, pairs with E4 in commit_wake */
    atomic_store_explicit(&r->hdr->wait.w.consumer_sleeping, RIPC_SLEEP_BELL, memory_order_seq_cst);
}

int ripc__ring_consumer_recheck(ripc_ring *r)
{
    /* E2: seq_cst load of the header slot at our position, the word whose store
     * publishes the next record (commit_publish): pairs with that seq_cst
     * store in commit_wake, or (fastpub) with the remote fence the caller
     * issued after arming. Not head: head may lag what we already took, and
     * is not the store the Dekker argument is about. */
    uint64_t h = ripc__ring_load_slot(r, r->f.pos & r->f.mask, __ATOMIC_SEQ_CST);
    if (h != 0 || r->peeked || r->dead) {
        atomic_store_explicit(&r->hdr->wait.w.consumer_sleeping, 0, memory_order_relaxed);
        return 1;
    }
    return 0;
}

int ripc__ring_arm_consumer_as(ripc_ring *r, uint32_t how)
{
    /* E1, as in ripc__ring_arm_consumer_flag; the remote fence stands
     * between it and E2 when the producer publishes without a fence. */
    atomic_store_explicit(&r->hdr->wait.w.consumer_sleeping, how, memory_order_seq_cst);
    if (r->fastpub)
        ripc__remote_fence();
    return ripc__ring_consumer_recheck(r);
}

int ripc__ring_arm_consumer(ripc_ring *r)
{
    return ripc__ring_arm_consumer_as(r, RIPC_SLEEP_BELL);
}

uint32_t ripc__ring_consumer_flag(const ripc_ring *r)
{
    return atomic_load_explicit(&r->hdr->wait.w.consumer_sleeping, memory_order_relaxed);
}

void ripc__ring_disarm_consumer(ripc_ring *r)
{
    atomic_store_explicit(&r->hdr->wait.w.consumer_sleeping, 0, memory_order_relaxed);
}

int ripc__ring_arm_producer(ripc_ring *r, size_t len, uint32_t how)
{
    struct ripc_ring_wait *w = &r->hdr->wait.w;
    /* K1: seq_cst, pairs with K4 in space_wake */
    atomic_store_explicit(&w->producer_sleeping, how, memory_order_seq_cst);
    if (r->fastspace)
        ripc__remote_fence(); /* the consumer's space_wake has no fence */
    /* K2: seq_cst, pairs with K3 (the tail store and the fence in
     * space_wake). */
    uint64_t total = room_for(r, len, NULL);
    uint64_t tail = atomic_load_explicit(&r->hdr->cons.tail, memory_order_seq_cst);
    if (r->dead || r->capacity - (r->f.pos - tail) >= total) {
        atomic_store_explicit(&w->producer_sleeping, 0, memory_order_relaxed);
        return 1;
    }
    return 0;
}

uint64_t ripc__ring_pos(const ripc_ring *r)
{
    return r->f.pos;
}

uint64_t ripc__ring_fill(const ripc_ring *r)
{
    /* Tail before head: both only grow, so head read later is never
     * behind the tail read earlier (an honest peer's). */
    uint64_t tail = atomic_load_explicit(&r->hdr->cons.tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->hdr->prod.head, memory_order_relaxed);
    uint64_t used = head - tail;
    return used <= r->capacity ? used : 0;
}

uint64_t ripc__ring_high(const ripc_ring *r)
{
    return __atomic_load_n(&r->high, __ATOMIC_RELAXED);
}

uint64_t ripc__ring_capacity(const ripc_ring *r)
{
    return r->capacity;
}

int ripc__ring_consumed(ripc_ring *r, uint64_t pos)
{
    uint64_t tail = atomic_load_explicit(&r->hdr->cons.tail, memory_order_acquire); /* T2 */
    return r->dead || (int64_t)(tail - pos) >= 0;
}

int ripc__ring_arm_producer_pos(ripc_ring *r, uint64_t pos, uint32_t how)
{
    struct ripc_ring_wait *w = &r->hdr->wait.w;
    atomic_store_explicit(&w->producer_sleeping, how, memory_order_seq_cst); /* K1 */
    if (r->fastspace)
        ripc__remote_fence();
    /* K2: pairs with K3 in space_wake, as in arm_producer. */
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

/*
 * The producer half of the eventcount. The publishing store is the first
 * header of the record (commit_publish step 3), and the consumer's re-check
 * (ripc__ring_consumer_recheck) loads exactly that slot, so this is Dekker
 * on (header slot, consumer_sleeping):
 *   producer: store header; ...; load flag
 *   consumer: store flag;  ...; load header slot
 * Either the producer's flag load sees 1 (it rings), or the consumer's load
 * sees the header (it does not sleep). The head store in between changes
 * nothing: nobody's sleep decision depends on it.
 */
uint32_t ripc__ring_commit_wake(ripc_ring *r, size_t len)
{
    _Atomic uint32_t *flag = &r->hdr->wait.w.consumer_sleeping;
    if (r->fastpub) {
        /* Release store, and only a compiler barrier before the flag load:
         * the consumer's remote fence (arm_consumer) acts as a full barrier
         * in our instruction stream. If it falls after our header store,
         * the consumer's re-check sees the header; if before, our flag
         * load, which comes after the header store, sees the flag. */
        if (!commit_publish(r, len, 0)) /* E3, release */
            return 0;
        atomic_signal_fence(memory_order_seq_cst);
        /* E4: pairs with E1, through the consumer's remote fence */
        if (atomic_load_explicit(flag, memory_order_relaxed) == 0)
            return 0;
        return atomic_exchange_explicit(flag, 0, memory_order_acq_rel);
    }
    /* seq_cst header store (one locked instruction on x86): publishes the
     * record like the release store of ripc_ring_commit, and is ordered
     * before the seq_cst flag load in the single total order. */
    if (!commit_publish(r, len, 1)) /* E3, seq_cst */
        return 0;
    /* E4: seq_cst, pairs with E1 (arm_consumer). Cheap look first: a flag
     * that is clear costs no RMW. */
    if (atomic_load_explicit(flag, memory_order_seq_cst) == 0)
        return 0;
    return atomic_exchange_explicit(flag, 0, memory_order_acq_rel);
}

uint32_t ripc__ring_data_wake(ripc_ring *r)
{
    /* E3 for a batch: orders the release stores of the records' headers
     * (P1) before the flag load E4, as the seq_cst store of commit_wake
     * does for one record; with fastpub the consumer's remote fence plays
     * that part. */
    if (r->fastpub)
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
    _Atomic uint32_t *flag = &r->hdr->wait.w.consumer_sleeping;
    if (atomic_load_explicit(flag, memory_order_relaxed) == 0) /* E4, after the fence */
        return 0;
    return atomic_exchange_explicit(flag, 0, memory_order_acq_rel);
}

uint32_t ripc__ring_space_wake(ripc_ring *r)
{
    /* K3: orders our earlier release stores of tail (T1) before the flag
     * load K4 (Dekker with K1/K2 in arm_producer). With fastspace, the
     * producer's remote fence plays that part (the argument of
     * commit_wake, mirrored). */
    if (r->fastspace)
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
    _Atomic uint32_t *flag = &r->hdr->wait.w.producer_sleeping;
    if (atomic_load_explicit(flag, memory_order_relaxed) == 0) /* K4, after the fence */
        return 0;
    return atomic_exchange_explicit(flag, 0, memory_order_acq_rel);
}

void ripc__ring_release_lazy(ripc_ring *r)
{
    if (!r->peeked)
        return;
    r->f.pos += r->peek_skip + r->peek_size;
    r->peeked = 0;
    sync_slow(r);
}

void ripc__ring_publish_tail(ripc_ring *r)
{
    /* T1: release, pairs with T2 (refresh_tail), as in ripc_ring_release(). */
    atomic_store_explicit(&r->hdr->cons.tail, r->f.pos, memory_order_release);
}

void ripc__ring_publish_tail_at(ripc_ring *r, uint64_t pos)
{
    /* T1, as above: our reads of the records before pos are done. */
    atomic_store_explicit(&r->hdr->cons.tail, pos, memory_order_release);
}

/* SPDX-License-Identifier: MIT */
/*
 * ringipc raw ring: a lock-free single-producer / single-consumer ring of
 * variable-size records, laid out in memory the caller provides (typically a
 * shared mapping seen by two processes).
 *
 * Roles. Exactly one producer handle and one consumer handle may be attached
 * to one ring at a time, each used by one thread at a time. The producer may
 * run concurrently with the consumer; nothing else may run concurrently.
 *
 *   call                       who           may run concurrently with
 *   ripc_ring_size             anyone        anything
 *   ripc_ring_format           creator       nothing on this memory
 *   ripc_ring_attach/detach    either side   the other side's calls
 *   reserve/commit/push        producer      consumer calls
 *   peek/release/pop           consumer      producer calls
 *
 * Memory ordering. ripc_ring_commit() publishes the record with a release
 * store of its 8-byte header (layout version 2: the header carries a
 * "committed" bit, and the producer keeps the header slot after the last
 * record zeroed); ripc_ring_peek() polls the header slot at its own position
 * with an acquire load, so the record's bytes are visible when peek returns
 * it, and an idle consumer reads only that one slot. The producer index is
 * stored after the header (for ripc_ring_used()). ripc_ring_release()
 * publishes the consumer index with a release store that pairs with the
 * producer's acquire load before it reuses the space.
 *
 * Capacity. One 8-byte header slot always stays free (the zeroed slot after
 * the last record), so at most capacity - 8 bytes are queued; a record of
 * the maximum payload still fits once the ring is drained.
 *
 * Trust. The consumer trusts nothing in the shared memory: every index, length
 * and flag is read once into private memory and checked (a header without
 * the committed bit where one is expected, unknown flags, a length above the
 * maximum or past the end of the data area, indices that break head/tail
 * invariants when they are read); a bad value makes the ring fail with
 * -EPROTO (sticky) and nothing is read or written outside [mem, mem +
 * mem_len). The producer likewise checks the consumer index it reads. Payload
 * bytes returned by peek stay in shared memory: a hostile peer can still
 * change them while you read them, so copy what you parse.
 *
 * Errors are negative errno values: -EAGAIN (full / empty), -EMSGSIZE (record
 * larger than the ring's maximum, or a pop buffer too small), -EPROTO (the
 * shared memory holds something this ring never wrote), -EINVAL, -ENOMEM.
 */
#ifndef RINGIPC_RING_H
#define RINGIPC_RING_H

#include <stddef.h>
#include <stdint.h>

#include "ringipc/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ripc_ring ripc_ring;

enum {
    RIPC_RING_PRODUCER = 1,
    RIPC_RING_CONSUMER = 2,
};

/* Smallest and largest data capacity a ring may have (bytes, powers of two). */
#define RIPC_RING_MIN_CAPACITY 64u
#define RIPC_RING_MAX_CAPACITY ((size_t)1 << 32)

/*
 * Bytes of memory a ring of `capacity` data bytes needs (header included).
 * capacity must be a power of two in [RIPC_RING_MIN_CAPACITY,
 * RIPC_RING_MAX_CAPACITY]; returns 0 otherwise.
 */
RIPC_API size_t ripc_ring_size(size_t capacity);

/*
 * Largest payload one record may carry in a ring of `capacity` bytes:
 * capacity / 2 - 8. Half the ring, so that a record always fits once the ring
 * is empty wherever the indices stand. Returns 0 for an invalid capacity.
 */
RIPC_API size_t ripc_ring_max_payload(size_t capacity);

/*
 * Write an empty ring into mem (header and data area zeroed). mem must be
 * 8-byte aligned (128-byte aligned is best) and mem_len >=
 * ripc_ring_size(capacity). Run it once, before either side attaches.
 * Returns 0 or -EINVAL.
 */
RIPC_API int ripc_ring_format(void *mem, size_t mem_len, size_t capacity);

/*
 * Attach a producer or consumer handle to a formatted ring. The constants
 * (magic, version, capacity) are read once and checked against mem_len.
 * On success *r owns a small private allocation; free it with
 * ripc_ring_detach(). The memory stays the caller's and must outlive *r.
 * Returns 0, -EINVAL (bad arguments, alignment, role), -EPROTO (not a ring, or
 * a capacity that does not fit mem_len), -EPROTONOSUPPORT (other layout
 * version) or -ENOMEM.
 */
RIPC_API int ripc_ring_attach(ripc_ring **r, void *mem, size_t mem_len, int role);

/* Free a handle (NULL is fine). Records in flight stay in the ring. */
RIPC_API void ripc_ring_detach(ripc_ring *r);

/* Capacity in bytes and largest payload of an attached ring. */
RIPC_API size_t ripc_ring_capacity(const ripc_ring *r);
RIPC_API size_t ripc_ring_payload_max(const ripc_ring *r);

/*
 * Producer: reserve room for a record of `len` payload bytes (0 allowed) and
 * point *buf at it (it needs the record, a pad when it would cross the end of
 * the ring, and one spare 8-byte header slot). Write the payload, then
 * ripc_ring_commit(). At most one reservation is open at a time; a second
 * reserve replaces the first. Never blocks, never allocates. Returns 0,
 * -EAGAIN (not enough free space now), -EMSGSIZE (len > payload maximum) or
 * -EPROTO (bad consumer index).
 */
RIPC_API int ripc_ring_reserve(ripc_ring *r, size_t len, void **buf);

/*
 * Producer: publish the reserved record with its final length (len <= the
 * reserved length; a larger len is clamped to it). Release store of the
 * record header: the payload written before commit is visible to the
 * consumer's peek.
 * Without an open reservation it does nothing.
 */
RIPC_API void ripc_ring_commit(ripc_ring *r, size_t len);

/* Producer: reserve + copy + commit. Same returns as ripc_ring_reserve(). */
RIPC_API int ripc_ring_push(ripc_ring *r, const void *buf, size_t len);

/*
 * Consumer: point *buf / *len at the oldest record without removing it.
 * Returns 0, -EAGAIN (empty) or -EPROTO (the shared memory is corrupt; the
 * ring is dead from then on). Calling peek again before release returns the
 * same record. Never blocks, never allocates.
 */
RIPC_API int ripc_ring_peek(ripc_ring *r, const void **buf, size_t *len);

/*
 * Consumer: remove the record returned by the last successful peek
 * (release store of the consumer index). Without one it does nothing.
 */
RIPC_API void ripc_ring_release(ripc_ring *r);

/*
 * Consumer: peek + copy into buf (cap bytes) + release. *len gets the record
 * length. Returns 0, -EAGAIN, -EPROTO, or -EMSGSIZE when cap is too small
 * (*len then holds the needed size and the record stays in the ring).
 */
RIPC_API int ripc_ring_pop(ripc_ring *r, void *buf, size_t cap, size_t *len);

/*
 * Not part of the API: the body of the library's ripc_ring_pop(), exported
 * under another name so that the inline ripc_ring_pop() below can call it
 * (under gnu_inline the inline body cannot call the out-of-line function of
 * its own name). Programs call ripc_ring_pop().
 */
RIPC_API int ripc__ring_pop_slow(ripc_ring *r, void *buf, size_t cap, size_t *len);

/*
 * Either side: bytes currently queued as seen by this side (producer: its
 * head minus the consumer index it reads now; consumer: the producer index it
 * reads now minus its tail, 0 while that index still lags a record the
 * consumer took by its header). Reads and checks the peer's index (the
 * consumer may turn -EPROTO here). Returns 0 on a dead ring.
 */
RIPC_API size_t ripc_ring_used(ripc_ring *r);

/*
 * Inline fast paths. With GCC or Clang and optimisation on, ripc_ring_push()
 * and ripc_ring_pop() compile into the caller for the common record (nothing
 * open, no wrap, room by the consumer index the producer last read, a
 * well-formed header), so a program linking the shared library or the
 * archive pays no call per record. Everything else (a full ring, a wrap, a
 * record to validate the long way, a dead ring) calls the library's
 * reserve/commit and ripc__ring_pop_slow (peek/release), which hold the
 * whole contract above.
 * The inline pop reads the peer's header once and checks it like
 * ripc_ring_peek() (committed, known flags, length within the maximum and
 * the data area) before it copies; anything else goes to the library. The
 * library symbols stay: -O0 builds, other compilers and older programs call
 * them, and define RIPC_RING_NO_INLINE to call them always.
 *
 * struct ripc_ring_fast is the start of every handle, the part the inline
 * code reads and writes; its layout and the shared-memory format it assumes
 * (layout version 2, shm/ring_layout.h in the sources) are part of the ABI
 * for the library's major version. Only the inline code touches it; the
 * library sets `slow` whenever the inline code must not take a record.
 */
struct ripc_ring_fast {
    unsigned char *data;  /* the data area */
    uint64_t *index;      /* the index this side publishes: head or tail */
    uint64_t mask;        /* capacity - 1 */
    uint64_t max_payload; /* read once at attach, checked */
    uint64_t pos;         /* this side's index */
    uint64_t peer;        /* producer: the consumer index last read and checked */
    uint32_t slow;        /* nonzero: call the library (dead, reservation or peek open) */
    uint32_t spare;
};

#if defined(__GNUC__) && defined(__OPTIMIZE__) && !defined(RIPC_RING_NO_INLINE)
#include <errno.h>
#include <string.h>

/* gnu_inline: these bodies are only ever inlined; a call the compiler does
 * not inline goes to the library's exported function of the same name. */
#define RIPC_RING_INLINE_ extern __inline__ __attribute__((__gnu_inline__))
#define RIPC_RING_VALID_  ((uint64_t)2 << 32) /* the committed bit of a header */
/* No ring's max_payload reaches it; a bound the compiler can see, so that it
 * never warns about a copy that only a constant oversized len would reach. */
#define RIPC_RING_PAYLOAD_LIMIT_ (RIPC_RING_MAX_CAPACITY / 2)

RIPC_RING_INLINE_ int ripc_ring_push(ripc_ring *r, const void *buf, size_t len)
{
    struct ripc_ring_fast *f = (struct ripc_ring_fast *)(void *)r;
    uint64_t need = ((uint64_t)len + 15) & ~(uint64_t)7; /* header + payload, padded */
    uint64_t off = f->pos & f->mask, cap = f->mask + 1;
    /* Room for the record and the spare header slot after it, without a
     * pad (need <= cap - off); len within the maximum keeps need small. */
    if (__builtin_expect(f->slow == 0 && len <= RIPC_RING_PAYLOAD_LIMIT_ && len <= f->max_payload &&
                             need <= cap - off && cap - (f->pos - f->peer) >= need + 8,
                         1)) {
        unsigned char *rec = f->data + off;
        if (len != 0)
            memcpy(rec + 8, buf, len);
        /* The slot after the record reads "empty" until the next commit. */
        __atomic_store_n((uint64_t *)(void *)(f->data + ((off + need) & f->mask)), 0,
                         __ATOMIC_RELAXED);
        /* Publishes the record: release, pairs with the consumer's acquire
         * load of this slot (ripc_ring_peek, ripc_ring_pop). */
        __atomic_store_n((uint64_t *)(void *)rec, (uint64_t)len | RIPC_RING_VALID_,
                         __ATOMIC_RELEASE);
        f->pos += need;
        /* head, for ripc_ring_used() and re-attach: release, as the library. */
        __atomic_store_n(f->index, f->pos, __ATOMIC_RELEASE);
        return 0;
    }
    void *dst;
    int rc = ripc_ring_reserve(r, len, &dst);
    if (rc < 0)
        return rc;
    if (len != 0 && len <= RIPC_RING_PAYLOAD_LIMIT_) /* reserved: always */
        memcpy(dst, buf, len);
    ripc_ring_commit(r, len);
    return 0;
}

RIPC_RING_INLINE_ int ripc_ring_pop(ripc_ring *r, void *buf, size_t cap, size_t *len)
{
    struct ripc_ring_fast *f = (struct ripc_ring_fast *)(void *)r;
    if (__builtin_expect(f->slow == 0, 1)) {
        uint64_t off = f->pos & f->mask;
        /* One acquire load of the header slot at our position, pairs with
         * the producer's publishing store; every check below is on this copy. */
        uint64_t h =
            __atomic_load_n((const uint64_t *)(const void *)(f->data + off), __ATOMIC_ACQUIRE);
        if (h == 0)
            return -EAGAIN;
        uint64_t n = (uint32_t)h, size = (n + 15) & ~(uint64_t)7;
        if (__builtin_expect((h & ~(uint64_t)UINT32_MAX) == RIPC_RING_VALID_ &&
                                 n <= f->max_payload && size <= f->mask + 1 - off && n <= cap,
                             1)) {
            *len = (size_t)n;
            if (n != 0)
                memcpy(buf, f->data + off + 8, (size_t)n);
            f->pos += size;
            /* tail: release, our reads of the record are done before the
             * producer that sees it reuses the space. */
            __atomic_store_n(f->index, f->pos, __ATOMIC_RELEASE);
            return 0;
        }
    }
    return ripc__ring_pop_slow(r, buf, cap, len);
}

#undef RIPC_RING_PAYLOAD_LIMIT_
#undef RIPC_RING_VALID_
#undef RIPC_RING_INLINE_
#endif /* inline fast paths */

#ifdef __cplusplus
}
#endif

#endif /* RINGIPC_RING_H */

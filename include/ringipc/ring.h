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
 * Either side: bytes currently queued as seen by this side (producer: its
 * head minus the consumer index it reads now; consumer: the producer index it
 * reads now minus its tail, 0 while that index still lags a record the
 * consumer took by its header). Reads and checks the peer's index (the
 * consumer may turn -EPROTO here). Returns 0 on a dead ring.
 */
RIPC_API size_t ripc_ring_used(ripc_ring *r);

#ifdef __cplusplus
}
#endif

#endif /* RINGIPC_RING_H */

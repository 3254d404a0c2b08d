/* SPDX-License-Identifier: MIT */
/* The private side of a ring handle: what one process keeps about a ring.
 * Shared with the rest of the library (doorbells need the wait words). */
#ifndef RIPC_SHM_RING_INTERNAL_H
#define RIPC_SHM_RING_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ringipc/ring.h"
#include "shm/ring_layout.h"

struct ripc_ring {
    /* First: what the public header's inline fast paths use (data, mask,
     * max_payload: private copies of the constants, read once; pos: our own
     * index, head (producer) or tail (consumer); peer: producer: cached
     * tail, consumer: last head it read; slow: see sync_slow in ring.c). */
    struct ripc_ring_fast f;
    struct ripc_ring_hdr *hdr;
    uint64_t capacity;
    int role;
    int dead;      /* -EPROTO seen: the ring is never used again */
    int fastpub;   /* data direction uses asymmetric fences (shm/fence.h) */
    int fastspace; /* space direction too: the releaser skips its fence */
    /* producer: the open reservation */
    int reserved;
    int res_urgent; /* lines asked for at reserve: demote them at commit */
    uint64_t res_pad;
    uint64_t res_len;
    /* consumer: the record returned by the last peek */
    int peeked;
    uint64_t peek_skip; /* pad bytes before it */
    uint64_t peek_size;
    uint64_t peek_len;
    /* producer: the most it found queued at a re-read of the tail */
    uint64_t high;
};

/* The header slot at byte off of the data area, loaded with order (an
 * __ATOMIC_* constant): the word that publishes a record (format 2). */
static inline uint64_t ripc__ring_load_slot(const ripc_ring *r, uint64_t off, int order)
{
    return __atomic_load_n((const uint64_t *)(r->f.data + off), order);
}

/* ripc_ring_format for memory whose data area is already zero (a segment
 * just made: memfd and shm_open pages start zero-filled), without writing
 * it: a 1 GiB ring a worker asks for costs the master no page until used. */
int ripc__ring_format_zeroed(void *mem, size_t mem_len, size_t capacity);

/*
 * The eventcount on the ring's wait line.
 *
 * Sleeper (consumer waiting for data / producer waiting for space):
 *   arm:   flag = 1 (seq_cst store), re-read what the other side publishes
 *          (seq_cst load); if the condition now holds, disarm and do not sleep.
 * Waker (producer after commit / consumer after release):
 *   publish, full fence, load the flag; if set, exchange it to 0 and ring the
 *   doorbell. Only the first waker after an arm rings.
 * Either the sleeper's re-read sees the publication, or the waker's load sees
 * the flag: the seq_cst total order forbids both missing (Dekker). The two
 * sides must name the same word. Data direction (format 2): the producer
 * publishes a record by storing its first header into the slot at the
 * consumer's position, so the consumer re-checks that slot (nonzero = data),
 * not head; head is stored after the header and may lag records the consumer
 * already took, so it could only wake a sleeper spuriously or not at all.
 * Space direction: the consumer index (tail), as before.
 */
int ripc__ring_arm_consumer(ripc_ring *r); /* 1: data is there, not armed */
/* The same, with the flag set to `how` (RIPC_SLEEP_*, ring_layout.h). */
int ripc__ring_arm_consumer_as(ripc_ring *r, uint32_t how);
void ripc__ring_disarm_consumer(ripc_ring *r);
/* The consumer's sleep flag as it stands (0: not armed, or already rung). */
uint32_t ripc__ring_consumer_flag(const ripc_ring *r);
/* 1: room for len, not armed; else armed with flag value `how`. */
int ripc__ring_arm_producer(ripc_ring *r, size_t len, uint32_t how);
void ripc__ring_disarm_producer(ripc_ring *r);
/* Producer: ripc_ring_reserve for a record someone waits for (a request, a
 * reply): also asks for every line the record and its spare slot touch at
 * once, and the commit then demotes them to the shared cache (records up to
 * 2 KiB), so that the idle consumer polling that header gets the record
 * from there in one round of transfers. Not for streams: a consumer chasing
 * the producer would lose the lines it is reading. */
int ripc__ring_reserve_urgent(ripc_ring *r, size_t len, void **buf);
/* Producer: commit like ripc_ring_commit, but publish with seq_cst; returns
 * the consumer's sleep flag when it was asleep (RIPC_SLEEP_*: the caller
 * must wake it so), else 0. */
uint32_t ripc__ring_commit_wake(ripc_ring *r, size_t len);
/* Producer: after one or more ripc_ring_commit (release), the consumer's
 * sleep flag when it was asleep (wake it so), else 0: commit_wake's look
 * at the flag, once for a batch of records. */
uint32_t ripc__ring_data_wake(ripc_ring *r);
/* Producer: drop the open reservation unpublished (a loan abandoned, or one
 * whose commit failed). Nothing was stored in the ring: the slot at our
 * position still holds 0, so the consumer never sees the bytes written. */
void ripc__ring_abandon(ripc_ring *r);
/* Consumer: after one or more releases, the producer's sleep flag when it
 * was asleep waiting for space (wake it so), else 0. */
uint32_t ripc__ring_space_wake(ripc_ring *r);
/* Consumer: is a record (or garbage) published at our position? One relaxed
 * load of the header slot peek reads first (never the producer index). */
int ripc__ring_readable(ripc_ring *r);
/* Producer: would a record of len bytes (with its spare slot) fit now? */
int ripc__ring_writable(ripc_ring *r, size_t len);

/*
 * Producer, for large messages (src/large.c): a payload buffer may be reused
 * once the consumer has released the marker record that names it.
 * ring_pos is our index after the last commit; consumed says whether the
 * consumer's published index has reached pos (a lying consumer only makes us
 * reuse its own buffers early); arm_producer_pos arms like arm_producer but
 * for that condition (1: already true, not armed).
 */
uint64_t ripc__ring_pos(const ripc_ring *r);
int ripc__ring_consumed(ripc_ring *r, uint64_t pos);

/*
 * For the counters (src/stats.h), any thread while the ring stays attached.
 * fill: the bytes queued now, from the two published indices (relaxed
 * loads of the shared header; the peer may write anything there, so the
 * result is clamped to [0, capacity]). high: the most the producer found
 * queued when it last re-read the consumer's index (the producer writes it
 * there, a relaxed store; any thread reads it, a relaxed load).
 */
uint64_t ripc__ring_fill(const ripc_ring *r);
uint64_t ripc__ring_high(const ripc_ring *r);
uint64_t ripc__ring_capacity(const ripc_ring *r);
int ripc__ring_arm_producer_pos(ripc_ring *r, uint64_t pos, uint32_t how);

/*
 * Consumer, batched: release_lazy drops the peeked record from our private
 * view only; publish_tail stores the consumer index once for the batch. A
 * producer polling a full ring then sees one store per batch instead of one
 * per record (each of which would bounce the index line between cores).
 * Publish before waiting or arming, or the producer may wait for nothing.
 */
void ripc__ring_release_lazy(ripc_ring *r);
void ripc__ring_publish_tail(ripc_ring *r);
/* publish_tail up to pos only (a ripc__ring_pos taken earlier, at or past
 * the index last published): the records from pos on stay the consumer's
 * while it still reads them. */
void ripc__ring_publish_tail_at(ripc_ring *r, uint64_t pos);

/*
 * Asymmetric fences on the data direction (shm/fence.h). Both sides of a
 * ring must agree: the producer then publishes without a full fence, and the
 * consumer issues ripc__remote_fence() between setting its sleep flag and
 * re-checking the header
 * slot. Set right after attach, before any traffic.
 */
void ripc__ring_set_fastpub(ripc_ring *r, int on);
/* The same for the space direction: the consumer's space_wake then needs no
 * full fence, and a producer arming to wait for room issues the remote fence
 * (only worth it when producers rarely sleep on a full ring). Both sides of
 * the ring must agree, and the consumer's process must be registered. */
void ripc__ring_set_fastspace(ripc_ring *r, int on);
int ripc__ring_fastpub(const ripc_ring *r);
/* The two halves of ripc__ring_arm_consumer, for a thread that arms many
 * rings and wants one remote fence between the halves (not one per ring). */
void ripc__ring_arm_consumer_flag(ripc_ring *r);
int ripc__ring_consumer_recheck(ripc_ring *r); /* 1: data there, flag cleared */

#endif /* RIPC_SHM_RING_INTERNAL_H */

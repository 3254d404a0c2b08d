/* SPDX-License-Identifier: MIT */
/*
 * A connection's counters (ripc_peer_stats_t in the public header), kept by
 * the threads that do the counted work. The rule that keeps them free on
 * the hot paths and race-free for readers:
 *
 *   - every counter has one writer at a time: the "in" half the consumer of
 *     the connection (the master's loop that owns the peer, or the worker's
 *     thread inside its guard), the "out" half the producer (a master's
 *     sender holding the peer's send lock or its bias, whose hand-overs
 *     order one holder's writes before the next one's; the worker's
 *     thread);
 *   - the writer adds with a relaxed load and a relaxed store (plain moves
 *     on x86-64 and AArch64: no locked instruction, no fence), never a
 *     read-modify-write atomic;
 *   - any thread reads with relaxed loads: each 64-bit counter is naturally
 *     aligned, so a read is never torn on a 64-bit target (the library
 *     builds only for those: the _Static_assert below), and it sees some
 *     value the counter had. No snapshot across counters.
 *
 * Each half has cache lines of its own (the struct is aligned to them), so
 * that the writer of one never takes a line from the writer of the other:
 * the per-message counters (msgs, bytes) fill the first line, which the
 * writer keeps in its cache; the rest is touched on slow paths only.
 */
#ifndef RIPC_SRC_STATS_H
#define RIPC_SRC_STATS_H

#include <stdint.h>

_Static_assert(sizeof(void *) == 8, "the counters' torn-free reads assume 64-bit words");

#define RIPC_STATS_LINE 64

struct ripc__stats_half {
    /* per message, by kind (index & 3: a corrupt kind never writes out of
     * bounds; the public struct has the first three) */
    uint64_t msgs[4], bytes[4];
    /* slow paths */
    uint64_t large, large_bytes;
    uint64_t high;            /* the highest fill this half's owner saw (see the header) */
    uint64_t bells;           /* doorbells rung by this half's owner */
    uint64_t waits, wait_ns;  /* out: sends that waited for room */
    uint64_t sleeps, wakeups; /* in: the consumer's sleeps and wake-ups */
    uint64_t dropped;         /* in: late replies (worker), unhandled (master) */
    uint64_t proto;           /* in: -EPROTO seen (worker) */
} __attribute__((aligned(RIPC_STATS_LINE)));

typedef struct ripc__stats {
    struct ripc__stats_half in, out;
} ripc__stats;

/* The owner's add: a relaxed load and store, no locked instruction. */
static inline void ripc__stat_add(uint64_t *c, uint64_t n)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/* The owner's high-water mark: raised, never lowered. */
static inline void ripc__stat_max(uint64_t *c, uint64_t v)
{
    if (v > __atomic_load_n(c, __ATOMIC_RELAXED))
        __atomic_store_n(c, v, __ATOMIC_RELAXED);
}

/* Any thread's read. */
static inline uint64_t ripc__stat_get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* One message of `kind` and len payload bytes, by the half's owner: two
 * adds into the half's first line. */
static inline void ripc__stat_msg(struct ripc__stats_half *h, unsigned kind, uint64_t len)
{
    ripc__stat_add(&h->msgs[kind & 3], 1);
    ripc__stat_add(&h->bytes[kind & 3], len);
}

/* Take back a message counted before it went, when it did not (the
 * unsigned adds wrap back to the count before). */
static inline void ripc__stat_unmsg(struct ripc__stats_half *h, unsigned kind, uint64_t len)
{
    ripc__stat_add(&h->msgs[kind & 3], (uint64_t)0 - 1);
    ripc__stat_add(&h->bytes[kind & 3], (uint64_t)0 - len);
}

#endif

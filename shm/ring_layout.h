/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory format of one SPSC ring. This header is the whole format:
 * no OS calls here, so it can be unit-tested and fuzzed alone.
 *
 *   offset  line                       written by
 *   0       constants                  ripc_ring_format() only
 *   128     producer index (head)      producer
 *   256     consumer index (tail)      consumer
 *   384     wait words (sleep flags)   both sides (see shm/doorbell.h)
 *   512     data[capacity]             producer writes, consumer reads
 *
 * Each line is 128 bytes: two 64-byte cache lines, so the adjacent-line
 * prefetcher of one side never drags the other side's hot line along.
 *
 * Indices are monotonic 64-bit byte counters (they never wrap in practice:
 * 2^64 bytes at 100 GB/s is 5 years; the arithmetic is modular anyway).
 * position p lives at data[p & (capacity - 1)]. Invariants the producer keeps
 * and the consumer checks when it reads head: head - tail <= capacity - 8
 * (the last 8 bytes are never filled, see below), both multiples of 8.
 *
 * Records are 8-byte aligned: a header {u32 len; u32 flags} then len payload
 * bytes, padded to 8. A record never straddles the end of the data area: when
 * it would, the producer writes a pad record (flags = PAD, len = bytes to the
 * end minus 8) and the real record starts at offset 0.
 *
 * Format 2: the header word is the commit. Every published header has
 * RIPC_REC_VALID set, and the producer publishes a record by ONE release
 * store of its 8-byte header (payload first). The consumer polls the header
 * slot at its own position, not the producer index: an idle consumer reads
 * only that line, and the record it finds comes with its payload in the same
 * miss. The producer index (head) is still stored after every commit (for
 * ripc_ring_used(), the producer side of the doorbell and re-attach), but
 * the consumer's fast path never waits for it, so head may lag the
 * consumer's position by the record just taken.
 *
 * The phantom-record rule. The slot at the consumer's position may hold
 * bytes of an older lap (payload: user data that looks like anything). So
 * the producer keeps the 8 bytes after the last committed record zeroed:
 * before it publishes a record ending at position n, it stores 0 into the
 * header slot at n (data[n & mask]; the next record's first header, pad or
 * real, is always written there). For that slot to be free space a
 * reservation needs rec_size (+ pad) + 8 bytes of room: one spare header, so
 * the ring never holds more than capacity - 8 bytes. ripc_ring_format()
 * zeroes the data area. The consumer therefore sees at its position either
 * 0 (empty) or a header the producer committed; a nonzero word without
 * VALID is corruption.
 *
 * A wrap: the producer writes the real record (payload, zero slot after it,
 * header at offset 0) and then the pad header, which is the publishing
 * store: a consumer that sees the pad sees the record behind it.
 *
 * max_payload = capacity / 2 - 8 (a record of capacity / 2 bytes): once the
 * ring is drained, pad + record + spare <= (capacity / 2 - 8) + capacity / 2
 * + 8 = capacity from any start offset.
 */
#ifndef RIPC_SHM_RING_LAYOUT_H
#define RIPC_SHM_RING_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#define RIPC_RING_MAGIC          0x31474E5243504952ULL /* "RIPCRNG1" little-endian */
#define RIPC_RING_LAYOUT_VERSION 2u
#define RIPC_RING_LINE           128u
#define RIPC_RING_HDR_BYTES      (4u * RIPC_RING_LINE)
#define RIPC_RING_ALIGN          8u

#define RIPC_REC_HDR         8u
#define RIPC_REC_PAD         0x1u /* skip to the start of the data area */
#define RIPC_REC_VALID       0x2u /* committed: set in every published header */
#define RIPC_REC_KNOWN_FLAGS (RIPC_REC_PAD | RIPC_REC_VALID)
#define RIPC_REC_SPARE       RIPC_REC_HDR /* free bytes a reservation leaves behind */

struct ripc_ring_consts {
    uint64_t magic;
    uint32_t version;
    uint32_t hdr_bytes;   /* offset of data[] */
    uint64_t capacity;    /* data bytes, power of two */
    uint64_t max_payload; /* capacity / 2 - RIPC_REC_HDR */
};

/* Wait words: the eventcount (shm/ring_internal.h). A side about to sleep
 * sets its flag, fences, re-checks the index, then blocks; the other side
 * fences after publishing and rings only when the flag is set. The futex
 * doorbell waits on the sequence words. A set flag also says how the
 * sleeper is to be woken: RIPC_SLEEP_BELL through its doorbell, or
 * RIPC_SLEEP_WORD (only where the handshake agreed on it, see
 * shm/doorbell.h) by bumping the futex word of the m->w ring and waking it.
 * Any other nonzero value (a hostile peer) counts as BELL. */
#define RIPC_SLEEP_BELL 1u
#define RIPC_SLEEP_WORD 2u
struct ripc_ring_wait {
    _Atomic uint32_t consumer_sleeping; /* consumer waits for data */
    _Atomic uint32_t producer_sleeping; /* producer waits for space */
    _Atomic uint32_t data_seq;          /* bumped by the producer's ring */
    _Atomic uint32_t space_seq;         /* bumped by the consumer's ring */
};

struct ripc_ring_hdr {
    union {
        struct ripc_ring_consts c;
        unsigned char pad0[RIPC_RING_LINE];
    } consts;
    union {
        _Atomic uint64_t head;
        unsigned char pad1[RIPC_RING_LINE];
    } prod;
    union {
        _Atomic uint64_t tail;
        unsigned char pad2[RIPC_RING_LINE];
    } cons;
    union {
        struct ripc_ring_wait w;
        unsigned char pad3[RIPC_RING_LINE];
    } wait;
};

_Static_assert(sizeof(struct ripc_ring_hdr) == RIPC_RING_HDR_BYTES, "ring header is 4 lines");

static inline uint64_t ripc__rec_size(uint64_t payload)
{
    return (RIPC_REC_HDR + payload + (RIPC_RING_ALIGN - 1)) & ~(uint64_t)(RIPC_RING_ALIGN - 1);
}

static inline uint64_t ripc__rec_pack(uint32_t len, uint32_t flags)
{
    return (uint64_t)len | ((uint64_t)flags << 32);
}

static inline uint32_t ripc__rec_len(uint64_t h)
{
    return (uint32_t)h;
}

static inline uint32_t ripc__rec_flags(uint64_t h)
{
    return (uint32_t)(h >> 32);
}

#endif /* RIPC_SHM_RING_LAYOUT_H */

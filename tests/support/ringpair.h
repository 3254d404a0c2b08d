/* A deterministic record stream for ring tests: both sides derive record n's
 * length and content from (seed, n), so the consumer can check every byte
 * and the order without any side channel. */
#ifndef RIPC_TEST_RINGPAIR_H
#define RIPC_TEST_RINGPAIR_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "support/support.h"

/* Length of record n: uniform in [0, max]. */
static inline size_t ripc_test_rec_len(uint64_t seed, uint64_t n, size_t max)
{
    uint64_t s = (seed ^ (n * 0xD1B54A32D192ED03ULL)) | 1;
    return (size_t)(ripc_test_rand(&s) % (max + 1));
}

/* Content: 8-byte words n * K + i, cheap to make and to check. */
static inline void ripc_test_rec_fill(void *buf, size_t len, uint64_t n)
{
    unsigned char *p = buf;
    uint64_t w = n * 0x9E3779B97F4A7C15ULL;
    size_t i = 0;
    for (; i + 8 <= len; i += 8, w++)
        memcpy(p + i, &w, 8);
    if (i < len)
        memcpy(p + i, &w, len - i);
}

/* 1 when buf holds exactly what ripc_test_rec_fill(len, n) wrote. */
static inline int ripc_test_rec_ok(const void *buf, size_t len, uint64_t n)
{
    const unsigned char *p = buf;
    uint64_t w = n * 0x9E3779B97F4A7C15ULL;
    size_t i = 0;
    for (; i + 8 <= len; i += 8, w++) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v != w)
            return 0;
    }
    return i == len || memcmp(p + i, &w, len - i) == 0;
}

/* Running checksum over the bytes of every record (FNV-1a over words). */
static inline uint64_t ripc_test_sum(uint64_t h, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = (h ^ v) * 0x100000001B3ULL;
    }
    for (; i < len; i++)
        h = (h ^ p[i]) * 0x100000001B3ULL;
    return (h ^ len) * 0x100000001B3ULL;
}

#define RIPC_TEST_SUM_INIT 0xCBF29CE484222325ULL

/* Back off while the ring is full or empty: spin briefly, then yield so
 * that two processes sharing one CPU (taskset -c 0) still make progress.
 * Against busy processes on that CPU a yield is slow (see the bell below). */
static inline void ripc_test_backoff(unsigned *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        return;
    }
    sched_yield();
}

/*
 * A bell for the two sides of a test ring in one address space or in
 * shared memory: each side rings it after every step that may let the
 * other go on (a commit, a release), and a side that found the ring full or
 * empty spins briefly, then sleeps on the bell until the other side rings.
 * A yield is no wait: on a CPU shared with busy processes it hands the CPU
 * to them for whole time slices while the other side, which would end the
 * wait, sits in the queue behind them (one record per slice).
 * The bell orders nothing a race detector would see (relaxed counters, a
 * raw futex): the ring's own acquire/release pairs still carry every
 * payload. So a ring may be missed, and a sleep is bounded (1 ms) before
 * the caller looks at the ring again. Without a futex: a yield.
 */
struct ripc_test_bell {
    _Atomic uint32_t seq;      /* rings so far */
    _Atomic uint32_t sleepers; /* sides asleep on seq */
};

struct ripc_test_waiter {
    struct ripc_test_bell *bell;
    unsigned spins;
    uint32_t seen; /* seq before the last look at the ring */
};

void ripc_test_bell_ring(struct ripc_test_bell *b);

/* Call after each look at the ring that found it full or empty: rings
 * since the look before it end the sleep at once. */
void ripc_test_bell_wait(struct ripc_test_waiter *w);

#endif

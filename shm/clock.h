/* SPDX-License-Identifier: MIT */
/*
 * The library's clock and its one deadline type. A deadline is an absolute
 * CLOCK_MONOTONIC time in ns (uint64_t); RIPC_DEADLINE_NEVER means no limit,
 * and any time already past (0 among them) means "just look". Every blocking
 * call turns its timeout_ms into a deadline once, at entry, and hands the
 * deadline down, so nested waits share one budget.
 *
 * Inline: the waits on the hot paths read the clock.
 */
#ifndef RIPC_SHM_CLOCK_H
#define RIPC_SHM_CLOCK_H

#include <stdint.h>
#include <time.h>

#define RIPC_DEADLINE_NEVER UINT64_MAX

/* CLOCK_MONOTONIC in ns. */
static inline uint64_t ripc__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC_COARSE where there is one (a few ms of granularity, a
 * quarter of the cost): for "about every millisecond" checks on hot paths.
 * Not comparable with ripc__now_ns() nor with deadlines. */
static inline uint64_t ripc__coarse_ns(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    /* The tick-granular clock: one read of the vDSO page (~5 ns here,
     * against ~22 ns for CLOCK_MONOTONIC, which reads the TSC). */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#else
    return ripc__now_ns();
#endif
}

/* CLOCK_REALTIME in ns since the epoch: a moment a person reads (when a
 * peer connected), never for deadlines. */
static inline uint64_t ripc__wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Deadline for a timeout in ms: RIPC_DEADLINE_NEVER for < 0, now for 0. */
static inline uint64_t ripc__deadline(int timeout_ms)
{
    if (timeout_ms < 0)
        return RIPC_DEADLINE_NEVER;
    return ripc__now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

/* Has the deadline passed? Never true for RIPC_DEADLINE_NEVER. */
static inline int ripc__expired(uint64_t deadline)
{
    return ripc__now_ns() >= deadline;
}

/* ns left until deadline: 0 once passed, RIPC_DEADLINE_NEVER for none. */
static inline uint64_t ripc__remaining_ns(uint64_t deadline)
{
    if (deadline == RIPC_DEADLINE_NEVER)
        return RIPC_DEADLINE_NEVER;
    uint64_t now = ripc__now_ns();
    return now >= deadline ? 0 : deadline - now;
}

/* ms left until deadline as a poll() timeout: rounded up (a wait must not
 * end before the deadline only to be repeated with 0), at most INT32_MAX,
 * -1 for RIPC_DEADLINE_NEVER. */
static inline int ripc__remaining_ms(uint64_t deadline)
{
    uint64_t ns = ripc__remaining_ns(deadline);
    if (ns == RIPC_DEADLINE_NEVER)
        return -1;
    uint64_t ms = (ns + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* A CLOCK_MONOTONIC time point in ns (a deadline) as a timespec. */
static inline struct timespec ripc__timespec_at(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    return ts;
}

#endif /* RIPC_SHM_CLOCK_H */

/* SPDX-License-Identifier: MIT */
/*
 * platform/thread.h on glibc: locks and condition waits on CLOCK_MONOTONIC
 * deadlines as single calls (pthread_mutex_clocklock,
 * pthread_cond_clockwait, clock_nanosleep), and CPU affinity for the spin
 * decision.
 */
#include "platform/thread.h"

#include <errno.h>
#include <time.h>

#include "shm/clock.h"
#include "src/tsan.h"

int ripc__spin_ok(int32_t peer_pid)
{
    cpu_set_t ours, theirs;
    if (sched_getaffinity(0, sizeof ours, &ours) != 0)
        return 0;
    if (CPU_COUNT(&ours) >= 2)
        return 1;
    if (peer_pid <= 0 || sched_getaffinity(peer_pid, sizeof theirs, &theirs) != 0)
        return 0;
    CPU_OR(&theirs, &theirs, &ours);
    return CPU_COUNT(&theirs) >= 2;
}

int ripc__mutex_lock_until(pthread_mutex_t *mu, uint64_t deadline)
{
    if (deadline == RIPC_DEADLINE_NEVER)
        return pthread_mutex_lock(mu);
#ifndef RIPC_TSAN
    struct timespec ts = ripc__timespec_at(deadline);
    return pthread_mutex_clocklock(mu, CLOCK_MONOTONIC, &ts);
#else
    /* TSan's runtime (clang 14) does not intercept pthread_mutex_clocklock:
     * it would miss every lock taken that way and report the unlock as one
     * of an unlocked mutex. pthread_mutex_timedlock it does know; its
     * CLOCK_REALTIME deadline moves with the wall clock, which a test run
     * can live with and a release build must not (clock steps would
     * stretch or cut the wait). */
    uint64_t left = ripc__remaining_ns(deadline);
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    uint64_t at = (uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec + left;
    rt = ripc__timespec_at(at);
    return pthread_mutex_timedlock(mu, &rt);
#endif
}

void ripc__nap_until(uint64_t deadline)
{
    struct timespec ts = ripc__timespec_at(deadline);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

int ripc__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline)
{
    if (deadline == RIPC_DEADLINE_NEVER)
        return pthread_cond_wait(cv, mu);
    struct timespec ts = ripc__timespec_at(deadline);
    return pthread_cond_clockwait(cv, mu, CLOCK_MONOTONIC, &ts);
}

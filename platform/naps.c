/* SPDX-License-Identifier: MIT */
/*
 * The parts of platform/thread.h that a system without a clock-taking lock
 * or an absolute sleep does with naps (ripc__nap_ns): the portable POSIX
 * build, macOS, the BSDs (with sched_posix.c) and Windows (with
 * thread_win32.c).
 */
#include "platform/thread.h"

#include <errno.h>

#include "shm/clock.h"

/* pthread_mutex_timedlock measures CLOCK_REALTIME (macOS lacks it, and
 * winpthreads' measures the wall clock too): try, and nap between tries,
 * doubling from 10 us up to 1 ms and never past the deadline. A lock given
 * back during a nap waits for the nap's end; the callers hold it for short
 * sections. */
int ripc__mutex_lock_until(pthread_mutex_t *mu, uint64_t deadline)
{
    if (deadline == RIPC_DEADLINE_NEVER)
        return pthread_mutex_lock(mu);
    uint64_t nap = 10000;
    for (;;) {
        int rc = pthread_mutex_trylock(mu);
        if (rc != EBUSY)
            return rc;
        uint64_t left = ripc__remaining_ns(deadline);
        if (left == 0)
            return ETIMEDOUT;
        ripc__nap_ns(nap < left ? nap : left);
        if (nap < 1000000)
            nap *= 2;
    }
}

/* clock_nanosleep is optional in POSIX (macOS lacks it; Windows has no
 * absolute sleep on the monotonic clock): relative naps. */
void ripc__nap_until(uint64_t deadline)
{
    uint64_t left;
    while ((left = ripc__remaining_ns(deadline)) > 0)
        ripc__nap_ns(left);
}

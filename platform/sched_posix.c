/* SPDX-License-Identifier: MIT */
/*
 * platform/thread.h with POSIX alone (the portable build, macOS, the
 * BSDs): no clock-taking lock (platform/naps.c), no CPU affinity.
 */
#include "platform/thread.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "shm/clock.h"

/* Without affinity, the CPUs online: one CPU alone never spins. A peer
 * confined with us to one CPU of several is not seen (it spins, for at
 * most spin_us per wait). */
int ripc__spin_ok(int32_t peer_pid)
{
    (void)peer_pid;
    return sysconf(_SC_NPROCESSORS_ONLN) >= 2;
}

int ripc__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline)
{
    if (deadline == RIPC_DEADLINE_NEVER)
        return pthread_cond_wait(cv, mu);
#if defined(__APPLE__)
    /* Relative to now: macOS has no monotonic absolute timed wait. */
    uint64_t left = ripc__remaining_ns(deadline);
    struct timespec rel = {.tv_sec = (time_t)(left / 1000000000u),
                           .tv_nsec = (long)(left % 1000000000u)};
    return pthread_cond_timedwait_relative_np(cv, mu, &rel);
#else
    struct timespec ts = ripc__timespec_at(deadline);
    return pthread_cond_timedwait(cv, mu, &ts);
#endif
}

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <linux/membarrier.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm/fence.h"

/* (pid << 1) | usable, for the process that registered (pid 0: none). */
static _Atomic uint64_t state;

static long membarrier(int cmd)
{
    return syscall(__NR_membarrier, cmd, 0);
}

/* Registration belongs to the process (its mm). A child made by fork()
 * inherits our memory, including the "done" state, so remember which process
 * registered and register again in a new one. Registering is idempotent, so
 * threads that get here at once each register, with no lock (a lock held by
 * another thread's registration when the process forks would stay held in
 * the child, whose first registration would wait for it forever); the first
 * answer stored is the process's answer for everyone. */
int ripc__remote_fence_init(void)
{
    uint64_t me = (uint64_t)getpid();
    uint64_t s = atomic_load(&state);
    if (s >> 1 == me)
        return (int)(s & 1);
    long mask = membarrier(MEMBARRIER_CMD_QUERY);
    int ok = mask >= 0 && (mask & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
             (mask & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
             membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
    while (!atomic_compare_exchange_weak(&state, &s, me << 1 | (uint64_t)ok))
        if (s >> 1 == me)
            return (int)(s & 1); /* another thread answered first */
    return ok;
}

void ripc__remote_fence(void)
{
    /* Cannot fail once registered and queried; on a surprise error fall
     * back to nothing worse than a local fence. */
    if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0)
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

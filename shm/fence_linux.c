/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm/fence.h"

static _Atomic int available;
static _Atomic pid_t registered_pid;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static long membarrier(int cmd)
{
    return syscall(__NR_membarrier, cmd, 0);
}

/* Registration belongs to the process (its mm). A child made by fork()
 * inherits our memory, including the "done" state, so remember which process
 * registered and register again in a new one (registering is idempotent). */
int ripc__remote_fence_init(void)
{
    pid_t me = getpid();
    if (atomic_load(&registered_pid) == me)
        return atomic_load(&available);
    pthread_mutex_lock(&mu);
    if (atomic_load(&registered_pid) != me) {
        long mask = membarrier(MEMBARRIER_CMD_QUERY);
        int ok = mask >= 0 && (mask & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
                 (mask & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
                 membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
        atomic_store(&available, ok);
        atomic_store(&registered_pid, me);
    }
    pthread_mutex_unlock(&mu);
    return atomic_load(&available);
}

void ripc__remote_fence(void)
{
    /* Cannot fail once registered and queried; on a surprise error fall
     * back to nothing worse than a local fence. */
    if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0)
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

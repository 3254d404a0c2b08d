/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm/fence.h"

static int available;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static long membarrier(int cmd)
{
    return syscall(__NR_membarrier, cmd, 0);
}

static void init(void)
{
    long mask = membarrier(MEMBARRIER_CMD_QUERY);
    if (mask < 0 || !(mask & MEMBARRIER_CMD_GLOBAL_EXPEDITED) ||
        !(mask & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
        return;
    if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0)
        return;
    available = 1;
}

int ripc__remote_fence_init(void)
{
    pthread_once(&once, init);
    return available;
}

void ripc__remote_fence(void)
{
    /* Cannot fail once registered and queried; on a surprise error fall
     * back to nothing worse than a local fence. */
    if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0)
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

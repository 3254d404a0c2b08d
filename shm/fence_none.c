/* SPDX-License-Identifier: MIT */
/* No asymmetric fence on this platform: channels keep symmetric fences. */
#include "shm/fence.h"

int ripc__remote_fence_init(void)
{
    return 0;
}

void ripc__remote_fence(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

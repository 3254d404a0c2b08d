/* SPDX-License-Identifier: MIT */
/* The ring tests' bell: see support/ringpair.h. */
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "support/ringpair.h"

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

void ripc_test_bell_ring(struct ripc_test_bell *b)
{
    /* RMWs (full barriers on x86): the count is seen before the sleepers
     * are; elsewhere a missed ring costs one bounded sleep. */
    atomic_fetch_add_explicit(&b->seq, 1, memory_order_relaxed);
#ifdef __linux__
    if (atomic_fetch_add_explicit(&b->sleepers, 0, memory_order_relaxed))
        syscall(SYS_futex, &b->seq, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
#endif
}

void ripc_test_bell_wait(struct ripc_test_waiter *w)
{
    struct ripc_test_bell *b = w->bell;
    if (++w->spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
#ifdef __linux__
        struct timespec ts = {0, 1000000};
        atomic_fetch_add_explicit(&b->sleepers, 1, memory_order_relaxed);
        syscall(SYS_futex, &b->seq, FUTEX_WAIT, w->seen, &ts, NULL, 0);
        atomic_fetch_sub_explicit(&b->sleepers, 1, memory_order_relaxed);
#else
        sched_yield();
#endif
    }
    w->seen = atomic_load_explicit(&b->seq, memory_order_relaxed);
}

/* SPDX-License-Identifier: MIT */
/* The guard's slow path; the protocol and its labels: src/guard.h. */
#include <string.h>

#include "src/guard.h"
#include "src/platform.h"

void ripc__guard_init(ripc__guard *g, int asym)
{
    memset(g, 0, sizeof *g);
    atomic_init(&g->owner, NULL);
    atomic_init(&g->lock, 0);
    g->asym = asym;
}

/* Lock held: the calling thread's slot, a new one, or NULL when all are
 * taken. Slots are never reused while the guard lives: a thread that read a
 * stale owner may still hold a slot's address. */
static struct ripc__guard_slot *my_slot(ripc__guard *g)
{
    pthread_t me = pthread_self();
    for (int i = 0; i < g->nslots; i++)
        if (pthread_equal(g->slots[i].tid, me))
            return &g->slots[i];
    if (g->nslots == RIPC_GUARD_SLOTS)
        return NULL;
    struct ripc__guard_slot *s = &g->slots[g->nslots++];
    s->tid = me;
    atomic_store_explicit(&s->in, 0, memory_order_relaxed);
    return s;
}

/* B2: after the owner was withdrawn, before its flag is read. */
static void revoke_fence(ripc__guard *g)
{
    /* A forked child registers its own process again before fencing. */
    if (g->asym && ripc__remote_fence_init())
        ripc__remote_fence();
    else
        atomic_thread_fence(memory_order_seq_cst);
}

ripc__guard_token ripc__guard_enter_slow(ripc__guard *g)
{
    /* L1: acquire, pairs with L2 (the releases below, ripc__guard_leave). */
    if (atomic_exchange_explicit(&g->lock, 1, memory_order_acquire))
        return NULL; /* another thread is taking over or holds the lock */
    struct ripc__guard_slot *s = my_slot(g);
    struct ripc__guard_slot *cur = atomic_load_explicit(&g->owner, memory_order_relaxed);
    if (cur && cur != s) {
        atomic_store_explicit(&g->owner, NULL, memory_order_relaxed);
        /* B2 is a full barrier on this thread as well, whichever way it
         * goes: a seq_cst fence, or membarrier, which orders the caller's
         * accesses across the call (shm/fence.h: "the caller's included")
         * and falls back to a seq_cst fence. It alone orders the store
         * above before the load of cur->in below. */
        revoke_fence(g); /* B2 */
        /* I2: acquire, pairs with I1 (ripc__guard_leave): what cur did
         * inside happens before we take over. */
        if (atomic_load_explicit(&cur->in, memory_order_acquire)) {
            /* cur is inside: the bias stays with it. */
            atomic_store_explicit(&g->owner, cur, memory_order_release); /* O1 */
            atomic_store_explicit(&g->lock, 0, memory_order_release);    /* L2 */
            return NULL;
        }
    }
    if (!s)
        return g; /* no slot: the lock is the guard until leave */
    atomic_store_explicit(&s->in, 1, memory_order_relaxed);
    /* O1: release, pairs with O2 in ripc__guard_enter: s->tid and s->in. */
    atomic_store_explicit(&g->owner, s, memory_order_release);
    atomic_store_explicit(&g->lock, 0, memory_order_release); /* L2 */
    return s;
}

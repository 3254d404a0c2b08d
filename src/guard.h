/* SPDX-License-Identifier: MIT */
/*
 * One thread at a time, checked without a locked instruction on the way in.
 *
 * A guard admits one thread; a second thread that arrives while one is
 * inside is refused (ripc__guard_enter returns NULL) and must change
 * nothing. The guard is biased: the thread that used it last (its owner)
 * enters with plain stores and loads, ordered by a compiler barrier only;
 * any other thread takes the slow path, which revokes the bias with an
 * asymmetric fence (shm/fence.h) before it looks at the owner's flag. A
 * program that keeps a client on one thread never pays for a fence; one that
 * hands it to another thread pays one fence (a few microseconds) at the
 * first call there. Without asymmetric fences the owner's way in has a full
 * fence, the price of the atomic exchange it replaces.
 *
 * Each thread that ever entered has a slot with a flag only that thread
 * writes, so a thread that read a stale owner and is about to fail can never
 * clear another thread's flag. Slots are never reused while the guard lives
 * (a reused slot could be taken by a stale thread that still holds its
 * address); threads beyond RIPC_GUARD_SLOTS hold the slow path's lock for
 * the whole call instead of owning a slot.
 *
 * The protocol (owner O in the fast path, revoker R holding g->lock):
 *   O: load owner == s; s->in = 1; barrier B1; load owner == s  -> inside
 *   R: owner = NULL;    barrier B2 (remote);   load s->in == 0  -> take over
 * B2 orders every running thread: if O's store to s->in came before it, R
 * sees the flag and refuses itself; if after, O's second load of owner is
 * after R's store and fails.
 */
#ifndef RIPC_SRC_GUARD_H
#define RIPC_SRC_GUARD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define RIPC_GUARD_SLOTS 16

struct ripc__guard_slot {
    pthread_t tid;  /* set once, under the guard's lock, before first use */
    _Atomic int in; /* 1 while tid is inside; written by tid only */
};

typedef struct ripc__guard {
    struct ripc__guard_slot *_Atomic owner; /* the bias; changed under lock */
    _Atomic int lock;                       /* the slow path's lock */
    int asym;                               /* revokers use ripc__remote_fence */
    int nslots;                             /* slots handed out (under lock) */
    struct ripc__guard_slot slots[RIPC_GUARD_SLOTS];
} ripc__guard;

/* A token for ripc__guard_leave: the caller's slot, or the guard itself for
 * a call that holds the lock throughout. NULL: another thread is inside. */
typedef void *ripc__guard_token;

/* Before any thread enters. asym: ripc__remote_fence_init() returned 1. */
void ripc__guard_init(ripc__guard *g, int asym);

/* Any thread that is not the owner, or the owner after a lost race. */
ripc__guard_token ripc__guard_enter_slow(ripc__guard *g);

static inline ripc__guard_token ripc__guard_enter(ripc__guard *g)
{
    /* Acquire: pairs with the release that published s (and s->tid). */
    struct ripc__guard_slot *s = atomic_load_explicit(&g->owner, memory_order_acquire);
    if (s && pthread_equal(s->tid, pthread_self())) {
        atomic_store_explicit(&s->in, 1, memory_order_relaxed);
        /* B1: pairs with the revoker's B2 (ripc__guard_enter_slow). */
        if (g->asym)
            atomic_signal_fence(memory_order_seq_cst);
        else
            atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&g->owner, memory_order_acquire) == s)
            return s;
        atomic_store_explicit(&s->in, 0, memory_order_release);
    }
    return ripc__guard_enter_slow(g);
}

/* The thread that entered, with the token it got. The release store pairs
 * with the acquire load of the flag by the next thread to take over, so a
 * client handed between threads sees its state as the last one left it. */
static inline void ripc__guard_leave(ripc__guard *g, ripc__guard_token t)
{
    if (t == (void *)g)
        atomic_store_explicit(&g->lock, 0, memory_order_release);
    else
        atomic_store_explicit(&((struct ripc__guard_slot *)t)->in, 0, memory_order_release);
}

#endif /* RIPC_SRC_GUARD_H */

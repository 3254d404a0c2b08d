/* SPDX-License-Identifier: MIT */
/*
 * One thread at a time, checked without a locked instruction on the way in:
 * a second thread that arrives while one is inside is refused
 * (ripc__guard_enter returns NULL) and must change nothing. The guard is
 * biased towards the thread that used it last; why, the slots, and the cost:
 * docs/design.md, Threads and ownership ("The worker").
 *
 * The protocol (owner O in the fast path, revoker R holding g->lock):
 *   O: load owner == s; s->in = 1; barrier B1; load owner == s  -> inside
 *   R: owner = NULL;    barrier B2 (remote);   load s->in == 0  -> take over
 * B2 orders every running thread: if O's store to s->in came before it, R
 * sees the flag and refuses itself; if after, O's second load of owner is
 * after R's store and fails. The other pairs: O1/O2 (owner published with
 * its slot), L1/L2 (the slow path's lock), I1/I2 (a flag lowered on leave,
 * read by the next revoker).
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

/* Before any thread enters (no ordering: the guard is published with the
 * client). asym: ripc__remote_fence_init() returned 1. */
void ripc__guard_init(ripc__guard *g, int asym);

/* Any thread that is not the owner, or the owner after a lost race. Never
 * waits: a token, or NULL when another thread is inside or takes over. */
ripc__guard_token ripc__guard_enter_slow(ripc__guard *g);

/*
 * The owner's side of the protocol above, for any word that holds a bias
 * (the guard's owner; the master's send lock, src/server_send.c, "The
 * bias"). The calling thread's slot when *bias names it and still does
 * after its flag went up and the fence: the caller is inside, and leaves by
 * lowering the flag (release). Else NULL, the flag down again. Any thread.
 * *asym: the revoker issues a remote fence (a compiler barrier here, else a
 * full fence), read only once the bias is found to be ours; recheck: the
 * order of the second load. Always inlined, so that a constant *asym and
 * recheck fold in the caller. Labels, the guard's and the
 * send lock's: the first load O2 / S6 (acquire, pairs with the grant O1 /
 * S5: the slot and its tid), the fence B1 / S1 (pairs with the revoker's
 * B2 / S2), the flag lowered again with release, as I1 / S3 (pairs with
 * I2 / S4).
 */
static inline __attribute__((always_inline)) struct ripc__guard_slot *
ripc__guard_bias_enter(struct ripc__guard_slot *_Atomic *bias, const int *asym,
                       memory_order recheck)
{
    struct ripc__guard_slot *s = atomic_load_explicit(bias, memory_order_acquire);
    if (!s || !pthread_equal(s->tid, pthread_self()))
        return NULL;
    atomic_store_explicit(&s->in, 1, memory_order_relaxed);
    if (*asym)
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(bias, recheck) == s)
        return s;
    atomic_store_explicit(&s->in, 0, memory_order_release);
    return NULL;
}

/* Any thread, on the way into a client call: a token for leave, or NULL
 * (another thread is inside: return -EBUSY, change nothing). */
static inline ripc__guard_token ripc__guard_enter(ripc__guard *g)
{
    /* O2 both loads: acquire, pairs with O1 in ripc__guard_enter_slow. */
    struct ripc__guard_slot *s = ripc__guard_bias_enter(&g->owner, &g->asym, memory_order_acquire);
    return s ? s : ripc__guard_enter_slow(g);
}

/* The thread that entered, with the token it got. A client handed between
 * threads is seen by the next one as the last one left it: */
static inline void ripc__guard_leave(ripc__guard *g, ripc__guard_token t)
{
    if (t == (void *)g) /* L2: release, pairs with L1 in ripc__guard_enter_slow */
        atomic_store_explicit(&g->lock, 0, memory_order_release);
    else /* I1: release, pairs with I2 in ripc__guard_enter_slow */
        atomic_store_explicit(&((struct ripc__guard_slot *)t)->in, 0, memory_order_release);
}

#endif /* RIPC_SRC_GUARD_H */

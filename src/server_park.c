/* SPDX-License-Identifier: MIT */
/*
 * The active set. A loop's list holds its active peers first, [0, nact),
 * and its parked ones after them, [nact, n); each peer knows its slot. A
 * pass (dispatch, spin) looks at the active set only, so its cost does not
 * grow with idle workers. A shm peer whose ring stayed empty over
 * PARK_SWEEPS sweeps (about a coarse tick each) is parked: its ring armed
 * as for a sleep (flag, one remote fence for the whole sweep, re-check), and
 * left armed. Its worker's next commit sees the flag and rings our
 * doorbell; the poller reports it (EV_BELL) and the peer is back in the
 * active set. A socket-mode peer is parked after as many sweeps without a
 * frame once it holds nothing the loop must look at (ripc__sockmode_parkable):
 * no arming, as its frames and its hang-up come through the poller
 * anyway (EV_SOCK brings it back), and a tail a sender leaves it raises a
 * notice. How often a busy loop looks at its poller for parked peers, and
 * how soon a sleeping one wakes to sweep: server_loop.c (LOOK_ROUNDS,
 * SWEEP_MS). Everything here is the owning loop's, but for the notice
 * (O1/O2) that other threads raise.
 */
#include <stdlib.h>

#include "src/server_internal.h"

#define PARK_SWEEPS 2

/* Append p to a growing array of peers. 0 or -ENOMEM (the array as it was). */
static int vec_push(struct ripc_peer ***v, size_t *n, size_t *cap, struct ripc_peer *p)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct ripc_peer **nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = p;
    return 0;
}

static void put(struct loop *L, size_t i, struct ripc_peer *p)
{
    L->peers[i] = p;
    p->slot = i;
}

static void swap(struct loop *L, size_t i, size_t j)
{
    struct ripc_peer *a = L->peers[i];
    put(L, i, L->peers[j]);
    put(L, j, a);
}

int ripc__park_list_add(struct loop *L, struct ripc_peer *p)
{
    int rc = vec_push(&L->peers, &L->n, &L->cap, p);
    if (rc < 0)
        return rc;
    put(L, L->n - 1, p);
    swap(L, L->n - 1, L->nact++);
    p->parked = 0;
    p->idle_sweeps = 0;
    return 0;
}

void ripc__park_list_del(struct loop *L, size_t i)
{
    size_t last = L->n - 1;
    if (L->peers[i]->parked)
        atomic_fetch_sub_explicit(&L->s->nparked, 1, memory_order_relaxed);
    L->peers[i]->parked = 0;
    if (i < L->nact) {
        size_t la = --L->nact;
        if (i != la)
            put(L, i, L->peers[la]);
        i = la; /* the hole is now the first parked slot */
    }
    if (i != last)
        put(L, i, L->peers[last]);
    L->n--;
}

static void park(struct loop *L, size_t i)
{
    struct ripc_peer *p = L->peers[i];
    atomic_fetch_add_explicit(&L->s->nparked, 1, memory_order_relaxed);
    p->parked = 1;
    if (p->xport == RIPC_XPORT_SHM)
        ripc__stat_add(&p->ch.st.in.sleeps, 1); /* armed until its next message */
    swap(L, i, --L->nact);
}

void ripc__park_unpark(struct loop *L, struct ripc_peer *p)
{
    atomic_fetch_sub_explicit(&L->s->nparked, 1, memory_order_relaxed);
    p->parked = 0;
    p->idle_sweeps = 0;
    swap(L, p->slot, L->nact++);
    if (p->xport == RIPC_XPORT_SHM)
        ripc__ring_disarm_consumer(p->ch.rx);
}

void ripc__park_sweep(struct loop *L)
{
    uint64_t now = ripc__coarse_ns();
    if (now < L->next_sweep)
        return;
    L->next_sweep = now + 1000000u;
    int cand = 0, remote = 0;
    for (size_t i = 0; i < L->nact; i++) {
        struct ripc_peer *p = L->peers[i];
        if (++p->idle_sweeps < PARK_SWEEPS || ripc__peer_drop_due(p))
            continue;
        if (p->xport == RIPC_XPORT_SOCKET) {
            if (ripc__sockmode_parkable(p)) {
                p->parked = -1; /* nothing to arm or re-check */
                cand = 1;
            } else {
                p->idle_sweeps = 0;
            }
            continue;
        }
        ripc__ring_arm_consumer_flag(p->ch.rx);
        remote |= ripc__ring_fastpub(p->ch.rx);
        p->parked = -1; /* armed, to be re-checked */
        cand = 1;
    }
    if (!cand)
        return;
    if (remote)
        ripc__remote_fence();
    /* Downwards: a peer parked trades slots with the last active one,
     * which was re-checked already. */
    for (size_t i = L->nact; i-- > 0;) {
        struct ripc_peer *p = L->peers[i];
        if (p->parked != -1)
            continue;
        p->parked = 0;
        if (p->xport == RIPC_XPORT_SOCKET)
            park(L, i);
        else if (ripc__ring_consumer_recheck(p->ch.rx) || ripc__segment_faulted(&p->ch.seg))
            p->idle_sweeps = 0; /* data came (flag cleared), or arming faulted */
        else
            park(L, i);
    }
}

void ripc__loop_notice(struct ripc_peer *p)
{
    struct loop *L = p->loop;
    if (!L)
        return;
    if (ripc__tls_loop == L) {
        ripc__park_readmit(L, p);
        return;
    }
    /* O1: seq_cst, both; pair with O2 in ripc__park_take_notices: the loop
     * that clears L's flag then finds p's. The wake covers a loop about to
     * sleep. */
    atomic_store(&p->notice, 1);
    atomic_store(&L->notice, 1);
    ripc__loop_wake(L);
}

void ripc__park_take_notices(struct loop *L)
{
    /* O2: seq_cst, pairs with O1 in ripc__loop_notice */
    if (!atomic_load_explicit(&L->notice, memory_order_relaxed) || !atomic_exchange(&L->notice, 0))
        return;
    /* A peer brought back trades slots with the first parked one, which
     * was looked at already: [nact, i) stays "looked at, still parked". */
    for (size_t i = L->nact; i < L->n; i++) {
        struct ripc_peer *p = L->peers[i];
        if (atomic_exchange(&p->notice, 0) || ripc__peer_drop_due(p))
            ripc__park_readmit(L, p);
    }
}

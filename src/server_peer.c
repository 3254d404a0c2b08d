/* SPDX-License-Identifier: MIT */
/*
 * A worker's peer: made when its connection is accepted, referenced by the
 * table, its loop and senders (src/server_internal.h, "Peer lifetime"),
 * dropped by the loop that owns it, freed with its last reference.
 */
#include <stdlib.h>
#include <string.h>

#include "src/server_internal.h"

int ripc__peer_try_ref(void *pp)
{
    struct ripc_peer *p = pp;
    int r = atomic_load_explicit(&p->refs, memory_order_relaxed);
    /* R1: a CAS from a nonzero count only; with R2 (ripc__peer_unref) a
     * count that reached 0 stays 0, so nobody revives a peer being freed. */
    while (r > 0)
        if (atomic_compare_exchange_weak(&p->refs, &r, r + 1))
            return 1;
    return 0;
}

struct ripc_peer *ripc__peer_new(ripc_server *s, int fd)
{
    /* Aligned: the counters' halves each have cache lines of their own. */
    struct ripc_peer *p = ripc__zalloc_aligned(sizeof *p);
    if (!p) {
        ripc__sock_dispose(fd);
        return NULL;
    }
    atomic_init(&p->refs, 1);
    atomic_fetch_add(&s->peer_structs, 1);
    p->srv = s;
    p->sock = fd;
    ripc__chan_init(&p->ch);
    p->ch.lg.budget = &s->large_idle;
    p->ev_sock = (struct evsrc){EV_SOCK, p};
    p->ev_bell = (struct evsrc){EV_BELL, p};
    pthread_mutex_init(&p->send_mu, NULL);
    ripc__cond_init_monotonic(&p->space_cv);
    ripc__sock_set_nonblock(p->sock, 1);
    pthread_mutex_lock(&s->all_mu);
    p->all_next = s->all;
    if (s->all)
        s->all->all_prev = p;
    s->all = p;
    pthread_mutex_unlock(&s->all_mu);
    return p;
}

void ripc__peer_free(struct ripc_peer *p)
{
    ripc_server *s = p->srv;
    ripc__frame_out_end(&p->tail);
    ripc__sockmode_budget_give(s, p->tail_charged);
    ripc__chan_close(&p->ch);
    ripc__rx_free(&p->rx);
    ripc__sock_dispose(p->sock); /* descriptors queued in it: sockets/closer.h */
    pthread_mutex_destroy(&p->send_mu);
    pthread_cond_destroy(&p->space_cv);
    free(p->loan_buf);
    ripc__free_aligned(p);
    /* The last touch of s by a sender that held p: close waits for it.
     * D3: release, pairs with D2 in wait_drained (server.c). */
    atomic_fetch_sub_explicit(&s->peer_structs, 1, memory_order_release);
}

/* Take p off the list of all peers (close's list), under all_mu. Whoever
 * drops p, before its socket and segment go (cancel_waits relies on it). */
static void all_unlink(ripc_server *s, struct ripc_peer *p)
{
    pthread_mutex_lock(&s->all_mu);
    if (p->all_prev)
        p->all_prev->all_next = p->all_next;
    else if (s->all == p)
        s->all = p->all_next;
    if (p->all_next)
        p->all_next->all_prev = p->all_prev;
    p->all_prev = p->all_next = NULL;
    pthread_mutex_unlock(&s->all_mu);
}

void ripc__peer_revoke_bias(struct ripc_peer *p, int keep_own)
{
    struct ripc__guard_slot *b = atomic_load_explicit(&p->bias, memory_order_relaxed);
    if (!b)
        return;
    int own = pthread_equal(b->tid, pthread_self());
    if (own && keep_own)
        return;
    atomic_store_explicit(&p->bias, NULL, memory_order_relaxed);
    if (own)
        return; /* we are here, not in the fast path */
    /* S2: after the bias was withdrawn, before its holder's flag is read;
     * pairs with S1 in bias_enter (server_send.c): either the holder's
     * flag store comes before it and we see the flag, or the holder's
     * second load of the bias comes after it and fails. A bias is granted
     * only where ripc__remote_fence_init() said 1. */
    atomic_thread_fence(memory_order_seq_cst);
    ripc__remote_fence();
    /* S4: acquire, pairs with S3 (bias_leave): what the holder wrote in
     * the fast path happens before what we write under the lock. The fast
     * path never blocks: this wait is one message's copy, or a preempted
     * holder's time slice. */
    for (unsigned i = 0; atomic_load_explicit(&b->in, memory_order_acquire); i++) {
        if (i < 64)
            ripc__cpu_relax();
        else
            ripc__yield();
    }
}

void ripc__peer_lock(struct ripc_peer *p, int keep_own)
{
    pthread_mutex_lock(&p->send_mu);
    ripc__peer_revoke_bias(p, keep_own);
}

void ripc__peer_drop(struct loop *L, struct ripc_peer *p, int reason)
{
    ripc_server *s = p->srv;
    int was_active = ripc__peer_joined(atomic_load(&p->state));
    /* Once close has begun, the end of a stream is close's own doing. */
    if (reason == -EPIPE && atomic_load(&s->closing))
        reason = -ECANCELED;
    if (L)
        ripc__loop_forget(L, p);
    ripc__peer_lock(p, 0);
    /* Z1: under the send lock; pairs with Z2, every sender's load of the
     * state under that lock (server_internal.h, the state table). */
    atomic_store(&p->state, P_DEAD);
    /* A loan open: its holder may be writing into the rings or a large
     * buffer; findable on s->orphans before p leaves the table. */
    if (atomic_load_explicit(&p->lent, memory_order_relaxed))
        ripc__loan_orphan(p);
    pthread_cond_broadcast(&p->space_cv);
    pthread_mutex_unlock(&p->send_mu);
    if (p->xport == RIPC_XPORT_SOCKET)
        ripc__sockmode_budget_wake(s); /* its senders in line for budget end */
    all_unlink(s, p);
    if (was_active) {
        int why = reason == RIPC_LEFT_BYE ? RIPC__LEFT_BYE
                  : reason == -EPIPE      ? RIPC__LEFT_PIPE
                  : reason == -EPROTO     ? RIPC__LEFT_PROTO
                  : reason == -ETIMEDOUT  ? RIPC__LEFT_TIMEDOUT
                  : reason == -ECANCELED  ? RIPC__LEFT_CANCELED
                                          : RIPC__LEFT_OTHER;
        ripc__server_count(&s->st.left[why]);
        ripc__peer_remove(s->t, p->id);
        atomic_fetch_sub(&s->npeers, 1);
        if (s->left)
            s->left(p, reason, s->cb_arg);
    }
    /* The rings and the segment go now (no sender can touch them: P_DEAD
     * is set under the send lock, and no bias is granted once it is); the
     * struct goes with its last reference. */
    pthread_mutex_lock(&p->send_mu);
    /* Large-message buffers of a worker that is gone or broke the rules:
     * their pages go now, even if it keeps descriptors of them. Not when the
     * master closes (-ECANCELED): a live worker may still drain its ring. */
    int lent = atomic_load_explicit(&p->lent, memory_order_relaxed) != L_NONE;
    if (lent) {
        /* The loan's end unmaps (server_loan.c, loan_end). */
        p->loan_orphan = 2;
        p->loan_punch = reason != -ECANCELED;
    } else if (reason != -ECANCELED) {
        ripc__large_punch_out(&p->ch.lg);
    }
    /* A worker asleep on its futex word would see the hang-up only when its
     * slice ends: shut the socket, then wake it. */
    if (p->sock >= 0)
        ripc__sock_shutdown(p->sock, RIPC_SOCK_SHUT_RDWR);
    ripc__doorbell_hangup(&p->ch.bell); /* nothing more queued in them either */
    ripc__doorbell_hangup(&p->ch.peer_bell);
    if (p->ch.peer_bell.word)
        ripc__doorbell_ring_word(&p->ch.peer_bell);
    if (!lent)
        ripc__chan_close(&p->ch);
    pthread_mutex_unlock(&p->send_mu);
    ripc__sockmode_release(L, p);
    /* Descriptors the worker left queued in it are released with it, on
     * the closer if they may be slow to (sockets/closer.h). */
    ripc__sock_dispose(p->sock);
    p->sock = -1;
    ripc__peer_unref(p); /* the loop's (or the handshake's) reference */
}

void ripc__peer_break(struct ripc_peer *p)
{
    int st = atomic_load(&p->state);
    /* A CAS from ACTIVE or ENDING only: it never revives a DEAD peer. */
    while ((st == P_ACTIVE || st == P_ENDING) &&
           !atomic_compare_exchange_weak(&p->state, &st, P_BROKEN))
        ;
    ripc__loop_notice(p); /* it may be parked: nobody would look at it */
}

void ripc__peer_end(struct ripc_peer *p, int reason)
{
    int st = P_ACTIVE;
    /* A CAS: a sender may mark p broken meanwhile, which must stay. */
    if (atomic_compare_exchange_strong(&p->state, &st, P_ENDING) || reason == RIPC_LEFT_BYE)
        p->end_reason = reason;
}

uint32_t ripc_peer_id(const ripc_peer *p)
{
    return p ? p->id : 0;
}

const char *ripc_peer_name(const ripc_peer *p)
{
    return p ? p->name : "";
}

const char *ripc_peer_transport(const ripc_peer *p)
{
    return p && p->xport == RIPC_XPORT_SOCKET ? "socket" : "shm";
}

const char *ripc_peer_transport_reason(const ripc_peer *p)
{
    return p ? p->reason : "";
}

int32_t ripc_peer_pid(const ripc_peer *p)
{
    return p ? p->pid : 0;
}

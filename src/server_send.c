/* SPDX-License-Identifier: MIT */
/*
 * Sending to workers, from any thread: one message, a batch, a broadcast, a
 * reply or an error reply. A sender holds the peer's send lock; when the
 * outbound ring is full it waits for room (the worker's doorbell), up to
 * its timeout, without holding the dispatch thread of anyone else.
 *
 * The common case, a thread that streams to one worker, takes no locked
 * instruction per message (each would wait for the previous message's
 * stores to reach the worker's cache): the peer comes from a per-thread
 * cache inside one RCU read-side section, without a reference, and the
 * send lock from the peer's bias. Rules: docs/design.md, Threads and
 * ownership ("Senders").
 */
#include <limits.h>
#include <stdlib.h>

#include "src/server_internal.h"

/* p's send lock, waiting for it until deadline: 0, -EAGAIN when the
 * deadline passed first (nothing was tried), or another -errno. */
static int lock_send(struct ripc_peer *p, uint64_t deadline)
{
    int rc = ripc__mutex_lock_until(&p->send_mu, deadline);
    return rc == ETIMEDOUT ? -EAGAIN : -rc;
}

/*
 * Wait for room in p's outbound ring, send lock held. The worker rings our
 * doorbell for p when it frees space while we are armed. If this thread is
 * the loop that owns p, nobody else reads that doorbell: poll it directly.
 * Otherwise the owning loop wakes us through space_cv, or, when no loop is
 * dispatching at all, we poll the doorbell ourselves; waits come in slices
 * of 10 ms, after which the caller looks again. Once close has begun, no
 * wait starts: -ECANCELED (close shuts p's socket, which ends a poll here
 * at once, and wakes space_cv under the send lock: a waiter that looked at
 * `closing` before is asleep by then).
 */
static int wait_space(struct ripc_peer *p, const ripc__waitfor *wf, uint64_t deadline)
{
    if (atomic_load_explicit(&p->srv->closing, memory_order_relaxed))
        return -ECANCELED;
    uint64_t now = ripc__now_ns();
    if (now >= deadline)
        return -ETIMEDOUT;
    uint64_t slice_end = now + 10000000u;
    uint64_t until = deadline < slice_end ? deadline : slice_end;
    int own_loop = ripc__tls_loop != NULL && ripc__tls_loop == p->loop;
    /* Nobody is dispatching (a program that polls now and then, and sends
     * in between): no loop will read p's doorbell and wake us, so read it
     * ourselves, as the owning loop does. A loop that starts meanwhile and
     * drains it first costs us at most the slice. */
    int read_bell =
        own_loop || !p->loop || atomic_load_explicit(&p->loop->active, memory_order_relaxed) == 0;
    if (own_loop) {
        /* We may be inside a handler of p's current batch, whose consumer
         * index is published only at the end of the batch: publish it now,
         * or p could be waiting for that room while we wait for p. */
        if (p->rx_held)
            ripc__ring_publish_tail_at(p->ch.rx, p->rx_hold);
        else
            ripc__ring_publish_tail(p->ch.rx);
        ripc__chan_space_wake(&p->ch);
    } else {
        /* W1: seq_cst, before arming; pairs with W2 in loop_wait (EV_BELL) */
        atomic_fetch_add(&p->space_waiters, 1);
    }
    if (ripc__chan_arm_space(&p->ch, wf)) {
        if (!own_loop)
            atomic_fetch_sub(&p->space_waiters, 1);
        return 0;
    }
    if (read_bell) {
        /* The socket only for hang-ups: frames of large messages may wait
         * there for their markers, and POLLIN would spin us. */
        ripc__sock_watch pf[2] = {{.fd = p->ch.bell.wait_fd, .events = RIPC_SOCK_IN},
                                  {.fd = p->sock, .events = RIPC_SOCK_HUP}};
        /* Not p's loop: let go of the lock while we wait, as the wait on
         * space_cv does. The loop that is to adopt p takes it to set
         * p->loop (until then we keep coming here), and a drop takes it;
         * a send that waits for a worker that does not read must not hold
         * either of them for as long as its timeout (-1: for good). */
        if (!own_loop)
            pthread_mutex_unlock(&p->send_mu);
        int ready = ripc__sock_wait_many(pf, 2, until);
        if (!own_loop) {
            ripc__peer_lock(p, 1);
            /* Z2: the lock is ours again; dropped meanwhile, the rings are gone */
            if (atomic_load(&p->state) == P_DEAD) {
                atomic_fetch_sub(&p->space_waiters, 1);
                return -EPIPE;
            }
        }
        if (ready > 0) {
            if (pf[0].ready) {
                int drc = ripc__doorbell_drain(&p->ch.bell);
                if (drc == -EPROTO)
                    ripc__peer_break(p); /* a descriptor with a ring */
                if (drc < 0) {
                    /* The worker closed its end of our doorbell (nothing
                     * can wake this wait any more), or broke the rules. */
                    ripc__chan_disarm_space(&p->ch);
                    if (!own_loop)
                        atomic_fetch_sub(&p->space_waiters, 1);
                    return -EPIPE;
                }
                /* The bell may also have announced data (p parked, or a
                 * program that polls ripc_server_fd()): we took that from
                 * its loop, give it back. */
                ripc__loop_notice(p);
            }
            if (pf[1].ready && !ripc__sock_alive(p->sock)) {
                ripc__chan_disarm_space(&p->ch);
                if (!own_loop)
                    atomic_fetch_sub(&p->space_waiters, 1);
                return -EPIPE;
            }
        }
        if (!own_loop)
            atomic_fetch_sub(&p->space_waiters, 1);
    } else {
        int w = ripc__cond_wait_until(&p->space_cv, &p->send_mu, until);
        ripc__peer_revoke_bias(p, 1); /* granted to another sender meanwhile */
        atomic_fetch_sub(&p->space_waiters, 1);
        /* ripc__peer_drop may have run while we slept without the lock: the rings
         * are gone then, touch nothing. */
        if (atomic_load(&p->state) == P_DEAD)
            return -EPIPE;
        /* No loop may be running to notice a dead worker: look ourselves
         * (the socket stays open while we hold the send lock and p is not
         * P_DEAD). */
        if (w == ETIMEDOUT && !ripc__sock_alive(p->sock)) {
            ripc__chan_disarm_space(&p->ch);
            return -EPIPE;
        }
    }
    ripc__chan_disarm_space(&p->ch);
    return 0;
}

int ripc__send_wait_unlent(struct ripc_peer *p, int timeout_ms, uint64_t *deadline)
{
    /* p's own loop would wait for the application; the loan's thread for
     * itself (it cannot commit while it waits here). */
    if ((ripc__tls_loop != NULL && ripc__tls_loop == p->loop) ||
        pthread_equal(p->loan_tid, pthread_self()))
        return -EBUSY;
    if (timeout_ms == 0)
        return -EAGAIN;
    if (atomic_load_explicit(&p->srv->closing, memory_order_relaxed))
        return -ECANCELED;
    if (*deadline == 0)
        *deadline = ripc__deadline(timeout_ms);
    if (ripc__expired(*deadline))
        return -ETIMEDOUT;
    /* The loan's end, a drop and close all broadcast space_cv under the
     * send lock, which we hold from our look at `lent` until we sleep: no
     * wake-up is lost. */
    ripc__cond_wait_until(&p->space_cv, &p->send_mu, *deadline);
    ripc__peer_revoke_bias(p, 1); /* granted to another sender meanwhile */
    return 0;
}

/* Take p's send lock. The clock is read only when we have to wait (the lock
 * is taken): a reply is otherwise one clock_gettime (~22 ns here) slower.
 * *deadline 0: not read yet (no real deadline is 0). */
int ripc__send_lock(struct ripc_peer *p, int timeout_ms, uint64_t *deadline)
{
    int rc = -pthread_mutex_trylock(&p->send_mu);
    if (rc != 0) {
        *deadline = ripc__deadline(timeout_ms);
        rc = lock_send(p, *deadline);
    }
    if (rc == 0)
        ripc__peer_revoke_bias(p, 1);
    return rc;
}

/*
 * The bias. A thread that sent RIPC_BIAS_STREAK messages in a row to p
 * through send_mu is given p's bias: from then on it holds the send lock by
 * raising its slot's flag and checking the bias again (no locked
 * instruction), for sends that need not wait. Anyone else who takes send_mu
 * withdraws the bias first (ripc__peer_revoke_bias: a remote fence, then it
 * waits for the flag to fall), so the holder goes through the mutex again
 * until it earns the bias anew. Labels: S1/S2 (the Dekker pair, with an
 * asymmetric fence), S3/S4 (leaving), S5/S6 (the grant).
 */

/* Enter p's send lock through its bias (src/guard.h): the caller's slot,
 * or NULL (not the holder, or withdrawn meanwhile). S6: acquire, pairs with
 * S5 in bias_earn (the slot's tid). S1, a compiler barrier: bias_earn grants
 * the bias only where the revoker's S2 is a remote fence. The re-check is
 * relaxed. */
static inline struct ripc__guard_slot *bias_enter(struct ripc_peer *p)
{
    static const int asym = 1;
    return ripc__guard_bias_enter(&p->bias, &asym, memory_order_relaxed);
}

static inline void bias_leave(struct ripc__guard_slot *b)
{
    atomic_store_explicit(&b->in, 0, memory_order_release); /* S3: pairs with S4 */
}

/* A send through send_mu went through (lock held): count it, and give the
 * bias to a thread that keeps sending to a shared-memory peer. */
static void bias_earn(struct ripc_peer *p)
{
    pthread_t me = pthread_self();
    if (p->bias_streak == 0 || !pthread_equal(p->bias_cand, me)) {
        p->bias_cand = me;
        p->bias_streak = 1;
        return;
    }
    if (p->bias_streak < RIPC_BIAS_STREAK) {
        p->bias_streak++;
        return;
    }
    if (atomic_load_explicit(&p->bias, memory_order_relaxed) || p->xport != RIPC_XPORT_SHM ||
        !ripc__remote_fence_init())
        return;
    struct ripc__guard_slot *b = NULL;
    for (int i = 0; i < p->bias_nslots && !b; i++)
        if (pthread_equal(p->bias_slots[i].tid, me))
            b = &p->bias_slots[i];
    if (!b) {
        if (p->bias_nslots == RIPC_BIAS_SLOTS)
            return;
        b = &p->bias_slots[p->bias_nslots++];
        b->tid = me;
        atomic_store_explicit(&b->in, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&p->bias, b, memory_order_release); /* S5: pairs with S6 */
}

/* Messages to p through its bias, inside the read-side section that keeps
 * p, all under one entry (a batch is not interleaved with another thread's
 * sends while it needs no wait). *done counts those that went. 0: all
 * went; 1: the rest must go the slow way (not the holder, or a message
 * would have to wait, or is large); else a send's error for msgs[*done].
 * The fast path never blocks and never writes a socket. */
static int bias_send(struct ripc_peer *p, const ripc_out *msgs, size_t n, int timeout_ms,
                     size_t *done)
{
    *done = 0;
    struct ripc__guard_slot *b = bias_enter(p);
    if (!b)
        return 1;
    int rc = 0;
    if (atomic_load_explicit(&p->state, memory_order_relaxed) == P_DEAD) /* Z2, under the bias */
        rc = -EPIPE;
    else if (atomic_load_explicit(&p->lent, memory_order_relaxed))
        rc = 1; /* a loan holds the channel: wait for it the slow way */
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (msgs[i].len > p->ch.max_inline) {
            rc = 1;
            break;
        }
        ripc__waitfor wf;
        rc = ripc__chan_try_send(&p->ch, msgs[i].type, RIPC_KIND_ONEWAY, 0, msgs[i].data,
                                 msgs[i].len, &wf);
        if (rc == -EPROTO || ripc__segment_faulted(&p->ch.seg)) {
            ripc__peer_break(p); /* as in send_locked */
            rc = -EPROTO;
        } else if (rc == -EAGAIN && timeout_ms != 0) {
            rc = 1;
        } else if (rc == 0) {
            *done = i + 1;
        }
    }
    bias_leave(b);
    return rc;
}

/* The last peer this thread looked up, for the next send to the same id:
 * valid while the server's removal count is unchanged (X1/X2 in
 * tables_urcu.c), so it is used only inside a read-side section and never
 * outlives a removal. */
static _Thread_local struct {
    const ripc_server *s;
    uint64_t serial, removed;
    uint32_t id;
    struct ripc_peer *p;
} last_peer __attribute__((tls_model("local-dynamic")));

/* Inside a read-side section: the peer with this id (no reference), NULL
 * when there is none; -ECANCELED in *rc once close has begun. */
static struct ripc_peer *peer_find(ripc_server *s, uint32_t id, int *rc)
{
    /* Q2: seq_cst, inside the section, as in ripc__peer_get. */
    if (atomic_load(&s->closing)) {
        *rc = -ECANCELED;
        return NULL;
    }
    *rc = -ENOENT;
    uint64_t removed = ripc__peers_removed(s->t);
    if (last_peer.s == s && last_peer.serial == s->serial && last_peer.id == id &&
        last_peer.removed == removed)
        return last_peer.p;
    struct ripc_peer *p = ripc__peer_find(s->t, id);
    if (p) {
        last_peer.s = s;
        last_peer.serial = s->serial;
        last_peer.removed = removed;
        last_peer.id = id;
        last_peer.p = p;
    }
    return p;
}

/* The slow way, from inside the section that found p: a reference, then
 * out of the section. 0, or -ENOENT (p is on its way out). */
static int peer_hold(struct ripc_peer *p)
{
    int rc = ripc__peer_try_ref(p) ? 0 : -ENOENT;
    ripc__tables_read_unlock();
    return rc;
}

/*
 * Loans through the bias (server_loan.c). The bias holder reserves or
 * commits an inline record inside the read-side section that found the
 * peer, as bias_send sends one; the loan's own reference is the only
 * locked instruction. Whoever else takes the send lock (another sender, a
 * drop, close) withdraws the bias first, so a commit that still finds it
 * knows that nobody waits for the loan's end and that p was not dropped.
 * 1: not here, take the slow way (which also reports every error but
 * one: a commit whose segment the worker cut under it is -EPROTO here).
 */
int ripc__loan_fast_reserve(ripc_server *s, uint32_t id, uint64_t len, void **buf, int timeout_ms)
{
    int rc = 1, unused, undo = 0;
    ripc__tables_read_lock();
    struct ripc_peer *p = peer_find(s, id, &unused);
    struct ripc__guard_slot *b = p && len <= p->ch.max_inline ? bias_enter(p) : NULL;
    if (b) {
        if (atomic_load_explicit(&p->state, memory_order_relaxed) != P_DEAD && /* Z2 */
            !atomic_load_explicit(&p->lent, memory_order_relaxed) && ripc__peer_try_ref(p)) {
            ripc__waitfor wf;
            int r = ripc__chan_reserve(&p->ch, len, &p->loan, buf, &wf);
            if (r == 0 && !ripc__segment_faulted(&p->ch.seg)) {
                p->loan_cap = len;
                p->loan_timeout_ms = timeout_ms;
                p->loan_tid = pthread_self();
                atomic_store_explicit(&p->lent, L_OPEN, memory_order_relaxed);
                rc = 0; /* our reference is the loan's now */
            } else {
                if (r == 0)
                    ripc__chan_abandon(&p->ch, &p->loan);
                undo = 1;
            }
        }
        bias_leave(b);
    }
    ripc__tables_read_unlock();
    if (undo)
        ripc__peer_unref(p);
    return rc;
}

int ripc__loan_fast_commit(ripc_server *s, uint32_t id, uint16_t type, uint64_t len)
{
    int rc = 1, unused;
    ripc__tables_read_lock();
    struct ripc_peer *p = peer_find(s, id, &unused);
    struct ripc__guard_slot *b = p ? bias_enter(p) : NULL;
    if (b) {
        if (atomic_load_explicit(&p->state, memory_order_relaxed) != P_DEAD &&
            atomic_load_explicit(&p->lent, memory_order_relaxed) == L_OPEN &&
            pthread_equal(p->loan_tid, pthread_self()) && len <= p->loan_cap && p->loan.b == NULL &&
            !ripc__segment_faulted(&p->ch.seg) &&
            !atomic_load_explicit(&s->closing, memory_order_relaxed)) {
            /* inline: always 0 */
            (void)ripc__chan_commit(&p->ch, &p->loan, type, RIPC_KIND_ONEWAY, 0, len);
            atomic_store_explicit(&p->lent, L_NONE, memory_order_relaxed);
            rc = 0;
            if (ripc__segment_faulted(&p->ch.seg)) {
                ripc__peer_break(p); /* cut under us: as in commit_locked */
                rc = -EPROTO;
            } else {
                uint64_t n = atomic_load_explicit(&p->loans_fast, memory_order_relaxed);
                atomic_store_explicit(&p->loans_fast, n + 1, memory_order_relaxed);
            }
        }
        bias_leave(b);
    }
    ripc__tables_read_unlock();
    if (rc <= 0)
        ripc__peer_unref(p); /* the loan's: it is over */
    return rc;
}

uint64_t ripc__peer_loans_fast(ripc_server *s, uint32_t id)
{
    int unused;
    ripc__tables_read_lock();
    struct ripc_peer *p = peer_find(s, id, &unused);
    uint64_t n = p ? atomic_load_explicit(&p->loans_fast, memory_order_relaxed) : 0;
    ripc__tables_read_unlock();
    return n;
}

void ripc__send_bias_earn(struct ripc_peer *p)
{
    bias_earn(p);
}

int ripc__send_lookup(ripc_server *s, uint32_t id, struct ripc_peer **out)
{
    int rc;
    ripc__tables_read_lock();
    struct ripc_peer *p = peer_find(s, id, &rc);
    if (!p) {
        ripc__tables_read_unlock();
        return rc;
    }
    if ((rc = peer_hold(p)) < 0)
        return rc;
    *out = p;
    return 0;
}

/* One message to p, its send lock held. Waits for room up to the deadline
 * (read from the clock on the first wait; timeout 0: never waits, -EAGAIN).
 * 0, -EPIPE (p dropped), -EPROTO (p broke the channel: flagged for its
 * loop), or a wait's or the channel's -errno. */
static int send_locked(struct ripc_peer *p, uint16_t type, uint8_t kind, uint64_t id,
                       const void *data, uint64_t len, int timeout_ms, uint64_t *deadline)
{
    for (;;) {
        if (atomic_load(&p->state) == P_DEAD) /* Z2: pairs with Z1 in ripc__peer_drop */
            return -EPIPE;
        if (atomic_load_explicit(&p->lent, memory_order_relaxed)) {
            int rc = ripc__send_wait_unlent(p, timeout_ms, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        if (p->xport == RIPC_XPORT_SOCKET) {
            if (*deadline == 0)
                *deadline = ripc__deadline(timeout_ms);
            ripc__frame f = {
                .ftype = RIPC_FRAME_MSG, .kind = kind, .type = type, .id = id, .len = len};
            /* Counted before the worker can see it, taken back if it did
             * not go (the lock is held again then: the counters are ours). */
            ripc__stat_msg(&p->ch.st.out, kind, len);
            int rc =
                len > p->ch.max_message
                    ? -EMSGSIZE
                    : ripc__sockmode_send(p, &f, data, timeout_ms == 0 ? ripc__now_ns() : *deadline,
                                          timeout_ms == 0);
            if (rc < 0)
                ripc__stat_unmsg(&p->ch.st.out, kind, len);
            return rc == -ETIMEDOUT && timeout_ms == 0 ? -EAGAIN : rc;
        }
        ripc__waitfor wf;
        int rc = ripc__chan_try_send(&p->ch, type, kind, id, data, len, &wf);
        if ((rc = ripc__send_after_try(p, rc, &wf, timeout_ms, deadline)) <= 0)
            return rc;
    }
}

/*
 * Before sleeping for room: spin, as the worker's own waits do, where the
 * worker spins too (adaptive or spin mode, a CPU of its own) and this thread
 * is not p's loop (which must publish what it read first: wait_space). A
 * worker that reads as fast as we write frees room within microseconds;
 * sleeping instead costs it a doorbell (a system call) per wake-up, and us
 * the wake-up's latency. The send lock is held meanwhile, which a drop or
 * the loop adopting p waits for: at most SPIN_ROOM_US, whatever spin_us
 * says. 1: there is room (look again); 0: sleep.
 */
#define SPIN_ROOM_US 50u
static int spin_room(struct ripc_peer *p, const ripc__waitfor *wf, uint64_t deadline)
{
    if (p->ch.wait_mode == RIPC_WAIT_BLOCK || p->ch.spin_us == 0 || wf->what != RIPC_CHAN_ROOM ||
        (ripc__tls_loop != NULL && ripc__tls_loop == p->loop))
        return 0;
    uint64_t end = 0;
    for (unsigned i = 1;; i++) {
        ripc__cpu_relax();
        if (ripc__ring_writable(p->ch.tx, (size_t)wf->arg))
            return 1;
        if ((i & 63) == 0) {
            uint64_t now = ripc__now_ns();
            if (end == 0)
                end = now + (p->ch.spin_us < SPIN_ROOM_US ? p->ch.spin_us : SPIN_ROOM_US) * 1000ull;
            if (now >= end || now >= deadline ||
                atomic_load_explicit(&p->srv->closing, memory_order_relaxed))
                return 0;
        }
    }
}

int ripc__send_after_try(struct ripc_peer *p, int rc, const ripc__waitfor *wf, int timeout_ms,
                         uint64_t *deadline)
{
    if (rc == -EPROTO || ripc__segment_faulted(&p->ch.seg)) {
        /* The worker scribbled on the consumer index of our outbound
         * ring, takes large messages without reading their frames, or
         * cut the segment (what we wrote went nowhere): the channel is
         * dead for good. */
        ripc__peer_break(p);
        return -EPROTO;
    }
    if (rc != -EAGAIN || timeout_ms == 0)
        return rc;
    if (*deadline == 0)
        *deadline = ripc__deadline(timeout_ms);
    uint64_t t0 = ripc__now_ns();
    if (spin_room(p, wf, *deadline))
        rc = 0;
    else
        rc = wait_space(p, wf, *deadline);
    /* wait_space returns with the lock held: the counters are ours */
    ripc__stat_add(&p->ch.st.out.waits, 1);
    ripc__stat_add(&p->ch.st.out.wait_ns, ripc__now_ns() - t0);
    return rc < 0 ? rc : 1;
}

int ripc__send_cut_by_close(struct ripc_peer *p, int rc)
{
    return rc == -EPIPE && atomic_load_explicit(&p->srv->closing, memory_order_relaxed) ? -ECANCELED
                                                                                        : rc;
}

/* One message to p (which the caller holds a reference on): checks, the
 * send lock, send_locked. Any thread, no lock held. */
static int peer_send(struct ripc_peer *p, uint16_t type, uint8_t kind, uint64_t id,
                     const void *data, uint64_t len, int timeout_ms)
{
    if (type >= RIPC_TYPE_RESERVED && kind != RIPC_KIND_REPLY)
        return -EINVAL;
    if (len && data == NULL)
        return -EINVAL;
    uint64_t deadline = 0;
    int rc = ripc__send_lock(p, timeout_ms, &deadline);
    if (rc < 0)
        return rc;
    rc = send_locked(p, type, kind, id, data, len, timeout_ms, &deadline);
    if (rc == 0)
        bias_earn(p);
    pthread_mutex_unlock(&p->send_mu);
    return rc < 0 ? ripc__send_cut_by_close(p, rc) : rc;
}

int ripc_server_send(ripc_server *s, uint32_t peer_id, uint16_t type, const void *data,
                     uint64_t len, int timeout_ms)
{
    if (!s || type >= RIPC_TYPE_RESERVED || (len && !data))
        return -EINVAL; /* before the lookup: a bad call is not "no such peer" */
    int rc;
    ripc__tables_read_lock();
    struct ripc_peer *p = peer_find(s, peer_id, &rc);
    if (!p) {
        ripc__tables_read_unlock();
        return rc;
    }
    ripc_out one = {.type = type, .data = data, .len = len};
    size_t done;
    if ((rc = bias_send(p, &one, 1, timeout_ms, &done)) <= 0) {
        ripc__tables_read_unlock();
        return rc < 0 ? ripc__send_cut_by_close(p, rc) : rc;
    }
    if ((rc = peer_hold(p)) < 0)
        return rc;
    rc = peer_send(p, type, RIPC_KIND_ONEWAY, 0, data, len, timeout_ms);
    ripc__peer_unref(p);
    return rc;
}

int ripc_server_send_batch(ripc_server *s, uint32_t peer_id, const ripc_out *msgs, size_t n,
                           int timeout_ms)
{
    if (!s || (n && !msgs) || n > INT_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (msgs[i].type >= RIPC_TYPE_RESERVED || (msgs[i].len && !msgs[i].data))
            return -EINVAL;
    int rc;
    ripc__tables_read_lock();
    struct ripc_peer *p = peer_find(s, peer_id, &rc);
    if (!p || n == 0) {
        ripc__tables_read_unlock();
        return p ? 0 : rc;
    }
    /* Through the bias while messages go without waiting; the rest (a
     * wait, a large message) the slow way, after them. */
    size_t i;
    if ((rc = bias_send(p, msgs, n, timeout_ms, &i)) <= 0) {
        if (rc < 0)
            rc = ripc__send_cut_by_close(p, rc);
        ripc__tables_read_unlock();
        return i > 0 || rc == 0 ? (int)i : rc;
    }
    if ((rc = peer_hold(p)) < 0)
        return i > 0 ? (int)i : rc;
    uint64_t deadline = 0;
    rc = ripc__send_lock(p, timeout_ms, &deadline);
    if (rc == 0) {
        for (; i < n; i++)
            if ((rc = send_locked(p, msgs[i].type, RIPC_KIND_ONEWAY, 0, msgs[i].data, msgs[i].len,
                                  timeout_ms, &deadline)) < 0)
                break;
        if (i == n)
            bias_earn(p);
        pthread_mutex_unlock(&p->send_mu);
    }
    if (rc < 0)
        rc = ripc__send_cut_by_close(p, rc);
    ripc__peer_unref(p);
    return i > 0 || rc == 0 ? (int)i : rc;
}

int ripc_server_broadcast(ripc_server *s, uint16_t type, const void *data, uint64_t len,
                          int timeout_ms)
{
    /* Checked here, not per worker: a bad call must not look like "no
     * worker reached". */
    if (!s || type >= RIPC_TYPE_RESERVED || (len && !data))
        return -EINVAL;
    void **all;
    int n = ripc__peer_all(s->t, &s->closing, &all);
    if (n < 0)
        return n;
    int reached = 0, canceled = 0;
    for (int i = 0; i < n; i++) {
        int rc = peer_send(all[i], type, RIPC_KIND_ONEWAY, 0, data, len, timeout_ms);
        reached += rc == 0;
        canceled |= rc == -ECANCELED;
        ripc__peer_unref(all[i]);
    }
    free(all);
    return canceled ? -ECANCELED : reached;
}

/* A reply to p (result or error): the reply timeout, unless one to p timed
 * out and none got through since. A worker that stopped reading its replies
 * must not stall the dispatch thread once per request. */
static int reply_send(struct ripc_peer *p, uint16_t type, uint64_t id, const void *data,
                      uint64_t len)
{
    int stalled = atomic_load_explicit(&p->reply_stalled, memory_order_relaxed);
    int rc =
        peer_send(p, type, RIPC_KIND_REPLY, id, data, len, stalled ? 0 : RIPC_REPLY_TIMEOUT_MS);
    if (rc == -ETIMEDOUT)
        atomic_store_explicit(&p->reply_stalled, 1, memory_order_relaxed);
    else if (rc == 0 && stalled)
        atomic_store_explicit(&p->reply_stalled, 0, memory_order_relaxed);
    return rc;
}

int ripc__reply_error(struct ripc_peer *p, uint64_t id, int err, const char *text, int wait)
{
    uint8_t buf[RIPC_ERR_FIXED + RIPC_ERR_TEXT_MAX];
    size_t n = ripc__err_encode(buf, (uint32_t)-err, text, p->ch.max_message);
    if (n == 0)
        return -EMSGSIZE;
    if (!wait)
        return peer_send(p, RIPC_MSG_ERROR, RIPC_KIND_REPLY, id, buf, n, 0);
    return reply_send(p, RIPC_MSG_ERROR, id, buf, n);
}

/* A request a worker can have sent: of kind REQUEST, with a user type (the
 * master drops a worker that sends a reserved one, so anything else is not
 * a message it dispatched). */
static int reply_ok(const ripc_peer *p, const ripc_msg *req)
{
    return p && req && req->kind == RIPC_REQUEST && req->type < RIPC_TYPE_RESERVED;
}

int ripc_reply(ripc_peer *p, const ripc_msg *req, const void *data, uint64_t len)
{
    if (!reply_ok(p, req) || (len && !data))
        return -EINVAL;
    return reply_send(p, req->type, req->id, data, len);
}

int ripc_reply_error(ripc_peer *p, const ripc_msg *req, int err, const char *text)
{
    if (!reply_ok(p, req) || err >= 0 || err < -(int)RIPC_ERR_CODE_MAX)
        return -EINVAL;
    return ripc__reply_error(p, req->id, err, text, 1);
}

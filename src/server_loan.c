/* SPDX-License-Identifier: MIT */
/*
 * Loans to workers (zero-copy sends): ripc_server_reserve / _commit /
 * _abandon. A loan is the peer's, not a thread's: its state lives in
 * ripc_peer (lent and the loan_* fields, under the send lock), and it holds
 * a reference on the peer from reserve to its end, so that a peer dropped
 * meanwhile keeps its rings and large buffers mapped under the writer
 * (docs/design.md, Zero-copy sends).
 *
 * Who ends a loan, under the send lock: its commit or abandon, or close
 * (ripc__loan_end_all) for loans still open when every peer is gone. A
 * drop (ripc__peer_drop) never does: it puts the peer on s->orphans, where
 * commit finds it once the table does not, and leaves the unmap to
 * loan_end.
 */
#include <stdlib.h>

#include "src/server_internal.h"

/* p leaves s->orphans; orphan_mu held. */
static void orphan_unlink(ripc_server *s, struct ripc_peer *p)
{
    if (p->orphan_prev)
        p->orphan_prev->orphan_next = p->orphan_next;
    else if (s->orphans == p)
        s->orphans = p->orphan_next;
    if (p->orphan_next)
        p->orphan_next->orphan_prev = p->orphan_prev;
    p->orphan_prev = p->orphan_next = NULL;
}

void ripc__loan_orphan(struct ripc_peer *p)
{
    ripc_server *s = p->srv;
    pthread_mutex_lock(&s->orphan_mu);
    p->orphan_prev = NULL;
    p->orphan_next = s->orphans;
    if (s->orphans)
        s->orphans->orphan_prev = p;
    s->orphans = p;
    pthread_mutex_unlock(&s->orphan_mu);
    p->loan_orphan = 1;
}

/* End p's loan, send lock held: senders that wait for it look again. A
 * dropped p leaves s->orphans, and what its drop left mapped for the
 * loan's holder goes now. The caller drops the loan's reference once it
 * has let go of the lock. */
static void loan_end(struct ripc_peer *p)
{
    atomic_store_explicit(&p->lent, L_NONE, memory_order_relaxed);
    p->loan.rec = NULL;
    p->loan.b = NULL;
    ripc__chan_lend_buf_trim(&p->loan_buf, &p->loan_buf_cap);
    if (p->loan_orphan) {
        ripc_server *s = p->srv;
        pthread_mutex_lock(&s->orphan_mu);
        orphan_unlink(s, p);
        pthread_mutex_unlock(&s->orphan_mu);
        if (p->loan_orphan == 2) {
            if (p->loan_punch)
                ripc__large_punch_out(&p->ch.lg);
            ripc__chan_close(&p->ch);
        }
        p->loan_orphan = 0;
    }
    pthread_cond_broadcast(&p->space_cv);
}

/* The peer a loan call names, with a reference: in the table, or dropped
 * while lent (s->orphans). -ENOENT, -ECANCELED (close has begun: open
 * loans are close's to end). */
static int loan_find(ripc_server *s, uint32_t id, struct ripc_peer **out)
{
    int rc = ripc__send_lookup(s, id, out);
    if (rc != -ENOENT)
        return rc;
    pthread_mutex_lock(&s->orphan_mu);
    for (struct ripc_peer *p = s->orphans; p; p = p->orphan_next)
        if (p->id == id && ripc__peer_try_ref(p)) { /* the loan's reference keeps it */
            *out = p;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&s->orphan_mu);
    return rc;
}

/* Reserve, send lock held: wait for an open loan to end and for room, as a
 * send does. 0 with *buf set, or -errno. */
static int lend_locked(struct ripc_peer *p, uint64_t len, void **buf, int timeout_ms,
                       uint64_t *deadline)
{
    for (;;) {
        if (atomic_load(&p->state) == P_DEAD) /* Z2: pairs with Z1 in ripc__peer_drop */
            return -EPIPE;
        if (atomic_load_explicit(&p->srv->closing, memory_order_relaxed))
            return -ECANCELED;
        int rc;
        if (atomic_load_explicit(&p->lent, memory_order_relaxed)) {
            if ((rc = ripc__send_wait_unlent(p, timeout_ms, deadline)) < 0)
                return rc;
            continue;
        }
        if (p->xport == RIPC_XPORT_SOCKET)
            return ripc__chan_lend_buf(&p->loan_buf, &p->loan_buf_cap, len, buf);
        ripc__waitfor wf;
        rc = ripc__chan_reserve(&p->ch, len, &p->loan, buf, &wf);
        if (rc == 0 && ripc__segment_faulted(&p->ch.seg))
            ripc__chan_abandon(&p->ch, &p->loan); /* -EPROTO below */
        if ((rc = ripc__send_after_try(p, rc, &wf, timeout_ms, deadline)) <= 0)
            return rc;
    }
}

int ripc_server_reserve(ripc_server *s, uint32_t peer_id, uint64_t len, void **buf, int timeout_ms)
{
    if (!s || !buf)
        return -EINVAL;
    *buf = NULL;
    if (ripc__loan_fast_reserve(s, peer_id, len, buf, timeout_ms) == 0)
        return 0;
    struct ripc_peer *p;
    int rc = ripc__send_lookup(s, peer_id, &p);
    if (rc < 0)
        return rc;
    uint64_t deadline = 0;
    if (len > p->ch.max_message)
        rc = -EMSGSIZE;
    else if ((rc = ripc__send_lock(p, timeout_ms, &deadline)) == 0) {
        if ((rc = lend_locked(p, len, buf, timeout_ms, &deadline)) == 0) {
            p->loan_cap = len;
            p->loan_timeout_ms = timeout_ms;
            p->loan_tid = pthread_self();
            atomic_store_explicit(&p->lent, L_OPEN, memory_order_relaxed);
        }
        pthread_mutex_unlock(&p->send_mu);
    }
    if (rc == 0)
        return 0; /* our reference is the loan's now */
    *buf = NULL;
    rc = ripc__send_cut_by_close(p, rc);
    ripc__peer_unref(p);
    return rc;
}

/* Is a loan open on p for commit or abandon (send lock held)? 0, -EINVAL
 * (none: close may have ended it, -ECANCELED then), -EBUSY (its commit is
 * under way on another thread). */
static int loan_check(struct ripc_peer *p)
{
    int l = atomic_load_explicit(&p->lent, memory_order_relaxed);
    if (l == L_COMMITTING)
        return -EBUSY;
    if (l == L_NONE)
        return atomic_load(&p->srv->closing) ? -ECANCELED : -EINVAL;
    return 0;
}

/* Socket mode: the buffer as one MSG frame, through the send budget like
 * ripc_server_send, waiting for the socket up to the reserve's timeout
 * (counted from now). The send may let go of the lock while it waits:
 * L_COMMITTING keeps a second commit out meanwhile. -ETIMEDOUT / -EAGAIN:
 * nothing went, the loan stays open (*ended 0). */
static int commit_socket(struct ripc_peer *p, uint16_t type, uint64_t len, int *ended)
{
    int ms = p->loan_timeout_ms;
    atomic_store_explicit(&p->lent, L_COMMITTING, memory_order_relaxed);
    ripc__frame f = {.ftype = RIPC_FRAME_MSG, .kind = RIPC_KIND_ONEWAY, .type = type, .len = len};
    int rc = ripc__sockmode_send(p, &f, p->loan_buf, ms == 0 ? ripc__now_ns() : ripc__deadline(ms),
                                 ms == 0);
    if (rc == -ETIMEDOUT) {
        atomic_store_explicit(&p->lent, L_OPEN, memory_order_relaxed);
        *ended = 0;
        return ms == 0 ? -EAGAIN : -ETIMEDOUT;
    }
    loan_end(p);
    return rc;
}

/* Commit, send lock held. *ended: the loan is over (its reference to
 * drop). */
static int commit_locked(struct ripc_peer *p, uint16_t type, uint64_t len, int *ended)
{
    int rc = loan_check(p);
    if (rc < 0)
        return rc;
    if (len > p->loan_cap)
        return -EINVAL; /* the loan stays open */
    *ended = 1;
    if (atomic_load(&p->state) == P_DEAD) { /* Z2: the drop left the rings to us */
        loan_end(p);
        return -EPIPE;
    }
    if (atomic_load_explicit(&p->srv->closing, memory_order_relaxed)) {
        if (p->xport == RIPC_XPORT_SHM)
            ripc__chan_abandon(&p->ch, &p->loan);
        loan_end(p);
        return -ECANCELED;
    }
    if (p->xport == RIPC_XPORT_SOCKET)
        return commit_socket(p, type, len, ended);
    /* A shm_open segment the worker cut: what the holder wrote landed in
     * the fault guard's zeros. */
    if (ripc__segment_faulted(&p->ch.seg)) {
        ripc__chan_abandon(&p->ch, &p->loan);
        rc = -EPROTO;
    } else {
        rc = ripc__chan_commit(&p->ch, &p->loan, type, RIPC_KIND_ONEWAY, 0, len);
    }
    if (rc == -EPROTO || ripc__segment_faulted(&p->ch.seg)) {
        ripc__peer_break(p);
        rc = -EPROTO;
    }
    loan_end(p);
    return rc;
}

int ripc_server_commit(ripc_server *s, uint32_t peer_id, uint16_t type, uint64_t len)
{
    if (!s || type >= RIPC_TYPE_RESERVED)
        return -EINVAL; /* the loan, if any, stays open */
    int rc = ripc__loan_fast_commit(s, peer_id, type, len);
    if (rc <= 0)
        return rc;
    struct ripc_peer *p;
    rc = loan_find(s, peer_id, &p);
    if (rc < 0)
        return rc;
    int ended = 0;
    ripc__peer_lock(p, 1);
    rc = commit_locked(p, type, len, &ended);
    if (rc == 0)
        ripc__send_bias_earn(p);
    pthread_mutex_unlock(&p->send_mu);
    rc = ripc__send_cut_by_close(p, rc);
    if (ended)
        ripc__peer_unref(p); /* the loan's */
    ripc__peer_unref(p);
    return rc;
}

int ripc_server_abandon(ripc_server *s, uint32_t peer_id)
{
    if (!s)
        return -EINVAL;
    struct ripc_peer *p;
    int rc = loan_find(s, peer_id, &p);
    if (rc < 0)
        return rc;
    ripc__peer_lock(p, 1);
    int ended = (rc = loan_check(p)) == 0;
    if (ended) {
        if (p->xport == RIPC_XPORT_SHM && atomic_load(&p->state) != P_DEAD)
            ripc__chan_abandon(&p->ch, &p->loan);
        loan_end(p);
    }
    pthread_mutex_unlock(&p->send_mu);
    if (ended)
        ripc__peer_unref(p); /* the loan's */
    ripc__peer_unref(p);
    return rc;
}

void ripc__loan_end_all(ripc_server *s)
{
    for (;;) {
        pthread_mutex_lock(&s->orphan_mu);
        struct ripc_peer *p = s->orphans;
        if (p && !ripc__peer_try_ref(p))
            p = NULL; /* cannot be: the loan holds a reference */
        pthread_mutex_unlock(&s->orphan_mu);
        if (!p)
            return;
        ripc__peer_lock(p, 0);
        int l = atomic_load_explicit(&p->lent, memory_order_relaxed);
        if (l == L_OPEN)
            loan_end(p);
        pthread_mutex_unlock(&p->send_mu);
        if (l == L_OPEN)
            ripc__peer_unref(p); /* the loan's */
        ripc__peer_unref(p);
        /* A socket-mode commit under way ends the loan itself, soon: close
         * shut the socket it writes to. */
        if (l == L_COMMITTING)
            ripc__nap_ns(200000);
    }
}
